"""Studies refuse bad input cleanly: storages that are not there, values a study file cannot
mean, errors mid-batch (no trial left RUNNING), failing workers; and they resume with fresh
proposals."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

import search

STUDIES = Path(__file__).resolve().parent.parent / "studies"

SMALL = """
name = "small"
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
dc_regions = {low = 6, high = 12}
dc_allreduce = ["ktree", "pipeline"]
[[objectives]]
metric = "utilization"
direction = "maximize"
[sampler]
name = "random"
seed = 3
[run]
trials = 8
batch = 8
"""


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
    code, out, err = run_cli("study", "list", "--json")
    assert code == 2 and "no study storage is there" in err
    assert not (tmp_path / "plummer-storage").exists()


def test_a_storage_that_is_there_lists_its_studies(tmp_path, run_cli):
    url = str(tmp_path / "s.journal")
    search.run_study(search.load_study_file(_write(tmp_path)), url, progress=False)
    code, out, err = run_cli("study", "list", "--storage", url, "--json")
    assert code == 0, err
    assert [row["study"] for row in json.loads(out)["studies"]] == ["small"]
