"""Running a study: Optuna's samplers, ask-and-tell in batches, several worker processes.

Each worker asks ``batch`` trials, evaluates their layouts in one vectorised call of the
closed form (:func:`search._objective.evaluate_columns`), and tells Optuna each trial's
objective values, its constraints (``Trial.set_constraint``, which Optuna's samplers read),
its metrics, breakdown and the reasons it does not fit (user attributes). A trial is
finished once told. A batch that raises or is interrupted tells its unfinished trials FAIL;
a worker killed mid-batch loses only the batch it was evaluating, whose trials stay RUNNING
until its parent (``jobs > 1``) or the next run on this host marks them FAIL
(:func:`search._storage.fail_dead_workers_trials`).

``jobs`` workers split ``trials`` exactly (the first ``trials % jobs`` take one more), each in
its own process on the same storage, with sampler seeds ``seed + worker`` on a fresh study
(one seeded worker is reproducible; several interleave their trials in an order the machine
decides) and seeds drawn from the seed and the trials already stored when a run continues a
study (:func:`sampler_seed`).
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
from search._study_file import SAMPLER_CLASSES, StudyFile, load_study_file


def sampler_seed(study: StudyFile, worker: int = 0, resumed: int = 0) -> int | None:
    """The seed of worker ``worker``'s sampler when the storage already holds ``resumed``
    trials of the study: ``seed + worker`` for a fresh study (a seeded run is
    reproducible), else one drawn from ``(seed, resumed, worker)`` -- a resumed run must not
    replay the proposals its first run made (a random sampler, a startup phase or NSGA-II's
    first generation would ask the same points again), and resuming the same storage state
    is reproducible too."""
    if study.seed is None:
        return None
    if resumed == 0:
        return study.seed + worker
    return int(np.random.SeedSequence([study.seed, resumed, worker]).generate_state(1)[0])


def make_sampler(study: StudyFile, worker: int = 0, resumed: int = 0) -> optuna.samplers.BaseSampler:
    """The study's sampler (Optuna's own), seeded by :func:`sampler_seed`; errors say what a
    sampler needs."""
    seed = sampler_seed(study, worker, resumed)
    options = dict(study.sampler_options)
    if study.sampler == "tpe":
        options.setdefault("constant_liar", study.batch > 1)
    elif study.sampler == "nsgaii":
        options.setdefault("population_size", max(study.batch, 16))
    elif study.sampler in ("gp", "cmaes"):
        _need("torch" if study.sampler == "gp" else "cmaes", study.sampler)
    try:
        return getattr(optuna.samplers, SAMPLER_CLASSES[study.sampler])(seed=seed, **options)
    except (TypeError, ValueError) as exc:
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
               progress: Any = None, resumed: int | None = None) -> BatchTimes:
    """Run ``trials`` trials of ``study`` in this process (module docstring); ``resumed``:
    the trials the storage held when the run started (default: counted here), which seeds
    the sampler (:func:`sampler_seed`). A batch that raises (or is interrupted) tells its
    unfinished trials FAIL before the error goes on: no trial is left RUNNING."""
    storage = open_storage(storage_url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    handle = open_study(study, storage)
    if resumed is None:
        resumed = len(handle.get_trials(deepcopy=False))
    handle.sampler = make_sampler(study, worker, resumed)
    tag = worker_tag()
    names = constraint_names(study)
    start = time.perf_counter()
    evaluating = 0.0
    done = 0
    while done < trials:
        asked: list[optuna.Trial] = []
        told = 0
        try:
            for _ in range(1 if study.codesign is not None else min(study.batch, trials - done)):
                asked.append(_ask(study, handle, tag))
            # the sampler proposes at suggest time: timed as Optuna's, not as plummer's evaluation
            if study.codesign is not None:  # one chip per trial, its layout found inside
                (trial,) = asked
                chip = study.codesign.space.suggest(trial)
                began = time.perf_counter()
                values, record = trial_values(study, chip)
                evaluating += time.perf_counter() - began
                trial.set_constraint("a_layout_fits", record["constraints"]["a_layout_fits"])
                trial.set_user_attr("plummer", record)
                handle.tell(trial, values)
                told = 1
            else:
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
                    told = i + 1
        except BaseException:
            _fail(handle, asked[told:])
            raise
        done += len(asked)
        if progress is not None:
            progress.update(len(asked))
    return BatchTimes(time.perf_counter() - start, evaluating, done)


def _ask(study: StudyFile, handle: optuna.Study, tag: str) -> optuna.Trial:
    """A new trial, tagged with this worker; a sampler failing to propose one (options of
    the wrong kind) is an error naming the sampler and its options."""
    try:
        trial = handle.ask()
    except (TypeError, ValueError) as exc:
        raise SpecError(f"the {study.sampler} sampler could not propose a trial with [sampler] "
                        f"options {study.sampler_options}: {exc}") from None
    trial.set_user_attr(WORKER, tag)
    return trial


def _fail(handle: optuna.Study, trials: list[optuna.Trial]) -> None:
    """Tell ``trials`` FAIL, as far as the storage still takes it (what it does not is marked
    by the next run: :func:`search._storage.fail_dead_workers_trials`)."""
    for trial in trials:
        try:
            handle.tell(trial, state=optuna.trial.TrialState.FAIL)
        except Exception:  # noqa: BLE001 -- the error being raised is the one to report
            pass


def _worker_main(path: str, storage_url: str, trials: int, worker: int, resumed: int, errors: Any) -> None:
    """A worker process: read the study file and run its share of the trials; an error goes
    to the parent as one line (``errors``), and the exit code is 1, with no traceback."""
    try:
        run_worker(load_study_file(path), storage_url, trials, worker, resumed=resumed)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BaseException as exc:  # noqa: BLE001 -- reported by the parent
        text = str(exc) if isinstance(exc, SpecError) else f"{type(exc).__name__}: {exc}"
        errors.put((worker, text.splitlines()[0] if text else type(exc).__name__))
        raise SystemExit(1) from None


def run_study(study: StudyFile, storage_url: str, trials: int | None = None, jobs: int = 1,
              progress: bool = True) -> dict[str, Any]:
    """Run ``trials`` (default: the study file's) more trials with ``jobs`` worker processes;
    returns a summary (trials told, wall time, evaluation share, the storage). A worker that
    fails is an error naming it and its error (the others finish their shares first)."""
    trials = study.trials if trials is None else trials
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise SpecError(f"--trials = {trials!r} must be an integer >= 1")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SpecError(f"--jobs = {jobs!r} must be an integer >= 1")
    if jobs > 1 and study.path is None:
        raise SpecError("--jobs > 1 needs a study file on disk (each worker reads it)")
    make_sampler(study)  # its errors before any trial or worker
    storage = open_storage(storage_url)
    handle = open_study(study, storage)  # creates it, checks the fingerprint
    stale = fail_dead_workers_trials(handle)
    resumed = len(handle.get_trials(deepcopy=False))
    before = len(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    bar = _progress_bar(trials, study.name) if progress else None
    start = time.perf_counter()
    try:
        if jobs == 1:
            evaluation = run_worker(study, storage_url, trials, 0, bar, resumed=resumed).evaluation
        else:
            _run_workers(study, storage_url, trials, jobs, resumed, handle, before, bar)
            evaluation = float("nan")
    finally:
        if bar is not None:
            bar.close()
    after = len(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    wall = time.perf_counter() - start
    return {"study": study.name, "storage": storage_url, "trials_run": after - before,
            "trials_complete": after, "stale_trials_failed": stale, "jobs": jobs,
            "wall_s": wall, "evaluation_s": evaluation,
            "evaluation_share": evaluation / wall if wall and not math.isnan(evaluation) else None}


def _run_workers(study: StudyFile, storage_url: str, trials: int, jobs: int, resumed: int,
                 handle: optuna.Study, before: int, bar: Any) -> None:
    """``jobs`` worker processes splitting ``trials`` exactly; once they are gone (done,
    failed or interrupted), the trials a dead one left RUNNING are marked FAIL, and a
    failure is an error naming the worker and what it said."""
    shares = [trials // jobs + (i < trials % jobs) for i in range(jobs)]
    context = multiprocessing.get_context("spawn")
    errors = context.Queue()
    workers = [context.Process(target=_worker_main, args=(str(study.path), storage_url, share, i, resumed, errors))
               for i, share in enumerate(shares) if share]
    try:
        for w in workers:
            w.start()
        seen = 0
        while any(w.is_alive() for w in workers):
            time.sleep(0.5)
            if bar is not None:
                now = len(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
                bar.update(now - before - seen)
                seen = now - before
    finally:
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.terminate()
                w.join()
        fail_dead_workers_trials(handle)
    said = {}
    while not errors.empty():
        worker, text = errors.get()
        said[worker] = text
    failed = [(i, w.exitcode) for i, w in enumerate(workers) if w.exitcode]
    if failed:
        first, code = failed[0]
        why = said.get(first, f"exit code {code} (killed or crashed without a message)")
        raise SpecError(f"{len(failed)} of {len(workers)} workers failed; worker {first}: {why}")


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
    """The best feasible trial (one objective), or the feasible Pareto front (several)
    sorted best first on the first objective, then the next (what ``study best -o``
    writes is the first); ties go to the earliest trial."""
    trials = sorted(feasible_trials(handle), key=lambda t: t.number)
    if not trials:
        return []
    values = np.array([t.values for t in trials]) * signs(study)
    if not study.multi_objective:
        return [trials[int(np.argmax(values[:, 0]))]]  # the first of equal values
    keep = np.flatnonzero(pareto_mask(values))
    return [trials[keep[i]] for i in front_order(values[keep])]


def signs(study: StudyFile) -> np.ndarray:
    """``+1`` per objective to maximise, ``-1`` per objective to minimise: ``values *
    signs`` are to be maximised."""
    return np.array([1.0 if o.direction == "maximize" else -1.0 for o in study.objectives])


def front_order(values: np.ndarray) -> np.ndarray:
    """The order of ``values`` rows (``(n, objectives)``, to maximise) best first on the
    first objective, then the next ones; equal rows keep their order (deterministic)."""
    keys = [np.arange(len(values))] + [-values[:, j] for j in range(values.shape[1] - 1, -1, -1)]
    return np.lexsort(keys)


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
