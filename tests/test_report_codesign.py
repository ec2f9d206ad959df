"""``plummer report STUDY.toml`` for a co-design study (a ``[hardware_space]``: each trial a
chip): the front with each chip and its layout, the sensitivity of the best layout to each
hardware field, layout files that reproduce a chip's figures, drawn in a real Chromium, and a
storage that writing the report leaves as it was."""

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
from _page_json import figure_json
from _reports import (
    TINY_MODEL,
    assert_renders,
    assert_self_contained,
    digest,
    figure,
    run_json,
    traces,
)

import search
from plummer.errors import SpecError
from plummer.hardware import load_hardware
from plummer.layout._predict import predict
from plummer.report._codesign import named_metrics, sensitivity, sensitivity_figure
from plummer.report._page import number
from search._runner import is_feasible

#: Three memory sizes (the smallest fits no layout, the middle one needs two prefill regions,
#: the WSE-2's own one) and three alphas slower than the WSE-2's (so a trial's chip is never
#: the base chip); 64 layouts per chip.
MEMORY = [8192, 16384, 49152]
ALPHA = [1.5, 2.0, 4.0]
STUDY = """
name = "codesign"
model = "tiny.toml"
hardware = "wse2"
[hardware_space]
memory_bytes = {memory}
alpha = {alpha}
[codesign]
mode = "{mode}"
metric = "decode_tokens_per_s"
direction = "maximize"
[space]
input_tokens = 2048
output_tokens = 64
pf_p = 120
pf_q = "pf_p"
pf_regions = {pf_regions}
pf_head_groups = 1
dc_head_groups = 1
dc_p = {dc_p}
dc_q = "dc_p"
dc_regions = {dc_regions}
[[objectives]]
metric = "decode_tokens_per_s"
direction = "maximize"
[[objectives]]
metric = "sram_per_core_bytes"
direction = "minimize"
[sampler]
name = "nsgaii"
seed = 0
[run]
trials = 12
"""
NESTED = {"mode": "nested", "pf_regions": [1, 2, 4, 8], "dc_p": [60, 120, 240, 480], "dc_regions": [1, 2, 4, 8]}


def _write(folder: Path, name: str, **space: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.toml").write_text(TINY_MODEL)
    path = folder / f"{name}.toml"
    path.write_text(STUDY.format(memory=MEMORY, alpha=ALPHA, **space))
    return path


@pytest.fixture(scope="module")
def browser():
    chromium = Browser()  # a browser that cannot start fails the test (never a skip)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def codesign(tmp_path_factory):
    """The nested co-design study run in a temporary folder, and its report (from the command
    line), with the journal's digest before the report."""
    from plummer.cli import main

    folder = tmp_path_factory.mktemp("codesign")
    path = _write(folder, "codesign", **NESTED)
    study = search.load_study_file(path)
    url = str(folder / "codesign.journal")
    search.run_study(study, url, progress=False)
    before = digest(Path(url))
    html = folder / "out" / "codesign.html"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["report", str(path), "--storage", url, "-o", str(html), "--json"])
    assert code == 0
    return {"path": path, "study": study, "url": url, "before": before, "html": html,
            "report": json.loads(out.getvalue())}


def _complete(c: dict) -> list[optuna.trial.FrozenTrial]:
    handle = optuna.load_study(study_name="codesign", storage=search.open_storage(c["url"]))
    return sorted(handle.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.number)


def _front(trials: list[optuna.trial.FrozenTrial], signs: np.ndarray) -> list[optuna.trial.FrozenTrial]:
    """Feasible trials no other feasible trial dominates, the first of equal ones (a chip the
    sampler drew twice) only (brute force, for comparison)."""
    values = np.array([t.values for t in trials]) * signs
    return [t for i, t in enumerate(trials) if not any(
        np.all(o >= values[i]) and (np.any(o > values[i]) or j < i) for j, o in enumerate(values) if j != i)]


def test_the_front_shows_each_chip_and_its_layout(codesign):
    report, study = codesign["report"], codesign["study"]
    complete = _complete(codesign)
    feasible = [t for t in complete if is_feasible(t)]
    front = _front(feasible, np.array([1.0, -1.0]))
    assert 0 < len(front) < len(feasible) < len(complete)  # the test data mix all three kinds
    pareto = figure(report, "pareto")
    assert [t["points"] for t in traces(pareto, "Pareto front")] == [len(front)]
    assert [t["points"] for t in traces(pareto, "dominated")] == [len(feasible) - len(front)]
    assert [t["points"] for t in traces(pareto, "exact front")] == [len(search.exhaustive(study)["front"])]
    assert sum(t["points"] for t in figure(report, "infeasible")["traces"]) == len(complete) - len(feasible)
    drawn = figure_json(codesign["html"].read_text(encoding="utf-8"), "pareto")
    texts = next(t["hovertext"] for t in drawn["data"] if t["name"].startswith("Pareto front"))
    for t in front:
        text = next(x for x in texts if x.startswith(f"<b>trial {t.number} (on the Pareto front)</b>"))
        chip = f"chip: memory_bytes {number(t.params['memory_bytes'], 6)}, alpha {number(t.params['alpha'], 6)}"
        point = t.user_attrs["plummer"]["layout_point"]
        grid = f"decode: {point['dc_p']}x{point['dc_q']} cores x {point['dc_regions']} region(s)"
        assert chip in text and grid in text, text
    assert report["trials"]["pareto"] == len(front)


def _brute_force_best(study: search.StudyFile, spec) -> tuple[float, dict] | None:
    """The fastest decode layout of the space that fits ``spec``, one `predict` per point."""
    best = None
    for i in range(study.space.size):
        point = study.space.point_at(i)
        try:
            prediction = predict(spec, study.model, search.point_layout(study, point))
        except SpecError:  # regions that do not fit the fabric
            continue
        value = prediction.metrics["decode_tokens_per_s"]
        if prediction.feasible and (best is None or value > best[0]):
            best = (value, point)
    return best


def test_the_sensitivity_sweeps_each_field_alone_around_the_base_chip(codesign):
    report, study = codesign["report"], codesign["study"]
    base = load_hardware("wse2")
    facts = report["codesign"]
    assert facts["metrics"] == ["decode_tokens_per_s"] == named_metrics(study)
    expected = {"memory_bytes": sorted(set(MEMORY) | {base.memory_bytes}), "alpha": sorted(set(ALPHA) | {base.alpha})}
    assert {f: [e["value"] for e in sweep] for f, sweep in facts["fields"].items()} == expected
    assert facts["evaluations"] == len(expected["memory_bytes"]) + len(expected["alpha"]) - 1  # the base chip once
    drawn = [(t["name"], t["points"]) for t in figure(report, "sensitivity")["traces"]]
    want = []
    for sweep in facts["fields"].values():
        fits = sum(e["layout_point"] is not None for e in sweep)
        want += [(name, fits) for name in ("decode_tokens_per_s", "regions_prefill", "regions_decode",
                                           "decode grid width P", "decode grid height Q")]
        want += [("no layout fits", len(sweep) - fits)] if fits < len(sweep) else []
    assert drawn == want
    memory = facts["fields"]["memory_bytes"]
    assert [e["layout_point"] is None for e in memory] == [True, False, False]
    assert memory[1]["layout_point"] != memory[2]["layout_point"]  # the best layout moves with the memory
    for entry in memory:  # each chip's best layout, found again one prediction at a time
        found = _brute_force_best(study, base.replace(memory_bytes=entry["value"]))
        if found is None:
            assert entry["layout_point"] is None
        else:
            assert math.isclose(entry["decode_tokens_per_s"], found[0], rel_tol=1e-9)
            assert entry["layout_point"] == found[1]
    alphas = facts["fields"]["alpha"]
    at_base = next(e for e in alphas if e["value"] == base.alpha)
    assert at_base["decode_tokens_per_s"] == memory[-1]["decode_tokens_per_s"]  # both are the base chip
    speeds = [e["decode_tokens_per_s"] for e in alphas]
    assert speeds == sorted(speeds, reverse=True)  # a slower hop never speeds decode up


def test_the_chosen_layout_is_predicted_on_its_chip(codesign):
    report, study = codesign["report"], codesign["study"]
    trial = next(t for t in _complete(codesign) if t.number == report["chosen"]["trial"])
    layout = search.point_layout(study, trial.user_attrs["plummer"]["layout_point"])
    spec = study.hardware.replace(memory_bytes=trial.params["memory_bytes"], alpha=trial.params["alpha"])
    assert spec.alpha != study.hardware.alpha  # else the check below cannot tell the chips apart
    rows = [r for r in predict(spec, study.model, layout).breakdown if r["phase"] == "decode"]
    assert [t["points"] for t in figure(report, "breakdown")["traces"][2:]] == [len(rows)] * 2
    bars = figure_json(codesign["html"].read_text(encoding="utf-8"), "breakdown")["data"][2:]  # decode
    drawn = sum(sum(t["x"]) for t in bars)
    for spec_, same in ((spec, True), (study.hardware, False)):
        cycles = predict(spec_, study.model, layout).metrics["decode_layer_cycles"] - spec_.launch_overhead_cycles
        assert math.isclose(drawn, cycles, rel_tol=1e-9) is same, (spec_.alpha, drawn, cycles)


def test_each_top_layout_file_reproduces_its_chip(run_cli, codesign):
    report = codesign["report"]
    assert len(report["layouts"]) == report["trials"]["pareto"]
    trials = {t.number: t for t in _complete(codesign)}
    for row in report["layouts"]:
        chip_file = Path(row["file"]).with_name(f"trial-{row['trial']}-chip.toml")
        assert row["command"] == f"plummer predict --layout {row['file']} --hardware {chip_file}"
        chip = load_hardware(chip_file)
        params = trials[row["trial"]].params
        assert (chip.memory_bytes, chip.alpha) == (params["memory_bytes"], params["alpha"])
        predicted = run_json(run_cli, *row["command"].split()[1:])
        assert math.isclose(predicted["decode_tokens_per_s"], row["values"][0], rel_tol=1e-12)
        alone = run_json(run_cli, "predict", "--layout", row["file"])  # the layout names its chip
        assert alone["decode_tokens_per_s"] == predicted["decode_tokens_per_s"]


def test_writing_the_report_changes_no_storage(run_cli, codesign, tmp_path):
    url = Path(codesign["url"])
    assert digest(url) == codesign["before"]
    listing = sorted(p.name for p in url.parent.iterdir())
    run_json(run_cli, "report", codesign["path"], "--storage", url, "-o", tmp_path / "again.html")
    assert digest(url) == codesign["before"]
    assert sorted(p.name for p in url.parent.iterdir()) == listing


def test_the_codesign_report_is_self_contained_and_renders(browser, codesign):
    assert_self_contained(codesign["html"])
    assert_renders(browser.open(codesign["html"], figure="sensitivity"), codesign["report"]["figures"])


def test_a_fixed_layout_is_timed_on_every_chip_and_marked_where_it_does_not_fit(tmp_path):
    """mode = "fixed": the one layout on each chip (no stored trial needed); where it does not
    fit, its figures are drawn all the same, with a cross."""
    path = _write(tmp_path, "fixed", mode="fixed", pf_regions=1, dc_p=120, dc_regions=1)
    study = search.load_study_file(path)
    data = sensitivity(study)
    memory = data["fields"]["memory_bytes"]
    assert {json.dumps(e["best"]["point"], sort_keys=True) for e in memory} == {
        json.dumps(study.space.point_at(0), sort_keys=True)}
    fits = [e["best"]["feasible"] for e in memory]
    assert fits == [False, False, True]  # one region of 120 x 120 needs the WSE-2's 48 KB
    drawn = sensitivity_figure(study, data)
    speed = next(t for t in drawn.data if t.name == "decode_tokens_per_s")
    assert list(speed.marker.symbol) == ["x", "x", "circle"] and len(speed.x) == 3
    assert not any(t.name == "no layout fits" for t in drawn.data)


def test_a_hardware_space_that_searches_nothing_has_no_sensitivity(tmp_path):
    from plummer.report import Page
    from plummer.report._codesign import codesign_section

    path = _write(tmp_path, "one-chip", **NESTED)
    path.write_text(path.read_text().replace(f"memory_bytes = {MEMORY}\nalpha = {ALPHA}", "memory_bytes = [16384]"))
    study = search.load_study_file(path)
    assert not study.codesign.space.dimensions
    page = Page("one chip")
    assert codesign_section(page, study)["fields"] == {}
    assert page.summaries() == [] and "searches no field" in page.html()
