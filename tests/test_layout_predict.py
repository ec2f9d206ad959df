"""``plummer predict`` and the layout batch API: review fixes (default search, layout files
with CLI overrides, column checks, messages), each pinned by a test."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from plummer.errors import SpecError
from plummer.hardware import load_hardware
from plummer.layout import (
    GEMM_ALGOS,
    REASONS,
    Layout,
    LayoutArrays,
    _predict,
    evaluate,
    layout_arrays,
    load_layout,
)
from plummer.layout._arrays import default_head_groups
from plummer.layout._evaluate import evaluate_ops, padded_gemm
from plummer.layout._ops import Op, local_work
from plummer.layout._plan import prefill_plan
from plummer.layout._predict import default_layout, predict
from plummer.model import load_model, model_presets

WSE2 = load_hardware("wse2")
WSE3 = load_hardware("wse3")
LLAMA = load_model("llama3-8b")


@pytest.mark.parametrize("name", sorted(model_presets()))
def test_one_head_group_always_fits_two_columns(name):
    # why default_head_groups needs no error path: g = 1 is allowed whenever p >= 2
    assert default_head_groups(load_model(name), 2) == 1
    assert default_head_groups(load_model(name), 3, 5) == 1


def test_padded_gemm_knows_exactly_the_layout_gemm_algorithms():
    one = np.asarray([7])
    for algo in (*GEMM_ALGOS, "gemm-t"):
        padded_gemm(algo, np.asarray([4]), np.asarray([6]), one, one, one)
    with pytest.raises(ValueError):
        padded_gemm("meshgemm-rowwise", np.asarray([4]), np.asarray([6]), one, one, one)


def _error(run_cli, *argv: str) -> str:
    """The one-line error of a ``plummer predict`` run that must fail with exit code 2."""
    code, out, err = run_cli("predict", *argv)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("option", ["--prefill-grid", "--decode-grid"])
@pytest.mark.parametrize("value", ["0x5", "1x5", "5x1", "axb", "4x4x4"])
def test_grid_options_are_named_and_need_two_cores_per_side(run_cli, option, value):
    err = _error(run_cli, option, value)
    assert f"{option} '{value}'" in err and ">= 2" in err
    assert "--mesh" not in err and "pf_p" not in err and "dc_p" not in err


LAYOUT_FILE = """model = "llama3-8b"
hardware = "wse2"
[prefill]
grid = [480, 480]
regions = 2
gemm = "cannon"
allreduce = "pipeline"
k_tree = 3
head_groups = 4
origins = [[0, 0], [0, 480]]
[decode]
grid = [360, 360]
regions = 4
layers_per_region = [5, 9, 9, 9]
allreduce = "pipeline-mid"
group_num_x = 4
"""


def _layout_file(tmp_path) -> str:
    path = tmp_path / "layout.toml"
    path.write_text(LAYOUT_FILE)
    return str(path)


def test_a_grid_option_replaces_only_the_grid_of_the_layout_files_phase(run_cli, tmp_path):
    code, out, err = run_cli("predict", "--layout", _layout_file(tmp_path), "--prefill-grid", "240x240",
                             "--decode-grid", "240x360", "--json")
    assert code == 0, err
    payload = json.loads(out)
    prefill, decode = payload["layout"]["prefill"], payload["layout"]["decode"]
    assert prefill["grid"] == [240, 240] and decode["grid"] == [240, 360]
    assert (prefill["regions"], prefill["gemm"], prefill["allreduce"], prefill["k_tree"],
            prefill["head_groups"]) == (2, "cannon", "pipeline", 3, 4)
    assert prefill["origins"] is None  # they placed regions of 480 x 480
    assert (decode["regions"], decode["layers_per_region"], decode["allreduce"],
            decode["group_num_x"]) == (4, [5, 9, 9, 9], "pipeline-mid", 4)
    assert any("origins are dropped" in text for text in payload["chosen_defaults"])


def test_a_grid_option_too_large_for_the_layout_files_regions_is_an_error(run_cli, tmp_path):
    err = _error(run_cli, "--layout", _layout_file(tmp_path), "--prefill-grid", "660x660")
    assert "--prefill-grid 660x660" in err and "2 prefill regions" in err and "allowed 1..1" in err


def test_regions_note_the_layer_counts_and_origins_they_drop(tmp_path):
    base = load_layout(_layout_file(tmp_path))
    layout, chosen = default_layout(WSE2, LLAMA, prefill=base.prefill, decode=base.decode,
                                    regions={"prefill": 1, "decode": 2})
    assert layout.decode.layers_per_region is None and layout.prefill.origins is None
    assert any(t.startswith("decode: 2 regions replace the layout's 4; its layers_per_region")
               for t in chosen)
    assert any(t.startswith("prefill: 1 regions replace the layout's 2; its origins") for t in chosen)


def test_the_default_search_keeps_only_regions_that_fit_the_fabric(run_cli):
    qwen = load_model("qwen2-72b")
    layout, chosen = default_layout(WSE3, qwen, regions={"prefill": 2, "decode": 2})
    for lay in (layout.prefill, layout.decode):
        p, q = lay.grid
        assert lay.regions == 2 and (WSE3.fabric_width // p) * (WSE3.fabric_height // q) >= 2
    # nothing fits qwen2-72b's memory: the note says which rule picked it, and only that one
    assert all("least memory per core" in t and "TTFT" not in t and "tokens/s" not in t for t in chosen)
    code, out, err = run_cli("predict", "--model", "qwen2-72b", "--hardware", "wse3", "--regions", "2")
    assert code == 0, err


def test_regions_no_candidate_grid_holds_are_named():
    with pytest.raises(SpecError, match=r"3 regions \(--prefill-regions or --regions\) of grid "
                       r"480x480 .*allowed 1\.\.2"):
        default_layout(WSE2, LLAMA, grids={"prefill": (480, 480)}, regions={"prefill": 3})
    with pytest.raises(SpecError, match=r"decode: 40 regions .*32 layers; allowed 1\.\.32"):
        default_layout(WSE2, LLAMA, regions={"decode": 40})


@pytest.mark.parametrize("phase", ["prefill", "decode"])
@pytest.mark.parametrize("grid", ["757x997", "758x996", "2000x2000"])
def test_a_grid_larger_than_the_fabric_names_the_option_and_the_fabric(run_cli, phase, grid):
    err = _error(run_cli, "--model", "llama3-8b", "--hardware", "wse2", f"--{phase}-grid", grid)
    assert f"--{phase}-grid {grid}" in err and "757 x 996" in err
    assert f"[{'decode' if phase == 'prefill' else 'prefill'}]" not in err


def test_an_empty_batch_is_refused():
    arrays = LayoutArrays.from_columns(WSE2, LLAMA, pf_p=np.zeros(0, dtype=int), pf_q=24, dc_p=24, dc_q=24)
    with pytest.raises(SpecError, match="empty batch"):
        evaluate(WSE2, LLAMA, arrays)


def test_the_searched_region_cap_is_a_named_constant(monkeypatch):
    monkeypatch.setattr(_predict, "_MAX_SEARCHED_REGIONS", 2)
    _, chosen = default_layout(WSE2, LLAMA, grids={"prefill": (240, 240), "decode": (240, 240)})
    assert all(" 2 candidates" in t for t in chosen), chosen


def test_ops_with_the_same_parameters_but_other_extras_are_not_merged():
    params = local_work("add", np.asarray([4]), np.asarray([8]))
    ops = [Op("a", "local", params, 1, extra={"resident": 10.0}),
           Op("b", "local", params, 1, extra={"resident": 20.0}),
           Op("c", "local", params, 1, extra={"resident": 10.0})]
    costs = evaluate_ops(WSE2, ops)
    assert [float(costs[n].resident_bytes.reshape(-1)[0]) for n in "abc"] == [10.0, 20.0, 10.0]


GRIDS = {"pf_p": 24, "pf_q": 24, "dc_p": 24, "dc_q": 24}


@pytest.mark.parametrize(("columns", "message"), [
    ({"dc_group_num_y": -4}, "'dc_group_num_y' = -4 must be >= 0"),
    ({"pf_group_num_x": np.asarray([0, -2])}, "'pf_group_num_x' = -2 must be >= 0"),
    ({"dc_head_groups": -1}, "'dc_head_groups' = -1 must be >= 0"),
    ({"pf_p": "big"}, "'pf_p' = 'big' must be integers"),
    ({"dc_regions": 2.5}, "'dc_regions' = 2.5 must be integers"),
    ({"batch": True}, "'batch' = True must be integers"),
    ({"pf_gemm": [None]}, r"'pf_gemm' = None must be codes or names \(meshgemm, cannon, summa-relay\)"),
    ({"pf_p": np.arange(24, 27), "dc_q": np.arange(24, 26)},
     r"columns 'dc_q' \(2,\), 'pf_p' \(3,\) do not broadcast"),
])
def test_bad_columns_are_named_with_what_is_allowed(columns, message):
    with pytest.raises(SpecError, match=message):
        LayoutArrays.from_columns(WSE2, LLAMA, **(GRIDS | columns))


def test_integral_float_columns_are_accepted():
    arrays = LayoutArrays.from_columns(WSE2, LLAMA, **(GRIDS | {"pf_p": np.asarray([24.0, 48.0])}))
    assert arrays.prefill.p.dtype == np.int64 and arrays.prefill.p.tolist() == [24, 48]


def test_prefill_group_num_y_is_decode_only():
    # prefill allreduces all run along x: group_num_y would change nothing, so it is refused
    assert all(op.axis == "x" for op in prefill_plan(LLAMA, WSE2, layout_arrays(
        WSE2, LLAMA, [Layout.from_dict({"prefill": {"grid": [24, 24]}, "decode": {"grid": [24, 24]}})]
    ).prefill, 1, 64) if op.kind == "allreduce")
    with pytest.raises(SpecError, match=r"'pf_group_num_y' = 4: group_num_y is decode-only"):
        LayoutArrays.from_columns(WSE2, LLAMA, **(GRIDS | {"pf_group_num_y": 4}))
    layout = Layout.from_dict({"prefill": {"grid": [24, 24], "group_num_y": 4}, "decode": {"grid": [24, 24]}})
    with pytest.raises(SpecError, match=r"layout \[prefill\]: field 'group_num_y' = 4: .*decode-only"):
        layout_arrays(WSE2, LLAMA, [layout])
    decode = Layout.from_dict({"prefill": {"grid": [24, 24]}, "decode": {"grid": [24, 24], "group_num_y": 4}})
    assert int(layout_arrays(WSE2, LLAMA, [decode]).decode.group_num_y[0]) == 4


def test_memory_reasons_read_the_layers_per_region_of_the_batch():
    layout = Layout.from_dict({"prefill": {"grid": [240, 240], "regions": 2, "layers_per_region": [4, 28]},
                               "decode": {"grid": [240, 240], "regions": 3}})
    result = predict(WSE2, LLAMA, layout)
    texts = [t for t in result.infeasible_reasons if "exceeds the budget" in t]
    assert any(t.startswith("prefill:") and "(28 layers per region)" in t for t in texts), texts
    assert any(t.startswith("decode:") and "(11 layers per region)" in t for t in texts), texts


def test_memory_reasons_are_picked_by_their_bits_not_their_words(monkeypatch):
    # a reason that mentions memory but is not a memory bit is kept as it is
    monkeypatch.setitem(REASONS, 16, "prefill: the regions do not fit the fabric (nor its memory)")
    layout = Layout.from_dict({"prefill": {"grid": [480, 480]}, "decode": {"grid": [360, 360], "regions": 4}})
    arrays = layout_arrays(WSE2, LLAMA, [layout])
    unplaced = dataclasses.replace(
        arrays, prefill=dataclasses.replace(arrays.prefill, fits_fabric=np.asarray([False])))
    monkeypatch.setattr(_predict, "layout_arrays", lambda *_: unplaced)
    result = predict(WSE2, LLAMA, layout)
    assert REASONS[16] in result.infeasible_reasons


def test_route_details_name_an_op_that_runs():
    layout = Layout.from_dict({"prefill": {"grid": [480, 480], "gemm": "summa-relay"},
                               "decode": {"grid": [360, 360], "regions": 4}})
    ev = evaluate(WSE2, LLAMA, layout_arrays(WSE2, LLAMA, [layout]))
    off = next(op for op in ev.prefill.ops if op.name == "pv.skew_v")
    assert float(np.asarray(off.repeats).reshape(-1)[0]) == 0  # SUMMA relay needs no skew
    cost = ev.prefill.costs[off.name]
    costs = ev.prefill.costs | {off.name: dataclasses.replace(cost, routes=cost.routes + 1000)}
    ev = dataclasses.replace(ev, prefill=dataclasses.replace(ev.prefill, costs=costs))
    text = _predict._route_details(ev, WSE2, "prefill")
    assert "pv.skew_v" not in text and "needs 8 routes" in text, text


def test_a_layout_k_tree_deeper_than_its_lines_allow_is_an_error(run_cli, tmp_path):
    base = "\n".join(line for line in LAYOUT_FILE.splitlines() if not line.startswith(("k_tree", "allreduce")))
    path = tmp_path / "deep.toml"
    path.write_text(base.replace("[decode]", "[decode]\nallreduce = \"ktree\"\nk_tree = 40"))
    err = _error(run_cli, "--layout", str(path))
    assert "'k_tree' = 40" in err and "must be <=" in err
