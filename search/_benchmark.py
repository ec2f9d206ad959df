"""Search quality and speed (``plummer benchmark --part studies``).

- Regret: for each shipped single-objective study whose space is small enough to enumerate,
  the exhaustive optimum, then the study's own sampler (a fresh study in a temporary
  journal) for ``trials`` trials; the regret ``(optimum - best so far) / optimum`` after
  each checkpoint and the first trial within 1% of the optimum.
- The objective's share of each trial's wall time (plummer's evaluation against Optuna's
  sampling and storage).
- Exhaustive speed on a space of about 10^7 points (the LLaMA3-8B WSE-2 study's space with
  more values per column).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna

from search._exhaustive import exhaustive
from search._results import history
from search._runner import run_study
from search._space import SearchSpace
from search._storage import open_storage
from search._study_file import StudyFile, load_study_file

CHECKPOINTS = (10, 25, 50, 100, 150, 200, 300)
STUDIES = Path(__file__).resolve().parent.parent / "studies"


def regret_curve(study: StudyFile, trials: int = 300) -> dict[str, Any]:
    """The regret of ``study``'s sampler against its exhaustive optimum (module docstring)."""
    truth = exhaustive(study)
    optimum = truth["optimum"]["value"] if truth["optimum"] else None
    with tempfile.TemporaryDirectory() as tmp:
        url = str(Path(tmp) / "bench.journal")
        summary = run_study(study, url, trials=trials, progress=False)
        handle = optuna.load_study(study_name=study.name, storage=open_storage(url))
        best = history(study, handle)
    sign = 1.0 if study.objectives[0].direction == "maximize" else -1.0

    def regret(value: float) -> float | None:
        if optimum is None or math.isnan(value):
            return None
        return sign * (optimum - value) / abs(optimum)

    within = next((i + 1 for i, v in enumerate(best) if (r := regret(v)) is not None and r <= 0.01), None)
    return {"study": study.name, "points": truth["points"], "exhaustive_s": truth["seconds"],
            "optimum": optimum, "trials": trials,
            "regret": {str(c): regret(best[c - 1]) for c in CHECKPOINTS if c <= len(best)},
            "trials_to_1pct": within, "evaluation_share": summary["evaluation_share"]}


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


def study_benchmark(names: list[str] | None = None, trials: int = 300) -> dict[str, Any]:
    """Regret curves of the shipped single-objective studies (or those ``names``) and the
    exhaustive speed."""
    paths = sorted(STUDIES.glob("*.toml"))
    rows = []
    for path in paths:
        study = load_study_file(path)
        if study.multi_objective or study.codesign is not None or (names and study.name not in names):
            continue
        rows.append(regret_curve(study, trials))
    return {"studies": rows, "exhaustive": exhaustive_speed()}
