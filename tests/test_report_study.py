"""``plummer report STUDY.toml``: one self-contained page whose figures hold what the study
holds, drawn in a real Chromium, and a storage that writing it leaves as it was."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from _browser import Browser
from _reports import (
    ONE_OBJECTIVE,
    TWO_OBJECTIVES,
    assert_renders,
    assert_self_contained,
    digest,
    figure,
    make_study,
    run_json,
    traces,
)

import search
from search._runner import is_feasible


@pytest.fixture(scope="module")
def browser():
    chromium = Browser()  # a browser that cannot start fails the test (never a skip)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """A two-objective study (NSGA-II) and a one-objective one (TPE), run in a temporary
    folder, each in its own journal file."""
    folder = tmp_path_factory.mktemp("studies")
    out = {}
    for name, objectives, sampler, trials in (("pareto", TWO_OBJECTIVES, "nsgaii", 48),
                                              ("single", ONE_OBJECTIVE, "tpe", 40)):
        path = make_study(folder, name, objectives, sampler, trials)
        study = search.load_study_file(path)
        url = str(folder / f"{name}.journal")
        search.run_study(study, url, progress=False)
        out[name] = (path, study, url)
    return out


def _complete(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    handle = optuna.load_study(study_name=name, storage=search.open_storage(url))
    return sorted(handle.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.number)


def _non_dominated(trials: list[optuna.trial.FrozenTrial], signs: np.ndarray) -> int:
    """Feasible trials no other feasible trial dominates (brute force, for comparison)."""
    values = np.array([t.values for t in trials]) * signs
    count = 0
    for i, row in enumerate(values):
        dominated = any(np.all(other >= row) and np.any(other > row) for j, other in enumerate(values) if j != i)
        count += not dominated
    return count


@pytest.fixture(scope="module")
def pareto_report(studies, tmp_path_factory):
    from plummer.cli import main

    path, _, url = studies["pareto"]
    html = tmp_path_factory.mktemp("out") / "pareto.html"
    before = digest(Path(url))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["report", str(path), "--storage", url, "-o", str(html), "--json"])
    assert code == 0
    return json.loads(buffer.getvalue()), html, before


def test_the_pareto_figure_has_one_point_per_non_dominated_feasible_trial(studies, pareto_report):
    report, _, _ = pareto_report
    _, study, url = studies["pareto"]
    complete = _complete(url, "pareto")
    feasible = [t for t in complete if is_feasible(t)]
    front = _non_dominated(feasible, np.array([1.0, 1.0]))
    assert 0 < front < len(feasible) < len(complete)  # the test data mix all three kinds
    pareto = figure(report, "pareto")
    assert [t["points"] for t in traces(pareto, "Pareto front")] == [front]
    assert [t["points"] for t in traces(pareto, "dominated")] == [len(feasible) - front]
    exact = search.exhaustive(study)["front"]
    assert [t["points"] for t in traces(pareto, "exact front")] == [len(exact)]
    assert report["trials"] == {"complete": len(complete), "feasible": len(feasible),
                                "infeasible": len(complete) - len(feasible), "pareto": front,
                                "states": {"COMPLETE": len(complete)}}
    infeasible = figure(report, "infeasible")
    assert sum(t["points"] for t in infeasible["traces"]) == len(complete) - len(feasible)


def test_the_history_has_one_point_per_complete_trial_and_the_optimum_bounds_it(studies, pareto_report):
    report, _, _ = pareto_report
    _, study, url = studies["pareto"]
    complete = _complete(url, "pareto")
    history = figure(report, "history")
    assert [t["points"] for t in traces(history, "best feasible so far")] == [len(complete)] * 2
    trials = traces(history, "feasible trials") + traces(history, "infeasible trials")
    assert sum(t["points"] for t in trials) == 2 * len(complete)  # one panel per objective
    assert report["exhaustive"]["points"] == study.space.size
    feasible = [t for t in complete if is_feasible(t)]
    for k, optimum in enumerate(report["exhaustive"]["optimum"]):
        assert max(t.values[k] for t in feasible) <= optimum * (1 + 1e-12)


def test_importances_are_optunas_over_the_feasible_trials(studies, pareto_report):
    report, _, _ = pareto_report
    _, study, _ = studies["pareto"]
    importances = figure(report, "importances")
    assert [t["name"] for t in importances["traces"]] == [o.metric for o in study.objectives]
    searched = {d.name for d in study.space.dimensions}
    for metric, values in report["importances"].items():
        assert set(values) <= searched and math.isclose(sum(values.values()), 1.0, rel_tol=1e-9), metric
    assert all(t["points"] == len(searched) for t in importances["traces"])


def test_the_breakdown_bars_add_up_to_each_phases_layer(studies, pareto_report):
    from plummer.layout._predict import predict

    report, _, _ = pareto_report
    _, study, url = studies["pareto"]
    trial = next(t for t in _complete(url, "pareto") if t.number == report["chosen"]["trial"])
    layout = search.point_layout(study, search.trial_point(study, trial))
    prediction = predict(study.hardware, study.model, layout)
    bars = figure(report, "breakdown")["traces"]
    launch = study.hardware.launch_overhead_cycles
    for phase, pair in (("prefill", bars[:2]), ("decode", bars[2:])):
        rows = [r for r in prediction.breakdown if r["phase"] == phase]
        assert [t["points"] for t in pair] == [len(rows), len(rows)]
        drawn = sum(r["compute_cycles_per_layer"] + r["comm_cycles_per_layer"] for r in rows)
        assert math.isclose(drawn, prediction.metrics[f"{phase}_layer_cycles"] - launch, rel_tol=1e-9)


def test_each_top_layout_file_reproduces_its_trial(run_cli, studies, pareto_report):
    report, html, _ = pareto_report
    assert report["layouts"] and all(Path(r["file"]).parent == html.parent / "pareto-layouts"
                                      for r in report["layouts"])
    assert len(report["layouts"]) == report["trials"]["pareto"]  # the whole front (<= --top)
    for row in report["layouts"]:
        assert row["command"] == f"plummer predict --layout {row['file']}"
        predicted = run_json(run_cli, *row["command"].split()[1:])
        for metric, value in zip(("utilization", "decode_tokens_per_s"), row["values"], strict=True):
            assert math.isclose(predicted[metric], value, rel_tol=1e-12)


def test_writing_a_report_changes_no_storage(run_cli, studies, pareto_report, tmp_path):
    _, _, before = pareto_report
    path, _, url = studies["pareto"]
    assert digest(Path(url)) == before
    listing = sorted(p.name for p in Path(url).parent.iterdir())
    sqlite = tmp_path / "copy.db"
    optuna.copy_study(from_study_name="pareto", from_storage=search.open_storage(url),
                      to_storage=f"sqlite:///{sqlite}")
    sqlite_before = digest(sqlite)
    run_json(run_cli, "report", path, "--storage", f"sqlite:///{sqlite}", "-o", tmp_path / "r.html")
    assert digest(sqlite) == sqlite_before
    assert sorted(p.name for p in Path(url).parent.iterdir()) == listing
    missing = tmp_path / "missing.journal"
    code, out, err = run_cli("report", path, "--storage", missing)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "no study storage is there" in err
    assert not missing.exists()
    code, _, err = run_cli("report", path, "--storage", f"sqlite:///{tmp_path / 'missing.db'}")
    assert code == 2 and not (tmp_path / "missing.db").exists()


def test_the_study_stays_readable_by_optuna_dashboard(studies, pareto_report):
    from optuna_dashboard import wsgi

    _, _, url = studies["pareto"]
    app = wsgi(search.open_storage(url))

    def get(route: str) -> dict:
        status = []
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": route, "QUERY_STRING": "", "SERVER_NAME": "x",
                   "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http",
                   "wsgi.errors": io.StringIO()}
        body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        assert status == ["200 OK"], route
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    assert [s["study_name"] for s in summaries] == ["pareto"]
    detail = get(f"/api/studies/{summaries[0]['study_id']}")
    assert len(detail["trials"]) == len(_complete(url, "pareto"))


def test_a_one_objective_report_draws_the_history_against_the_optimum(run_cli, studies, tmp_path, monkeypatch):
    path, study, url = studies["single"]
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("report", path, "--storage", url)
    assert code == 0, err
    written = Path("reports") / "single.html"  # the default place
    assert out.splitlines()[0].startswith(f"wrote {written} (") and written.is_file()
    report = run_json(run_cli, "report", "study", path, "--storage", url, "--top", "3")
    names = [f["name"] for f in report["figures"]]
    assert names[0] != "pareto" and "history" in names
    complete = _complete(url, "single")
    history = figure(report, "history")
    best_so_far = traces(history, "best feasible so far")
    assert [t["points"] for t in best_so_far] == [len(complete)]
    truth = search.exhaustive(study)["optimum"]["value"]
    assert report["exhaustive"]["optimum"] == [truth]
    assert min(t.values[0] for t in complete if is_feasible(t)) >= truth * (1 - 1e-12)
    assert len(report["layouts"]) == 3
    points = [json.dumps(search.trial_point(study, t), sort_keys=True) for t in complete
              if t.number in {r["trial"] for r in report["layouts"]}]
    assert len(set(points)) == 3  # distinct layouts


def test_no_exhaustive_optimum_above_the_limit(run_cli, studies, tmp_path):
    path, study, url = studies["single"]
    report = run_json(run_cli, "report", path, "--storage", url, "-o", tmp_path / "r.html",
                      "--exhaustive-max", study.space.size - 1)
    assert report["exhaustive"] is None
    assert not traces(figure(report, "history"), "exhaustive optimum")
    assert "No exhaustive ground truth" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("argv, words", [
    (["report", "nothere.toml"], "nothere.toml"),
    (["report", "{pareto}", "--storage", "{url}", "--top", "0"], "--top"),
    (["report", "{pareto}", "--storage", "{url}", "--exhaustive-max", "-1"], "--exhaustive-max"),
    (["report", "{pareto}", "--storage", "{url}", "-o", "/proc/no/r.html"], "/proc/no/r.html"),
])
def test_bad_input_is_one_line_and_exit_code_2(run_cli, studies, argv, words):
    path, _, url = studies["pareto"]
    argv = [a.format(pareto=path, url=url) for a in argv]
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err


def test_a_study_without_complete_trials_is_bad_input(run_cli, studies, tmp_path):
    path, study, _ = studies["pareto"]
    url = str(tmp_path / "empty.journal")
    search.open_study(study, search.open_storage(url))  # created, no trial told
    before = digest(Path(url))
    code, out, err = run_cli("report", path, "--storage", url)
    assert code == 2 and out == "" and "no complete trial" in err and len(err.strip().splitlines()) == 1
    assert digest(Path(url)) == before


def test_the_study_report_is_self_contained_and_renders(browser, pareto_report, studies, tmp_path, run_cli):
    report, html, _ = pareto_report
    assert_self_contained(html)
    assert_renders(browser.open(html, figure="pareto"), report["figures"])
    path, _, url = studies["single"]
    single = run_json(run_cli, "report", path, "--storage", url, "-o", tmp_path / "single.html")
    assert_self_contained(tmp_path / "single.html")
    assert_renders(browser.open(tmp_path / "single.html", figure="history"), single["figures"])


def test_the_browser_check_catches_errors_requests_and_blank_pages(browser, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><p>x</p><img src='https://example.invalid/a.png'>"
                      "<div id='fig-empty' style='height: 400px'></div>"
                      "<script>undefinedFunction()</script></body></html>")
    view = browser.open(broken, figure="empty")
    assert view.page_errors and view.requests == ["https://example.invalid/a.png"]
    for failing in (lambda: assert_renders(view, []), lambda: assert_self_contained(broken)):
        with pytest.raises(AssertionError):
            failing()
    view.console_errors, view.page_errors, view.requests = [], [], []
    with pytest.raises(AssertionError, match="std"):  # a blank figure fails the picture check
        assert_renders(view, [])
