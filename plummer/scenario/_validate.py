"""``plummer validate paper``: every scenario predicted against what was published.

Per scenario: the prediction with the shipped hardware (the scenario's own, or the one
given), the observed value, the relative error, and whether the hardware's parameters were
fitted on it (its ``fitted_on``). For the fitted scenarios also the *leave-one-out* error:
the hardware's fitted parameters (those not in its ``uncalibrated`` list) refitted on the
other observed scenarios, then the held-out one predicted, which tells how well a fit on few
points predicts a point it has not seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plummer.hardware import HardwareSpec, load_hardware
from plummer.hardware._spec import CALIBRATABLE
from plummer.scenario import Scenario, shipped_scenarios


def _records(scenarios: list[Scenario], paths: list[str]) -> pd.DataFrame:
    from plummer.calibrate import load_measurements

    return load_measurements([paths[i] for i, s in enumerate(scenarios) if s.observed])


def validate_paper(spec: HardwareSpec | None = None, leave_one_out: bool = True) -> dict[str, Any]:
    """The table (one row per shipped scenario) and the mean and max errors of the fitted and
    the other observed scenarios (fractions); see the module docstring."""
    from plummer.calibrate import calibrate
    from plummer.scenario import _DATA

    scenarios = shipped_scenarios()
    paths = [str(_DATA / f"{s.name}.toml") for s in scenarios]
    rows = []
    for s in scenarios:
        chip = spec or load_hardware(s.hardware)
        predicted = s.predict(chip)
        rows.append({"scenario": s.name, "metric": s.metric, "grid": _grid(s), "predicted": predicted,
                     "observed": s.value, "rel_error": None if s.value is None else predicted / s.value - 1,
                     "fitted": s.name in chip.fitted_on, "loo_error": None, "source": s.source})
    chip = spec or load_hardware(scenarios[0].hardware)
    fitted_names = [n for n in CALIBRATABLE if n not in chip.uncalibrated]
    if leave_one_out and chip.fitted_on and fitted_names:
        records = _records(scenarios, paths)
        for row in rows:
            if not row["fitted"]:
                continue
            keep = records[~records["scenario"].str.endswith(f"/{row['scenario']}.toml")]
            refit = calibrate(keep, chip, parameters=fitted_names).spec
            s = next(x for x in scenarios if x.name == row["scenario"])
            row["loo_error"] = s.predict(refit) / s.value - 1
    table = pd.DataFrame(rows)

    def stats(mask: pd.Series, column: str) -> dict[str, float | int]:
        values = table.loc[mask, column].dropna().astype(float).abs()
        return {"n": int(values.size), "mean": float(values.mean()) if values.size else float("nan"),
                "max": float(values.max()) if values.size else float("nan")}

    observed = table["observed"].notna()
    return {"hardware": chip.name, "fitted_parameters": fitted_names, "fitted_on": list(chip.fitted_on),
            "rows": table, "fitted": stats(observed & table["fitted"], "rel_error"),
            "not_fitted": stats(observed & ~table["fitted"], "rel_error"),
            "leave_one_out": stats(observed & table["fitted"], "loo_error")}


def _grid(s: Scenario) -> str:
    phase = s.layout.decode if s.metric.startswith("decode") else s.layout.prefill
    return f"{phase.grid[0]}x{phase.grid[1]}"


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The table as JSON-ready rows (NaN as None)."""
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in result["rows"].to_dict(orient="records")]
