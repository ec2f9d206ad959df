"""Figures more than one report draws: a layout's cost breakdown, predicted against reference
on log-log axes, and hover text.

The breakdown reads :attr:`plummer.layout._predict.Prediction.breakdown`: per operation of a
phase's layer, its cycles per layer split into compute (the processor's time on the critical
path) and communication (the rest), both in cycles.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from plummer.layout import Layout, PhaseLayout
from plummer.report._page import COLORS, number

PHASES = ("prefill", "decode")
_COMPUTE, _COMM = "#1f77b4", "#ff7f0e"


def hover(lines: Sequence[str]) -> str:
    """Hover text from lines of plain text (escaped; a line starting with ``#`` is bold)."""
    out = []
    for line in lines:
        if line.startswith("#"):
            out.append(f"<b>{html.escape(line[1:].strip())}</b>")
        else:
            out.append(html.escape(line))
    return "<br>".join(out)


def phase_text(name: str, phase: PhaseLayout) -> str:
    """One phase of a layout on one line: grid, regions, algorithms, groupings."""
    p, q = phase.grid
    parts = [f"{name}: {p}x{q} cores x {phase.regions} region(s)"]
    if name == "prefill":
        parts.append(f"GEMM {phase.gemm}")
    parts.append(f"allreduce {phase.allreduce}" + (f" (K={phase.k_tree})" if phase.allreduce == "ktree" else ""))
    if phase.group_num_x or phase.group_num_y:
        parts.append(f"K-tree groups x {phase.group_num_x or 'default'}, y {phase.group_num_y or 'default'}")
    parts.append(f"head groups {phase.head_groups or 'default'}")
    if phase.layers_per_region:
        parts.append(f"layers per region {list(phase.layers_per_region)}")
    if phase.origins:
        parts.append(f"origins {[list(o) for o in phase.origins]}")
    return ", ".join(parts)


def layout_lines(layout: Layout) -> list[str]:
    """The whole layout as three lines: prefill, decode, the request."""
    return [phase_text("prefill", layout.prefill), phase_text("decode", layout.decode),
            (f"request: batch {layout.batch}, {layout.input_tokens:,} input and "
             f"{layout.output_tokens:,} output tokens, KV cache {layout.kv_cache}")]


def breakdown_figures(breakdown: Sequence[dict[str, Any]], title: str) -> tuple[go.Figure, go.Figure]:
    """Two figures of a layout's breakdown: cycles per layer of every op (compute and
    communication stacked, the op's kernel in its label), and the same summed per kernel;
    prefill and decode side by side."""
    rows = {phase: [r for r in breakdown if r["phase"] == phase] for phase in PHASES}
    per_op = make_subplots(rows=1, cols=2, subplot_titles=[
        f"{phase}: {number(sum(r['cycles_per_layer'] for r in rows[phase]))} cycles per layer"
        for phase in PHASES], horizontal_spacing=0.28)
    per_kernel = make_subplots(rows=1, cols=2, subplot_titles=list(PHASES), horizontal_spacing=0.2)
    for col, phase in enumerate(PHASES, start=1):
        ops = rows[phase][::-1]  # first op on top
        labels = [f"{r['op']} · {r['kernel']}" for r in ops]
        for part, key, color in (("compute", "compute_cycles_per_layer", _COMPUTE),
                                 ("communication", "comm_cycles_per_layer", _COMM)):
            per_op.add_trace(go.Bar(
                y=labels, x=[r[key] for r in ops], orientation="h", name=part, marker_color=color,
                legendgroup=part, showlegend=col == 1,
                hovertext=[hover([f"#{r['op']} ({r['kernel']})", f"{part}: {number(r[key])} cycles per layer",
                                  f"runs per layer: {number(r['repeats'])}, {number(r['cycles_per_run'])} cycles each",
                                  f"memory per core while it runs: {number(r['memory_bytes'])} B"]) for r in ops],
                hoverinfo="text"), row=1, col=col)
        kernels: dict[str, list[float]] = {}
        for r in rows[phase]:
            total = kernels.setdefault(r["kernel"], [0.0, 0.0])
            total[0] += r["compute_cycles_per_layer"]
            total[1] += r["comm_cycles_per_layer"]
        names = sorted(kernels, key=lambda k: -sum(kernels[k]))
        for i, (part, color) in enumerate((("compute", _COMPUTE), ("communication", _COMM))):
            per_kernel.add_trace(go.Bar(
                x=names, y=[kernels[k][i] for k in names], name=part, marker_color=color,
                legendgroup=part, showlegend=col == 1), row=1, col=col)
        per_op.update_xaxes(title_text="cycles per layer", row=1, col=col)
        per_kernel.update_yaxes(title_text="cycles per layer", row=1, col=col)
    height = 22 * max(len(rows["prefill"]), len(rows["decode"]), 8) + 160
    per_op.update_layout(barmode="stack", title=title, height=height,
                         legend={"orientation": "h", "y": -0.08 if height > 500 else -0.15})
    per_kernel.update_layout(barmode="stack", title=f"{title}: per kernel", height=440)
    per_kernel.update_xaxes(tickangle=-30)
    return per_op, per_kernel


@dataclass(frozen=True)
class Points:
    """One trace of a predicted-against-reference plot: ``reference`` (x) and ``predicted``
    (y), the same unit (cycles), with a hover text per point."""

    name: str
    reference: np.ndarray
    predicted: np.ndarray
    texts: Sequence[str]
    symbol: str = "circle"
    color: str | None = None


def comparison_figure(groups: Sequence[Points], title: str, reference_title: str,
                      predicted_title: str, bands: Sequence[float] = (0.05, 0.20)) -> go.Figure:
    """Predicted against reference on log-log axes: one trace per group, the line y = x,
    and a shaded band of relative error ``+-b`` per entry of ``bands`` (fractions)."""
    values = np.concatenate([np.concatenate([g.reference, g.predicted]) for g in groups]) if groups else np.ones(1)
    values = values[np.isfinite(values) & (values > 0)]
    low, high = (float(values.min()) / 1.5, float(values.max()) * 1.5) if values.size else (1.0, 10.0)
    line = np.geomspace(low, high, 2)
    figure = go.Figure()
    for i, band in enumerate(sorted(bands, reverse=True)):
        shade = f"rgba(90, 90, 90, {0.14 + 0.12 * i})"
        figure.add_trace(go.Scatter(x=line, y=line * (1 - band), mode="lines", line={"width": 0},
                                    hoverinfo="skip", showlegend=False, name=f"-{band:.0%}"))
        figure.add_trace(go.Scatter(x=line, y=line * (1 + band), mode="lines", line={"width": 0},
                                    fill="tonexty", fillcolor=shade, hoverinfo="skip",
                                    name=f"error within ±{band:.0%}"))
    figure.add_trace(go.Scatter(x=line, y=line, mode="lines", name="y = x",
                                line={"color": "#444", "width": 1, "dash": "dash"}, hoverinfo="skip"))
    for i, g in enumerate(groups):
        figure.add_trace(go.Scatter(
            x=g.reference, y=g.predicted, mode="markers", name=g.name, hovertext=list(g.texts),
            hoverinfo="text", marker={"symbol": g.symbol, "size": 7, "opacity": 0.8,
                                      "color": g.color or COLORS[i % len(COLORS)]}))
    figure.update_xaxes(type="log", title_text=reference_title, range=np.log10([low, high]).tolist(),
                        constrain="domain")
    figure.update_yaxes(type="log", title_text=predicted_title, range=np.log10([low, high]).tolist(),
                        scaleanchor="x", scaleratio=1, constrain="domain")
    figure.update_layout(title=title, height=640, legend={"traceorder": "normal"})
    return figure


__all__ = ["PHASES", "Points", "breakdown_figures", "comparison_figure", "hover", "layout_lines",
           "phase_text"]
