"""Optuna studies over LLM layouts: study files, search spaces, the batched objective,
Optuna's storages and samplers, exhaustive ground truth.

The Python API mirrors ``plummer study``::

    from search import load_study_file, run_study, best, exhaustive, storage_url
    study = load_study_file("studies/llama3-8b-wse2.toml")
    run_study(study, storage_url(study, None), trials=100)
"""

from __future__ import annotations

from search._benchmark import study_benchmark
from search._codesign import best_layout, chip
from search._exhaustive import exhaustive
from search._results import best, history, list_studies, point_layout, regret, trial_point
from search._runner import (
           best_trials,
           is_feasible,
           make_sampler,
           pareto_mask,
           run_study,
           run_worker,
)
from search._space import COLUMNS, Dimension, SearchSpace
from search._storage import (
           DEFAULT_STORAGE,
           open_existing_storage,
           open_storage,
           open_study,
           storage_url,
)
from search._study_file import METRICS, SAMPLERS, StudyFile, load_study_file, parse_study

__all__ = ["COLUMNS", "DEFAULT_STORAGE", "METRICS", "SAMPLERS", "Dimension", "SearchSpace",
           "StudyFile", "best", "best_layout", "best_trials", "chip", "exhaustive", "history", "is_feasible", "list_studies",
           "load_study_file", "make_sampler", "open_existing_storage", "open_storage", "open_study",
           "pareto_mask", "parse_study", "point_layout", "regret", "run_study", "run_worker", "storage_url", "study_benchmark",
           "trial_point"]
