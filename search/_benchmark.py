"""Search quality and speed (``plummer benchmark --part studies``).

- Regret: for each shipped single-objective study whose space is small enough to enumerate,
  the exhaustive optimum, then the study's own sampler (a fresh study in a temporary
  journal) for ``trials`` trials, once per seed (TPE's result varies with its seed as much
  as with its settings, so one run says little); the regret ``(optimum - best so far) /
  optimum`` after each checkpoint (``inf`` before the first feasible trial), its median over
  the seeds, and how many runs come within 1% of the optimum.
- The objective's share of each trial's wall time (plummer's evaluation against Optuna's
  sampling and storage).
- Exhaustive speed on a space of about 10^7 points (the LLaMA3-8B WSE-2 study's space with
  more values per column).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna

from search._exhaustive import exhaustive
from search._results import history, regret
from search._runner import run_study
from search._space import SearchSpace
from search._storage import open_storage
from search._study_file import StudyFile, load_study_file

CHECKPOINTS = (10, 25, 50, 100, 150, 200, 300)
STUDIES = Path(__file__).resolve().parent.parent / "studies"


def regret_curve(study: StudyFile, trials: int = 300, seeds: int = 5) -> dict[str, Any]:
    """The regret of ``study``'s sampler against its exhaustive optimum (module docstring),
    for ``seeds`` runs seeded ``seed, seed + 1, ...``: each run's curve, and per checkpoint
    the median over the runs (a run with no feasible trial yet counts as the worst)."""
    truth = exhaustive(study)
    optimum = truth["optimum"]["value"] if truth["optimum"] else None

    def gap(value: float) -> float:
        found = regret(study, optimum, value)
        return math.inf if found is None else found

    runs = []
    for i in range(seeds):
        seeded = replace(study, seed=(study.seed or 0) + i)
        with tempfile.TemporaryDirectory() as tmp:
            url = str(Path(tmp) / "bench.journal")
            summary = run_study(seeded, url, trials=trials, progress=False)
            handle = optuna.load_study(study_name=study.name, storage=open_storage(url))
            curve = [gap(v) for v in history(seeded, handle)]
        runs.append({"seed": seeded.seed,
                     "regret": {str(c): _finite(curve[c - 1]) for c in CHECKPOINTS if c <= len(curve)},
                     "trials_to_1pct": next((n + 1 for n, r in enumerate(curve) if r <= 0.01), None),
                     "evaluation_share": summary["evaluation_share"]})
    checkpoints = runs[0]["regret"]
    return {"study": study.name, "points": truth["points"], "exhaustive_s": truth["seconds"],
            "optimum": optimum, "trials": trials, "seeds": seeds,
            "median_regret": {c: _finite(statistics.median(math.inf if r["regret"][c] is None else r["regret"][c]
                                                           for r in runs)) for c in checkpoints},
            "runs_within_1pct": sum(r["trials_to_1pct"] is not None for r in runs),
            "median_evaluation_share": statistics.median(r["evaluation_share"] for r in runs),
            "runs": runs}


def _finite(value: float) -> float | None:
    """``value``, or None where it is infinite (no feasible trial yet): JSON has no inf."""
    return None if math.isinf(value) else value


def exhaustive_speed() -> dict[str, Any]:
    """Seconds to enumerate a space of about 10^7 points."""
    study = load_study_file(STUDIES / "llama3-8b-wse2.toml")
    space = study.space.to_dict() | {
        "pf_p": {"low": 240, "high": 720, "step": 24}, "dc_p": {"low": 96, "high": 744, "step": 24},
        "pf_regions": {"low": 1, "high": 5}, "dc_regions": {"low": 1, "high": 24},
        "batch": [1, 2, 4, 8, 16], "dc_k_tree": [1, 2, 3]}
    big = replace(study, space=SearchSpace.from_dict(space).fit_regions(study.space.capacity))
    start = time.perf_counter()
    result = exhaustive(big)
    seconds = time.perf_counter() - start
    return {"points": result["points"], "seconds": seconds, "points_per_s": result["points"] / seconds}


def study_benchmark(names: list[str] | None = None, trials: int = 300, seeds: int = 5) -> dict[str, Any]:
    """Regret curves of the shipped single-objective studies (or those ``names``), ``seeds``
    runs each, and the exhaustive speed."""
    paths = sorted(STUDIES.glob("*.toml"))
    rows = []
    for path in paths:
        study = load_study_file(path)
        if study.multi_objective or study.codesign is not None or (names and study.name not in names):
            continue
        rows.append(regret_curve(study, trials, seeds))
    return {"studies": rows, "exhaustive": exhaustive_speed()}
