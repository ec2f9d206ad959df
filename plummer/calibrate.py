"""Fit the PLMR parameters to measured kernel cycles, and report the error honestly.

Each measured record is matched to the closed form of the same algorithm with the
measured kernel's timing convention: the data's ``mean_cycle_count`` is a mean over
processing elements of each one's elapsed cycles, so the prediction is the closed form's
``mean_core_cycles`` (not its makespan). The fit is a least-squares fit of the relative
error (scipy's ``least_squares``, trust-region reflective, within physical bounds), each
kernel weighted equally whatever its number of records.

Record fields (``../shared/data/wse3/README.md``):

- MeshGEMM ``P, M, K, N``: C[M,N] = A[M,K] . B[K,N] on P x P (``gemm``/``meshgemm``);
- MeshGEMV ``P, M, N, group_num``: y = x . W with a K=2 tree allreduce along the
  column (``gemv``/``ktree``, ``k_tree=2``, ``axis="y"``);
- shift ``P, L, M, N``: tiles moved L columns east (``shift``/``shift``, ``axis="x"``).

:data:`MEASURED` holds this mapping; a new measured kernel is one entry there.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from plummer.errors import DataError
from plummer.hardware import HardwareSpec
from plummer.kernels import get_kernel


@dataclass(frozen=True)
class MeasuredKernel:
    """How records of one measured kernel map to a plummer closed form.

    ``fields`` identify the records; ``params`` turns a frame of them into the
    parameters of kernel ``algo`` of ``family`` (arrays, one element per record).
    """

    fields: tuple[str, ...]
    family: str
    algo: str
    params: Callable[[pd.DataFrame], dict[str, Any]]


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy()


#: The measured kernels of ``shared/data/wse3`` (its README says what each record means).
MEASURED = {
    "meshgemm": MeasuredKernel(
        ("P", "M", "K", "N"), "gemm", "meshgemm",
        lambda f: {"p": _column(f, "P"), "q": _column(f, "P"), "m": _column(f, "M"),
                   "k": _column(f, "K"), "n": _column(f, "N")},
    ),
    "meshgemv": MeasuredKernel(
        ("P", "M", "N", "group_num"), "gemv", "ktree",
        lambda f: {"p": _column(f, "P"), "q": _column(f, "P"), "m": _column(f, "M"),
                   "n": _column(f, "N"), "k_tree": 2, "group_num": _column(f, "group_num"),
                   "axis": "y"},
    ),
    "shift": MeasuredKernel(
        ("P", "L", "M", "N"), "shift", "shift",
        lambda f: {"p": _column(f, "P"), "q": _column(f, "P"), "m": _column(f, "M"),
                   "n": _column(f, "N"), "distance": _column(f, "L"), "axis": "x"},
    ),
}
#: Fields that identify each measured kernel, and the cycle field.
KERNEL_FIELDS = {name: kernel.fields for name, kernel in MEASURED.items()}
CYCLES_FIELD = "mean_cycle_count"

#: Parameters a calibration may fit, with physically sensible bounds (cycles, FMA/cycle).
BOUNDS = {
    "alpha": (0.5, 10.0),
    "beta": (0.0, 100.0),
    "fma_per_cycle": (0.5, 16.0),
    "vector_op_overhead_cycles": (0.0, 20.0),
    "loop_overhead_cycles": (0.0, 200.0),
    "step_overhead_cycles": (0.0, 1000.0),
    "message_overhead_cycles": (0.0, 500.0),
    "launch_overhead_cycles": (0.0, 1000.0),
}


def _predict(spec: HardwareSpec, kernel: str, frame: pd.DataFrame) -> np.ndarray:
    """Predicted mean-over-cores cycles of the records of one measured kernel."""
    measured = MEASURED[kernel]
    cost = get_kernel(measured.family, measured.algo).cost(spec, **measured.params(frame))
    return cost.mean_core_cycles


# --------------------------------------------------------------------- loading
def _records_from_file(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError(f"measurement file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"measurement file '{path}' cannot be read: {exc}") from None
    if not text.strip():
        raise DataError(f"measurement file '{path}' is empty")
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(text.splitlines()))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"measurement file '{path}' is not valid JSON: {exc}") from None
    records = data.get("results") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise DataError(
            f"measurement file '{path}' must hold a list of records or {{\"results\": [...]}}"
        )
    return records


def _number(path: Path, index: int, key: str, value: Any, integer: bool) -> float:
    where = f"measurement file '{path}', record {index}"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise DataError(f"{where}: field '{key}' = {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise DataError(f"{where}: field '{key}' = {value!r} is not a finite number")
    if integer and (value != int(value) or value < 1):
        raise DataError(f"{where}: field '{key}' = {value!r} must be a positive integer")
    if not integer and value <= 0:
        raise DataError(f"{where}: field '{key}' = {value!r} must be positive cycles")
    return value


def load_measurements(paths: Sequence[str | Path], kernel: str | None = None) -> pd.DataFrame:
    """Read measured records (JSON as in ``shared/data/wse3`` or CSV with the same columns).

    Each record's kernel is recognised from its fields, or forced with ``kernel``
    (``meshgemm``, ``meshgemv``, ``shift``). Returns one row per record with columns
    ``kernel, P, M, K, N, L, group_num, cycles, file, record`` (absent fields are 0).
    """
    if kernel is not None and kernel not in KERNEL_FIELDS:
        raise DataError(f"--kernel '{kernel}' is unknown; allowed: {', '.join(KERNEL_FIELDS)}")
    if not paths:
        raise DataError("no measurement files given")
    rows = []
    for raw in paths:
        path = Path(raw)
        records = _records_from_file(path)
        if not records:
            raise DataError(f"measurement file '{path}' holds no records")
        for index, record in enumerate(records):
            where = f"measurement file '{path}', record {index}"
            if not isinstance(record, dict):
                raise DataError(f"{where}: a record must be an object of fields")
            fields = set(record) - {CYCLES_FIELD}
            if CYCLES_FIELD not in record:
                raise DataError(f"{where}: missing field '{CYCLES_FIELD}'")
            name = kernel or next(
                (k for k, need in KERNEL_FIELDS.items() if fields == set(need)), None
            )
            if name is None:
                raise DataError(
                    f"{where}: fields {sorted(fields)} match no kernel; expected one of "
                    + "; ".join(f"{k}: {', '.join(v)}" for k, v in KERNEL_FIELDS.items())
                )
            unknown = sorted(fields - set(KERNEL_FIELDS[name]))
            missing = sorted(set(KERNEL_FIELDS[name]) - fields)
            if unknown or missing:
                raise DataError(
                    f"{where}: fields do not fit kernel '{name}' (unknown: {unknown or '-'}, "
                    f"missing: {missing or '-'})"
                )
            row = {"kernel": name, "P": 0, "M": 0, "K": 0, "N": 0, "L": 0, "group_num": 0}
            for key in KERNEL_FIELDS[name]:
                row[key] = int(_number(path, index, key, record[key], integer=True))
            row["cycles"] = _number(path, index, CYCLES_FIELD, record[CYCLES_FIELD], integer=False)
            row["file"] = str(path)
            row["record"] = index
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class Calibration:
    """A fitted hardware spec with the error of each measured kernel.

    ``parameters`` maps each fitted name to ``(value, one-sigma uncertainty)``; ``fixed``
    lists the parameters the data do not identify (kept from the base spec). ``errors``
    has one row per kernel: ``n_fit, mape_fit, max_err_fit, n_holdout, mape_holdout,
    max_err_holdout`` (relative errors as fractions). ``records`` holds every record
    with its prediction.
    """

    spec: HardwareSpec
    parameters: dict[str, tuple[float, float]]
    fixed: list[str]
    errors: pd.DataFrame
    records: pd.DataFrame
    holdout_min_p: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary: parameters, errors per kernel, the fitted spec."""
        return {
            "parameters": {k: {"value": v, "sigma": s} for k, (v, s) in self.parameters.items()},
            "fixed": self.fixed,
            "holdout_min_p": self.holdout_min_p,
            "kernels": {row["kernel"]: {k: v for k, v in row.items() if k != "kernel"}
                        for row in self.errors.to_dict(orient="records")},
            "hardware": self.spec.to_dict(),
        }


def _predict_all(spec: HardwareSpec, frame: pd.DataFrame) -> np.ndarray:
    out = np.empty(len(frame))
    for kernel, part in frame.groupby("kernel", sort=False):
        out[frame.index.get_indexer(part.index)] = _predict(spec, kernel, part)
    return out


def calibrate(
    records: pd.DataFrame,
    base: HardwareSpec,
    holdout_min_p: int | None = None,
    parameters: Sequence[str] | None = None,
) -> Calibration:
    """Fit ``parameters`` (default: every one in :data:`BOUNDS` the data identify).

    Records with ``P >= holdout_min_p`` are held out of the fit and reported apart.
    """
    records = records.reset_index(drop=True)
    names = list(parameters or BOUNDS)
    for name in names:
        if name not in BOUNDS:
            raise DataError(f"parameter '{name}' cannot be calibrated; allowed: {', '.join(BOUNDS)}")
    held = records["P"] >= holdout_min_p if holdout_min_p else pd.Series(False, index=records.index)
    fit = records[~held]
    if fit.empty:
        raise DataError(f"no records left to fit: every record has P >= {holdout_min_p}")
    weights = 1.0 / np.sqrt(fit.groupby("kernel")["cycles"].transform("size").to_numpy())
    measured = fit["cycles"].to_numpy()

    def spec_of(values: np.ndarray, which: list[str]) -> HardwareSpec:
        return base.replace(**{k: float(v) for k, v in zip(which, values)})

    def residuals(values: np.ndarray, which: list[str]) -> np.ndarray:
        return weights * (_predict_all(spec_of(values, which), fit) - measured) / measured

    # keep only the parameters the records identify (a column of the Jacobian that is 0)
    start = np.array([np.clip(getattr(base, k), *BOUNDS[k]) for k in names], dtype=float)
    start = np.where(start == 0.0, 1.0, start)
    base_res = residuals(start, names)
    identified = []
    for i, name in enumerate(names):
        probe = start.copy()
        probe[i] = probe[i] * 1.1 + 0.1
        if np.max(np.abs(residuals(probe, names) - base_res)) > 1e-12:
            identified.append(name)
    fixed = [n for n in names if n not in identified]
    if len(fit) <= len(identified):
        raise DataError(
            f"{len(fit)} records cannot fit {len(identified)} free parameters "
            f"({', '.join(identified)}); give more records"
        )
    x0 = np.array([start[names.index(n)] for n in identified])
    lower = [BOUNDS[n][0] for n in identified]
    upper = [BOUNDS[n][1] for n in identified]
    result = least_squares(residuals, x0, bounds=(lower, upper), args=(identified,), x_scale="jac")
    dof = max(len(fit) - len(identified), 1)
    s2 = float(np.sum(result.fun**2) / dof)
    try:
        cov = np.linalg.pinv(result.jac.T @ result.jac) * s2
        sigma = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        sigma = np.full(len(identified), np.nan)
    fitted = {name: float(value) for name, value in zip(identified, result.x)}
    spec = base.replace(
        **fitted,
        uncalibrated=tuple(k for k in base.uncalibrated if k not in fitted),
        calibration=(
            f"fitted by plummer calibrate on {len(fit)} records ("
            + ", ".join(sorted(fit["kernel"].unique()))
            + (f"; held out P >= {holdout_min_p}" if holdout_min_p else "")
            + ")"
        ),
    )
    table = records.copy()
    table["predicted"] = _predict_all(spec, table)
    table["rel_error"] = (table["predicted"] - table["cycles"]) / table["cycles"]
    table["held_out"] = held.to_numpy()
    rows = []
    for kernel, part in table.groupby("kernel", sort=False):
        fit_err = part.loc[~part["held_out"], "rel_error"].abs()
        hold_err = part.loc[part["held_out"], "rel_error"].abs()
        rows.append({
            "kernel": kernel,
            "n_fit": int(fit_err.size),
            "mape_fit": float(fit_err.mean()) if fit_err.size else float("nan"),
            "max_err_fit": float(fit_err.max()) if fit_err.size else float("nan"),
            "n_holdout": int(hold_err.size),
            "mape_holdout": float(hold_err.mean()) if hold_err.size else float("nan"),
            "max_err_holdout": float(hold_err.max()) if hold_err.size else float("nan"),
        })
    return Calibration(
        spec=spec,
        parameters={k: (float(v), float(s)) for k, v, s in zip(identified, result.x, sigma)},
        fixed=fixed,
        errors=pd.DataFrame(rows),
        records=table,
        holdout_min_p=holdout_min_p,
    )


__all__ = ["BOUNDS", "KERNEL_FIELDS", "MEASURED", "Calibration", "MeasuredKernel", "calibrate", "load_measurements"]
