"""Exhaustive ground truth: every point of a (small enough) space through the closed form.

The space is enumerated as an outer product, one array axis per dimension, in chunks of at
most ``chunk`` points (:meth:`search._space.SearchSpace.grid_chunks`), so memory stays
bounded and each op of a layer plan is evaluated only over the dimensions it depends on (a
decode op is not re-evaluated for every prefill grid). One objective: the best feasible
point. Several: the exact Pareto front of the feasible points.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from plummer.errors import SpecError
from search._objective import constraint_values, evaluate_columns, objective_values
from search._runner import front_order, pareto_mask, signs
from search._study_file import StudyFile

#: The largest space :func:`exhaustive` enumerates (points).
MAX_POINTS = 20_000_000


def exhaustive(study: StudyFile, chunk: int = 1 << 18, progress: Any = None) -> dict[str, Any]:
    """Evaluate every point of ``study``'s space: ``points``, ``feasible`` counts, ``seconds``;
    for one objective ``optimum`` = ``{"value", "point"}``; for several ``front`` = the
    feasible Pareto front as ``[{"values", "point"}, ...]``. A co-design study enumerates its
    chips, each with its layout (nested: that chip's best)."""
    if study.codesign is not None:
        return _exhaustive_chips(study)
    size = study.space.size
    if size > MAX_POINTS:
        raise SpecError(f"study '{study.name}': its space has {size:,} points; exhaustive "
                        f"enumeration takes at most {MAX_POINTS:,}")
    sign = signs(study)
    start = time.perf_counter()
    best_value, best_index = -np.inf, -1
    front_values = np.zeros((0, len(sign)))
    front_index = np.zeros(0, dtype=np.int64)
    feasible_count = 0
    for columns, offset in study.space.grid_chunks(chunk):
        ev = evaluate_columns(study, columns)
        values = objective_values(study, ev).reshape(len(sign), -1).T * sign
        ok = np.all(constraint_values(study, ev).reshape(-1, values.shape[0]) <= 0, axis=0)
        ok &= np.all(np.isfinite(values), axis=1)
        feasible_count += int(ok.sum())
        index = np.flatnonzero(ok)
        if index.size == 0:
            pass
        elif len(sign) == 1:
            i = index[int(np.argmax(values[index, 0]))]
            if values[i, 0] > best_value:
                best_value, best_index = float(values[i, 0]), offset + int(i)
        else:
            local = index[pareto_mask(values[index])]
            merged = np.concatenate([front_values, values[local]])
            merged_index = np.concatenate([front_index, offset + local])
            keep = pareto_mask(merged)
            front_values, front_index = merged[keep], merged_index[keep]
        if progress is not None:
            progress.update(int(np.prod(values.shape[0])))
    out: dict[str, Any] = {"study": study.name, "points": size, "feasible": feasible_count,
                           "seconds": time.perf_counter() - start}
    if len(sign) == 1:
        out["optimum"] = None if best_index < 0 else {
            "value": best_value * sign[0], "point": study.space.point_at(best_index)}
    else:
        order = front_order(np.column_stack([front_values, -front_index]))  # ties: the first point
        out["front"] = [{"values": (front_values[i] * sign).tolist(),
                         "point": study.space.point_at(int(front_index[i]))} for i in order]
    return out


def _exhaustive_chips(study: StudyFile) -> dict[str, Any]:
    """:func:`exhaustive` over a co-design study's hardware points."""
    from search._codesign import trial_values

    space = study.codesign.space
    sign = signs(study)
    start = time.perf_counter()
    rows, points, records = [], [], []
    for index in range(space.size):
        point = space.point_at(index)
        values, record = trial_values(study, point)
        if record["feasible"]:
            rows.append(np.asarray(values) * sign)
            points.append(point)
            records.append(record)
    out: dict[str, Any] = {"study": study.name, "points": space.size, "feasible": len(rows),
                           "seconds": time.perf_counter() - start}
    values = np.asarray(rows).reshape(len(rows), len(sign))
    if len(sign) == 1:
        best = int(np.argmax(values[:, 0])) if rows else -1
        out["optimum"] = None if best < 0 else {"value": float(values[best, 0] * sign[0]),
                                                "point": points[best], "layout_point": records[best]["layout_point"]}
    else:
        keep = np.flatnonzero(pareto_mask(values))
        out["front"] = [{"values": (values[i] * sign).tolist(), "point": points[i],
                         "layout_point": records[i]["layout_point"]} for i in keep[front_order(values[keep])]]
    return out
