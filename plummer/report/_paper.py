"""The paper report: the published WaferLLM runs on a WSE-2 reproduced, as one HTML page.

Data: the shipped scenarios (:func:`plummer.scenario.shipped_scenarios`, each the model as
WaferLLM's released kernels run it: one attention head of the full width, dimensions padded
to multiples of the grid side P) through :func:`plummer.scenario._validate.validate_paper`.

- Predicted against observed, per scenario (tokens/s, linear axes, one panel per metric):
  the line y = x and bands of relative error; scenarios the hardware's parameters were
  fitted on (its ``fitted_on``) apart from the held-out ones, and for each fitted scenario
  its *leave-one-out* prediction (the parameters refitted without it).
- Tokens/s against the grid side P (decode at 4K context, prefill of 4,096 tokens): the
  prediction at every grid of the released decode configurations (the shipped decode
  scenarios, observed and prediction-only), with the observed points on top. The released
  prefill kernel has no configuration files, so the prefill pattern is extended to those
  grids as the shipped prefill scenarios build it (:func:`prefill_scenario`): LLaMA3-8B's
  width E and FFN width F padded up to multiples of P (``ceil(E / P) P``, ``ceil(F / P) P``;
  one head of width ``head_dim`` = the padded E), the grid P x P, the rest of the shipped
  prefill scenario unchanged.
- The error table: every scenario, its error and leave-one-out error, and the mean and max
  over the fitted, the held-out and the leave-one-out predictions.

Nothing here assumes the errors are small: the axes cover every value drawn, whatever the
error, and the bands are a reading aid only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from plummer.hardware import HardwareSpec, load_hardware
from plummer.hardware._spec import CALIBRATABLE
from plummer.model import load_model
from plummer.report._figures import hover
from plummer.report._page import COLORS, Page, check_writable, number, percent
from plummer.report._result import Report
from plummer.scenario import Scenario, shipped_scenarios

#: Relative-error bands drawn around y = x (fractions).
PAPER_BANDS = (0.10, 0.25)
#: The model WaferLLM ran (its true widths are padded up to multiples of the grid side).
PAPER_MODEL = "llama3-8b"
#: The two published metrics, their panel titles.
METRICS = {"decode_tokens_per_s": "decode tokens/s per request (4K context)",
           "prefill_tokens_per_s": "prefill tokens/s (4,096 input tokens)"}


def _phase(metric: str) -> str:
    return "decode" if metric.startswith("decode") else "prefill"


def _side(s: Scenario) -> int:
    """The grid side P of the phase a scenario measures (cores)."""
    return getattr(s.layout, _phase(s.metric)).grid[0]


def prefill_scenario(template: Scenario, p: int) -> Scenario:
    """The prefill scenario ``template`` moved to a ``p`` x ``p`` grid: LLaMA3-8B's hidden
    and FFN widths padded up to multiples of ``p`` (elements), one head of the padded width,
    both phases' grids ``p`` x ``p`` (module docstring)."""
    true = load_model(PAPER_MODEL)
    hidden, ffn = -(-true.hidden // p) * p, -(-true.ffn // p) * p
    model = dataclasses.replace(template.model, name=f"{PAPER_MODEL}-as-run-prefill-P{p}", hidden=hidden,
                                ffn=ffn, head_dim=hidden)
    layout = template.layout.replace(prefill={"grid": (p, p)}, decode={"grid": (p, p)})
    description = (f"{true.name} prefill of {template.layout.input_tokens:,} tokens on a {p}x{p} "
                   f"{template.hardware} grid: the shipped prefill pattern at this grid (prediction)")
    return dataclasses.replace(template, name=f"prefill-pattern-P{p}", model=model, layout=layout, value=None,
                               description=description,
                               source="prediction only: the prefill pattern extended to a released decode grid")


def _clean(value: Any) -> Any:
    """JSON-ready: NaN as None, numpy scalars as Python ones."""
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    return value


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in result["rows"].to_dict(orient="records")]


def _scenario_lines(s: Scenario) -> list[str]:
    m = s.model
    shape = f"E {m.hidden:,}, F {m.ffn:,}, {m.heads} head(s) of {m.head_dim:,}, {m.layers} layers"
    return [f"model as run: {m.name}: {shape}", f"timing: {s.timing}"]


def _comparison_figure(rows: list[dict[str, Any]], scenarios: dict[str, Scenario]) -> go.Figure:
    """Predicted against observed, one panel per metric: bands, y = x, the fitted and the
    held-out scenarios, the leave-one-out predictions (traces without points are left out)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=list(METRICS.values()), horizontal_spacing=0.1)
    for col, metric in enumerate(METRICS, start=1):
        observed = [r for r in rows if r["metric"] == metric and r["observed"] is not None]
        loo = [r["observed"] * (1 + r["loo_error"]) for r in observed if r["loo_error"] is not None]
        values = [v for v in [r["observed"] for r in observed] + [r["predicted"] for r in observed] + loo
                  if math.isfinite(v)]
        low, high = (min(values), max(values)) if values else (1.0, 2.0)
        pad = 0.08 * (high - low) or 0.1 * high
        low, high = max(low - pad, 0.0), high + pad
        line = np.array([low, high])
        for i, band in enumerate(sorted(PAPER_BANDS, reverse=True)):
            name = f"error within ±{band:.0%}"
            figure.add_trace(go.Scatter(x=line, y=line * (1 - band), mode="lines", line={"width": 0},
                                        hoverinfo="skip", showlegend=False, name=f"-{band:.0%}"), row=1, col=col)
            figure.add_trace(go.Scatter(x=line, y=line * (1 + band), mode="lines", line={"width": 0},
                                        fill="tonexty", fillcolor=f"rgba(90, 90, 90, {0.12 + 0.12 * i})",
                                        hoverinfo="skip", name=name, legendgroup=name, showlegend=col == 1),
                             row=1, col=col)
        figure.add_trace(go.Scatter(x=line, y=line, mode="lines", name="y = x", legendgroup="y = x",
                                    showlegend=col == 1, hoverinfo="skip",
                                    line={"color": "#444", "width": 1, "dash": "dash"}), row=1, col=col)
        phase = _phase(metric)
        groups = (("fitted", [r for r in observed if r["fitted"]], "circle", COLORS[0], "predicted"),
                  ("held out, not fitted", [r for r in observed if not r["fitted"]], "diamond", COLORS[1],
                   "predicted"),
                  ("leave-one-out", [r for r in observed if r["loo_error"] is not None], "circle-open",
                   COLORS[2], "loo"))
        for label, members, symbol, color, which in groups:
            if not members:
                continue
            ys = [r["predicted"] if which == "predicted" else r["observed"] * (1 + r["loo_error"]) for r in members]
            texts = []
            for r, y in zip(members, ys, strict=True):
                lines = [f"#{r['scenario']} ({label})", f"grid {r['grid']}",
                         f"observed {number(r['observed'], 6)} tokens/s",
                         f"predicted {number(r['predicted'], 6)} tokens/s (error {percent(r['rel_error'])})"]
                if r["loo_error"] is not None:
                    lines.append(f"leave-one-out {number(r['observed'] * (1 + r['loo_error']), 6)} tokens/s "
                                 f"(error {percent(r['loo_error'])})")
                texts.append(hover(lines + _scenario_lines(scenarios[r["scenario"]]) + [f"source: {r['source']}"]))
            figure.add_trace(go.Scatter(
                x=[r["observed"] for r in members], y=ys, mode="markers", name=f"{phase}, {label} ({len(members)})",
                hovertext=texts, hoverinfo="text",
                marker={"symbol": symbol, "size": 11, "color": color, "line": {"width": 1.5, "color": color}}),
                row=1, col=col)
        figure.update_xaxes(title_text="observed (published) tokens/s", range=[low, high], row=1, col=col)
        figure.update_yaxes(title_text="predicted tokens/s", range=[low, high], row=1, col=col)
    figure.update_layout(title="Predicted against the published WaferLLM runs", height=560,
                         legend={"orientation": "h", "y": -0.2})
    return figure


def _curve_figure(curves: dict[str, list[dict[str, Any]]], rows: list[dict[str, Any]],
                  scenarios: dict[str, Scenario]) -> go.Figure:
    """Tokens/s against the grid side P, one panel per metric: the predicted curve over the
    released grids and the observed points on top."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=list(METRICS.values()), horizontal_spacing=0.1)
    for col, metric in enumerate(METRICS, start=1):
        phase = _phase(metric)
        curve = curves[phase]
        figure.add_trace(go.Scatter(
            x=[c["grid"] for c in curve], y=[c["predicted"] for c in curve], mode="lines+markers",
            name=f"{phase}, predicted ({len(curve)} grids)", line={"color": COLORS[0], "width": 2},
            marker={"size": 7},
            hovertext=[hover([f"#{c['scenario']}", f"grid {c['grid']}x{c['grid']}",
                              f"predicted {number(c['predicted'], 6)} tokens/s", *c["lines"]]) for c in curve],
            hoverinfo="text"), row=1, col=col)
        observed = [r for r in rows if r["metric"] == metric and r["observed"] is not None]
        figure.add_trace(go.Scatter(
            x=[_side(scenarios[r["scenario"]]) for r in observed], y=[r["observed"] for r in observed],
            mode="markers", name=f"{phase}, observed ({len(observed)})",
            marker={"symbol": "star", "size": 15, "color": COLORS[1], "line": {"width": 1, "color": "#fff"}},
            hovertext=[hover([f"#{r['scenario']} (published)", f"grid {r['grid']}",
                              f"observed {number(r['observed'], 6)} tokens/s",
                              f"predicted {number(r['predicted'], 6)} tokens/s (error {percent(r['rel_error'])})",
                              f"source: {r['source']}"]) for r in observed], hoverinfo="text"), row=1, col=col)
        figure.update_xaxes(title_text="grid side P (P x P cores)", row=1, col=col)
        figure.update_yaxes(title_text="tokens/s", rangemode="tozero", row=1, col=col)
    figure.update_layout(title="Tokens/s against the grid size", height=520, legend={"orientation": "h", "y": -0.2})
    return figure


def _curves(scenarios: Sequence[Scenario], rows: list[dict[str, Any]], spec: HardwareSpec | None,
            ) -> dict[str, list[dict[str, Any]]]:
    """The decode prediction at every shipped decode scenario's grid (from ``rows``) and the
    prefill pattern predicted at the same grids, each sorted by grid side."""
    predicted = {r["scenario"]: r["predicted"] for r in rows}
    decode = sorted((s for s in scenarios if s.metric == "decode_tokens_per_s"), key=_side)
    out = {"decode": [{"grid": _side(s), "scenario": s.name, "predicted": predicted[s.name],
                       "observed": s.observed, "lines": _scenario_lines(s)} for s in decode]}
    templates = sorted((s for s in scenarios if s.metric == "prefill_tokens_per_s"),
                       key=lambda s: (not s.observed, s.name))
    prefill = []
    if templates:
        for p in sorted({_side(s) for s in decode}):
            s = prefill_scenario(templates[0], p)
            prefill.append({"grid": p, "scenario": s.name, "predicted": float(s.predict(spec)),
                            "observed": False, "lines": _scenario_lines(s)})
    out["prefill"] = prefill
    return out


def paper_report(output: str | Path, spec: HardwareSpec | None = None,
                 say: Callable[[str], None] | None = None) -> Report:
    """Write the paper report (module docstring) to ``output``, predicting on ``spec``
    (default: each scenario's own hardware); ``say`` reports progress (a line each)."""
    from plummer.scenario._validate import validate_paper

    say = say or (lambda text: None)
    output = check_writable(output)
    scenarios = shipped_scenarios()
    by_name = {s.name: s for s in scenarios}
    chip = spec or load_hardware(scenarios[0].hardware)
    refits = chip.fitted_on and any(n not in chip.uncalibrated for n in CALIBRATABLE)
    say(f"predicting the {len(scenarios)} shipped scenarios on {chip.name}"
        + (f", and refitting it without each of the {len(chip.fitted_on)} it was fitted on" if refits else ""))
    result = validate_paper(spec)
    rows = _rows(result)
    curves = _curves(scenarios, rows, spec)

    observed = [r for r in rows if r["observed"] is not None]
    page = Page("WaferLLM's published runs, reproduced",
                f"LLaMA3-8B on a WSE-2 as WaferLLM ran it, predicted on {result['hardware']}")
    page.note(f"{len(observed)} published measurements (WaferLLM, He et al., OSDI 2025: Table 4 decode at 4K "
              f"context, Table 3 prefill of 4,096 tokens) and {len(rows) - len(observed)} prediction-only "
              "scenarios (the other grids of the released decode configurations). Each scenario is the model "
              "as the released kernels run it (one attention head of the full width, dimensions padded to "
              "multiples of P), timed as WaferLLM timed it: one layer on one P x P grid, its cycles times the "
              "layers, no transfer between regions.")
    fitted_names = ", ".join(result["fitted_parameters"]) or "none"
    page.note(f"Hardware {chip.name}: {chip.calibration}. Parameters fitted on these scenarios: {fitted_names}; "
              f"fitted on: {', '.join(result['fitted_on']) or 'none of them'}.")

    page.section("Predicted against observed")
    summary = {k: {kk: _clean(vv) for kk, vv in result[k].items()} for k in ("fitted", "not_fitted", "leave_one_out")}
    if summary["fitted"]["n"]:
        page.note(f"{summary['fitted']['n']} scenarios were fitted on, {summary['not_fitted']['n']} are held out. "
                  "Leave-one-out (open circles): each fitted scenario predicted by the hardware refitted on "
                  "the other observed scenarios (its parameters "
                  f"{fitted_names}), at its observed value.")
    else:
        page.note(f"The hardware was fitted on none of these scenarios: all {len(observed)} observed points are "
                  "held out, and there is no leave-one-out prediction.")
    page.note("Bands: relative error " + ", ".join(f"±{b:.0%}" for b in PAPER_BANDS)
              + ". The axes cover every value drawn, however large the error.")
    page.figure("comparison", _comparison_figure(rows, by_name))

    page.section("Tokens/s against the grid size")
    page.note(f"Decode: the prediction at each of the {len(curves['decode'])} grids of the released decode "
              "configurations (each with its own padded dimensions and K-tree groups). Prefill: the released "
              "prefill kernel has no configuration files, so the prefill pattern of the shipped prefill "
              "scenarios is predicted at the same grids: LLaMA3-8B's E and F padded up to multiples of P, one "
              "head of the padded width. Stars: the published measurements.")
    page.figure("grids", _curve_figure(curves, rows, by_name))

    page.section("Errors")
    table = [[r["scenario"], r["metric"], r["grid"], r["predicted"], r["observed"], percent(r["rel_error"]),
              "yes" if r["fitted"] else "no", percent(r["loo_error"])] for r in rows]
    page.table(["scenario", "metric", "grid", "predicted tokens/s", "observed tokens/s", "error", "fitted on",
                "leave-one-out error"], table, numeric=[False, False, False, True, True, True, False, True],
               code=[True, False, False, False, False, False, False, False])
    page.table(["predictions", "n", "mean |error|", "max |error|"],
               [[label, part["n"], percent(part["mean"]), percent(part["max"])]
                for label, part in (("fitted on", summary["fitted"]), ("held out (not fitted)", summary["not_fitted"]),
                                    ("leave-one-out", summary["leave_one_out"]))],
               numeric=[False, True, True, True])
    papers = sorted({r["source"].split(", Table")[0] for r in observed})
    page.note(f"Observed values: {'; '.join(papers)} (each point's hover and the scenario files give the table, "
              "row and column).")
    page.write(output)
    facts = {"hardware": result["hardware"], "fitted_parameters": result["fitted_parameters"],
             "fitted_on": result["fitted_on"], **summary, "rows": rows,
             "curves": {phase: [{k: c[k] for k in ("grid", "scenario", "predicted")} for c in curve]
                        for phase, curve in curves.items()}}
    return Report("paper", output, page.summaries(), facts)


__all__ = ["METRICS", "PAPER_BANDS", "PAPER_MODEL", "paper_report", "prefill_scenario"]
