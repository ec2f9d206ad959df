"""Optuna studies: study files, the batched objective, storages, workers, exhaustive truth."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

import search
from plummer.errors import SpecError
from plummer.layout import load_layout
from plummer.layout._predict import predict
from search._storage import UNTAGGED_GRACE_S, WORKER

STUDIES = Path(__file__).resolve().parent.parent / "studies"

SMALL = """
name = "{name}"
model = "llama3-8b"
hardware = "wse2"
[space]
input_tokens = 1024
output_tokens = 64
pf_p = 360
pf_q = "pf_p"
pf_regions = 4
pf_gemm = ["meshgemm", "summa-relay"]
dc_p = [240, 300]
dc_q = "dc_p"
dc_regions = {{low = 6, high = 12}}
dc_allreduce = ["ktree", "pipeline"]
[[objectives]]
metric = "{metric}"
direction = "{direction}"
{extra}
[sampler]
name = "{sampler}"
seed = 3
[run]
trials = {trials}
batch = 8
"""


def _study(tmp_path: Path, name: str = "small", metric: str = "utilization", direction: str = "maximize",
           sampler: str = "tpe", trials: int = 40, extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SMALL.format(name=name, metric=metric, direction=direction, sampler=sampler,
                                 trials=trials, extra=extra))
    return path


def _complete(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=search.open_storage(url))
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def test_every_shipped_study_parses_and_its_space_evaluates():
    files = sorted(STUDIES.glob("*.toml"))
    assert len(files) >= 15
    for path in files:
        study = search.load_study_file(path)
        assert study.space.size > 1
        point = study.space.point_at(study.space.size // 2)
        ev = search._objective.evaluate_columns(study, study.space.columns([point]))
        assert np.isfinite(ev.metrics["utilization"]).all(), path.name


def test_shipped_studies_cover_every_preset_model_on_both_chips():
    from plummer.model import model_presets

    names = {search.load_study_file(p).name for p in STUDIES.glob("*.toml")}
    for model in model_presets():
        assert {f"{model}-wse2", f"{model}-wse3"} <= names
    assert any(search.load_study_file(p).multi_objective for p in STUDIES.glob("*.toml"))


@pytest.mark.parametrize("text, key", [
    ("[space]\ndc_p = [1, 2]\n", "model"),
    ('model = "llama3-8b"\nhardware = "wse2"\nobjectives = [{metric = "speed"}]\n[space]\ndc_p = [120]\n', "metric"),
    ('model = "llama3-8b"\nhardware = "wse2"\nobjectives = [{metric = "ttft_s", direction = "down"}]\n'
     '[space]\ndc_p = [120]\n', "direction"),
    ('model = "llama3-8b"\nhardware = "wse2"\nobjectives = [{metric = "ttft_s"}]\n[space]\ncolour = [1]\n', "colour"),
    ('model = "llama3-8b"\nhardware = "wse2"\nobjectives = [{metric = "ttft_s"}]\n[space]\n'
     'dc_p = {low = 9, high = 3}\n', "dc_p"),
    ('model = "llama3-8b"\nhardware = "wse2"\nobjectives = [{metric = "ttft_s"}]\n[space]\ndc_q = "pf_p"\n', "dc_q"),
    ('model = "llama3-8b"\nhardware = "wse2"\nobjectives = [{metric = "ttft_s"}]\n[space]\ndc_p = [120]\n'
     '[sampler]\nname = "annealing"\n', "name"),
    ('model = "llama3-8b"\nhardware = "wse2"\nspeed = 1\nobjectives = [{metric = "ttft_s"}]\n[space]\ndc_p = [1]\n', "speed"),
])
def test_bad_study_files_name_the_key(tmp_path, text, key, run_cli):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=key):
        search.load_study_file(path)
    code, _, err = run_cli("study", "run", str(path))
    assert code == 2 and err.count("\n") == 1


def test_a_seeded_run_is_reproducible(tmp_path):
    path = _study(tmp_path, trials=24)
    values = []
    for run in range(2):
        url = str(tmp_path / f"run{run}.journal")
        search.run_study(search.load_study_file(path), url, progress=False)
        values.append([t.values for t in _complete(url, "small")])
    assert values[0] == values[1]


def test_trials_store_metrics_breakdown_and_feasibility(tmp_path):
    path = _study(tmp_path, trials=16, sampler="random")
    url = str(tmp_path / "s.journal")
    search.run_study(search.load_study_file(path), url, progress=False)
    trials = _complete(url, "small")
    assert len(trials) == 16
    infeasible = 0
    for t in trials:
        record = t.user_attrs["plummer"]
        assert record["metrics"]["utilization"] == t.values[0]
        assert {"prefill", "decode"} == set(record["breakdown"]) and "q_proj" in record["breakdown"]["prefill"]
        assert set(record["constraints"]) >= {"memory_prefill_bytes", "memory_decode_bytes", "routes"}
        feasible = all(v <= 0 for v in record["constraints"].values())
        assert feasible == record["feasible"]
        if not feasible:
            infeasible += 1
            assert record["reasons"], "an infeasible trial says why"
        # Optuna's samplers see the same constraints
        assert t.system_attrs, "constraints are stored for the sampler"
    assert 0 < infeasible < 16


def test_best_layout_file_gives_the_same_metrics(tmp_path, run_cli):
    path = _study(tmp_path, trials=24)
    url = str(tmp_path / "s.journal")
    code, out, err = run_cli("study", "run", str(path), "--storage", url, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["trials_run"] == 24
    out_file = tmp_path / "best.toml"
    code, out, err = run_cli("study", "best", str(path), "--storage", url, "--json", "-o", str(out_file))
    assert code == 0, err
    best = json.loads(out)["best"][0]
    study = search.load_study_file(path)
    again = predict(study.hardware, study.model, load_layout(out_file))
    assert again.metrics["utilization"] == pytest.approx(best["values"][0], rel=1e-12)
    code, out, err = run_cli("predict", "--layout", str(out_file), "--json")
    assert code == 0, err and json.loads(out)["utilization"] == pytest.approx(best["values"][0], rel=1e-12)


def test_exhaustive_reports_the_optimum_and_the_regret(tmp_path, run_cli):
    path = _study(tmp_path, trials=40)
    url = str(tmp_path / "s.journal")
    study = search.load_study_file(path)
    search.run_study(study, url, progress=False)
    code, out, err = run_cli("study", "exhaustive", str(path), "--storage", url, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert {"optimum", "best_found", "regret", "points"} <= set(payload)
    assert payload["points"] == study.space.size == 2 * 2 * 7 * 2
    assert payload["optimum"]["value"] >= payload["best_found"]["value"]
    assert payload["regret"] == pytest.approx(
        (payload["optimum"]["value"] - payload["best_found"]["value"]) / payload["optimum"]["value"])
    # the optimum is a real point: predicting its layout gives its value
    layout = search.point_layout(study, payload["optimum"]["point"])
    assert predict(study.hardware, study.model, layout).metrics["utilization"] == pytest.approx(
        payload["optimum"]["value"], rel=1e-12)
    # brute force over the space by single points agrees
    values = []
    for i in range(study.space.size):
        point = study.space.point_at(i)
        ev = search._objective.evaluate_columns(study, study.space.columns([point]))
        ok = (search._objective.constraint_values(study, ev) <= 0).all()
        values.append(float(ev.metrics["utilization"][0]) if ok else -np.inf)
    assert max(values) == pytest.approx(payload["optimum"]["value"], rel=1e-12)


def test_multi_objective_exhaustive_front_is_exactly_the_non_dominated_points(tmp_path):
    path = _study(tmp_path, name="mo", sampler="nsgaii",
                  extra='[[objectives]]\nmetric = "decode_tokens_per_s"\ndirection = "maximize"\n')
    study = search.load_study_file(path)
    truth = search.exhaustive(study)
    points = [study.space.point_at(i) for i in range(study.space.size)]
    ev = search._objective.evaluate_columns(study, study.space.columns(points))
    ok = (search._objective.constraint_values(study, ev) <= 0).all(axis=0)
    values = np.stack([ev.metrics["utilization"], ev.metrics["decode_tokens_per_s"]], axis=1)[ok]
    dominated = [(np.all(values >= v, axis=1) & np.any(values > v, axis=1)).any() for v in values]
    expected = {tuple(np.round(v, 12)) for v, d in zip(values, dominated) if not d}
    got = {tuple(np.round(f["values"], 12)) for f in truth["front"]}
    assert got == expected and len(got) > 1


@pytest.mark.parametrize("sampler", ["random", "gp", "cmaes", "nsgaii"])
def test_every_sampler_runs(tmp_path, sampler):
    path = _study(tmp_path, sampler=sampler, trials=12)
    url = str(tmp_path / "s.journal")
    summary = search.run_study(search.load_study_file(path), url, progress=False)
    assert summary["trials_run"] == 12 and len(_complete(url, "small")) == 12


def test_a_storage_refuses_a_different_search_of_the_same_name(tmp_path):
    url = str(tmp_path / "s.journal")
    search.run_study(search.load_study_file(_study(tmp_path, trials=8)), url, progress=False)
    other = _study(tmp_path, trials=8, metric="ttft_s", direction="minimize")  # same name
    with pytest.raises(SpecError, match="different search"):
        search.run_study(search.load_study_file(other), url, progress=False)
    assert len(_complete(url, "small")) == 8


def test_rerunning_continues_the_study(tmp_path):
    path = _study(tmp_path, trials=8)
    url = str(tmp_path / "s.journal")
    for _ in range(3):
        search.run_study(search.load_study_file(path), url, progress=False)
    assert len(_complete(url, "small")) == 24


def _jobs_exact(tmp_path: Path, url: str, jobs: int, trials: int) -> None:
    path = _study(tmp_path, trials=trials)
    summary = search.run_study(search.load_study_file(path), url, jobs=jobs, progress=False)
    trials_done = _complete(url, "small")
    assert summary["trials_run"] == trials == len(trials_done)
    numbers = [t.number for t in trials_done]
    assert len(set(numbers)) == len(numbers)
    params = [tuple(sorted(t.params.items())) for t in trials_done]
    assert len(params) == trials  # none lost; numbers unique


def test_workers_on_the_journal_storage_give_exactly_the_requested_trials(tmp_path):
    _jobs_exact(tmp_path, str(tmp_path / "s.journal"), jobs=3, trials=31)


def test_a_killed_worker_loses_no_finished_trial_and_the_study_resumes(tmp_path):
    path = _study(tmp_path, trials=100000)
    url = str(tmp_path / "s.journal")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))

    def running() -> int:
        handle = optuna.load_study(study_name="small", storage=search.open_storage(url))
        return len(handle.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))

    # SIGKILL the worker mid-batch (some trials asked, not told). A kill can land between two
    # batches, with nothing running: then the worker is started again on the same storage
    # (which resumes the study) and killed again.
    for _attempt in range(10):
        proc = subprocess.Popen([sys.executable, "-m", "plummer.cli", "study", "run", str(path),
                                 "--storage", url, "--json"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.05)
            if Path(url).exists() and len(_complete(url, "small")) >= 20 and running():
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left_running = running()
        if left_running:
            break
    assert left_running, "no kill landed mid-batch in 10 attempts"
    handle = optuna.load_study(study_name="small", storage=search.open_storage(url))
    if any(WORKER not in t.user_attrs for t in handle.get_trials(states=(optuna.trial.TrialState.RUNNING,))):
        time.sleep(UNTAGGED_GRACE_S + 0.5)  # killed between ask and tag: failed once that old
    before = {t.number: t.values for t in _complete(url, "small")}
    assert len(before) >= 20
    study = search.load_study_file(path)
    summary = search.run_study(study, url, trials=10, progress=False)
    after = {t.number: t.values for t in _complete(url, "small")}
    assert all(after[n] == v for n, v in before.items())  # no finished trial lost or changed
    assert len(after) == len(before) + 10
    assert running() == 0 and summary["stale_trials_failed"] == left_running


def test_the_search_benchmark_gives_each_seeds_curve_and_their_median():
    from search._benchmark import study_benchmark

    out = study_benchmark(["llama3-8b-wse3"], trials=40, seeds=3)
    (row,) = out["studies"]
    assert [r["seed"] for r in row["runs"]] == [0, 1, 2] and row["seeds"] == 3
    assert list(row["median_regret"]) == ["10", "25"]
    for checkpoint, median in row["median_regret"].items():
        values = sorted(math.inf if r["regret"][checkpoint] is None else r["regret"][checkpoint] for r in row["runs"])
        assert (None if math.isinf(values[1]) else values[1]) == median
    assert all(r["regret"]["25"] is None or r["regret"]["25"] >= 0 for r in row["runs"])
    assert row["runs_within_1pct"] == sum(r["trials_to_1pct"] is not None for r in row["runs"])
    assert out["exhaustive"]["points"] > 9_000_000


def test_an_untagged_running_trial_is_failed_only_once_older_than_the_grace(monkeypatch):
    from search._storage import fail_dead_workers_trials

    handle = optuna.create_study()
    handle.ask()  # asked, never tagged: a worker killed between ask and its tag
    assert fail_dead_workers_trials(handle) == 0  # as young as a live worker's
    monkeypatch.setattr("search._storage.UNTAGGED_GRACE_S", -1.0)
    assert fail_dead_workers_trials(handle) == 1
    assert handle.trials[0].state == optuna.trial.TrialState.FAIL


def test_the_samplers_proposals_are_not_timed_as_plummers_evaluation(tmp_path, monkeypatch):
    """Optuna's samplers propose when a trial's values are suggested: a sampler that takes
    50 ms per proposal must show in the wall time, not in the evaluation time."""
    import search._runner as runner

    class SlowSampler(optuna.samplers.RandomSampler):
        def sample_independent(self, *args, **kwargs):
            time.sleep(0.05)
            return super().sample_independent(*args, **kwargs)

    monkeypatch.setattr(runner, "make_sampler", lambda *a, **k: SlowSampler(seed=0))
    study = search.load_study_file(_study(tmp_path, trials=16))
    times = runner.run_worker(study, str(tmp_path / "s.journal"), trials=16)
    slept = 16 * 0.05  # at least one proposal per trial
    assert times.total >= slept and times.evaluation < slept / 4


def _without_per_regions(path: Path) -> dict:
    import tomllib

    data = tomllib.loads(path.read_text())
    for value in data["space"].values():
        if isinstance(value, dict):
            value.pop("per_regions", None)
    return data


def test_per_regions_keeps_the_largest_side_of_each_region_count_and_the_shipped_optima():
    shipped = [p for p in sorted(STUDIES.glob("*.toml")) if "per_regions" in p.read_text()]
    assert len(shipped) >= 14
    for path in shipped:
        study = search.load_study_file(path)
        full = search.parse_study(_without_per_regions(path), study.name)
        for name in ("pf_p", "dc_p"):
            kept, every = study.space.values(name), full.space.values(name)
            counts = {int(study.capacity(s, s)) for s in every} - {0}
            assert len(kept) == len(counts) and set(kept) <= set(every)
            for side in kept:  # no larger side of the range has as many regions
                assert all(int(study.capacity(s, s)) != int(study.capacity(side, side)) for s in every if s > side)
        # the reduction loses nothing on the shipped studies: the same exhaustive optimum
        assert search.exhaustive(study)["optimum"] == search.exhaustive(full)["optimum"], path.name


@pytest.mark.parametrize("space, words", [
    ({"pf_gemm": {"low": 1, "high": 2, "per_regions": "largest"}}, "per_regions is for pf_p and dc_p"),
    ({"dc_p": {"low": 120, "high": 720, "step": 48, "per_regions": "smallest"}}, 'takes "largest"'),
    ({"dc_q": 240}, 'needs a square grid (dc_q = "dc_p")'),
    ({"dc_regions": [1, 2]}, 'dc_regions = "fit"'),
])
def test_per_regions_needs_a_square_grid_with_fit_regions(tmp_path, run_cli, space, words):
    import tomllib

    data = tomllib.loads((STUDIES / "llama3-8b-wse2.toml").read_text())
    data["space"]["dc_p"] = {"low": 120, "high": 720, "step": 48, "per_regions": "largest"}
    data["space"] |= space
    with pytest.raises(SpecError, match=re.escape(words)):
        search.parse_study(data, "x")


def test_a_per_regions_space_round_trips_and_narrows_with_the_fabric():
    study = search.load_study_file(STUDIES / "llama3-8b-wse2.toml")
    table = study.space.to_dict()["dc_p"]
    assert table["per_regions"] == "largest"
    again = search.SearchSpace.from_dict(study.space.to_dict()).fit_regions(study.capacity)
    assert again.values("dc_p") == study.space.values("dc_p")
    narrow = study.space.within_fabric(400, 400).fit_regions(study.capacity)
    assert max(narrow.values("dc_p")) <= 400 and set(narrow.values("dc_p")) <= set(range(120, 401, 48))
