"""``plummer report layout`` and ``plummer report mesh``: a layout on the wafer, its memory and
time per operation; one executor run as heatmaps; each drawn in a real Chromium."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from _browser import Browser
from _reports import assert_renders, assert_self_contained, figure, run_json, traces

from plummer.hardware import load_hardware
from plummer.kernels import get_kernel
from plummer.layout import layout_arrays, load_layout
from plummer.model import load_model
from plummer.report._layout import region_origins

#: LLaMA3-8B on a WSE-2 (757 x 996 cores): prefill as a snake of 6 regions of 300 x 300
#: (two per row, so it turns twice), decode on 4 regions placed by hand.
LAYOUT = """
model = "llama3-8b"
hardware = "wse2"
input_tokens = 2048
output_tokens = 128
[prefill]
grid = [300, 300]
regions = 6
head_groups = 1
[decode]
grid = [180, 180]
regions = 4
layers_per_region = [8, 8, 10, 6]
origins = [[0, 600], [180, 600], [360, 600], [540, 816]]
head_groups = 1
"""

#: One KV head: the default head grouping is 1 (square attention meshes).
MQA_MODEL = """
name = "mqa"
hidden = 1024
ffn = 4096
layers = 6
heads = 8
kv_heads = 1
head_dim = 128
vocab = 32000
tied_embeddings = false
qkv_bias = false
dtype = "bf16"
"""


@pytest.fixture(scope="module")
def browser():
    chromium = Browser()  # a browser that cannot start fails the test (never a skip)
    yield chromium
    chromium.close()


@pytest.fixture
def layout_file(tmp_path):
    path = tmp_path / "hand.toml"
    path.write_text(LAYOUT)
    return path


def test_regions_are_drawn_where_the_model_places_them(run_cli, layout_file, tmp_path):
    report = run_json(run_cli, "report", "layout", "--layout", layout_file, "-o", tmp_path / "l.html")
    wafer = figure(report, "wafer")
    assert len(traces(wafer, "prefill region")) == 6 and len(traces(wafer, "decode region")) == 4
    assert [t["name"] for t in traces(wafer, "decode region")] == [
        "decode region 0: layers 0-7", "decode region 1: layers 8-15", "decode region 2: layers 16-25",
        "decode region 3: layers 26-31"]
    assert report["regions"]["decode"] == [[0, 600], [180, 600], [360, 600], [540, 816]]
    assert report["regions"]["prefill"] == [[0, 0], [300, 0], [300, 300], [0, 300], [0, 600], [300, 600]]
    # the snake drawn is the one the closed form costs: its hops and extent
    spec, model, layout = load_hardware("wse2"), load_model("llama3-8b"), load_layout(layout_file)
    snake = layout.replace(decode={"origins": None, "layers_per_region": None})
    arrays = layout_arrays(spec, model, [snake])
    for phase in ("prefill", "decode"):
        lay = getattr(snake, phase)
        origins = region_origins(spec, lay)
        hops = sum(abs(b[0] - a[0]) + abs(b[1] - a[1]) for a, b in itertools.pairwise(origins))
        part = getattr(arrays, phase)
        assert hops == int(part.tr_hops[0])
        assert max(x for x, _ in origins) + lay.grid[0] == int(part.extent_x[0])
        assert max(y for _, y in origins) + lay.grid[1] == int(part.extent_y[0])


def test_memory_parts_add_up_to_the_predicted_memory_per_core(run_cli, layout_file, tmp_path):
    report = run_json(run_cli, "report", "layout", "--layout", layout_file, "-o", tmp_path / "l.html")
    predicted = run_json(run_cli, "predict", "--layout", layout_file)
    for phase in ("prefill", "decode"):
        parts = report["memory"][phase]
        assert math.isclose(sum(parts.values()), predicted[f"memory_{phase}_bytes"], rel_tol=1e-12)
    assert math.isclose(report["memory"]["decode"]["kv_cache"], predicted["kv_cache_bytes"], rel_tol=1e-12)
    memory = figure(report, "memory")
    assert [(t["name"], t["points"]) for t in memory["traces"]] == [
        ("weights", 2), ("KV cache", 2), ("buffers (largest working set)", 2)]
    assert report["feasible"] == predicted["feasible"]
    breakdown = figure(report, "breakdown")
    per_phase = [sum(1 for r in predicted["breakdown"] if r["phase"] == p) for p in ("prefill", "decode")]
    assert [t["points"] for t in breakdown["traces"]] == [per_phase[0]] * 2 + [per_phase[1]] * 2


def test_a_layout_chosen_from_options_and_written_back(run_cli, tmp_path, monkeypatch):
    (tmp_path / "mqa.toml").write_text(MQA_MODEL)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("report", "layout", "--model", "mqa.toml", "--hardware", "wse2",
                             "--prefill-grid", "120x120", "--decode-grid", "120x120", "--regions", "2",
                             "--output-layout", "chosen.toml")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("wrote reports/layout-mqa-wse2.html (4 figures: ") and lines[1] == "wrote chosen.toml"
    layout = load_layout("chosen.toml")
    assert layout.prefill.grid == (120, 120) and layout.decode.regions == 2


def test_the_mesh_report_draws_the_executors_arrays(run_cli, tmp_path):
    spec = load_hardware("wse3")
    report = run_json(run_cli, "report", "mesh", "allreduce", "--mesh", "16x8", "--n", "32", "--axis", "x",
                      "-o", tmp_path / "m.html")
    run = get_kernel("allreduce", "ktree").execute(spec, p=16, q=8, n=32, axis="x", k_tree=2, group_num=0).execution
    for name, count in (("memory", 1), ("links", 4), ("busy", 2)):
        drawn = figure(report, name)["traces"]
        assert len(drawn) == count and all(t["shape"] == [8, 16] for t in drawn), name  # rows = y
    assert report["cycles"] == run.cycles and report["max_link_bytes"] == run.max_link_bytes
    assert report["peak_memory_bytes_max"] == float(np.max(run.peak_memory_bytes))
    assert [t["name"] for t in figure(report, "links")["traces"]] == [
        "bytes sent east", "bytes sent west", "bytes sent south", "bytes sent north"]


@pytest.mark.parametrize("argv, words", [
    (["layout", "--layout", "/nonexistent/l.toml"], "/nonexistent/l.toml"),
    (["layout", "--model", "nope-7b"], "nope-7b"),
    (["mesh", "gemm", "--mesh", "8x8"], "--m"),
    (["mesh", "allreduce", "--mesh", "200x200", "--n", "4"], "--force"),
    (["mesh", "allreduce", "--mesh", "4x4", "--n", "4", "-o", "/proc/no/m.html"], "/proc/no/m.html"),
])
def test_bad_input_is_one_line_and_exit_code_2(run_cli, argv, words):
    code, out, err = run_cli("report", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and words in err


def test_layout_and_mesh_reports_are_self_contained_and_render(browser, run_cli, layout_file, tmp_path):
    for argv, html, shown in ((["layout", "--layout", layout_file], tmp_path / "l.html", "wafer"),
                              (["mesh", "gemm", "--mesh", "8x8", "--m", "32", "--k", "32", "--n", "32"],
                               tmp_path / "m.html", "links")):
        report = run_json(run_cli, "report", *argv, "-o", html)
        assert_self_contained(html)
        assert_renders(browser.open(html, figure=shown), report["figures"])
