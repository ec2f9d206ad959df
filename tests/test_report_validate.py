"""``plummer report validate``: predicted against executed and measured cycles, one trace per
kernel, fitted and held-out records apart, drawn in a real Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _browser import Browser
from _reports import assert_renders, assert_self_contained, figure, run_json, traces

from plummer.hardware import load_hardware
from plummer.kernels import KERNELS
from plummer.report._validate import Comparison, validate_report

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wse3"
FILES = sorted(DATA.glob("*.json"))
HOLDOUT = 464
#: Measured kernel of each data file (its stem).
KINDS = {"meshgemm": "meshgemm", "meshgemv": "meshgemv", "shift": "shift"}


@pytest.fixture(scope="module")
def browser():
    chromium = Browser()  # a browser that cannot start fails the test (never a skip)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the shift and broadcast sweeps, from the command line."""
    import contextlib
    import io

    from plummer.cli import main

    html = tmp_path_factory.mktemp("validate") / "validate.html"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["report", "validate", "--which", "shift", "broadcast", "--data", *map(str, FILES),
                     "-o", str(html), "--json"])
    assert code == 0, err.getvalue()
    assert err.getvalue() == ""  # --json: no progress
    return json.loads(out.getvalue()), html


def test_one_executor_point_per_run_of_the_sweep(report):
    data, _ = report
    executor = figure(data, "executor")
    expected = {f"{family}/{kernel.name}": len(kernel.sweep())
                for (family, _), kernel in KERNELS.items() if family in ("shift", "broadcast")}
    drawn = {t["name"]: t["points"] for t in executor["traces"] if "/" in t["name"]}
    assert drawn == expected
    assert data["executor"]["runs"] == sum(expected.values())
    assert [t["points"] for t in traces(executor, "y = x")] == [2]
    assert len(traces(executor, "error within")) == 2


def test_fitted_and_held_out_records_are_apart(report):
    data, _ = report
    calibration = figure(data, "calibration")
    for path in FILES:
        records = json.loads(path.read_text())["results"]
        kind = KINDS[path.stem]
        held = sum(r["P"] >= HOLDOUT for r in records)
        fitted = len(records) - held
        for what, count in (("fitted", fitted), ("held out", held)):
            found = traces(calibration, f"{kind}, {what} ")
            assert [t["points"] for t in found] == ([count] if count else []), (kind, what)
    total = sum(len(json.loads(p.read_text())["results"]) for p in FILES)
    assert data["calibration"]["records"] == total
    assert data["calibration"]["fitted"] + data["calibration"]["held_out"] == total
    assert data["calibration"]["held_out"] > 0


def test_progress_goes_to_stderr_without_json(run_cli, tmp_path):
    code, out, err = run_cli("report", "validate", "--which", "broadcast", "--data", *FILES,
                             "-o", tmp_path / "v.html")
    assert code == 0
    assert out.strip() == f"wrote {tmp_path / 'v.html'} (2 figures: executor, calibration)"
    assert "running the validation sweep of broadcast" in err and "calibrating wse3 on" in err


def test_the_layout_hook_adds_a_section_per_comparison(tmp_path):
    table = pd.DataFrame({"group": ["llama prefill"] * 3 + ["llama decode"] * 2,
                          "label": ["q_proj", "pv", "down", "qkv", "o"],
                          "predicted": [100.0, 200.0, 300.0, 50.0, 60.0],
                          "executed": [100.0, 210.0, 290.0, 50.0, 66.0]})
    done = validate_report(load_hardware("wse3"), ["broadcast"], FILES, tmp_path / "v.html",
                           comparisons=[Comparison("layouts", "Layouts against the executor", table)])
    names = [f["name"] for f in done.figures]
    assert names == ["executor", "layouts", "calibration"]
    layouts = done.figures[1]
    assert {t["name"]: t["points"] for t in layouts["traces"] if t["name"].startswith("llama")} == {
        "llama prefill": 3, "llama decode": 2}
    assert done.facts["layouts"]["max_error"] == pytest.approx(6 / 66, rel=1e-12)  # the o op
    assert "Layouts against the executor" in (tmp_path / "v.html").read_text()


@pytest.mark.parametrize("argv, words", [
    (["--which", "nope"], "--which 'nope'"),
    (["--data", "/nonexistent/m.json"], "/nonexistent/m.json"),
    (["--holdout-min-p", "-3"], "--holdout-min-p"),
    (["-o", "/proc/no/v.html"], "/proc/no/v.html"),
])
def test_bad_input_is_one_line_and_exit_code_2(run_cli, argv, words):
    if "--data" not in argv:
        argv = [*argv, "--data", *map(str, FILES)]
    code, out, err = run_cli("report", "validate", "--which", "broadcast", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err


def test_the_validation_report_is_self_contained_and_renders(browser, report):
    data, html = report
    assert_self_contained(html)
    assert_renders(browser.open(html, figure="calibration"), data["figures"])


def test_the_default_data_is_the_shared_folder_beside_the_checkout(run_cli, tmp_path, monkeypatch):
    from plummer.calibrate import WSE3_DATA

    assert WSE3_DATA == DATA  # <checkout>/../shared/data/wse3, found from the package
    monkeypatch.chdir(tmp_path)  # a directory with no shared/ beside it: the default does not move
    data = run_json(run_cli, "report", "validate", "--which", "broadcast")
    assert data["path"] == str(Path("reports") / "validate-wse3.html") and Path(data["path"]).is_file()
    assert data["calibration"]["records"] == sum(len(json.loads(p.read_text())["results"]) for p in FILES)


def test_missing_default_data_names_the_path_and_the_option(run_cli, tmp_path, monkeypatch):
    missing = tmp_path / "no-shared" / "data" / "wse3" / "*.json"
    monkeypatch.setattr("plummer.cli._report.DEFAULT_DATA", missing)
    code, out, err = run_cli("report", "validate", "--which", "broadcast")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(missing) in err and "--data FILE" in err
