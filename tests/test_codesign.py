"""Hardware co-design: chips searched around a base preset, each with its best (or a fixed)
layout; monotonicity a chip designer relies on, and the SRAM a model needs in one region."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import search
from plummer.errors import SpecError
from plummer.hardware import load_hardware
from plummer.layout import Layout
from plummer.layout._predict import predict
from plummer.model import load_model
from search._codesign import best_layout, chip

STUDIES = Path(__file__).resolve().parent.parent / "studies"
LLAMA = load_model("llama3-8b")


def test_the_shipped_co_design_studies_run_and_find_fronts(tmp_path):
    for name in ("codesign-sram-llama3-8b-wse2", "codesign-fabric-qwen2-72b-wse3"):
        study = search.load_study_file(STUDIES / f"{name}.toml")
        summary = search.run_study(study, str(tmp_path / "s.journal"), trials=12, progress=False)
        assert summary["trials_run"] == 12
        found = search.best(study, str(tmp_path / "s.journal"))
        assert found["best"] and all("hardware" in row for row in found["best"])


def test_more_memory_never_makes_the_best_layout_worse():
    study = search.load_study_file(STUDIES / "codesign-sram-llama3-8b-wse2.toml")
    best = []
    for memory in study.codesign.space.dimensions[0].choices:
        found = best_layout(study, chip(study.hardware, {"memory_bytes": memory}))
        best.append(found["metrics"].get("decode_tokens_per_s", -np.inf) if found["feasible"] else -np.inf)
    assert all(a <= b for a, b in zip(best, best[1:]))
    assert best[0] == -np.inf < best[-1]  # half the SRAM fits no layout of the space; six times does


def test_a_lower_alpha_never_makes_decode_slower():
    study = search.load_study_file(STUDIES / "codesign-fabric-qwen2-72b-wse3.toml")
    alphas = study.codesign.space.dimensions[0].choices
    for beta in (2.0, 10.0, 20.0):
        nested = [best_layout(study, chip(study.hardware, {"alpha": a, "beta": beta}))["metrics"]["decode_tokens_per_s"]
                  for a in alphas]
        assert all(x >= y for x, y in zip(nested, nested[1:]))
        fixed = Layout.from_dict({"prefill": {"grid": [744, 744]}, "decode": {"grid": [360, 360]}})
        rates = [predict(chip(study.hardware, {"alpha": a, "beta": beta}), study.model, fixed).metrics[
            "decode_tokens_per_s"] for a in alphas]
        assert all(x >= y for x, y in zip(rates, rates[1:]))
    # and the best decode grid grows as hops get cheaper (allreduce latency matters less)
    grids = [best_layout(study, chip(study.hardware, {"alpha": a, "beta": 10.0}))["point"]["dc_p"] for a in alphas]
    assert grids[0] >= grids[-1]


def test_the_sram_that_first_fits_one_region_is_the_hand_computed_tiles():
    """LLaMA3-8B decoding on one 720 x 720 region (8 head groups of 90 columns) of a WSE-2
    whose SRAM per core grows until the layout fits. By hand: a core keeps, per layer, its
    tiles of the four GEMV weights -- QKV ceil(E/Q) x (4 + 2 x 1) x ceil(128/90), O 4 x 2 x 6,
    up+gate 6 x 2 x ceil(F/P), down 20 x 6 -- and 7 cached tokens of K and V (2 x 2 elements
    each), all fp16, for 32 layers; the kernels' buffers add a few hundred bytes."""
    e, ffn, layers, context = LLAMA.hidden, LLAMA.ffn, LLAMA.layers, 4096 + 256
    p = q = 720
    eq, fx, hw = math.ceil(e / q), math.ceil(ffn / p), math.ceil(128 / (p // 8))
    assert (eq, fx, hw) == (6, 20, 2)
    weights = (eq * (4 + 2) * hw + 4 * hw * eq + eq * 2 * fx + fx * eq) * layers * 2
    kv = math.ceil(context / q) * 2 * hw * layers * 2
    layout = Layout.from_dict({"prefill": {"grid": [720, 720], "regions": 1},
                               "decode": {"grid": [720, 720], "regions": 1}})
    base = load_hardware("wse2")

    def fits(memory: int) -> bool:
        return predict(base.replace(memory_bytes=memory), LLAMA, layout).metrics["memory_decode_bytes"] <= memory

    low, high = 1024, 1 << 20
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid, high)
    assert weights + kv <= high <= weights + kv + 512
    # the model's own weights over the region's cores (unpadded) are a lower bound
    assert high >= LLAMA.weights_per_layer * layers * 2 / (p * q)


def test_co_design_study_files_name_bad_keys(tmp_path):
    base = (STUDIES / "codesign-sram-llama3-8b-wse2.toml").read_text()
    for old, new, key in (("memory_bytes = [", "sram = [", "sram"),
                          ('mode = "nested"', 'mode = "greedy"', "mode"),
                          ('metric = "sram_per_core_bytes"', 'metric = "price"', "metric")):
        path = tmp_path / "bad.toml"
        path.write_text(base.replace(old, new))
        with pytest.raises(SpecError, match=key):
            search.load_study_file(path)


def test_exhaustive_over_chips_and_the_best_layout_file(tmp_path, run_cli):
    study = search.load_study_file(STUDIES / "codesign-sram-llama3-8b-wse2.toml")
    small = replace(study, codesign=replace(study.codesign, space=search.SearchSpace.from_dict(
        {"memory_bytes": [49152, 98304]}, columns=("memory_bytes",), kind="hardware field")))
    truth = search.exhaustive(small)
    assert truth["points"] == 2 and len(truth["front"]) == 2
    url = str(tmp_path / "s.journal")
    code, out, err = run_cli("study", "run", str(STUDIES / "codesign-sram-llama3-8b-wse2.toml"),
                             "--storage", url, "--trials", "9", "--json")
    assert code == 0, err
    out_file = tmp_path / "best.toml"
    code, out, err = run_cli("study", "best", str(STUDIES / "codesign-sram-llama3-8b-wse2.toml"),
                             "--storage", url, "--json", "-o", str(out_file))
    assert code == 0, err
    best = json.loads(out)["best"][0]
    code, again, err = run_cli("predict", "--layout", str(out_file), "--json")
    assert code == 0, err
    assert json.loads(again)["decode_tokens_per_s"] == pytest.approx(best["values"][0], rel=1e-12)


def test_each_chip_lays_out_on_its_own_fabric():
    """A smaller fabric in the hardware space: its layouts drop the grids it cannot hold and
    count 'fit' regions on it (the base WSE-2 holds 2 x 2 regions of 360 x 360, a 400 x 400
    fabric one)."""
    study = search.parse_study({
        "model": "llama3-8b", "hardware": "wse2", "memory": "ignore",
        "hardware_space": {"fabric_width": [400, 757], "fabric_height": [400, 996]},
        "codesign": {"metric": "decode_tokens_per_s"},
        "space": {"pf_p": 360, "pf_q": "pf_p", "pf_regions": "fit", "dc_p": [240, 480],
                  "dc_q": "dc_p", "dc_regions": "fit"},
        "objectives": [{"metric": "decode_tokens_per_s"}, {"metric": "fabric_cores", "direction": "minimize"}],
    }, "fabric")
    small = best_layout(study, chip(study.hardware, {"fabric_width": 400, "fabric_height": 400}))
    assert small["feasible"] and small["point"]["dc_p"] == 240 and small["point"]["pf_regions"] == 1
    big = best_layout(study, chip(study.hardware, {"fabric_width": 757, "fabric_height": 996}))
    assert big["point"]["pf_regions"] == 4
    tiny = best_layout(study, chip(study.hardware, {"fabric_width": 200, "fabric_height": 200}))
    assert tiny == {"point": None, "metrics": {}, "feasible": False}  # no grid of the space fits
