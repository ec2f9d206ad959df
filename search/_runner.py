"""Running a study: Optuna's samplers, ask-and-tell in batches, several worker processes.

Each worker asks ``batch`` trials, evaluates their layouts in one vectorised call of the
closed form (:func:`search._objective.evaluate_columns`), and tells Optuna each trial's
objective values, its constraints (``Trial.set_constraint``, which Optuna's samplers read),
its metrics, breakdown and the reasons it does not fit (user attributes). A trial is finished once told,
so a killed worker loses only the batch it was evaluating; those trials stay RUNNING until
the next run on this host marks them FAIL (:func:`search._storage.fail_dead_workers_trials`).

``jobs`` workers split ``trials`` exactly (the first ``trials % jobs`` take one more), each in
its own process on the same storage, with sampler seeds ``seed + worker``: one seeded worker
is reproducible; several interleave their trials in an order the machine decides.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from plummer.errors import SpecError
from search._codesign import trial_values
from search._objective import (
    constraint_names,
    constraint_values,
    evaluate_columns,
    objective_values,
    trial_record,
)
from search._storage import WORKER, fail_dead_workers_trials, open_storage, open_study, worker_tag
from search._study_file import StudyFile, load_study_file


def make_sampler(study: StudyFile, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The study's sampler (Optuna's own), seeded ``seed + worker``; errors say what a
    sampler needs."""
    seed = None if study.seed is None else study.seed + worker
    options = dict(study.sampler_options)
    try:
        if study.sampler == "tpe":
            options.setdefault("constant_liar", study.batch > 1)
            return optuna.samplers.TPESampler(seed=seed, **options)
        if study.sampler == "nsgaii":
            options.setdefault("population_size", max(study.batch, 16))
            return optuna.samplers.NSGAIISampler(seed=seed, **options)
        if study.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed, **options)
        if study.sampler == "gp":
            _need("torch", "gp")
            return optuna.samplers.GPSampler(seed=seed, **options)
        _need("cmaes", "cmaes")
        return optuna.samplers.CmaEsSampler(seed=seed, **options)
    except TypeError as exc:
        raise SpecError(f"[sampler] options {options} are not arguments of the {study.sampler} "
                        f"sampler: {exc}") from None


def _need(module: str, sampler: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise SpecError(f"sampler '{sampler}' needs the package '{module}': "
                        f"pip install 'plummer[{sampler}]'") from None


@dataclass(frozen=True)
class BatchTimes:
    """Wall time of a worker's run, and the part spent in plummer's evaluation (seconds)."""

    total: float
    evaluation: float
    trials: int


def run_worker(study: StudyFile, storage_url: str, trials: int, worker: int = 0,
               progress: Any = None) -> BatchTimes:
    """Run ``trials`` trials of ``study`` in this process (module docstring)."""
    storage = open_storage(storage_url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = make_sampler(study, worker)
    handle = open_study(study, storage, sampler)
    tag = worker_tag()
    names = constraint_names(study)
    start = time.perf_counter()
    evaluating = 0.0
    done = 0
    while done < trials and study.codesign is not None:
        trial = handle.ask()
        trial.set_user_attr(WORKER, tag)
        began = time.perf_counter()
        values, record = trial_values(study, study.codesign.space.suggest(trial))
        evaluating += time.perf_counter() - began
        trial.set_constraint("a_layout_fits", record["constraints"]["a_layout_fits"])
        trial.set_user_attr("plummer", record)
        handle.tell(trial, values)
        done += 1
        if progress is not None:
            progress.update(1)
    while done < trials:
        asked = []
        for _ in range(min(study.batch, trials - done)):
            trial = handle.ask()
            trial.set_user_attr(WORKER, tag)
            asked.append(trial)
        points = [study.space.suggest(trial, study.capacity) for trial in asked]
        began = time.perf_counter()
        ev = evaluate_columns(study, study.space.columns(points))
        values = objective_values(study, ev).reshape(len(study.objectives), -1)
        constraints = constraint_values(study, ev).reshape(-1, len(asked))
        evaluating += time.perf_counter() - began
        for i, trial in enumerate(asked):
            record = trial_record(study, ev, i)
            record["point"] = points[i]
            record["constraints"] = dict(zip(names, constraints[:, i].tolist(), strict=True))
            for name, value in record["constraints"].items():
                trial.set_constraint(name, value)
            trial.set_user_attr("plummer", record)
            handle.tell(trial, values[:, i].tolist())
        done += len(asked)
        if progress is not None:
            progress.update(len(asked))
    return BatchTimes(time.perf_counter() - start, evaluating, done)


def _worker_main(path: str, storage_url: str, trials: int, worker: int) -> None:
    """A worker process: read the study file and run its share of the trials."""
    run_worker(load_study_file(path), storage_url, trials, worker)


def run_study(study: StudyFile, storage_url: str, trials: int | None = None, jobs: int = 1,
              progress: bool = True) -> dict[str, Any]:
    """Run ``trials`` (default: the study file's) more trials with ``jobs`` worker processes;
    returns a summary (trials told, wall time, evaluation share, the storage)."""
    trials = trials or study.trials
    if jobs < 1:
        raise SpecError(f"--jobs = {jobs} must be >= 1")
    storage = open_storage(storage_url)
    handle = open_study(study, storage, make_sampler(study))  # creates it, checks the fingerprint
    stale = fail_dead_workers_trials(handle)
    before = len(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    bar = _progress_bar(trials, study.name) if progress else None
    start = time.perf_counter()
    if jobs == 1:
        times = run_worker(study, storage_url, trials, 0, bar)
        evaluation = times.evaluation
    else:
        shares = [trials // jobs + (i < trials % jobs) for i in range(jobs)]
        context = multiprocessing.get_context("spawn")
        if study.path is None:
            raise SpecError("--jobs > 1 needs a study file on disk (each worker reads it)")
        workers = [context.Process(target=_worker_main, args=(str(study.path), storage_url, share, i))
                   for i, share in enumerate(shares) if share]
        for w in workers:
            w.start()
        seen = 0
        while any(w.is_alive() for w in workers):
            time.sleep(0.5)
            if bar is not None:
                now = len(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
                bar.update(now - before - seen)
                seen = now - before
        failed = [w.exitcode for w in workers if w.exitcode]
        if failed:
            raise SpecError(f"{len(failed)} of {len(workers)} workers failed (exit codes {failed})")
        evaluation = float("nan")
    if bar is not None:
        bar.close()
    after = len(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    wall = time.perf_counter() - start
    return {"study": study.name, "storage": storage_url, "trials_run": after - before,
            "trials_complete": after, "stale_trials_failed": stale, "jobs": jobs,
            "wall_s": wall, "evaluation_s": evaluation,
            "evaluation_share": evaluation / wall if wall and not math.isnan(evaluation) else None}


def _progress_bar(total: int, name: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=f"study {name}", unit="trial")


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether every constraint of a told trial holds (values ``<= 0``)."""
    constraints = trial.user_attrs.get("plummer", {}).get("constraints")
    return bool(constraints) and all(v <= 0 for v in constraints.values())


def feasible_trials(handle: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Complete trials whose constraints all hold."""
    return [t for t in handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if is_feasible(t)]


def best_trials(study: StudyFile, handle: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The best feasible trial (one objective), or the feasible Pareto front (several)."""
    trials = feasible_trials(handle)
    if not trials:
        return []
    signs = np.array([1.0 if o.direction == "maximize" else -1.0 for o in study.objectives])
    values = np.array([t.values for t in trials]) * signs
    if len(signs) == 1:
        return [trials[int(np.argmax(values[:, 0]))]]
    keep = pareto_mask(values)
    return [t for t, k in zip(trials, keep, strict=True) if k]


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (``(n, objectives)``, to maximise) that no other row dominates;
    of equal rows the first is kept. O(n log n) for two objectives, O(n x front) beyond."""
    n = len(values)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    # lexicographically descending: a row can only be dominated by one before it
    order = np.lexsort(tuple(-values[:, j] for j in range(values.shape[1] - 1, -1, -1)))
    if values.shape[1] == 2:
        second = values[order, 1]
        best_before = np.maximum.accumulate(np.concatenate([[-np.inf], second[:-1]]))
        keep[order[second > best_before]] = True
        return keep
    front: list[np.ndarray] = []
    for i in order:
        row = values[i]
        if not any(np.all(f >= row) for f in front):
            front.append(row)
            keep[i] = True
    return keep
