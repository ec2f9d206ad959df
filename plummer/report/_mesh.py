"""The mesh report: one run of a kernel on the exact executor, as heatmaps of the mesh.

From the run's :class:`plummer.mesh.ExecutionResult` (arrays indexed ``[y, x]``, y = 0 the
north row, drawn at the top):

- peak bytes of tiles per core, against the core's memory budget;
- bytes each directed link carried, one heatmap per direction (east, west, south, north:
  the link leaving core ``(x, y)`` that way), on one colour scale;
- cycles each core's processor was busy (compute and routing stages) and idle (the
  makespan less busy), on one colour scale from 0 to the makespan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from plummer.hardware import HardwareSpec
from plummer.kernels import Kernel
from plummer.report._page import Page, check_writable, number, percent
from plummer.report._result import Report

#: Directions of ``ExecutionResult.link_bytes``' last axis.
DIRECTIONS = ("east", "west", "south", "north")


def _heatmap(values: np.ndarray, unit: str, what: str, **style: Any) -> go.Heatmap:
    height, width = values.shape
    ys, xs = np.mgrid[0:height, 0:width]
    text = np.vectorize(lambda x, y, v: f"core ({x}, {y})<br>{what}: {number(v)} {unit}")(xs, ys, values)
    return go.Heatmap(z=values, x=list(range(width)), y=list(range(height)), text=text,
                      hoverinfo="text", name=what, **style)


def _mesh_axes(figure: go.Figure, rows: int, cols: int) -> None:
    """Square cells, the north row (y = 0) at the top, in every panel."""
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            index = (r - 1) * cols + c
            figure.update_xaxes(title_text="x (core column)", constrain="domain", row=r, col=c)
            figure.update_yaxes(title_text="y (core row)", autorange="reversed", constrain="domain",
                                scaleanchor="x" if index == 1 else f"x{index}", scaleratio=1, row=r, col=c)


def mesh_report(spec: HardwareSpec, kernel: Kernel, params: dict[str, Any], output: str | Path,
                seed: int = 0, label: str = "") -> Report:
    """Run ``kernel`` with ``params`` on the executor (random operands of ``seed``) and write
    its heatmaps (module docstring) to ``output``."""
    output = check_writable(output)
    run = kernel.execute(spec, seed=seed, **params)
    result = run.execution
    cost = kernel.cost(spec, **params)
    predicted = float(cost.cycles)
    config = " ".join(f"{k}={v}" for k, v in params.items())
    page = Page(f"{label or kernel.family + ' ' + kernel.name} on a {result.width}x{result.height} mesh",
                f"{spec.name}: {config}")
    page.metrics({"makespan cycles": result.cycles, "mean cycles over cores": result.mean_core_cycles,
                  "predicted cycles (closed form)": predicted,
                  "prediction error": percent(abs(predicted - result.cycles) / result.cycles),
                  "link waits": result.link_waits, "result correct": str(run.correct),
                  "peak memory per core, max": float(result.peak_memory_bytes.max()),
                  "memory budget per core": float(spec.memory_bytes),
                  "bytes on the busiest link": result.max_link_bytes,
                  "routes per core, max": float(result.routes_per_core.max()),
                  "busy share, mean over cores": percent(float(result.busy_cycles.mean()) / result.cycles)
                  if result.cycles else "-"})

    page.section("Peak memory per core")
    peak = result.peak_memory_bytes.astype(float)
    memory = make_subplots(rows=1, cols=1)
    memory.add_trace(_heatmap(peak, "B", "peak memory", colorscale="Viridis", zmin=0, zmax=max(peak.max(), 1.0),
                              colorbar={"title": {"text": "bytes"}}), row=1, col=1)
    memory.update_layout(title=f"Peak bytes of tiles per core (budget {number(spec.memory_bytes)} B; "
                               f"max {number(peak.max())} B, {percent(peak.max() / spec.memory_bytes)})", height=560)
    _mesh_axes(memory, 1, 1)
    page.figure("memory", memory)

    page.section("Bytes per link")
    links = make_subplots(rows=2, cols=2, subplot_titles=[f"links going {d}" for d in DIRECTIONS],
                          horizontal_spacing=0.1, vertical_spacing=0.12)
    for i, direction in enumerate(DIRECTIONS):
        links.add_trace(_heatmap(result.link_bytes[:, :, i].astype(float), "B", f"bytes sent {direction}",
                                 coloraxis="coloraxis"), row=i // 2 + 1, col=i % 2 + 1)
    links.update_layout(title=f"Bytes each directed link carried (busiest {number(result.max_link_bytes)} B)",
                        height=900, coloraxis={"colorscale": "Inferno", "cmin": 0, "cmax": max(result.max_link_bytes, 1.0),
                                               "colorbar": {"title": {"text": "bytes"}}})
    _mesh_axes(links, 2, 2)
    page.figure("links", links)

    page.section("Busy against idle")
    busy = make_subplots(rows=1, cols=2, subplot_titles=["busy cycles (compute and stages)", "idle cycles"],
                         horizontal_spacing=0.1)
    for col, (values, what) in enumerate(((result.busy_cycles, "busy"), (result.idle_cycles, "idle")), start=1):
        busy.add_trace(_heatmap(values.astype(float), "cycles", what, coloraxis="coloraxis"), row=1, col=col)
    busy.update_layout(title=f"Processor time per core over the makespan of {number(result.cycles)} cycles",
                       height=520, coloraxis={"colorscale": "Cividis", "cmin": 0, "cmax": max(result.cycles, 1.0),
                                              "colorbar": {"title": {"text": "cycles"}}})
    _mesh_axes(busy, 1, 2)
    page.figure("busy", busy)
    page.write(output)
    facts = {"kernel": kernel.family, "algo": kernel.name, "hardware": spec.name, "params": params,
             "mesh": [result.width, result.height], "cycles": result.cycles, "predicted_cycles": predicted,
             "link_waits": result.link_waits, "correct": bool(run.correct),
             "peak_memory_bytes_max": float(peak.max()), "max_link_bytes": result.max_link_bytes}
    return Report("mesh", output, page.summaries(), facts)


__all__ = ["DIRECTIONS", "mesh_report"]
