"""Reading studies back: the best layouts, what a storage holds, and regret against the truth."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna

from plummer.layout import ALLREDUCE_ALGOS, GEMM_ALGOS, KV_SCHEMES, Layout, PhaseLayout
from plummer.layout._arrays import default_head_groups
from search._runner import best_trials, feasible_trials, is_feasible, signs
from search._storage import open_existing_storage, open_study
from search._study_file import StudyFile


def _name(table: tuple[str, ...], value: Any) -> str:
    return value if isinstance(value, str) else table[int(value)]


def point_layout(study: StudyFile, point: dict[str, Any]) -> Layout:
    """The :class:`Layout` of a point of the study's space (a layout file `plummer predict
    --layout` reads and gives the same figures for)."""
    defaults = PhaseLayout(grid=(2, 2))
    phases = {}
    for prefix, phase in (("pf", "prefill"), ("dc", "decode")):
        def get(name: str, default: Any, prefix: str = prefix) -> Any:
            return point.get(f"{prefix}_{name}", default)
        p, q = int(get("p", 0)), int(get("q", 0))
        groups = int(get("head_groups", 0)) or default_head_groups(study.model, p, q)
        phases[phase] = PhaseLayout(
            grid=(p, q), regions=int(get("regions", 1)),
            gemm=_name(GEMM_ALGOS, get("gemm", defaults.gemm)),
            allreduce=_name(ALLREDUCE_ALGOS, get("allreduce", defaults.allreduce)),
            k_tree=int(get("k_tree", defaults.k_tree)), group_num_x=int(get("group_num_x", 0)),
            group_num_y=int(get("group_num_y", 0)), head_groups=groups)
    return Layout(prefill=phases["prefill"], decode=phases["decode"],
                  batch=int(point.get("batch", 1)), input_tokens=int(point.get("input_tokens", 4096)),
                  output_tokens=int(point.get("output_tokens", 256)),
                  kv_cache=_name(KV_SCHEMES, point.get("kv_cache", "shift")),
                  model=study.model_ref, hardware=study.hardware_ref,
                  description=f"from study '{study.name}'")


def best(study: StudyFile, storage_url: str) -> dict[str, Any]:
    """The best feasible trial (one objective) or the feasible Pareto front (several), each
    with its values, point, metrics and layout (the storage must exist: nothing is created)."""
    handle = open_study(study, open_existing_storage(storage_url), create=False)
    trials = best_trials(study, handle)
    complete = handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    rows = []
    for t in trials:
        record = t.user_attrs.get("plummer", {})
        row = {"trial": t.number, "values": list(t.values), "metrics": record.get("metrics", {})}
        if study.codesign is None:
            row |= {"point": trial_point(study, t), "layout": point_layout(study, trial_point(study, t)).to_dict()}
        else:  # a chip, and the layout chosen for it
            hardware = dict(t.params) | dict(study.codesign.space.fixed)
            row |= {"point": hardware, "hardware": hardware,
                    "layout": point_layout(study, record["layout_point"]).to_dict()}
        rows.append(row)
    return {"study": study.name, "storage": storage_url, "trials": len(complete),
            "feasible": len(feasible_trials(handle)),
            "objectives": [f"{o.direction} {o.metric}" for o in study.objectives], "best": rows}


def trial_point(study: StudyFile, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Every column of a trial's point as evaluated (its record's, else its parameters, the
    space's fixed values and ties)."""
    recorded = trial.user_attrs.get("plummer", {}).get("point")
    if recorded is not None:
        return dict(recorded)
    point = dict(trial.params) | dict(study.space.fixed)
    return point | {name: point[target] for name, target in study.space.ties.items()}


def history(study: StudyFile, handle: optuna.Study) -> np.ndarray:
    """The best feasible objective value after each complete trial (one objective;
    NaN until the first feasible one), in trial order."""
    sign = signs(study)[0]
    trials = sorted(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
                    key=lambda t: t.number)
    out, best_value = [], -np.inf
    for t in trials:
        if is_feasible(t):
            best_value = max(best_value, sign * t.values[0])
        out.append(best_value * sign if np.isfinite(best_value) else np.nan)
    return np.asarray(out)


def regret(study: StudyFile, optimum: float | None, found: float | None) -> float | None:
    """How far ``found`` (the best a study found) is below the true ``optimum`` of its one
    objective, relative to it: 0 = found it, > 0 worse; None where either is missing (no
    feasible point or trial; NaN counts as missing); ``inf`` for an optimum of 0 not found."""
    if optimum is None or found is None or math.isnan(found):
        return None
    if optimum == 0:
        return 0.0 if found == 0 else math.inf
    return float(signs(study)[0] * (optimum - found) / abs(optimum))


def list_studies(storage_url: str) -> list[dict[str, Any]]:
    """What a storage holds: name, directions, trials, model and hardware per study (a
    storage that does not exist is an error, and is not created)."""
    storage = open_existing_storage(storage_url)
    rows = []
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        rows.append({"study": s.study_name, "directions": [d.name.lower() for d in s.directions],
                     "trials": s.n_trials, "model": s.user_attrs.get("plummer_model"),
                     "hardware": s.user_attrs.get("plummer_hardware"),
                     "started": s.datetime_start.isoformat() if s.datetime_start else None})
    return rows
