"""LLM layouts: plans, the batch closed form, metrics, memory fit, placement and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plummer.errors import SpecError
from plummer.hardware import load_hardware
from plummer.layout import Layout, LayoutArrays, evaluate, layout_arrays, load_layout, save_layout
from plummer.layout._arrays import default_head_groups
from plummer.layout._plan import decode_plan, prefill_plan
from plummer.layout._predict import default_layout, predict
from plummer.model import load_model, model_presets

WSE2 = load_hardware("wse2")
WSE3 = load_hardware("wse3")
LLAMA = load_model("llama3-8b")


def _layout(**phases) -> Layout:
    data = {"prefill": {"grid": [480, 480]}, "decode": {"grid": [360, 360], "regions": 4}}
    for phase, fields in phases.items():
        if phase in data:
            data[phase] = data[phase] | fields
        else:
            data[phase] = fields
    return Layout.from_dict(data)


def _metrics(layout: Layout, spec=WSE2, model=LLAMA) -> dict[str, float]:
    return predict(spec, model, layout).metrics


def test_plans_name_every_op_of_the_layer():
    arrays = layout_arrays(WSE2, LLAMA, [_layout()])
    prefill = [op.name for op in prefill_plan(LLAMA, WSE2, arrays.prefill, arrays.batch, arrays.input_tokens)]
    for name in ("norm1.sumsq", "norm1.allreduce", "q_proj", "kv_proj", "rope", "scores", "softmax.max",
                 "softmax.allreduce_max", "softmax.allreduce_sum", "pv", "o_proj", "residual1",
                 "norm2.allreduce", "up_gate", "silu_mul", "down", "residual2"):
        assert name in prefill
    decode = decode_plan(LLAMA, WSE2, arrays.decode, arrays.batch, np.asarray(4097), np.asarray(12), np.asarray(True))
    allreduces = [op for op in decode if op.kind == "allreduce"]
    assert len(allreduces) == 10  # six vector, four scalar (DESIGN.md)
    scalar = [op.name for op in allreduces if op.name.startswith(("norm", "softmax"))]
    assert sorted(scalar) == ["norm1.allreduce", "norm2.allreduce", "softmax.allreduce_max", "softmax.allreduce_sum"]
    axes = {op.name: op.axis for op in allreduces}
    # the weight layouts alternate, so the reduce axis does too: no transpose anywhere
    assert axes["qkv.allreduce"] == "y" and axes["o.allreduce"] == "x"
    assert axes["up_gate.allreduce"] == "y" and axes["down.allreduce"] == "x"


def test_useful_flops_match_the_model_without_its_lm_head():
    """The plans' useful FLOPs are the model's (true sizes, causal attention once), less the
    LM head, which no plan places."""
    layout = _layout()
    m = _metrics(layout)
    n_in, n_out = layout.input_tokens, layout.output_tokens
    lm_head = 2 * LLAMA.hidden * LLAMA.vocab
    assert m["flops_prefill"] == pytest.approx(LLAMA.flops_prefill(n_in) - lm_head, rel=1e-12)
    decode = sum(LLAMA.flops_per_token_decode(n_in + i) - lm_head for i in range(1, n_out + 1))
    assert m["flops_decode"] == pytest.approx(decode, rel=1e-12)


def test_one_layout_equals_its_element_of_a_batch():
    layouts = [_layout(), _layout(decode={"grid": [240, 240], "regions": 8}),
               _layout(prefill={"grid": [600, 600], "gemm": "summa-relay"}, kv_cache="concat")]
    batch = evaluate(WSE2, LLAMA, layout_arrays(WSE2, LLAMA, layouts)).metrics
    for i, layout in enumerate(layouts):
        one = _metrics(layout)
        for key in ("ttft_s", "decode_tokens_per_s", "e2e_tokens_per_s", "utilization",
                    "memory_per_core_bytes", "max_context_shift"):
            assert one[key] == batch[key][i], (key, i)


def test_outer_product_batch_equals_the_flat_batch():
    """A batch built as an outer product (each column on its own axis) evaluates each op
    over the columns it depends on; every figure equals the flat batch's."""
    pf = np.array([240, 480, 720])[:, None, None]
    dc = np.array([120, 360])[None, :, None]
    regions = np.array([1, 4, 8])[None, None, :]
    grid = LayoutArrays.from_columns(WSE2, LLAMA, pf_p=pf, pf_q=pf, dc_p=dc, dc_q=dc, dc_regions=regions)
    m_grid = evaluate(WSE2, LLAMA, grid).metrics
    a, b, c = (x.reshape(-1) for x in np.broadcast_arrays(pf, dc, regions))
    flat = LayoutArrays.from_columns(WSE2, LLAMA, pf_p=a, pf_q=a, dc_p=b, dc_q=b, dc_regions=c)
    m_flat = evaluate(WSE2, LLAMA, flat).metrics
    for key, value in m_flat.items():
        np.testing.assert_array_equal(np.asarray(m_grid[key]).reshape(-1), value, err_msg=key)


def test_decode_sum_over_steps_equals_each_step_evaluated():
    """The decode layer is affine in the busiest row's cached tokens on the WSE presets with
    tree allreduces, so the two-point sum over the output tokens is exact."""
    for kv in ("shift", "concat"):
        layout = _layout(kv_cache=kv, output_tokens=40, decode={"grid": [16, 16], "regions": 4})
        m = _metrics(layout)
        arrays = layout_arrays(WSE2, LLAMA, [layout])
        total = 0.0
        for step in range(1, 41):
            context = layout.input_tokens + step
            q = 16
            rows = -(-context // q) if kv == "shift" else -(-layout.input_tokens // q) + step
            ops = decode_plan(LLAMA, WSE2, arrays.decode, arrays.batch, np.asarray(context),
                              np.asarray(rows), np.asarray(kv == "shift"))
            from plummer.layout._evaluate import evaluate_ops, layer_cycles

            layer = layer_cycles(ops, evaluate_ops(WSE2, ops), WSE2.launch_overhead_cycles)
            total += float(np.asarray(layer).reshape(-1)[0])
        transfers = m["decode_cycles_total"] - LLAMA.layers * total
        assert transfers == pytest.approx(40 * (m["decode_cycles_per_token"]
                                                - LLAMA.layers * m["decode_layer_cycles"]), rel=1e-9)


def test_decode_slows_down_once_allreduce_latency_dominates():
    """Past some grid size, more cores make decode slower per token (WaferLLM, section 3):
    the allreduces' hops grow with the grid while the per-core GEMV work shrinks."""
    sides = [60, 120, 240, 480, 720]
    rate = [_metrics(_layout(decode={"grid": [s, s], "regions": 1}))["decode_tokens_per_s"] for s in sides]
    peak = int(np.argmax(rate))
    assert 0 < peak < len(sides) - 1
    assert all(a > b for a, b in zip(rate[peak:], rate[peak + 1:]))


def test_prefill_gets_faster_with_more_cores():
    ttft = [_metrics(_layout(prefill={"grid": [s, s]}))["ttft_s"] for s in (240, 360, 480, 600, 720)]
    assert all(a > b for a, b in zip(ttft, ttft[1:]))


def test_shift_kv_capacity_is_about_the_rows_times_concatenation():
    m = _metrics(_layout(input_tokens=16, output_tokens=16))
    rows = 360
    assert m["max_context_shift"] == pytest.approx(rows * (m["max_context_concat"] - 16 + 1), rel=0.01)
    assert m["max_context_shift"] > 100 * m["max_context_concat"]


@pytest.mark.parametrize("spec", [WSE2, WSE3], ids=["wse2", "wse3"])
@pytest.mark.parametrize("name", model_presets())
def test_every_preset_model_gets_a_default_layout(spec, name):
    """A feasible default layout, or a statement of why none exists: the weights exceed the
    wafer's SRAM (the regions of a phase can hold at most the whole fabric)."""
    model = load_model(name)
    layout, chosen = default_layout(spec, model)
    result = predict(spec, model, layout, chosen)
    sram = spec.memory_bytes * spec.fabric_width * spec.fabric_height
    weights = model.weights_per_layer * model.layers * spec.dtype_bytes
    if weights < 0.5 * sram:  # room to spare: a default must fit
        assert result.feasible, result.infeasible_reasons
    if weights > sram:  # cannot fit: the statement says why
        assert not result.feasible
    if not result.feasible:
        assert any("memory per core" in r and "exceeds the budget" in r for r in result.infeasible_reasons)
    assert len(chosen) == 2


def test_infeasible_layouts_name_the_bytes_and_still_have_timing():
    result = predict(WSE2, LLAMA, _layout(decode={"grid": [120, 120], "regions": 1}))
    assert not result.feasible
    text = " ".join(result.infeasible_reasons)
    assert "decode: memory per core" in text and "exceeds the budget 49,152 B" in text and "weights" in text
    assert np.isfinite(result.metrics["decode_tokens_per_s"]) and result.metrics["decode_tokens_per_s"] > 0


def test_layout_file_round_trip(tmp_path):
    layout = _layout(prefill={"grid": [480, 480], "gemm": "cannon", "head_groups": 4},
                     decode={"grid": [360, 240], "regions": 3, "layers_per_region": [10, 11, 11],
                             "origins": [[0, 0], [360, 0], [0, 240]]})
    path = tmp_path / "layout.toml"
    save_layout(layout, path)
    assert load_layout(path) == layout


@pytest.mark.parametrize("changes, field", [
    ({"prefill": {"grid": [800, 800]}}, "grid"),
    ({"decode": {"grid": [360, 360], "regions": 40}}, "regions"),
    ({"decode": {"grid": [360, 360], "regions": 2, "layers_per_region": [10, 10]}}, "layers_per_region"),
    ({"decode": {"grid": [360, 360], "regions": 2, "origins": [[0, 0], [100, 100]]}}, "origins"),
    ({"decode": {"grid": [360, 360], "head_groups": 3}}, "head_groups"),
    ({"decode": {"grid": [360, 360], "group_num_y": 7}}, "group_num_y"),
])
def test_bad_layouts_name_the_field(changes, field):
    with pytest.raises(SpecError, match=field):
        predict(WSE2, LLAMA, _layout(**changes))


def test_bad_layout_files_name_the_key(tmp_path):
    for text, key in (("batch = 0\n[prefill]\ngrid=[4,4]\n[decode]\ngrid=[4,4]\n", "batch"),
                      ("[prefill]\ngrid=[4,4]\ncolour=1\n[decode]\ngrid=[4,4]\n", "colour"),
                      ("speed = 3\n[prefill]\ngrid=[4,4]\n[decode]\ngrid=[4,4]\n", "speed"),
                      ("[prefill]\ngrid=[4]\n[decode]\ngrid=[4,4]\n", "grid")):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(SpecError, match=key):
            load_layout(path)


def test_predict_cli_prints_a_table_and_json(run_cli, tmp_path):
    code, out, err = run_cli("predict", "--model", "llama3-8b", "--hardware", "wse2",
                             "--prefill-grid", "480x480", "--decode-grid", "360x360", "--decode-regions", "4")
    assert code == 0, err
    assert "ttft_s" in out and "decode_tokens_per_s" in out and "q_proj" in out
    code, out, err = run_cli("predict", "--model", "llama3-8b", "--hardware", "wse2", "--prefill-grid", "480x480",
                             "--decode-grid", "360x360", "--decode-regions", "4", "--json",
                             "-o", str(tmp_path / "l.toml"))
    assert code == 0, err
    payload = json.loads(out)
    for key in ("ttft_s", "prefill_tokens_per_s", "decode_tokens_per_s", "e2e_tokens_per_s", "utilization",
                "memory_per_core_bytes", "feasible", "infeasible_reasons", "max_context_concat",
                "max_context_shift", "breakdown", "layout"):
        assert key in payload
    code, again, err = run_cli("predict", "--layout", str(tmp_path / "l.toml"), "--json")
    assert code == 0, err
    assert json.loads(again)["ttft_s"] == payload["ttft_s"]


@pytest.mark.parametrize("argv", [
    ["--prefill-grid", "900x900"], ["--regions", "0"], ["--batch", "0"], ["--input-tokens", "0"],
    ["--decode-grid", "300x300", "--decode-regions", "60"], ["--layout", "/no/such/file.toml"],
    ["--model", "no-such-model"],
])
def test_predict_cli_bad_input_is_one_line_and_exit_2(run_cli, argv):
    code, out, err = run_cli("predict", *argv)
    assert code == 2
    assert err.count("\n") == 1 and "error" in err


def test_default_head_groups_store_every_kv_head_once():
    assert default_head_groups(LLAMA, 480, 480) == LLAMA.kv_heads
    assert default_head_groups(LLAMA, 8) == 4  # 2 columns per group at most 4 groups
    # 660 / 8 = 82 columns do not divide 660 rows (lcm 27,060): 4 groups of 165 do
    assert default_head_groups(LLAMA, 660, 660) == 4
