"""Studies refuse bad input cleanly: storages that are not there, values a study file cannot
mean, errors mid-batch (no trial left RUNNING), failing workers; and they resume with fresh
proposals."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from test_study import SMALL as TEMPLATE

import search
from plummer.errors import SpecError

STUDIES = Path(__file__).resolve().parent.parent / "studies"

# test_study's small study (56 points), sampled at random so that a replayed seed shows
SMALL = TEMPLATE.format(name="small", metric="utilization", direction="maximize", sampler="random",
                        trials=8, extra="")


def _write(tmp_path: Path, text: str = SMALL, name: str = "small") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _trials(url: str, name: str = "small") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=search.open_storage(url)).get_trials()


@pytest.mark.parametrize("storage", ["missing/dir/s.journal", "s.journal", "sqlite:///{tmp}/s.db"])
@pytest.mark.parametrize("action", ["list", "show", "best"])
def test_reading_a_storage_that_is_not_there_is_an_error_and_creates_nothing(tmp_path, run_cli, monkeypatch,
                                                                               action, storage):
    monkeypatch.chdir(tmp_path)
    study = _write(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    url = storage.format(tmp=tmp_path)
    argv = ["study", action] + ([] if action == "list" else [str(study)]) + ["--storage", url]
    code, out, err = run_cli(*argv)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert url in err and "no study storage is there" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no file, no directory


def test_the_default_storage_is_not_created_by_reading_it(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("study", "list", "--json")
    assert code == 2 and "no study storage is there" in err
    assert not (tmp_path / "plummer-storage").exists()


def test_a_storage_that_is_there_lists_its_studies(tmp_path, run_cli):
    url = str(tmp_path / "s.journal")
    search.run_study(search.load_study_file(_write(tmp_path)), url, progress=False)
    code, out, err = run_cli("study", "list", "--storage", url, "--json")
    assert code == 0, err
    assert [row["study"] for row in json.loads(out)["studies"]] == ["small"]


@pytest.mark.parametrize("old, new, words", [
    ("dc_p = [240, 300]", "dc_p = [240.5, 300]", ["dc_p", "240.5", "integer"]),
    ("dc_p = [240, 300]", "dc_p = [240, 240.0]", ["dc_p", "240.0", "twice"]),
    ("dc_p = [240, 300]", "dc_p = [240, 3000]", ["dc_p", "3000", "fabric width"]),
    ("dc_regions = {low = 6, high = 12}", "dc_regions = {low = 6.0, high = 12.5}", ["dc_regions", "integers"]),
    ("dc_regions = {low = 6, high = 12}", "dc_regions = {low = 12, high = 6}", ["dc_regions", "low <= high"]),
    ("dc_regions = {low = 6, high = 12}", "dc_regions = {low = 6, high = 12, step = 0}", ["dc_regions", "step > 0"]),
    ("dc_regions = {low = 6, high = 12}", 'dc_regions = {low = 60, high = "fit"}', ["dc_regions", "60", "low <="]),
    ("output_tokens = 64", "output_tokens = 64\nbatch = [-1, 2]", ["batch", "-1", ">= 1"]),
    ("output_tokens = 64", "output_tokens = 0", ["output_tokens", "0", ">= 1"]),
    ("pf_regions = 4", "pf_regions = 0", ["pf_regions", ">= 1"]),
    ('pf_gemm = ["meshgemm", "summa-relay"]', 'pf_gemm = ["meshgemm", "foo"]', ["pf_gemm", "foo", "cannon"]),
    ('dc_allreduce = ["ktree", "pipeline"]', 'dc_allreduce = "tree"', ["dc_allreduce", "tree", "ring"]),
    ("output_tokens = 64", "output_tokens = 64\ndc_k_tree = [0, 2]", ["dc_k_tree", ">= 1"]),
    ("output_tokens = 64", 'output_tokens = 64\nkv_cache = ["shift", "nope"]', ["kv_cache", "nope"]),
    ('dc_q = "dc_p"\n', "", ["dc_q", "missing"]),
    ("[sampler]", '[[constraints]]\nmetric = "ttft_s"\nmin = 5\nmax = 1\n[sampler]', ["min", "max", "5"]),
    ("[sampler]", '[[constraints]]\nmetric = "speed"\nmax = 1\n[sampler]', ["metric", "speed"]),
    ("[sampler]", '[[objectives]]\nmetric = "utilization"\ndirection = "minimize"\n[sampler]',
     ["objectives[1]", "utilization", "once"]),
    ('direction = "maximize"', 'direction = "up"', ["direction", "up", "minimize"]),
    ('name = "random"', 'name = "annealing"', ["name", "annealing", "tpe"]),
    ("seed = 3", "seed = 3\noptions = {bogus = 1}", ["bogus", "allowed"]),
    ("seed = 3", 'seed = 3\noptions = {n_startup_trials = "x"}', ["n_startup_trials", "'x'", "integer"]),
    ("trials = 8", "trials = -1", ["trials", "-1", ">= 1"]),
    ("batch = 8", "batch = 8.5", ["batch", "8.5"]),
])
def test_bad_values_are_refused_when_the_file_is_read(tmp_path, run_cli, old, new, words):
    assert old in SMALL
    path = _write(tmp_path, SMALL.replace(old, new).replace('name = "random"', 'name = "tpe"')
                  if "n_startup" in new else SMALL.replace(old, new))
    with pytest.raises(SpecError) as info:
        search.load_study_file(path)
    assert all(w in str(info.value) for w in words), str(info.value)
    url = tmp_path / "s.journal"
    code, out, err = run_cli("study", "run", str(path), "--storage", str(url), "--json")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert not url.exists()  # refused before a storage (or a trial) exists


def test_an_energy_metric_needs_a_chip_with_a_power_figure(tmp_path):
    text = SMALL.replace('hardware = "wse2"', 'hardware = "wse3"').replace("dc_p = [240, 300]", "dc_p = [240, 300]")
    constrained = text.replace("[sampler]", '[[constraints]]\nmetric = "energy_per_token_j"\nmax = 1\n[sampler]')
    with pytest.raises(Exception, match="constraint 'energy_per_token_j' needs .*'power_watts'.*'wse3'"):
        search.load_study_file(_write(tmp_path, constrained))
    search.load_study_file(_write(tmp_path, constrained.replace('hardware = "wse3"', 'hardware = "wse2"')))


def test_bad_hardware_values_are_refused_when_the_file_is_read(tmp_path):
    base = (STUDIES / "codesign-sram-llama3-8b-wse2.toml").read_text()
    assert "memory_bytes = [" in base
    for bad, words in (("memory_bytes = [0, ", ["memory_bytes", "0", ">= 1"]),
                       ("memory_bytes = [49152.5, ", ["memory_bytes", "49152.5", "integer"])):
        with pytest.raises(Exception) as info:
            search.load_study_file(_write(tmp_path, base.replace("memory_bytes = [", bad), "codesign"))
        assert all(w in str(info.value) for w in words), str(info.value)


@pytest.mark.parametrize("error", [RuntimeError("objective broke"), KeyboardInterrupt()])
def test_an_objective_raising_mid_batch_leaves_no_trial_running(tmp_path, monkeypatch, error):
    import search._runner as runner

    study = search.load_study_file(_write(tmp_path))
    url = str(tmp_path / "s.journal")
    real, calls = runner.evaluate_columns, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "evaluate_columns", flaky)
    with pytest.raises(type(error)):
        search.run_study(study, url, trials=24, progress=False)
    states = [t.state for t in _trials(url)]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 8  # the first batch is kept
    assert states.count(optuna.trial.TrialState.FAIL) == 8 and optuna.trial.TrialState.RUNNING not in states
    monkeypatch.setattr(runner, "evaluate_columns", real)
    summary = search.run_study(study, url, trials=8, progress=False)  # resumes where it stopped
    assert summary["trials_run"] == 8 and summary["trials_complete"] == 16


def _params(url: str) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in _trials(url)]


def test_a_resumed_seeded_study_does_not_replay_its_first_proposals(tmp_path):
    study = search.load_study_file(_write(tmp_path))
    urls = [str(tmp_path / f"run{i}.journal") for i in range(2)]
    for url in urls:
        search.run_study(study, url, trials=8, progress=False)
        search.run_study(study, url, trials=8, progress=False)
    first, again = _params(urls[0])[:8], _params(urls[0])[8:]
    assert first != again  # the same seed on resume would ask the same 8 points again
    assert _params(urls[0]) == _params(urls[1])  # resuming the same state is reproducible
    fresh = [str(tmp_path / f"fresh{i}.journal") for i in range(2)]
    for url in fresh:
        search.run_study(study, url, trials=16, progress=False)
    assert _params(fresh[0]) == _params(fresh[1])
    assert _params(fresh[0])[:8] == first  # a fresh run's seed is the file's


def test_a_failing_worker_is_reported_with_its_error(tmp_path, run_cli):
    path = _write(tmp_path)
    study = search.load_study_file(path)
    path.write_text(SMALL.replace("dc_p = [240, 300]", "dc_p = [240, 3000]"))  # what the workers read
    url = str(tmp_path / "s.journal")
    with pytest.raises(SpecError) as info:
        search.run_study(study, url, trials=8, jobs=2, progress=False)
    text = str(info.value)
    assert "2 of 2 workers failed" in text and "dc_p" in text and "3000" in text and "\n" not in text
    assert not [t for t in _trials(url) if t.state == optuna.trial.TrialState.RUNNING]


@pytest.mark.parametrize("change, part", [
    (lambda t: t.replace("[sampler]", '[[constraints]]\nmetric = "ttft_s"\nmax = 1.0\n[sampler]'), "constraints"),
    (lambda t: t.replace('direction = "maximize"', 'direction = "minimize"'), "objectives"),
    (lambda t: t.replace("dc_p = [240, 300]", "dc_p = [240, 360]"), "space"),
])
def test_a_changed_search_does_not_continue_the_stored_study(tmp_path, run_cli, change, part):
    constrained = SMALL.replace("[sampler]", '[[constraints]]\nmetric = "ttft_s"\nmax = 0.5\n[sampler]')
    first = constrained if part == "constraints" else SMALL
    url = str(tmp_path / "s.journal")
    search.run_study(search.load_study_file(_write(tmp_path, first)), url, progress=False)
    path = _write(tmp_path, change(SMALL))
    code, _, err = run_cli("study", "run", str(path), "--storage", url, "--json")
    assert code == 2 and err.count("\n") == 1, err
    assert f"its {part} differ" in err and "another 'name'" in err and "another --storage" in err
    code, _, text = run_cli("study", "run", str(path), "--storage", url)  # text mode: the same one line
    assert code == 2 and text == err
    assert len(_trials(url)) == 8  # nothing added to the stored study
    search.run_study(search.load_study_file(_write(tmp_path, first)), url, progress=False)  # same file: continues
    assert len(_trials(url)) == 16


def test_best_gives_the_front_sorted_and_best_o_writes_its_first(tmp_path, run_cli):
    text = SMALL.replace('hardware = "wse2"', 'hardware = "wse2"\nmemory = "ignore"').replace(
        "[sampler]", '[[objectives]]\nmetric = "decode_tokens_per_s"\ndirection = "maximize"\n[sampler]')
    path = _write(tmp_path, text)
    url = str(tmp_path / "s.journal")
    search.run_study(search.load_study_file(path), url, trials=64, progress=False)
    out_file = tmp_path / "best.toml"
    code, out, err = run_cli("study", "best", str(path), "--storage", url, "--json", "-o", str(out_file))
    assert code == 0, err
    front = json.loads(out)["best"]
    keys = [(-row["values"][0], -row["values"][1], row["trial"]) for row in front]
    assert len(front) > 2 and keys == sorted(keys)  # best first on utilization, then tokens/s
    from plummer.layout import load_layout
    from plummer.layout._predict import predict

    study = search.load_study_file(path)
    assert predict(study.hardware, study.model, load_layout(out_file)).metrics["utilization"] == pytest.approx(
        front[0]["values"][0], rel=1e-12)


def test_ties_go_to_the_earliest_trial(tmp_path):
    text = SMALL.replace("dc_p = [240, 300]", "dc_p = 240").replace('pf_gemm = ["meshgemm", "summa-relay"]', "")
    text = text.replace("dc_regions = {low = 6, high = 12}", "dc_regions = 6").replace(
        'hardware = "wse2"', 'hardware = "wse2"\nmemory = "ignore"')
    study = search.load_study_file(_write(tmp_path, text))
    url = str(tmp_path / "s.journal")
    search.run_study(study, url, trials=8, progress=False)  # two points: every value tied 4 or so times
    handle = optuna.load_study(study_name="small", storage=search.open_storage(url))
    (best,) = search.best_trials(study, handle)
    value = best.values[0]
    assert best.number == min(t.number for t in _trials(url) if t.values and t.values[0] == value)


def test_regret_is_relative_to_the_optimum_either_direction():
    study = search.load_study_file(_write(tmp_path := Path(__import__("tempfile").mkdtemp())))
    minimise = search.load_study_file(_write(tmp_path, SMALL.replace('metric = "utilization"\ndirection = "maximize"',
                                                                     'metric = "ttft_s"\ndirection = "minimize"')))
    assert search.regret(study, 0.5, 0.4) == pytest.approx(0.2)
    assert search.regret(minimise, 2.0, 2.5) == pytest.approx(0.25)
    assert search.regret(study, 0.5, 0.5) == 0 and search.regret(study, 0.0, 0.0) == 0
    assert search.regret(study, None, 0.4) is None and search.regret(study, 0.5, float("nan")) is None


@pytest.mark.parametrize("chunk", [1, 5, 13, 200])
def test_exhaustive_chunks_are_bounded_contiguous_and_give_the_same_truth(tmp_path, chunk):
    import math

    import numpy as np

    study = search.load_study_file(_write(tmp_path))
    space = study.space
    covered = []
    for columns, offset in space.grid_chunks(chunk):
        shape = np.broadcast_shapes(*(np.shape(v) for v in columns.values()))
        assert math.prod(shape) <= chunk  # memory bounded by the chunk, whatever the dimension sizes
        ev = search._objective.evaluate_columns(study, columns)
        values = np.broadcast_to(ev.metrics["utilization"], shape).reshape(-1)
        for j in (0, len(values) - 1):  # the chunk is the run of points from its offset
            point = space.point_at(offset + j)
            alone = search._objective.evaluate_columns(study, space.columns([point]))
            assert values[j] == alone.metrics["utilization"][0]
        covered.append((offset, math.prod(shape)))
    covered.sort()
    assert [o for o, _ in covered] == list(np.cumsum([0] + [n for _, n in covered])[:-1])
    assert sum(n for _, n in covered) == space.size
    # a dimension longer than the chunk is sliced, not enumerated a point at a time
    assert len(covered) <= 2 * math.ceil(space.size / chunk)
    whole, parts = search.exhaustive(study), search.exhaustive(study, chunk=chunk)
    assert (whole["optimum"], whole["feasible"]) == (parts["optimum"], parts["feasible"])
