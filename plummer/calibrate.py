"""Fit the PLMR parameters to measured observations, and say how loosely the data pin them.

Observations and what they are compared with
--------------------------------------------
A *kind* of observation (:class:`ObservationKind`) says which fields identify its records,
which field holds the measured value, and how a hardware spec predicts that value; the
registry :data:`MEASURED` is the one place a kind is added (a later kind, e.g. a layer's
tokens/s predicted by the layout model, is one more entry with its own ``predictor``).
The kernel kinds (:class:`MeasuredKernel`, ``../shared/data/wse3/README.md``):

- MeshGEMM ``P, M, K, N``: C[M,N] = A[M,K] . B[K,N] on P x P (``gemm``/``meshgemm``);
- MeshGEMV ``P, M, N, group_num``: y = x . W with a K=2 tree allreduce along the
  column (``gemv``/``ktree``, ``k_tree=2``, ``axis="y"``);
- shift ``P, L, M, N``: tiles moved L columns east (``shift``/``shift``, ``axis="x"``).

Their ``mean_cycle_count`` is the mean over processing elements of each one's elapsed
cycles, so by default it is compared with the closed form's ``mean_core_cycles``
(figure ``mean``); figure ``makespan`` (the closed form's ``cycles``, the last core's
end) is the deliberate alternative, to see what the choice moves.

The fit
-------
Least squares on the relative error (scipy's ``least_squares``, trust-region reflective,
within :data:`BOUNDS`), each kind weighted equally whatever its number of records, so the
objective is ``S = sum_k mean_{r in k} e_r^2`` with ``e_r = predicted / measured - 1``;
the *fit error* is ``RMS = sqrt(S / number of kinds)``. Records with ``P >=
holdout_min_p`` are held out of every fit. A parameter is fitted only if it moves the
predictions and its Jacobian column is not a combination of those of the parameters
fitted before it (in :data:`BOUNDS` order); the others keep the base spec's value.
The one-sigma figures read ``sqrt(diag((J^T J)^-1) S / (n - p))`` off the Jacobian: they
treat the residuals as independent noise, which they are not (they are mostly the
model's error, a few percent that follows the configuration), so they understate how
loosely the data pin a parameter. :func:`analyse` reports three better measures:

- *Profile*: parameter ``j`` held at a value ``x``, the others refitted; the range of
  ``x`` over which the fit error stays within ``(1 + tolerance)`` times its minimum.
  Each side walks out from the optimum (first step half the quadratic estimate
  ``sqrt(dS [(J^T J)^-1]_jj)``, ``dS = ((1 + tol)^2 - 1) S``, then doubling), refines
  the first step past the threshold by bisection and interpolates the crossing; a side
  that reaches the parameter's bound is *open* (the data do not exclude the bound).
  The threshold is on the joint error, so one kind's own error may rise by more than
  the tolerance: a kind alone can pin a parameter that the joint profile leaves open.
- *Each kind alone*: the parameters that kind's Jacobian (at the joint optimum, columns
  scaled to unit norm) identifies are refitted on its records, the others held at the
  joint values. Per parameter the kind says ``-`` (its predictions do not depend on
  it), ``confounded`` (the column lies in the span of the others: only a combination is
  identified, given as a direction along which its predictions do not move),
  ``identified`` (its own profile is bounded on both sides) or ``weak`` (its own
  profile reaches a bound). The sine of the angle between a column and the span of the
  others measures the conditioning (1: orthogonal, 0: confounded).
- *Variants*: the joint fit again with one kind compared with another figure; the
  spread of a parameter over the joint fit, the variants and the kinds alone.

Sweeps: records of a kind that differ only in one field (MeshGEMV's ``group_num`` at
fixed ``P, M, N``) are also fitted on their differences from their group's mean, which
cancel every term that does not change along the sweep (launch, local work, message
tasks, serialization), per value of ``P`` and over all of them.
"""

from __future__ import annotations

import abc
import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from plummer.errors import DataError
from plummer.hardware import HardwareSpec
from plummer.hardware._spec import CALIBRATABLE
from plummer.kernels import get_kernel

#: The measured WSE-3 records (``*.json``) used when none are given (``plummer report
#: validate``): ``shared/data/wse3`` in the folder beside the checkout that holds this package
#: (``<checkout>/../shared``), found from the package's own location, not the working directory.
WSE3_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wse3"

#: A kind's records bound to their predictions: ``predict(spec, figure)``, one value per record.
Predictor = Callable[[HardwareSpec, str], np.ndarray]


class ObservationKind(abc.ABC):
    """One kind of measured observation: its record fields and how a spec predicts them.

    ``fields`` identify a record (with ``value_field``, the measured value in ``unit``);
    ``size_field`` is compared with ``holdout_min_p``; ``figures`` maps each figure the
    predictor computes to what it is, ``figure`` the one the measured value is; ``sweeps``
    are fields along which records that agree on every other field are compared.
    """

    fields: tuple[str, ...]
    value_field: ClassVar[str]
    unit: ClassVar[str]
    size_field: ClassVar[str]
    figure: ClassVar[str]
    figures: ClassVar[Mapping[str, str]]
    sweeps: tuple[str, ...]

    def parse(self, key: str, value: Any, where: str) -> Any:
        """A record's field as the kind uses it (here: a positive integer)."""
        number = _finite(value, key, where)
        if number != int(number) or number < 1:
            raise DataError(f"{where}: field '{key}' = {value!r} must be a positive integer")
        return int(number)

    @abc.abstractmethod
    def predictor(self, frame: pd.DataFrame) -> Predictor:
        """Bind the records of ``frame`` (columns ``fields``) once; the result predicts
        them for any spec and figure (a fit calls it hundreds of times)."""


#: What a kernel's closed form gives for each figure (attributes of ``Cost``).
_KERNEL_FIGURES = {"mean": "mean_core_cycles", "makespan": "cycles"}


@dataclass(frozen=True)
class MeasuredKernel(ObservationKind):
    """Measured cycles of one kernel, predicted by kernel ``algo`` of ``family``.

    ``params`` turns a frame of records into the kernel's parameters (arrays, one
    element per record).
    """

    fields: tuple[str, ...]
    family: str
    algo: str
    params: Callable[[pd.DataFrame], dict[str, Any]]
    sweeps: tuple[str, ...] = ()

    value_field: ClassVar[str] = "mean_cycle_count"
    unit: ClassVar[str] = "cycles"
    size_field: ClassVar[str] = "P"
    figure: ClassVar[str] = "mean"
    figures: ClassVar[Mapping[str, str]] = {
        "mean": "mean over cores of each core's elapsed cycles (Cost.mean_core_cycles)",
        "makespan": "elapsed cycles of the last core to finish (Cost.cycles)",
    }

    def predictor(self, frame: pd.DataFrame) -> Predictor:
        kernel = get_kernel(self.family, self.algo)
        params = self.params(frame)
        size = len(frame)

        def predict(spec: HardwareSpec, figure: str) -> np.ndarray:
            cost = kernel.cost(spec, **params)
            return np.broadcast_to(getattr(cost, _KERNEL_FIGURES[figure]), (size,))

        return predict


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=np.int64)


#: The parameters a scenario's prediction takes from the spec being fitted: the fabric's and
#: the software's. The FMA rate stays the scenario chip's own (WSE-2 and WSE-3 differ in
#: their cores, not in their fabric, as WaferLLM says).
SHARED_WITH_SCENARIOS = tuple(name for name in CALIBRATABLE if name != "fma_per_cycle")


@dataclass(frozen=True)
class ScenarioObservation(ObservationKind):
    """A published whole-layer figure (tokens/s of a scenario, :mod:`plummer.scenario`),
    predicted by the layout model on the scenario's chip: the spec being fitted when it is
    that chip (same name), else the scenario's own hardware with the fabric and software
    parameters (:data:`SHARED_WITH_SCENARIOS`) of the spec being fitted, so that kernel
    measurements of one chip and layer results of another constrain one fabric. Records come
    from scenario files (``.toml``): ``scenario`` (the file), ``P`` (the grid's side, for
    hold-out) and ``value``."""

    fields: tuple[str, ...] = ("scenario", "P")
    sweeps: tuple[str, ...] = ()

    value_field: ClassVar[str] = "value"
    unit: ClassVar[str] = "tokens/s"
    size_field: ClassVar[str] = "P"
    figure: ClassVar[str] = "metric"
    figures: ClassVar[Mapping[str, str]] = {
        "metric": "the scenario's metric as plummer.layout.evaluate predicts it",
    }

    def parse(self, key: str, value: Any, where: str) -> Any:
        if key == "scenario":
            if not isinstance(value, str) or not value:
                raise DataError(f"{where}: field 'scenario' = {value!r} must be a scenario file")
            return value
        return super().parse(key, value, where)

    def predictor(self, frame: pd.DataFrame) -> Predictor:
        from plummer.hardware import load_hardware
        from plummer.scenario import load_scenario

        scenarios = [load_scenario(path) for path in frame["scenario"]]
        chips = [load_hardware(s.hardware) for s in scenarios]

        def predict(spec: HardwareSpec, figure: str) -> np.ndarray:
            shared = {name: getattr(spec, name) for name in SHARED_WITH_SCENARIOS}
            return np.array([s.predict(spec if chip.name == spec.name else chip.replace(**shared))
                             for s, chip in zip(scenarios, chips, strict=True)])

        return predict


#: The measured kinds of ``shared/data/wse3`` (its README says what each record means).
MEASURED: dict[str, ObservationKind] = {
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
        sweeps=("group_num",),
    ),
    "shift": MeasuredKernel(
        ("P", "L", "M", "N"), "shift", "shift",
        lambda f: {"p": _column(f, "P"), "q": _column(f, "P"), "m": _column(f, "M"),
                   "n": _column(f, "N"), "distance": _column(f, "L"), "axis": "x"},
    ),
    "scenario": ScenarioObservation(),
}

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

#: A Jacobian column (scaled to unit norm) whose distance to the span of others is below
#: this is a combination of them: rounding of exact linear dependence is ~1e-12.
_DEPENDENT = 1e-6
#: Bisections that refine a profile's crossing (to 1/16 of the last step).
_BISECTIONS = 4


# --------------------------------------------------------------------- loading
def _finite(value: Any, key: str, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise DataError(f"{where}: field '{key}' = {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise DataError(f"{where}: field '{key}' = {value!r} is not a finite number")
    return float(value)


def _records_from_file(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".toml":  # a scenario: one observation
        from plummer.errors import SpecError
        from plummer.scenario import load_scenario

        try:
            scenario = load_scenario(path)
        except SpecError as exc:
            raise DataError(str(exc)) from None
        if not scenario.observed:
            raise DataError(f"scenario '{path}' is prediction-only: it has no observation to fit")
        phase = scenario.layout.decode if scenario.metric.startswith("decode") else scenario.layout.prefill
        return [{"scenario": str(path), "P": phase.grid[0], "value": scenario.value}]
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


def _kind_of(record: dict[str, Any], kind: str | None, where: str) -> str:
    if kind is None:
        keys = set(record)
        kind = next((k for k, m in MEASURED.items() if keys - {m.value_field} == set(m.fields)), None)
        if kind is None:
            raise DataError(
                f"{where}: fields {sorted(keys)} match no kind of observation; expected one of "
                + "; ".join(f"{k}: {', '.join((*m.fields, m.value_field))}" for k, m in MEASURED.items())
            )
    measured = MEASURED[kind]
    if measured.value_field not in record:
        raise DataError(f"{where}: missing field '{measured.value_field}'")
    fields = set(record) - {measured.value_field}
    unknown, missing = sorted(fields - set(measured.fields)), sorted(set(measured.fields) - fields)
    if unknown or missing:
        raise DataError(
            f"{where}: fields do not fit kind '{kind}' (unknown: {unknown or '-'}, "
            f"missing: {missing or '-'})"
        )
    return kind


def load_measurements(paths: Sequence[str | Path], kind: str | None = None) -> pd.DataFrame:
    """Read measured records (JSON as in ``shared/data/wse3`` or CSV with the same columns).

    Each record's kind (a key of :data:`MEASURED`) is recognised from its fields, or
    forced with ``kind``. Returns one row per record with columns ``kind``, the fields
    of every kind in :data:`MEASURED` (0 where a record has no such field),
    ``measured`` (its value), ``file`` and ``record`` (its index in the file).

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "gemv.csv"
        >>> _ = path.write_text("P,M,N,group_num,mean_cycle_count\\n16,16,16,2,246.95\\n")
        >>> load_measurements([path])[["kind", "P", "group_num", "measured"]].values.tolist()
        [['meshgemv', 16, 2, 246.95]]
    """
    if kind is not None and kind not in MEASURED:
        raise DataError(f"kind '{kind}' is unknown; allowed: {', '.join(MEASURED)}")
    if not paths:
        raise DataError("no measurement files given")
    blank = {name: 0 for m in MEASURED.values() for name in m.fields}
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
            name = _kind_of(record, kind, where)
            measured = MEASURED[name]
            value = _finite(record[measured.value_field], measured.value_field, where)
            if value <= 0:
                raise DataError(
                    f"{where}: field '{measured.value_field}' = {record[measured.value_field]!r} "
                    f"must be positive {measured.unit}"
                )
            row = {"kind": name, **blank}
            row.update({key: measured.parse(key, record[key], where) for key in measured.fields})
            row.update(measured=value, file=str(path), record=index)
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the objective
def _figures(kinds: Sequence[str], figure: str | Mapping[str, str] | None) -> dict[str, str]:
    """The figure each kind is compared with: its own, or ``figure`` (one name for every
    kind that offers it, or a mapping kind -> name)."""
    chosen = {kind: MEASURED[kind].figure for kind in kinds}
    if figure is None:
        return chosen
    if isinstance(figure, str):
        offered = [kind for kind in kinds if figure in MEASURED[kind].figures]
        if not offered:
            allowed = sorted({f for kind in kinds for f in MEASURED[kind].figures})
            raise DataError(f"figure '{figure}' is offered by none of the kinds fitted; allowed: {', '.join(allowed)}")
        return chosen | dict.fromkeys(offered, figure)
    for kind, name in figure.items():
        if kind not in MEASURED:
            raise DataError(f"figure for kind '{kind}': the kind is unknown; allowed: {', '.join(MEASURED)}")
        if name not in MEASURED[kind].figures:
            raise DataError(
                f"figure '{name}' for kind '{kind}' is unknown; allowed: {', '.join(MEASURED[kind].figures)}"
            )
    return chosen | {kind: name for kind, name in figure.items() if kind in chosen}


class _Objective:
    """Fit records bound to their predictors: the weighted relative errors of any spec."""

    def __init__(self, frame: pd.DataFrame, figures: Mapping[str, str]) -> None:
        self.parts = []
        for kind, part in frame.groupby("kind", sort=False):
            measured = part["measured"].to_numpy(dtype=float)
            predictor = MEASURED[kind].predictor(part)
            self.parts.append((predictor, figures[kind], measured, 1.0 / math.sqrt(len(part))))

    def __call__(self, spec: HardwareSpec) -> np.ndarray:
        return np.concatenate([
            weight * (predict(spec, figure) / measured - 1.0)
            for predict, figure, measured, weight in self.parts
        ])

    def rms(self, residuals: np.ndarray) -> float:
        """The fit error: RMS relative error, each kind weighted equally."""
        return math.sqrt(float(residuals @ residuals) / len(self.parts))


def _jacobian(function: Callable[[HardwareSpec], np.ndarray], spec: HardwareSpec, names: Sequence[str]) -> np.ndarray:
    """d function / d parameter by central differences (one-sided at a bound).

    The closed forms are piecewise linear or smooth in the parameters, so a step of
    1e-3 of the value is exact or nearly so and keeps rounding (~1e-13 of a prediction)
    far below any real dependence, which matters where differences cancel.
    """
    columns = []
    for name in names:
        x = float(getattr(spec, name))
        h = 1e-3 * max(abs(x), 1.0)
        low, high = BOUNDS[name]
        minus, plus = max(x - h, min(low, x)), min(x + h, max(high, x))  # a spec may lie outside
        columns.append(
            (function(spec.replace(**{name: plus})) - function(spec.replace(**{name: minus}))) / (plus - minus)
        )
    return np.column_stack(columns) if columns else np.zeros((0, 0))


@dataclass(frozen=True)
class Identification:
    """What a Jacobian says about its parameters (columns scaled to unit norm).

    ``used``: parameters the predictions depend on; ``free``: a maximal independent
    subset of them, taken in order; ``sine[p]``: distance of p's unit column to the span
    of the other used columns (0: confounded); ``combinations``: a basis of the
    directions (parameter -> step, in its unit) along which the predictions do not move,
    in reduced row-echelon form (each starts with a step of 1 of its first parameter);
    ``condition``: ratio of the largest to the smallest singular value over ``free``.
    """

    used: list[str]
    free: list[str]
    sine: dict[str, float]
    combinations: list[dict[str, float]]
    condition: float

    @property
    def confounded(self) -> set[str]:
        return {name for combination in self.combinations for name in combination}


def _echelon(rows: np.ndarray) -> np.ndarray:
    """Reduced row-echelon form of independent ``rows`` (the readable basis of their span)."""
    rows = rows.copy()
    pivot_row = 0
    for column in range(rows.shape[1]):
        if pivot_row == len(rows):
            break
        best = pivot_row + int(np.argmax(np.abs(rows[pivot_row:, column])))
        if abs(rows[best, column]) < _DEPENDENT:
            continue
        rows[[pivot_row, best]] = rows[[best, pivot_row]]
        rows[pivot_row] /= rows[pivot_row, column]
        for other in range(len(rows)):
            if other != pivot_row:
                rows[other] -= rows[other, column] * rows[pivot_row]
        pivot_row += 1
    return rows


def _identify(jacobian: np.ndarray, names: Sequence[str], values: Sequence[float]) -> Identification:
    """What ``jacobian`` (columns: ``names`` at ``values``) identifies. A column is used if
    the response to a relative change of its parameter exceeds 1e-9 of the largest."""
    norms = np.linalg.norm(jacobian, axis=0) if jacobian.size else np.zeros(len(names))
    sensitivity = norms * np.maximum(np.abs(np.asarray(values, dtype=float)), 1.0)
    scale = float(sensitivity.max()) if sensitivity.size else 0.0
    used = [i for i, s in enumerate(sensitivity) if scale > 0 and s > 1e-9 * scale]
    unit = jacobian[:, used] / norms[used] if used else np.zeros((len(jacobian), 0))
    free: list[int] = []
    basis = np.zeros((len(jacobian), 0))
    for column, i in enumerate(used):
        rest = unit[:, column] - basis @ (basis.T @ unit[:, column])
        distance = float(np.linalg.norm(rest))
        if distance > _DEPENDENT:
            free.append(i)
            basis = np.column_stack([basis, rest / distance])
    sine = {}
    for column, i in enumerate(used):
        others = np.delete(unit, column, axis=1)
        fit = others @ np.linalg.lstsq(others, unit[:, column], rcond=None)[0] if others.size else 0.0
        sine[names[i]] = float(np.linalg.norm(unit[:, column] - fit))
    combinations = []
    if used:
        _, singular, vt = np.linalg.svd(unit, full_matrices=False)
        null = vt[singular < _DEPENDENT * max(singular[0], 1.0)] / norms[used]  # in each parameter's unit
        null = null / np.max(np.abs(null), axis=1, keepdims=True) if len(null) else null
        for step in _echelon(null) if len(null) else ():
            combinations.append({names[i]: float(s) for i, s in zip(used, step) if abs(s) > 1e-6})
    free_unit = jacobian[:, free] / norms[free] if free else np.zeros((len(jacobian), 0))
    singular = np.linalg.svd(free_unit, compute_uv=False) if free else np.ones(1)
    return Identification(
        used=[names[i] for i in used],
        free=[names[i] for i in free],
        sine=sine,
        combinations=combinations,
        condition=float(singular[0] / singular[-1]),
    )


def _fit(
    function: Callable[[HardwareSpec], np.ndarray], base: HardwareSpec, names: Sequence[str], start: np.ndarray
) -> Any:
    """least_squares of ``function`` over ``names`` (the rest of ``base`` held)."""
    lower = [BOUNDS[n][0] for n in names]
    upper = [BOUNDS[n][1] for n in names]

    def residuals(values: np.ndarray) -> np.ndarray:
        return function(base.replace(**{n: float(v) for n, v in zip(names, values)}))

    return least_squares(residuals, np.clip(start, lower, upper), bounds=(lower, upper), x_scale="jac")


# ---------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class Calibration:
    """A fitted hardware spec with the error of each measured kind.

    ``parameters`` maps each fitted name to ``(value, one-sigma)`` (the Jacobian's
    figure, see the module docstring); ``fixed`` lists the parameters asked for that the
    data do not identify (kept from the base spec). ``errors`` has one row per kind:
    ``kind, figure, n_fit, mape_fit, max_err_fit, n_holdout, mape_holdout,
    max_err_holdout`` (relative errors as fractions). ``records`` holds every record
    with its prediction; ``figures`` the figure each kind was compared with; ``rms`` the
    fit error (RMS relative error over the fitted records, each kind weighted equally).
    """

    spec: HardwareSpec
    parameters: dict[str, tuple[float, float]]
    fixed: list[str]
    errors: pd.DataFrame
    records: pd.DataFrame
    holdout_min_p: int | None
    figures: dict[str, str]
    rms: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary: parameters, errors per kind, the fitted spec."""
        return _clean({
            "parameters": {k: {"value": v, "sigma": s} for k, (v, s) in self.parameters.items()},
            "fixed": self.fixed,
            "holdout_min_p": self.holdout_min_p,
            "figures": self.figures,
            "rms": self.rms,
            "kinds": {row["kind"]: {k: v for k, v in row.items() if k != "kind"}
                      for row in self.errors.to_dict(orient="records")},
            "hardware": self.spec.to_dict(),
        })


def _held_out(records: pd.DataFrame, holdout_min_p: int | None) -> np.ndarray:
    """Records whose kind's size field is >= ``holdout_min_p``."""
    held = np.zeros(len(records), dtype=bool)
    if holdout_min_p is not None:
        for kind, part in records.groupby("kind", sort=False):
            rows = records.index.get_indexer(part.index)
            held[rows] = part[MEASURED[kind].size_field].to_numpy() >= holdout_min_p
    return held


def calibrate(
    records: pd.DataFrame,
    base: HardwareSpec,
    holdout_min_p: int | None = None,
    parameters: Sequence[str] | None = None,
    figure: str | Mapping[str, str] | None = None,
) -> Calibration:
    """Fit ``parameters`` (default: every one in :data:`BOUNDS` the data identify).

    Records with ``P >= holdout_min_p`` are held out of the fit and reported apart.
    ``figure``: what each kind is compared with (default: what it measured; a name for
    every kind that offers it, or a mapping kind -> name).

    Example (shift records made from a spec whose launch costs 60 cycles; shift alone
    confounds alpha with the message overhead, so the latter is kept):
        >>> from plummer.hardware import load_hardware
        >>> spec = load_hardware("wse3")
        >>> records = pd.DataFrame({"kind": "shift", "P": 16, "L": [1, 2, 4, 8, 16], "M": 64, "N": 64})
        >>> truth = spec.replace(launch_overhead_cycles=60.0)
        >>> records["measured"] = MEASURED["shift"].predictor(records)(truth, "mean")
        >>> names = ["alpha", "message_overhead_cycles", "launch_overhead_cycles"]
        >>> fit = calibrate(records, spec, parameters=names)
        >>> round(fit.parameters["launch_overhead_cycles"][0], 3), fit.fixed
        (60.0, ['message_overhead_cycles'])
    """
    records = records.reset_index(drop=True)
    names = list(parameters or BOUNDS)
    for name in names:
        if name not in BOUNDS:
            raise DataError(f"parameter '{name}' cannot be calibrated; allowed: {', '.join(BOUNDS)}")
    figures = _figures(list(records["kind"].unique()), figure)
    held = _held_out(records, holdout_min_p)
    fit = records[~held]
    if fit.empty:
        raise DataError(f"no records left to fit: every record has P >= {holdout_min_p}")
    objective = _Objective(fit, figures)
    start = {k: float(np.clip(getattr(base, k), *BOUNDS[k])) for k in names}
    start = {k: (1.0 if v == 0.0 else v) for k, v in start.items()}
    free = _identify(_jacobian(objective, base.replace(**start), names), names, list(start.values())).free
    fixed = [n for n in names if n not in free]
    if not free:
        raise DataError(
            f"none of the parameters to fit ({', '.join(names)}) moves the predictions of these "
            f"records ({', '.join(sorted(fit['kind'].unique()))})"
        )
    if len(fit) <= len(free):
        raise DataError(
            f"{len(fit)} records cannot fit {len(free)} free parameters "
            f"({', '.join(free)}); give more records"
        )
    result = _fit(objective, base, free, np.array([start[n] for n in free]))
    dof = max(len(fit) - len(free), 1)
    s2 = float(np.sum(result.fun**2) / dof)
    sigma = np.sqrt(np.clip(np.diag(np.linalg.pinv(result.jac.T @ result.jac) * s2), 0.0, None))
    fitted = {name: float(value) for name, value in zip(free, result.x)}
    other = {k: v for k, v in figures.items() if v != MEASURED[k].figure}
    spec = base.replace(
        **fitted,
        uncalibrated=tuple(k for k in base.uncalibrated if k not in fitted),
        calibration=(
            f"fitted by plummer calibrate on {len(fit)} records ("
            + ", ".join(sorted(fit["kind"].unique()))
            + (f"; held out P >= {holdout_min_p}" if holdout_min_p is not None else "")
            + "".join(f"; {k} against its {v}" for k, v in sorted(other.items()))
            + ")"
        ),
    )
    table = records.copy()
    table["predicted"] = np.nan
    for kind, part in table.groupby("kind", sort=False):
        table.loc[part.index, "predicted"] = MEASURED[kind].predictor(part)(spec, figures[kind])
    table["rel_error"] = table["predicted"] / table["measured"] - 1.0
    table["held_out"] = held
    rows = []
    for kind, part in table.groupby("kind", sort=False):
        fit_err = part.loc[~part["held_out"], "rel_error"].abs()
        hold_err = part.loc[part["held_out"], "rel_error"].abs()
        rows.append({
            "kind": kind,
            "figure": figures[kind],
            "n_fit": int(fit_err.size),
            "mape_fit": float(fit_err.mean()) if fit_err.size else float("nan"),
            "max_err_fit": float(fit_err.max()) if fit_err.size else float("nan"),
            "n_holdout": int(hold_err.size),
            "mape_holdout": float(hold_err.mean()) if hold_err.size else float("nan"),
            "max_err_holdout": float(hold_err.max()) if hold_err.size else float("nan"),
        })
    return Calibration(
        spec=spec,
        parameters={k: (float(v), float(s)) for k, v, s in zip(free, result.x, sigma)},
        fixed=fixed,
        errors=pd.DataFrame(rows),
        records=table,
        holdout_min_p=holdout_min_p,
        figures=figures,
        rms=objective.rms(objective(spec)),
    )


# ------------------------------------------------------------------ uncertainty
@dataclass(frozen=True)
class Profile:
    """The fit error with ``parameter`` held at each value and the others refitted.

    ``value`` is the optimum; ``points`` are ``(value, rms)`` pairs sorted by value;
    ``low``/``high`` are where the error crosses ``threshold`` (``(1 + tolerance)`` times
    its minimum, interpolated between the last point below and the first above), or the
    parameter's bound when the error stays below it up to there (``low_open`` /
    ``high_open``: the data do not exclude the bound).
    """

    parameter: str
    value: float
    threshold: float
    low: float
    high: float
    low_open: bool
    high_open: bool
    points: tuple[tuple[float, float], ...]

    @property
    def bounded(self) -> bool:
        """Whether the data exclude both of the parameter's bounds."""
        return not (self.low_open or self.high_open)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value, "threshold": self.threshold, "low": self.low, "high": self.high,
            "low_open": self.low_open, "high_open": self.high_open,
            "points": [list(point) for point in self.points],
        }


def _variances(objective: _Objective, spec: HardwareSpec, names: Sequence[str]) -> dict[str, float]:
    """``diag((J^T J)^-1)`` at ``spec``: the quadratic estimate of each profile's curvature."""
    jacobian = _jacobian(objective, spec, names)
    return dict(zip(names, np.diag(np.linalg.pinv(jacobian.T @ jacobian)).tolist()))


def _profile(
    objective: _Objective, spec: HardwareSpec, free: Sequence[str], name: str, tolerance: float, variance: float
) -> Profile:
    """Profile of ``name`` around the optimum ``spec`` of ``objective`` over ``free``."""
    others = [n for n in free if n != name]
    best = objective(spec)
    minimum = objective.rms(best)
    threshold = (1.0 + tolerance) * minimum
    low, high = BOUNDS[name]
    span = high - low
    width = math.sqrt(((1.0 + tolerance) ** 2 - 1.0) * float(best @ best) * variance) if variance > 0 else span
    first = float(np.clip(0.5 * width, 1e-4 * span, 0.25 * span))

    def refit(x: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        pinned = spec.replace(**{name: x})
        if not others:
            return objective.rms(objective(pinned)), start
        result = _fit(objective, pinned, others, start)
        return objective.rms(result.fun), result.x

    x0 = float(getattr(spec, name))
    points = [(x0, minimum)]
    edges = []
    for direction, bound in ((-1.0, low), (1.0, high)):
        inside, inside_rms = x0, minimum
        inside_start = np.array([float(getattr(spec, n)) for n in others])
        step = first
        while True:
            if inside == bound:
                edges.append((bound, True))
                break
            x = max(inside - step, low) if direction < 0 else min(inside + step, high)
            rms, start = refit(x, inside_start)
            points.append((x, rms))
            if rms <= threshold:
                inside, inside_rms, inside_start = x, rms, start
                step *= 2.0
                continue
            outside, outside_rms = x, rms
            for _ in range(_BISECTIONS):
                middle = 0.5 * (inside + outside)
                rms, start = refit(middle, inside_start)
                points.append((middle, rms))
                if rms <= threshold:
                    inside, inside_rms, inside_start = middle, rms, start
                else:
                    outside, outside_rms = middle, rms
            share = (threshold - inside_rms) / (outside_rms - inside_rms)
            edges.append((inside + share * (outside - inside), False))
            break
    (lo, lo_open), (hi, hi_open) = edges
    return Profile(name, x0, threshold, lo, hi, lo_open, hi_open, tuple(sorted(points)))


@dataclass(frozen=True)
class KindFit:
    """One kind's records alone (module docstring).

    ``identification``: its Jacobian at the joint optimum over the joint fit's
    parameters; ``calibration``: the fit of ``identification.free`` on its records, the
    others held at the joint values (``None`` when it has too few records);
    ``status`` per joint parameter: ``-``, ``confounded``, ``identified``, ``weak``, or
    ``independent`` (an independent column whose profile was not computed);
    ``profiles``: its own profiles of the parameters it identifies or weakly does.
    """

    kind: str
    identification: Identification
    calibration: Calibration | None
    status: dict[str, str]
    profiles: dict[str, Profile]

    def value(self, name: str) -> float:
        """The kind's own value of ``name`` (NaN where it does not fit it on its own)."""
        if self.calibration is None or self.status[name] in ("-", "confounded"):
            return float("nan")
        return self.calibration.parameters[name][0]


@dataclass(frozen=True)
class SweepFit:
    """A kind's records fitted on their differences along one field (module docstring).

    ``size``: the value of the kind's size field (``None``: every size together);
    ``groups``/``records``: the groups of records that agree on every other field and
    their number of records; ``parameters``: the fitted values (the differences depend
    on no other; the rest is held at the spec given); ``rms``/``rms_given``: RMS of the
    differences' residuals (the kind's unit) at that fit and at the spec given;
    ``condition``: of its Jacobian (unit columns).
    """

    kind: str
    field: str
    size: int | None
    figure: str
    groups: int
    records: int
    parameters: dict[str, float]
    rms: float
    rms_given: float
    condition: float

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "kind", "field", "size", "figure", "groups", "records", "parameters", "rms", "rms_given", "condition"
        )}


def _sweep_fit(
    frame: pd.DataFrame, spec: HardwareSpec, kind: str, sweep: str, size: int | None, figure: str, names: Sequence[str]
) -> SweepFit:
    measured = MEASURED[kind]
    group = frame.groupby([f for f in measured.fields if f != sweep]).ngroup().to_numpy()
    count = np.bincount(group)
    predict = measured.predictor(frame)

    def contrast(values: np.ndarray) -> np.ndarray:
        return values - (np.bincount(group, values) / count)[group]

    target = contrast(frame["measured"].to_numpy(dtype=float))

    def residuals(candidate: HardwareSpec) -> np.ndarray:
        return contrast(predict(candidate, figure)) - target

    identification = _identify(_jacobian(residuals, spec, names), names, [getattr(spec, n) for n in names])
    free = identification.free
    start = np.array([float(getattr(spec, n)) for n in free])
    result = _fit(residuals, spec, free, start) if free else None
    fitted = residuals(spec) if result is None else result.fun
    given = residuals(spec)
    return SweepFit(
        kind, sweep, size, figure, len(count), len(frame),
        {} if result is None else dict(zip(free, result.x.tolist())),
        float(np.sqrt(np.mean(fitted**2))), float(np.sqrt(np.mean(given**2))), identification.condition,
    )


def sweep_fits(
    records: pd.DataFrame,
    spec: HardwareSpec,
    kind: str,
    figures: Sequence[str] | None = None,
    parameters: Sequence[str] | None = None,
) -> list[SweepFit]:
    """Fit ``parameters`` (default: all in :data:`BOUNDS` that the differences identify)
    to the differences along each of the kind's sweep fields, per size and together.

    Example (a group-count sweep made with alpha = 2 and beta = 12, fitted from a spec
    whose constant terms do not matter):
        >>> from plummer.hardware import load_hardware
        >>> spec = load_hardware("wse3")
        >>> records = pd.DataFrame({"kind": "meshgemv", "P": 16, "M": 16, "N": 16, "group_num": [2, 4, 8]})
        >>> truth = spec.replace(alpha=2.0, beta=12.0, launch_overhead_cycles=0.0)
        >>> records["measured"] = MEASURED["meshgemv"].predictor(records)(truth, "mean")
        >>> [round(v, 3) for v in sweep_fits(records, spec, "meshgemv", ["mean"])[0].parameters.values()]
        [2.0, 12.0]
    """
    if kind not in MEASURED:
        raise DataError(f"kind '{kind}' is unknown; allowed: {', '.join(MEASURED)}")
    measured = MEASURED[kind]
    names = list(parameters or BOUNDS)
    out = []
    part = records[records["kind"] == kind]
    for sweep in measured.sweeps:
        key = [f for f in measured.fields if f != sweep]
        part_groups = part.groupby(key)[sweep].transform("nunique")
        swept = part[part_groups.to_numpy() >= 2]
        sizes = sorted(int(s) for s in swept[measured.size_field].unique())
        subsets = [(s, swept[swept[measured.size_field] == s]) for s in sizes]
        if len(sizes) > 1:
            subsets.append((None, swept))
        for size, subset in subsets:
            for figure in figures or measured.figures:
                out.append(_sweep_fit(subset, spec, kind, sweep, size, figure, names))
    return out


def _clean(value: Any) -> Any:
    """JSON-ready: NaN becomes None (strict JSON has no NaN), numpy scalars Python ones."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class CalibrationReport:
    """The joint fit and how loosely the data pin each of its parameters (module docstring).

    ``calibration``: the joint fit; ``profiles``: its profile per fitted parameter (empty
    without profiles) at ``tolerance``; ``kinds``: each kind alone; ``variants``: the
    joint fit with one kind compared with another figure, keyed ``kind:figure``;
    ``sweeps``: the fits of differences along each kind's sweeps at the joint spec.
    """

    calibration: Calibration
    tolerance: float
    profiles: dict[str, Profile]
    kinds: dict[str, KindFit]
    variants: dict[str, Calibration]
    sweeps: list[SweepFit]

    @property
    def parameters(self) -> list[str]:
        return list(self.calibration.parameters)

    def identified_by(self, name: str) -> list[str]:
        """The kinds whose records alone identify ``name`` (without profiles: whose
        Jacobian column of it is independent)."""
        return [k for k, fit in self.kinds.items() if fit.status[name] in ("identified", "independent")]

    def spread(self, name: str) -> tuple[float, float]:
        """Lowest and highest value of ``name`` over the joint fit, the variants and the
        kinds that identify it alone."""
        values = [self.calibration.parameters[name][0]]
        values += [v.parameters[name][0] for v in self.variants.values() if name in v.parameters]
        values += [self.kinds[k].value(name) for k in self.identified_by(name)]
        return min(values), max(values)

    def disagreements(self) -> list[dict[str, Any]]:
        """Kinds that identify a parameter whose own profile excludes the joint value."""
        out = []
        for name, (joint, _) in self.calibration.parameters.items():
            for kind in self.identified_by(name):
                own = self.kinds[kind].profiles.get(name)
                if own is not None and not own.contains(joint):
                    out.append({"parameter": name, "kind": kind, "value": own.value,
                                "low": own.low, "high": own.high, "joint": joint})
        return out

    def table(self) -> pd.DataFrame:
        """One row per fitted parameter: joint value, one-sigma, profile range, each
        kind's own value and status, each variant's value, the spread, who identifies it."""
        rows = []
        for name, (value, sigma) in self.calibration.parameters.items():
            profile = self.profiles.get(name)
            row: dict[str, Any] = {
                "parameter": name, "value": value, "sigma": sigma,
                "low": profile.low if profile else float("nan"),
                "high": profile.high if profile else float("nan"),
                "low_open": profile.low_open if profile else False,
                "high_open": profile.high_open if profile else False,
            }
            for kind, fit in self.kinds.items():
                row[kind] = fit.value(name)
                row[f"{kind}_status"] = fit.status[name]
            for label, variant in self.variants.items():
                row[label] = variant.parameters.get(name, (float("nan"), 0.0))[0]
            row["spread_low"], row["spread_high"] = self.spread(name)
            row["identified_by"] = ", ".join(self.identified_by(name))
            rows.append(row)
        return pd.DataFrame(rows)

    def as_dict(self) -> dict[str, Any]:
        """What ``plummer calibrate --json`` prints (one JSON-ready object)."""
        joint = self.calibration
        parameters = {}
        for name, (value, sigma) in joint.parameters.items():
            profile = self.profiles.get(name)
            parameters[name] = {
                "value": value,
                "sigma": sigma,
                "profile": profile.as_dict() if profile else None,
                "spread": list(self.spread(name)),
                "identified_by": self.identified_by(name),
                "kinds": {
                    kind: {
                        "status": fit.status[name],
                        "value": fit.value(name),
                        "sine": fit.identification.sine.get(name),
                        "profile": fit.profiles[name].as_dict() if name in fit.profiles else None,
                    }
                    for kind, fit in self.kinds.items()
                },
                "variants": {label: v.parameters[name][0] for label, v in self.variants.items() if name in v.parameters},
            }
        kinds = {}
        for row in joint.errors.to_dict(orient="records"):
            fit = self.kinds[row["kind"]]
            alone = fit.calibration
            kinds[row["kind"]] = {k: v for k, v in row.items() if k != "kind"} | {"alone": {
                "free": fit.identification.free,
                "condition": fit.identification.condition,
                "combinations": fit.identification.combinations,
                "rms": alone.rms if alone else None,
                "errors": alone.errors.drop(columns="kind").to_dict(orient="records")[0] if alone else None,
            }}
        return _clean({
            "tolerance": self.tolerance,
            "rms": joint.rms,
            "holdout_min_p": joint.holdout_min_p,
            "figures": joint.figures,
            "parameters": parameters,
            "fixed": joint.fixed,
            "kinds": kinds,
            "variants": {
                label: {k: x for k, x in v.as_dict().items() if k != "hardware"}
                for label, v in self.variants.items()
            },
            "disagreements": self.disagreements(),
            "sweeps": [s.as_dict() for s in self.sweeps],
            "hardware": joint.spec.to_dict(),
        })


def _kind_fit(
    records: pd.DataFrame, joint: Calibration, kind: str, tolerance: float, profile: bool
) -> KindFit:
    names = list(joint.parameters)
    own = records[records["kind"] == kind]
    fitted = own[~_held_out(own, joint.holdout_min_p)]
    figures = {kind: joint.figures[kind]}
    objective = _Objective(fitted, figures)
    values = [getattr(joint.spec, n) for n in names]
    identification = _identify(_jacobian(objective, joint.spec, names), names, values)
    free = identification.free
    enough = 0 < len(free) < len(fitted)
    alone = calibrate(own, joint.spec, joint.holdout_min_p, free, figures) if enough else None
    status, profiles = {}, {}
    variances = _variances(objective, alone.spec, free) if alone and profile else {}
    for name in names:
        if name not in identification.used:
            status[name] = "-"
        elif name in identification.confounded or name not in free:
            status[name] = "confounded"
        elif alone is None or not profile:
            status[name] = "independent"
        else:
            profiles[name] = _profile(objective, alone.spec, free, name, tolerance, variances[name])
            status[name] = "identified" if profiles[name].bounded else "weak"
    return KindFit(kind, identification, alone, status, profiles)


def analyse(
    records: pd.DataFrame,
    base: HardwareSpec,
    holdout_min_p: int | None = None,
    parameters: Sequence[str] | None = None,
    figure: str | Mapping[str, str] | None = None,
    tolerance: float = 0.10,
    profile: bool = True,
) -> CalibrationReport:
    """Calibrate, then measure how loosely the data pin each parameter (module docstring):
    what ``plummer calibrate`` prints; ``report.as_dict()`` is its ``--json``.

    ``tolerance``: a profile range holds the values whose fit error is at most
    ``(1 + tolerance)`` times the minimum. ``profile=False`` skips every profile
    (statuses then come from the Jacobians alone).

    Example (shift records, 1% off a spec's predictions):
        >>> from plummer.hardware import load_hardware
        >>> spec = load_hardware("wse3")
        >>> records = pd.DataFrame({"kind": "shift", "P": 16, "L": [1, 2, 4, 8, 16], "M": 64, "N": 64})
        >>> records["measured"] = MEASURED["shift"].predictor(records)(spec, "mean")
        >>> records["measured"] *= [1.01, 0.99, 1.0, 1.01, 0.99]
        >>> report = analyse(records, spec, parameters=["alpha", "launch_overhead_cycles"])
        >>> report.identified_by("launch_overhead_cycles"), report.profiles["alpha"].bounded
        (['shift'], True)
    """
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise DataError(f"tolerance = {tolerance!r} must be a positive fraction (0.1: the fit error may rise by 10%)")
    records = records.reset_index(drop=True)
    joint = calibrate(records, base, holdout_min_p, parameters, figure)
    names = list(joint.parameters)
    fitted = records[~_held_out(records, holdout_min_p)]
    profiles = {}
    if profile:
        objective = _Objective(fitted, joint.figures)
        variances = _variances(objective, joint.spec, names)
        profiles = {n: _profile(objective, joint.spec, names, n, tolerance, variances[n]) for n in names}
    kinds = {kind: _kind_fit(records, joint, kind, tolerance, profile) for kind in joint.figures}
    variants = {}
    for kind, used in joint.figures.items():
        predict = MEASURED[kind].predictor(fitted[fitted["kind"] == kind])
        for other in MEASURED[kind].figures:
            if other != used and not np.array_equal(predict(joint.spec, other), predict(joint.spec, used)):
                variants[f"{kind}:{other}"] = calibrate(
                    records, base, holdout_min_p, parameters, {**joint.figures, kind: other}
                )
    sweeps = [s for kind in joint.figures for s in sweep_fits(fitted, joint.spec, kind, parameters=names)]
    return CalibrationReport(joint, float(tolerance), profiles, kinds, variants, sweeps)


__all__ = [
    "BOUNDS",
    "MEASURED",
    "Calibration",
    "CalibrationReport",
    "Identification",
    "KindFit",
    "MeasuredKernel",
    "ObservationKind",
    "Predictor",
    "Profile",
    "SHARED_WITH_SCENARIOS",
    "ScenarioObservation",
    "SweepFit",
    "WSE3_DATA",
    "analyse",
    "calibrate",
    "load_measurements",
    "sweep_fits",
]
