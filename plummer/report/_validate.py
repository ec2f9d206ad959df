"""The validation report: how close plummer's closed forms come to the executor and to the
measured WSE-3 cycles, as one HTML page.

- Closed forms against the executor: every configuration of the validation sweep
  (:func:`plummer.validate.validate_kernels`), predicted against executed makespan in
  cycles, one trace per kernel, on log-log axes with the line y = x and bands of relative
  error; the error statistics per kernel (:func:`plummer.validate.summarize`) with the
  mean and max over every run at the bottom.
- Other predicted-against-executed tables (``comparisons``): the hook for
  ``plummer validate layout`` (a layout's ops on the executor against the closed form);
  any table with columns ``group, label, predicted, executed`` (cycles) becomes one more
  section with the same figure and statistics (:class:`Comparison`).
- Calibration: the closed forms fitted to the measured WSE-3 cycles
  (:func:`plummer.calibrate.calibrate`, records with ``P >= holdout_min_p`` held out of
  the fit), predicted against measured mean-over-cores cycles with the fitted and held-out
  records marked apart, the fitted parameters and the error per measured kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plummer.calibrate import calibrate, load_measurements
from plummer.hardware import HardwareSpec
from plummer.report._figures import Points, comparison_figure, hover
from plummer.report._page import COLORS, Page, check_writable, number, percent
from plummer.report._result import Report
from plummer.validate import summarize, validate_kernels

#: Relative-error bands drawn around y = x (fractions): the executor checks are exact or
#: tight bounds; the measured data are fitted to a few percent.
EXECUTOR_BANDS = (0.01, 0.05)
MEASURED_BANDS = (0.05, 0.20)


@dataclass(frozen=True)
class Comparison:
    """A predicted-against-executed table for one section: ``table`` has one row per run
    with ``group`` (one trace each), ``label`` (hover), ``predicted`` and ``executed``
    (cycles)."""

    name: str
    title: str
    table: pd.DataFrame


def _errors(table: pd.DataFrame) -> np.ndarray:
    return (np.abs(table["predicted"] - table["executed"]) / table["executed"]).to_numpy()


def comparison_section(page: Page, comparison: Comparison) -> dict[str, Any]:
    """Draw one :class:`Comparison` (figure and error table); returns its statistics."""
    table = comparison.table.assign(error=_errors(comparison.table))
    groups = [Points(str(group), part["executed"].to_numpy(float), part["predicted"].to_numpy(float),
                     [hover([f"#{group}", str(label), f"predicted {number(p)} cycles",
                             f"executed {number(e)} cycles", f"error {percent(err)}"])
                      for label, p, e, err in zip(part["label"], part["predicted"], part["executed"],
                                                  part["error"], strict=True)])
              for group, part in table.groupby("group", sort=False)]
    page.figure(comparison.name, comparison_figure(groups, comparison.title, "executed cycles",
                                                   "predicted cycles", EXECUTOR_BANDS))
    stats = table.groupby("group", sort=False)["error"].agg(["size", "mean", "max"]).reset_index()
    rows = [[r["group"], r["size"], percent(r["mean"]), percent(r["max"])] for _, r in stats.iterrows()]
    rows.append(["all", len(table), percent(table["error"].mean()), percent(table["error"].max())])
    page.table(["group", "runs", "mean error", "max error"], rows, numeric=[False, True, True, True])
    return {"runs": len(table), "mean_error": float(table["error"].mean()),
            "max_error": float(table["error"].max())}


def _kernel_section(page: Page, table: pd.DataFrame) -> dict[str, Any]:
    """The executor sweep: one trace per kernel, the statistics per kernel and overall."""
    table = table.assign(kernel=table["family"] + "/" + table["algo"])
    groups = []
    for kernel, part in table.groupby("kernel", sort=False):
        texts = [hover([f"#{kernel}", r.config, f"predicted {number(r.predicted)} cycles",
                        f"executed {number(r.executed)} cycles (makespan)", f"error {percent(r.rel_error)}",
                        f"mean over cores: error {percent(r.rel_error_mean)}",
                        f"link waits {r.link_waits}", f"result correct: {r.correct}"])
                 for r in part.itertuples()]
        groups.append(Points(kernel, part["executed"].to_numpy(float), part["predicted"].to_numpy(float), texts))
    page.figure("executor", comparison_figure(
        groups, "Closed form against the executor (makespan)", "executed cycles (executor)",
        "predicted cycles (closed form)", EXECUTOR_BANDS))
    summary = summarize(table)
    rows = [[f"{r['family']}/{r['algo']}", r["runs"], percent(r["mean_error"]), percent(r["max_error"]),
             percent(r["max_error_uncontended"]), percent(r["max_error_mean"]), str(bool(r["all_correct"]))]
            for _, r in summary.iterrows()]
    rows.append(["all", len(table), percent(table["rel_error"].mean()), percent(table["rel_error"].max()),
                 percent(table["rel_error"].where(table["link_waits"] == 0).max()),
                 percent(table["rel_error_mean"].max()), str(bool(table["correct"].all()))])
    page.table(["kernel", "runs", "mean error", "max error", "max error, no link shared",
                "max error of the mean over cores", "results correct"], rows,
               numeric=[False, True, True, True, True, True, False])
    return {"runs": len(table), "mean_error": float(table["rel_error"].mean()),
            "max_error": float(table["rel_error"].max()), "all_correct": bool(table["correct"].all())}


def _calibrated(records: pd.DataFrame, spec: HardwareSpec, holdout_min_p: int | None) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """The calibration and its records and per-kernel errors with plain column names:
    ``kernel, measured, predicted, rel_error, held_out`` and ``kernel, n_fit, mape_fit,
    max_err_fit, n_holdout, mape_holdout, max_err_holdout`` (the one place that knows
    :mod:`plummer.calibrate`'s column names: ``kernel``/``cycles`` before its rework,
    ``kind``/``measured`` after)."""
    result = calibrate(records, spec, holdout_min_p=holdout_min_p)
    names = {"kind": "kernel", "cycles": "measured"}
    return result, result.records.rename(columns=names), result.errors.rename(columns=names)


def _calibration_section(page: Page, records: pd.DataFrame, spec: HardwareSpec,
                         holdout_min_p: int | None) -> dict[str, Any]:
    result, table, errors = _calibrated(records, spec, holdout_min_p)
    groups = []
    for i, (kernel, part) in enumerate(table.groupby("kernel", sort=False)):
        for held, symbol, what in ((False, "circle", "fitted"), (True, "x", "held out")):
            rows = part[part["held_out"] == held]
            if rows.empty:
                continue
            fields = [c for c in ("P", "M", "K", "N", "L", "group_num") if c in rows and (rows[c] != 0).any()]
            texts = [hover([f"#{kernel} ({what})", " ".join(f"{c}={int(r[c])}" for c in fields),
                            f"measured {number(r['measured'])} cycles", f"predicted {number(r['predicted'])} cycles",
                            f"error {percent(abs(r['rel_error']))}"]) for _, r in rows.iterrows()]
            groups.append(Points(f"{kernel}, {what} ({len(rows)})", rows["measured"].to_numpy(float),
                                 rows["predicted"].to_numpy(float), texts, symbol=symbol,
                                 color=COLORS[i % len(COLORS)]))
    held_text = (f"records with P >= {holdout_min_p} are held out of the fit" if holdout_min_p
                 else "no record is held out")
    page.note(f"{len(table)} measured records; {held_text}. Predicted: the closed form's mean over "
              f"cores with the fitted parameters, as the measured `mean_cycle_count` is. "
              f"Calibration: {result.spec.calibration}.")
    page.figure("calibration", comparison_figure(
        groups, "Closed form against measured WSE-3 cycles, after calibration",
        "measured cycles (WSE-3, mean over cores)", "predicted cycles (calibrated closed form)",
        MEASURED_BANDS))
    rows = [[r["kernel"], r["n_fit"], percent(r["mape_fit"]), percent(r["max_err_fit"]), r["n_holdout"],
             percent(r["mape_holdout"]), percent(r["max_err_holdout"])] for _, r in errors.iterrows()]
    fit_err, hold_err = (table.loc[table["held_out"] == h, "rel_error"].abs() for h in (False, True))
    rows.append(["all", len(fit_err), percent(fit_err.mean()), percent(fit_err.max()), len(hold_err),
                 percent(hold_err.mean() if len(hold_err) else np.nan),
                 percent(hold_err.max() if len(hold_err) else np.nan)])
    page.table(["measured kernel", "fitted", "mean error, fitted", "max error, fitted", "held out",
                "mean error, held out", "max error, held out"], rows,
               numeric=[False, True, True, True, True, True, True])
    page.table(["fitted parameter", "value", "one sigma"],
               [[name, value, sigma] for name, (value, sigma) in result.parameters.items()],
               numeric=[False, True, True])
    if result.fixed:
        page.note(f"Not identified by these data (kept from {spec.name}): {', '.join(result.fixed)}.")
    return {"records": len(table), "fitted": len(fit_err), "held_out": len(hold_err),
            "mean_error_fitted": float(fit_err.mean()),
            "mean_error_held_out": float(hold_err.mean()) if len(hold_err) else None,
            "parameters": {k: v for k, (v, _) in result.parameters.items()}}


def validate_report(spec: HardwareSpec, families: Sequence[str], data: Sequence[str | Path],
                    output: str | Path, holdout_min_p: int | None = 464,
                    comparisons: Sequence[Comparison] = (), progress: bool = False,
                    say: Callable[[str], None] | None = None) -> Report:
    """Write the validation report (module docstring) for kernel ``families`` on ``spec``,
    calibrated on the measurement files ``data``; ``say`` reports progress (a line each)."""
    say = say or (lambda text: None)
    output = check_writable(output)
    records = load_measurements(list(data))
    page = Page(f"Validation on {spec.name}", "closed forms against the exact executor and against "
                "measured WSE-3 cycles")
    page.section("Closed forms against the executor")
    say(f"running the validation sweep of {', '.join(families)} on the executor")
    table = validate_kernels(spec, families, progress=progress)
    page.note(f"{len(table)} runs of the validation sweep ({', '.join(families)}) on the exact mesh "
              "executor and through the closed form, on random data; error = |predicted - executed| / "
              "executed. Bands: " + ", ".join(f"±{b:.0%}" for b in EXECUTOR_BANDS) + ".")
    facts: dict[str, Any] = {"hardware": spec.name, "families": list(families),
                             "executor": _kernel_section(page, table)}
    for comparison in comparisons:
        page.section(comparison.title)
        facts[comparison.name] = comparison_section(page, comparison)
    page.section("Calibration on measured WSE-3 cycles")
    say(f"calibrating {spec.name} on {len(records)} measured records")
    facts["calibration"] = _calibration_section(page, records, spec, holdout_min_p)
    page.write(output)
    return Report("validate", output, page.summaries(), facts)


__all__ = ["EXECUTOR_BANDS", "MEASURED_BANDS", "Comparison", "comparison_section", "validate_report"]
