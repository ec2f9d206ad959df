"""The layout report: one layout of an LLM on the wafer, as one HTML page.

- The wafer: the fabric (``W`` x ``H`` cores, y = 0 at the top, the north edge) with each
  phase's regions drawn where the placement puts them (:func:`region_origins`), labelled
  with their layers, and the pipeline order through them.
- Memory per core against the budget, per phase (bytes): the weights of the most layers one
  region holds, the KV cache at the final context (decode), and the largest working set of
  any op (buffers and live tensors), stacked; their sum is the phase's
  ``memory_*_bytes`` of :func:`plummer.layout.evaluate`.
- Time per operation: the breakdown of :func:`plummer.layout._predict.predict`.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from plummer.hardware import HardwareSpec
from plummer.layout import Layout, PhaseLayout, evaluate, layout_arrays
from plummer.layout._arrays import region_layer_counts, region_origins
from plummer.layout._predict import HEADLINE, Prediction
from plummer.model import ModelSpec
from plummer.report._figures import PHASES, breakdown_figures, hover, layout_lines
from plummer.report._page import COLORS, Page, check_writable, number
from plummer.report._result import Report


def region_layers(model: ModelSpec, phase: PhaseLayout) -> list[tuple[int, int]]:
    """First and last layer (0-based, inclusive) of each region."""
    bounds = np.cumsum([0, *region_layer_counts(model, phase)])
    return [(int(a), int(b) - 1) for a, b in itertools.pairwise(bounds)]


def memory_parts(spec: HardwareSpec, model: ModelSpec, layout: Layout) -> dict[str, dict[str, float]]:
    """Per phase, bytes per core: ``weights`` (the most layers on one region), ``kv_cache``
    (prefill: the prompts' K and V; decode: the cache at the final context; of every batch in
    flight) and ``buffers`` (the largest working set of an op)."""
    arrays = layout_arrays(spec, model, [layout])
    ev = evaluate(spec, model, arrays)
    out = {}
    for phase, cost, part in (("prefill", ev.prefill, arrays.prefill), ("decode", ev.decode, arrays.decode)):
        layers = float(np.asarray(part.max_layers).reshape(-1)[0])
        out[phase] = {"weights": layers * float(np.asarray(cost.weights_bytes).reshape(-1)[0]),
                      "kv_cache": float(ev.metrics["kv_cache_bytes" if phase == "decode" else "prompt_kv_bytes"]
                                        .reshape(-1)[0]),
                      "buffers": float(np.asarray(cost.working_bytes).reshape(-1)[0])}
    return out


def _wafer_figure(spec: HardwareSpec, model: ModelSpec, layout: Layout) -> go.Figure:
    width, height = spec.fabric_width, spec.fabric_height
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=[
        f"{phase}: {getattr(layout, phase).regions} region(s) of {getattr(layout, phase).grid[0]}x"
        f"{getattr(layout, phase).grid[1]} cores" for phase in PHASES])
    for col, phase in enumerate(PHASES, start=1):
        lay: PhaseLayout = getattr(layout, phase)
        p, q = lay.grid
        figure.add_trace(go.Scatter(
            x=[0, width, width, 0, 0], y=[0, 0, height, height, 0], mode="lines", name="fabric",
            line={"color": "#555", "width": 1.5}, fill="toself", fillcolor="rgba(0,0,0,0.03)",
            legendgroup="fabric", showlegend=col == 1,
            hovertext=f"fabric of {spec.name}: {width} x {height} cores", hoverinfo="text"), row=1, col=col)
        origins = region_origins(spec, lay)
        for i, ((x, y), (first, last)) in enumerate(zip(origins, region_layers(model, lay), strict=True)):
            text = hover([f"#{phase} region {i}", f"cores x {x}..{x + p - 1}, y {y}..{y + q - 1}",
                          f"layers {first}..{last} ({last - first + 1})"])
            figure.add_trace(go.Scatter(
                x=[x, x + p, x + p, x, x], y=[y, y, y + q, y + q, y], mode="lines", fill="toself",
                name=f"{phase} region {i}: layers {first}-{last}", showlegend=False,
                line={"color": "#ffffff", "width": 2}, fillcolor=COLORS[col - 1], opacity=0.6,
                hovertext=text, hoverinfo="text", hoveron="fills"), row=1, col=col)
            layers = f"layers {first}-{last}" if first != last else f"layer {first}"
            figure.add_annotation(x=x + p / 2, y=y + 0.25 * q, text=layers, showarrow=False,
                                  font={"size": 10, "color": "#111"}, row=1, col=col)
        if len(origins) > 1:
            figure.add_trace(go.Scatter(
                x=[x + p / 2 for x, _ in origins], y=[y + q / 2 for _, y in origins], mode="lines+markers",
                name="pipeline order", legendgroup="order", showlegend=col == 1,
                line={"color": "#222", "width": 1, "dash": "dot"}, marker={"size": 4}, hoverinfo="skip"),
                row=1, col=col)
        figure.update_xaxes(range=[-0.02 * width, 1.02 * width], title_text="x (cores)", row=1, col=col,
                            constrain="domain")
        figure.update_yaxes(range=[1.02 * height, -0.02 * height], title_text="y (cores)", row=1, col=col,
                            scaleanchor="x" if col == 1 else "x2", scaleratio=1, constrain="domain")
    figure.update_layout(title="Regions on the wafer (labels: the layers each holds)", height=620,
                         legend={"orientation": "h", "y": -0.12})
    return figure


def _memory_figure(spec: HardwareSpec, parts: dict[str, dict[str, float]]) -> go.Figure:
    figure = go.Figure()
    for key, label, color in (("weights", "weights", COLORS[0]), ("kv_cache", "KV cache", COLORS[3]),
                              ("buffers", "buffers (largest working set)", COLORS[2])):
        figure.add_trace(go.Bar(x=list(PHASES), y=[parts[p][key] for p in PHASES], name=label,
                                marker_color=color,
                                hovertext=[f"{p}: {label} {number(parts[p][key])} B per core" for p in PHASES],
                                hoverinfo="text"))
    budget = float(spec.memory_bytes)
    figure.add_hline(y=budget, line={"color": COLORS[1], "dash": "dash", "width": 2},
                     annotation_text=f"budget {number(budget)} B per core", annotation_position="top left")
    figure.update_layout(title="Memory per core against the budget", barmode="stack", height=460,
                         yaxis_title="bytes per core")
    return figure


def layout_report(prediction: Prediction, output: str | Path, source: str = "") -> Report:
    """Write the report of one predicted layout (module docstring) to ``output``;
    ``source`` says where the layout came from (a file, or the options that chose it)."""
    output = check_writable(output)
    spec, model, layout = prediction.hardware, prediction.model, prediction.layout
    page = Page(f"Layout of {model.name} on {spec.name}", source or layout.description)
    for line in layout_lines(layout):
        page.note(line)
    for text in prediction.chosen:
        page.note(f"chosen: {text}")
    page.section("Predicted figures")
    page.metrics({k: prediction.metrics[k] for k in HEADLINE if not np.isnan(prediction.metrics[k])})
    if prediction.feasible:
        page.note("The layout fits: memory, routes and placement within the chip's budgets.")
    else:
        for text in prediction.infeasible_reasons:
            page.note(f"Does not fit: {text}")
    page.section("Regions on the wafer")
    page.figure("wafer", _wafer_figure(spec, model, layout))
    page.section("Memory per core")
    parts = memory_parts(spec, model, layout)
    page.figure("memory", _memory_figure(spec, parts))
    page.section("Time per operation")
    page.note("Cycles per layer of every op of each phase's layer plan (compute on the critical path "
              "against the rest, communication); the kernel each op runs follows its name.")
    per_op, per_kernel = breakdown_figures(prediction.breakdown, "Cycles per layer by operation")
    page.figure("breakdown", per_op)
    page.figure("breakdown_kernels", per_kernel)
    page.write(output)
    facts: dict[str, Any] = {"model": model.name, "hardware": spec.name, "feasible": prediction.feasible,
                             "infeasible_reasons": prediction.infeasible_reasons, "memory": parts,
                             "regions": {p: [list(o) for o in region_origins(spec, getattr(layout, p))] for p in PHASES},
                             "layout": layout.to_dict()}
    return Report("layout", output, page.summaries(), facts)


__all__ = ["layout_report", "memory_parts", "region_layers", "region_origins"]
