"""The objective of a study: a batch of points through the layouts' closed form at once.

Objective values are the study's metrics as evaluated (an infeasible layout keeps its real
figures). Feasibility goes to Optuna's ``constraints_func`` as one value per constraint,
``<= 0`` where satisfied: the bytes a phase's memory overflows its budget, the routes beyond
the budget, 1 for regions that do not fit the fabric or choices the kernels cannot run, and
the distance past each bound of the study's own ``[[constraints]]``. With ``memory =
"ignore"`` the memory constraints always hold (-1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plummer.layout import LayoutArrays, evaluate
from plummer.layout._metrics import Evaluation, reason_texts
from search._study_file import StudyFile

#: Names of the built-in constraints, in the order :func:`constraint_values` gives them.
BUILT_IN = ("memory_prefill_bytes", "memory_decode_bytes", "routes", "placement", "choices")


def constraint_names(study: StudyFile) -> list[str]:
    """The names of :func:`constraint_values`' rows (Optuna's constraint keys)."""
    names = list(BUILT_IN)
    for c in study.constraints:
        names += [f"{c.metric}<={c.max:g}"] if c.max is not None else []
        names += [f"{c.metric}>={c.min:g}"] if c.min is not None else []
    return names


def evaluate_columns(study: StudyFile, columns: dict[str, Any]) -> Evaluation:
    """Evaluate the layouts given as one array (or number) per column, in one call."""
    arrays = LayoutArrays.from_columns(study.hardware, study.model, **columns)
    return evaluate(study.hardware, study.model, arrays)


def objective_values(study: StudyFile, ev: Evaluation) -> np.ndarray:
    """``(objectives, *batch)`` objective values."""
    return np.stack([np.asarray(ev.metrics[o.metric], dtype=float) for o in study.objectives])


def constraint_values(study: StudyFile, ev: Evaluation) -> np.ndarray:
    """``(constraints, *batch)`` values, ``<= 0`` where satisfied (module docstring)."""
    m, spec = ev.metrics, study.hardware
    reasons = m["reasons"]
    ignore = -1.0 if study.memory == "ignore" else None
    values = [
        m["memory_prefill_bytes"] - spec.memory_bytes if ignore is None else ignore,
        m["memory_decode_bytes"] - spec.memory_bytes if ignore is None else ignore,
        m["routes_per_core"] - spec.route_budget,
        np.where(reasons & (16 | 32), 1.0, -1.0),
        np.where(reasons & (64 | 128 | 256 | 512), 1.0, -1.0),
    ]
    for c in study.constraints:
        value = np.asarray(m[c.metric], dtype=float)
        if c.max is not None:
            values.append(value - c.max)
        if c.min is not None:
            values.append(c.min - value)
    return np.stack([np.broadcast_to(v, reasons.shape).astype(float) for v in values])


def trial_record(study: StudyFile, ev: Evaluation, index: int) -> dict[str, Any]:
    """What a trial stores (user attributes): every metric, the reasons it does not fit,
    and its per-op breakdown (cycles per layer by op, per phase)."""
    flat = {k: np.asarray(v).reshape(-1) for k, v in ev.metrics.items()}
    metrics = {k: float(v[index]) for k, v in flat.items() if k != "reasons"}
    breakdown = {}
    for phase, cost in (("prefill", ev.prefill), ("decode", ev.decode)):
        shape = ev.metrics["reasons"].shape
        rows = {}
        for op in cost.ops:
            c = cost.costs[op.name]
            repeats = np.broadcast_to(np.asarray(op.repeats, dtype=float), shape).reshape(-1)[index]
            cycles = np.broadcast_to(c.cycles, shape).reshape(-1)[index]
            if repeats:
                rows[op.name] = float(repeats * (cycles - c.launch))
        breakdown[phase] = rows
    code = int(flat["reasons"][index])
    return {"metrics": metrics, "feasible": code == 0, "reasons": reason_texts(code),
            "breakdown": breakdown}
