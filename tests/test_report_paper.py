"""``plummer report paper``: the published WaferLLM runs predicted, fitted, held-out and
leave-one-out points apart, tokens/s against the grid side over the released grids, drawn in
a real Chromium."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
from _browser import Browser
from _page_json import figure_json
from _reports import assert_renders, assert_self_contained, figure, traces

from plummer.hardware import load_hardware
from plummer.report._paper import METRICS, prefill_scenario
from plummer.scenario import shipped_scenarios

#: A WSE-2 spec that says it was fitted (alpha freed, beside the preset's beta and FMA rate)
#: on two observed scenarios only, so the page has fitted, held-out and leave-one-out points,
#: and whose alpha (10 cycles per hop, the preset's 1) makes decode errors large on purpose.
FITTED_ON = ("waferllm-decode-420", "waferllm-prefill-480")
SLOW_ALPHA = 10.0


@pytest.fixture(scope="module")
def browser():
    chromium = Browser()  # a browser that cannot start fails the test (never a skip)
    yield chromium
    chromium.close()


def _report(argv: list[str]) -> dict:
    from plummer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["report", "paper", *argv, "--json"])
    assert code == 0, err.getvalue()
    assert err.getvalue() == ""  # --json: no progress
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """The report on the shipped wse2 preset (each scenario's own hardware)."""
    html = tmp_path_factory.mktemp("paper") / "paper.html"
    return _report(["-o", str(html)]), html


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """The report on a spec that claims a fit on two scenarios (its alpha, beta and FMA rate
    refitted in the leave-one-out)."""
    folder = tmp_path_factory.mktemp("fitted")
    base = load_hardware("wse2")
    spec = base.replace(uncalibrated=tuple(n for n in base.uncalibrated if n != "alpha"), fitted_on=FITTED_ON,
                        alpha=SLOW_ALPHA)
    from plummer.hardware import save_hardware

    save_hardware(spec, folder / "wse2-fit.toml")
    html = folder / "paper.html"
    return _report(["--hardware", str(folder / "wse2-fit.toml"), "-o", str(html)]), html, spec


def _expected_counts(fitted_on: tuple[str, ...], metric: str) -> dict[str, int]:
    observed = [s for s in shipped_scenarios() if s.observed and s.metric == metric]
    fitted = sum(s.name in fitted_on for s in observed)
    return {"fitted": fitted, "held out": len(observed) - fitted, "leave-one-out": fitted}


@pytest.mark.parametrize("which", ["preset", "fitted"])
def test_fitted_held_out_and_leave_one_out_points_are_apart(which, request):
    report = request.getfixturevalue(which)[0]
    fitted_on = FITTED_ON if which == "fitted" else load_hardware("wse2").fitted_on
    comparison = figure(report, "comparison")
    for metric in METRICS:
        phase = metric.split("_")[0]
        for label, count in _expected_counts(fitted_on, metric).items():
            found = traces(comparison, f"{phase}, {label}")
            assert [t["points"] for t in found] == ([count] if count else []), (metric, label)
    assert [t["points"] for t in traces(comparison, "y = x")] == [2, 2]
    assert len(traces(comparison, "error within")) == 4  # two bands per panel
    assert report["fitted_on"] == list(fitted_on)


def test_every_scenario_is_its_own_prediction(preset):
    report, _ = preset
    scenarios = {s.name: s for s in shipped_scenarios()}
    assert [r["scenario"] for r in report["rows"]] == list(scenarios)
    for row in report["rows"]:
        s = scenarios[row["scenario"]]
        assert math.isclose(row["predicted"], s.predict(), rel_tol=1e-12)
        assert row["observed"] == s.value
        if s.observed:
            assert math.isclose(row["rel_error"], row["predicted"] / s.value - 1, rel_tol=1e-12)
        else:
            assert row["rel_error"] is None and row["loo_error"] is None


def test_the_summaries_are_the_rows_statistics(fitted):
    report, _, _ = fitted
    rows = [r for r in report["rows"] if r["observed"] is not None]
    for key, column, members in (("fitted", "rel_error", [r for r in rows if r["fitted"]]),
                                 ("not_fitted", "rel_error", [r for r in rows if not r["fitted"]]),
                                 ("leave_one_out", "loo_error", [r for r in rows if r["fitted"]])):
        errors = [abs(r[column]) for r in members]
        assert report[key]["n"] == len(errors) > 0
        assert math.isclose(report[key]["mean"], sum(errors) / len(errors), rel_tol=1e-12)
        assert math.isclose(report[key]["max"], max(errors), rel_tol=1e-12)


def test_a_leave_one_out_point_is_the_refit_without_it(fitted):
    """decode-420 left out: the chip's fitted parameters refitted on the five other observed
    scenarios, done here by plummer.calibrate directly."""
    from plummer.calibrate import calibrate, load_measurements
    from plummer.scenario import _DATA

    report, _, spec = fitted
    others = [str(_DATA / f"{s.name}.toml") for s in shipped_scenarios()
              if s.observed and s.name != "waferllm-decode-420"]
    assert len(others) == 5
    assert "alpha" in report["fitted_parameters"]  # the fixture's spec frees it
    refit = calibrate(load_measurements(others), spec, parameters=report["fitted_parameters"]).spec
    assert refit.alpha != spec.alpha  # a real refit, or the check below proves nothing
    s = next(s for s in shipped_scenarios() if s.name == "waferllm-decode-420")
    row = next(r for r in report["rows"] if r["scenario"] == s.name)
    assert math.isclose(row["loo_error"], s.predict(refit) / s.value - 1, rel_tol=1e-9)
    assert not math.isclose(row["loo_error"], row["rel_error"], rel_tol=1e-6)


def test_the_grid_curves_cover_every_released_grid(preset):
    report, _ = preset
    scenarios = shipped_scenarios()
    decode = sorted((s for s in scenarios if s.metric == "decode_tokens_per_s"), key=lambda s: s.layout.decode.grid[0])
    grids = [s.layout.decode.grid[0] for s in decode]
    assert grids == sorted(set(grids)) and len(grids) == 11
    curves = report["curves"]
    assert [c["grid"] for c in curves["decode"]] == grids == [c["grid"] for c in curves["prefill"]]
    for c, s in zip(curves["decode"], decode, strict=True):
        assert math.isclose(c["predicted"], s.predict(), rel_tol=1e-12)
    shipped = {s.layout.prefill.grid[0]: s for s in scenarios if s.metric == "prefill_tokens_per_s"}
    assert set(shipped) <= set(grids)
    by_grid = {c["grid"]: c["predicted"] for c in curves["prefill"]}
    for p, s in shipped.items():  # the pattern at a shipped grid is the shipped scenario
        made = prefill_scenario(s, p)
        shape = ("hidden", "ffn", "head_dim", "heads", "kv_heads", "layers")
        assert [getattr(made.model, k) for k in shape] == [getattr(s.model, k) for k in shape]
        assert math.isclose(by_grid[p], s.predict(), rel_tol=1e-12)
    for p in grids:  # padded up to multiples of P, never below the true widths
        m = prefill_scenario(next(iter(shipped.values())), p).model
        assert m.hidden % p == 0 and m.ffn % p == 0 and 0 <= m.hidden - 4096 < p and 0 <= m.ffn - 14336 < p
    grids_figure = figure(report, "grids")
    observed = {metric: sum(s.observed and s.metric == metric for s in scenarios) for metric in METRICS}
    assert [(t["name"], t["points"]) for t in grids_figure["traces"]] == [
        ("decode, predicted (11 grids)", 11), (f"decode, observed ({observed['decode_tokens_per_s']})", 3),
        ("prefill, predicted (11 grids)", 11), (f"prefill, observed ({observed['prefill_tokens_per_s']})", 3)]


def test_the_axes_cover_every_point_however_large_the_error(preset, fitted):
    rows = [r for r in fitted[0]["rows"] if r["observed"] is not None]
    assert max(abs(r["rel_error"]) for r in rows) > 0.5  # the slow fabric: far outside the bands
    for report, html in (preset, fitted[:2]):
        drawn = figure_json(html.read_text(encoding="utf-8"), "comparison")
        for axis, key in (("xaxis", "decode"), ("xaxis2", "prefill")):
            low, high = drawn["layout"][axis]["range"]
            assert drawn["layout"]["y" + axis[1:]]["range"] == [low, high]
            points = [v for t in drawn["data"] if t["name"].startswith(f"{key}, ") for v in t["x"] + t["y"]]
            assert points and low < min(points) and max(points) < high, (axis, low, high, points)


def test_the_paper_reports_are_self_contained_and_render(browser, preset, fitted):
    for report, html in (preset, fitted[:2]):
        text = assert_self_contained(html)
        assert "Errors" in text and "leave-one-out" in text
        assert_renders(browser.open(html, figure="comparison"), report["figures"])


def test_the_default_file_and_progress(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("report", "paper")
    assert code == 0, err
    written = Path("reports") / "paper-wse2.html"
    assert out.startswith(f"wrote {written} (2 figures: comparison, grids)") and written.is_file()
    assert err.startswith("predicting the 14 shipped scenarios on wse2")


@pytest.mark.parametrize("argv, words", [
    (["--hardware", "nope"], "hardware 'nope'"),
    (["-o", "/proc/no/p.html"], "/proc/no/p.html"),
])
def test_bad_input_is_one_line_and_exit_code_2(run_cli, argv, words):
    code, out, err = run_cli("report", "paper", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err
