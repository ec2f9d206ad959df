"""The co-design part of a study report: a study with a ``[hardware_space]``
(:mod:`search._codesign`), where each trial is one chip and the layout the study chose for it.

- What a trial is: its *chip* (the base preset with the trial's hardware point: the searched
  fields, the space's fixed ones and ties; :func:`hardware_point`, :func:`search._codesign.chip`)
  and its *layout* (the stored ``layout_point``; None when no layout of the space fits the
  chip). The study report draws the front of the objectives with both in each hover.
- Sensitivity (:func:`sensitivity`): each layout metric the study names (its objectives
  other than the chip's cost proxies, the ``[codesign]`` metric, its constraints' metrics)
  against each searched hardware field, one field at a time, the other fields at the base
  chip's values (the base preset with the space's fixed fields); plus the regions of the
  chosen layout (prefill, decode) and its decode grid. Every point is evaluated afresh by
  :func:`search._codesign.best_layout` (the nested search, or the fixed layout, on that chip),
  so the figure needs none of the stored trials. A field's values are its choices in the
  ``[hardware_space]`` and the base chip's own value (marked by a dashed line).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from plummer.hardware import HardwareSpec
from plummer.layout import METRICS as LAYOUT_METRICS
from plummer.report._figures import hover, layout_lines
from plummer.report._page import COLORS, Page, number
from search import best_layout, chip, point_layout

#: Layout columns the sensitivity figure draws for the chosen layout of each chip.
STRUCTURE = {"regions": (("regions_prefill", "pf_regions"), ("regions_decode", "dc_regions")),
             "decode grid": (("decode grid width P", "dc_p"), ("decode grid height Q", "dc_q"))}


def hardware_point(study: Any, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Every hardware field of a co-design trial's chip: its parameters, the hardware
    space's fixed fields and ties."""
    space = study.codesign.space
    point = dict(trial.params) | dict(space.fixed)
    return point | {name: point[target] for name, target in space.ties.items()}


def layout_point(trial: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
    """The layout point a co-design trial chose for its chip (None: no layout fits)."""
    return trial.user_attrs.get("plummer", {}).get("layout_point")


def chip_lines(point: dict[str, Any]) -> list[str]:
    """A chip's hardware point on one line (fields in the order of the point)."""
    return ["chip: " + ", ".join(f"{k} {number(v, 6)}" for k, v in point.items())]


def searched_size(study: Any) -> int:
    """Layout evaluations an exhaustive pass over the chips costs: chips x layouts of the
    space (nested), or chips (fixed)."""
    design = study.codesign
    return design.space.size * (study.space.size if design.mode == "nested" else 1)


def named_metrics(study: Any) -> list[str]:
    """The layout metrics the study names (module docstring), in the order it names them."""
    names = [o.metric for o in study.objectives] + [study.codesign.metric] + [c.metric for c in study.constraints]
    return list(dict.fromkeys(n for n in names if n in LAYOUT_METRICS))


def base_point(study: Any) -> dict[str, Any]:
    """The base chip's hardware point: the hardware space's fixed fields (and their ties)."""
    space = study.codesign.space
    fixed = dict(space.fixed)
    return fixed | {name: fixed[target] for name, target in space.ties.items() if target in fixed}


def sensitivity(study: Any, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Each searched field's sweep (module docstring): ``base`` (the base chip's point and
    its :func:`search._codesign.best_layout`) and ``fields``, per field a list of
    ``{"value", "point", "best"}`` sorted by value."""
    space = study.codesign.space
    base = base_point(study)
    base_spec = chip(study.hardware, base) if base else study.hardware
    at_base = base | {d.name: getattr(base_spec, d.name) for d in space.dimensions}
    cache: dict[tuple, dict[str, Any]] = {}

    def evaluate(point: dict[str, Any]) -> dict[str, Any]:
        full = at_base | point  # one key per chip, however its point is written
        key = tuple(sorted(full.items()))
        if key not in cache:
            cache[key] = best_layout(study, chip(study.hardware, full))
        return cache[key]

    fields = {}
    for dimension in space.dimensions:
        values = sorted(set(dimension.choices) | {getattr(base_spec, dimension.name)})
        if say is not None:
            say(f"sensitivity to {dimension.name}: the best layout of {len(values)} chips")
        sweep = []
        for value in values:
            point = base | {dimension.name: value}
            point |= {name: value for name, target in space.ties.items() if target == dimension.name}
            sweep.append({"value": value, "point": point, "best": evaluate(point)})
        fields[dimension.name] = sweep
    return {"base": {"point": base, "spec": base_spec, "best": evaluate(base)}, "fields": fields,
            "evaluations": len(cache)}


def _point_text(study: Any, field: str, entry: dict[str, Any]) -> str:
    best = entry["best"]
    lines = [f"#{field} = {number(entry['value'], 6)}", *chip_lines(entry["point"])]
    if best["point"] is None:
        return hover(lines + ["#no layout of the space fits this chip"])
    lines += ["#layout" + ("" if best["feasible"] else " (does not fit)"),
              *layout_lines(point_layout(study, best["point"]))]
    lines += [f"{k} = {number(best['metrics'][k], 6)}" for k in named_metrics(study) if k in best["metrics"]]
    return hover(lines)


def _axis_type(values: list[float]) -> str:
    positive = [v for v in values if v > 0]
    return "log" if len(positive) == len(values) and values and max(values) / min(values) > 20 else "linear"


def sensitivity_figure(study: Any, data: dict[str, Any]) -> go.Figure:
    """One row per searched hardware field; one column per named layout metric, then the
    chosen layout's regions and its decode grid (module docstring)."""
    metrics = named_metrics(study)
    columns = metrics + list(STRUCTURE)
    fields = list(data["fields"])
    row_px, top_px, bottom_px = 400, 90, 130
    height = row_px * len(fields) + top_px + bottom_px
    plot_px = height - top_px - bottom_px
    figure = make_subplots(rows=len(fields), cols=len(columns), horizontal_spacing=0.07,
                           vertical_spacing=min(130 / plot_px, 0.9 / max(len(fields) - 1, 1)),
                           subplot_titles=[f"{c} vs {f}" for f in fields for c in columns])
    for row, field in enumerate(fields, start=1):
        sweep = data["fields"][field]
        fits = [e for e in sweep if e["best"]["point"] is not None]
        texts = {id(e): _point_text(study, field, e) for e in sweep}
        symbols = ["circle" if e["best"]["feasible"] else "x" for e in fits]
        for col, metric in enumerate(metrics, start=1):
            figure.add_trace(go.Scatter(
                x=[e["value"] for e in fits], y=[e["best"]["metrics"][metric] for e in fits],
                mode="lines+markers", name=metric, legendgroup=metric, showlegend=row == 1,
                line={"color": COLORS[(col - 1) % len(COLORS)]}, marker={"size": 8, "symbol": symbols},
                hovertext=[texts[id(e)] for e in fits], hoverinfo="text"), row=row, col=col)
            figure.update_yaxes(title_text=metric, row=row, col=col)
        for offset, (kind, traces) in enumerate(STRUCTURE.items()):
            col = len(metrics) + 1 + offset
            for k, (name, column) in enumerate(traces):
                figure.add_trace(go.Scatter(
                    x=[e["value"] for e in fits], y=[e["best"]["point"].get(column, 1 if kind == "regions" else None)
                                                   for e in fits],
                    mode="lines+markers", name=name, legendgroup=name, showlegend=row == 1,
                    line={"color": COLORS[(len(metrics) + 2 * offset + k) % len(COLORS)],
                          "dash": "solid" if k == 0 else "dot"},
                    marker={"size": 10 if k == 0 else 6, "symbol": symbols},
                    hovertext=[texts[id(e)] for e in fits], hoverinfo="text"), row=row, col=col)
            if kind == "regions":  # room below 0 for the chips where no layout fits
                top = max([e["best"]["point"].get(c, 1) for e in fits for _, c in traces] or [1])
                figure.update_yaxes(title_text=kind, range=[-0.3, top + 0.3], row=row, col=col)
            else:
                figure.update_yaxes(title_text="cores", rangemode="tozero", row=row, col=col)
        missing = [e for e in sweep if e["best"]["point"] is None]
        if missing:
            name = "no layout fits"
            figure.add_trace(go.Scatter(
                x=[e["value"] for e in missing], y=[0] * len(missing), mode="markers", name=name,
                legendgroup=name, showlegend=not any(t.name == name for t in figure.data),
                marker={"symbol": "x", "size": 11, "color": "#7f7f7f"},
                hovertext=[texts[id(e)] for e in missing], hoverinfo="text"), row=row, col=len(metrics) + 1)
        base_value = getattr(data["base"]["spec"], field)
        values = [e["value"] for e in sweep]
        x_type = _axis_type(values)
        scale = (lambda v: math.log10(v)) if x_type == "log" else (lambda v: v)
        low, high = scale(min(values)), scale(max(values))
        pad = 0.06 * (high - low) or 0.06 * abs(high) or 0.5
        for col in range(1, len(columns) + 1):
            figure.add_vline(x=scale(base_value), line={"color": "#888", "dash": "dash", "width": 1}, row=row, col=col)
            figure.update_xaxes(title_text=f"{field} (base {number(base_value, 6)})", type=x_type,
                                range=[low - pad, high + pad], row=row, col=col)
    figure.update_layout(title="Sensitivity: the best layout against each hardware field, the others at the base chip",
                         height=height, margin={"t": top_px, "b": bottom_px},
                         legend={"orientation": "h", "y": -75 / plot_px, "yanchor": "top"})
    return figure


def infeasible_figure(study: Any, members: list[optuna.trial.FrozenTrial], points: dict[int, dict[str, Any]],
                      texts: list[str]) -> go.Figure:
    """The chips no layout of the space fits (their layout metrics are not numbers): each
    trial at its first two searched hardware fields (one field: against the trial number)."""
    names = [d.name for d in study.codesign.space.dimensions] or ["trial"]
    x_name, y_name = (names[0], names[1]) if len(names) > 1 else ("trial", names[0])

    def value(t: optuna.trial.FrozenTrial, name: str) -> float:
        return t.number if name == "trial" else points[t.number][name]

    figure = go.Figure(go.Scatter(
        x=[value(t, x_name) for t in members], y=[value(t, y_name) for t in members], mode="markers",
        name=f"no layout fits the chip ({len(members)})", hovertext=texts, hoverinfo="text",
        marker={"symbol": "x", "size": 10, "color": COLORS[1]}))
    figure.update_layout(title="Chips no layout of the space fits", height=440, xaxis_title=x_name,
                         yaxis_title=y_name, showlegend=True, legend={"orientation": "h", "y": -0.2})
    for d in study.codesign.space.dimensions[:2]:  # each searched field over its whole range
        low, high = min(d.choices), max(d.choices)
        pad = 0.06 * (high - low) or 0.5
        (figure.update_xaxes if d.name == x_name else figure.update_yaxes)(range=[low - pad, high + pad])
    return figure


def codesign_section(page: Page, study: Any, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Add the sensitivity section to ``page``; returns its facts (per field the values, the
    named metrics, regions and decode grid of each chip's layout, None where none fits)."""
    design = study.codesign
    page.section("Sensitivity to the hardware")
    if not design.space.dimensions:
        page.note("The [hardware_space] searches no field (every one has one value): nothing to vary.")
        return {"metrics": named_metrics(study), "base": base_point(study), "evaluations": 0, "fields": {}}
    data = sensitivity(study, say)
    base = data["base"]
    fixed = ", ".join(f"{k} {number(v, 6)}" for k, v in base["point"].items())
    how = (f"the best of the {study.space.size:,} layouts of [space] by {design.metric} ({design.direction})"
           if design.mode == "nested" else "the study's one layout")
    base_chip = study.hardware.name + (f" with {fixed}" if fixed else "")
    page.note(f"Each searched field of [hardware_space] varied alone, the others at the base chip ({base_chip}); "
              f"each chip's layout is {how}, evaluated afresh by `search._codesign.best_layout` "
              f"({data['evaluations']} chips), not read from the trials. Dashed line: the base chip's value. "
              "A cross marks a layout that does not fit.")
    missing = {f: [e["value"] for e in sweep if e["best"]["point"] is None] for f, sweep in data["fields"].items()}
    for field, values in missing.items():
        if values:
            page.note(f"No layout of the space fits the chip at {field} = "
                      f"{', '.join(number(v, 6) for v in values)} (drawn at 0 regions).")
    page.figure("sensitivity", sensitivity_figure(study, data))
    metrics = named_metrics(study)

    def facts(entry: dict[str, Any]) -> dict[str, Any]:
        best = entry["best"]
        if best["point"] is None:
            return {"value": entry["value"], "fits": False, "layout_point": None}
        out = {"value": entry["value"], "fits": best["feasible"], "layout_point": best["point"]}
        return out | {m: best["metrics"][m] for m in metrics}

    return {"metrics": metrics, "base": base["point"], "evaluations": data["evaluations"],
            "fields": {f: [facts(e) for e in sweep] for f, sweep in data["fields"].items()}}


def chip_of(study: Any, point: dict[str, Any]) -> HardwareSpec:
    """The chip of a hardware point (the base preset when the point is empty)."""
    return chip(study.hardware, point) if point else study.hardware


__all__ = ["STRUCTURE", "base_point", "chip_lines", "chip_of", "codesign_section", "hardware_point",
           "infeasible_figure", "layout_point", "named_metrics", "searched_size", "sensitivity", "sensitivity_figure"]
