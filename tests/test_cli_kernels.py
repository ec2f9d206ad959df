"""``plummer cost``, ``run``, ``validate`` and ``benchmark``, and the Cost arithmetic layouts use."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from plummer.benchmark import MESH_MAX, closed_form_figures, random_configurations
from plummer.hardware import load_hardware
from plummer.kernels import COST_KEYS, KERNELS, get_kernel
from plummer.kernels.broadcast import MulticastBroadcast


def _json(run_cli, *argv):
    code, out, err = run_cli(*argv)
    assert code == 0, err
    return json.loads(out)


def test_cost_gemm_json_has_the_breakdown(run_cli):
    payload = _json(run_cli, "cost", "gemm", "--mesh", "16x16", "--m", "128", "--k", "128", "--n", "128", "--json")
    expected = get_kernel("gemm", "meshgemm").cost(load_hardware("wse3"), p=16, q=16, m=128, k=128, n=128)
    for key in COST_KEYS + ("mean_core_cycles", "fits_routes", "fits_memory"):
        assert payload[key] == pytest.approx(expected.as_dict()[key]), key
    assert 0 < payload["compute_cycles"] < payload["cycles"]  # a product and its shifts: both show
    assert payload["p"] == 16 and payload["algo"] == "meshgemm" and payload["hardware"] == "wse3"


def test_run_gemm_is_correct_and_matches_its_prediction(run_cli):
    payload = _json(run_cli, "run", "gemm", "--mesh", "4x4", "--m", "8", "--k", "8", "--n", "8", "--json")
    assert payload["correct"] is True and payload["max_abs_error"] < 1e-3
    assert payload["cycles"] == pytest.approx(payload["predicted_cycles"])


def test_axis_and_defaults_reach_the_kernel(run_cli):
    along_y = _json(run_cli, "cost", "allreduce", "--mesh", "4x16", "--n", "8", "--axis", "y", "--json")
    along_x = _json(run_cli, "cost", "allreduce", "--mesh", "4x16", "--n", "8", "--json")
    assert along_y["axis"] == "y" and along_x["axis"] == "x"
    assert along_y["k_tree"] == 2 and along_y["group_num"] == 0
    assert along_y["hops"] > along_x["hops"]  # 16 cores along y, 4 along x


def test_run_collectives_are_correct(run_cli):
    for argv in (
        ("run", "gemv", "--mesh", "8x8", "--m", "16", "--n", "16", "--axis", "y", "--k-tree", "2", "--group-num", "2"),
        ("run", "allreduce", "--algo", "ring", "--mesh", "5x2", "--n", "10"),
        ("run", "shift", "--mesh", "6x3", "--m", "12", "--n", "6", "--distance", "2"),
        ("run", "broadcast", "--mesh", "7x2", "--n", "3"),
    ):
        payload = _json(run_cli, *argv, "--json")
        assert payload["correct"] is True, argv
        assert payload["cycles"] == pytest.approx(payload["predicted_cycles"]), argv


@pytest.mark.parametrize(
    "argv, words",
    [
        (("cost", "gemm", "--mesh", "8x8", "--m", "8", "--k", "8", "--n", "8", "--axis", "x"), ["--axis", "does not apply"]),
        (("cost", "gemm", "--mesh", "8x8", "--m", "8", "--k", "8"), ["needs --n"]),
        (("cost", "gemm", "--mesh", "8x4", "--m", "4", "--k", "8", "--n", "8"), ["'m'", "lcm(p, q)"]),
        (("cost", "gemm", "--mesh", "8x8", "--m", "9", "--k", "8", "--n", "8"), ["'m'", "9"]),
        (("cost", "gemm", "--mesh", "axb", "--m", "8", "--k", "8", "--n", "8"), ["--mesh", "axb"]),
        (("cost", "gemm", "--algo", "fast", "--mesh", "8x8", "--m", "8", "--k", "8", "--n", "8"), ["'fast'", "meshgemm"]),
        (("cost", "allreduce", "--mesh", "8x8", "--n", "4", "--group-num", "3"), ["'group_num'", "3"]),
        (("cost", "shift", "--mesh", "8x8", "--m", "16", "--n", "16", "--distance", "0"), ["'distance'", "0"]),
        (("cost", "gemm", "--mesh", "900x900", "--m", "900", "--k", "900", "--n", "900"), ["'p'", "900"]),
        (("benchmark", "--repeats", "0"), ["--repeats", "0"]),
        (("benchmark", "--configs", "0"), ["--configs", "0"]),
        (("benchmark", "--limit", "-1"), ["--limit", "-1"]),
        (("benchmark", "--clock", "sun"), ["--clock", "sun"]),
        (("run", "broadcast", "--mesh", "200x200", "--n", "1"), ["40,000 cores", "--force"]),
    ],
)
def test_bad_kernel_input_exits_2_with_one_line(run_cli, argv, words):
    code, out, err = run_cli(*argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def test_validate_json_table(run_cli):
    payload = _json(run_cli, "validate", "broadcast", "--json")
    assert payload["rows"] and all(row["correct"] for row in payload["rows"])
    assert {"predicted", "executed", "rel_error"} <= set(payload["rows"][0])
    (summary,) = payload["summary"]
    assert summary["algo"] == "multicast" and summary["max_error"] < 1e-9


def test_cost_sum_is_sequential_composition():
    spec = load_hardware("wse3")
    p = np.array([4, 8, 16])
    gemm = get_kernel("gemm", "meshgemm").cost(spec, p=p, q=p, m=4 * p, k=4 * p, n=4 * p)
    reduce = get_kernel("allreduce", "ktree").cost(spec, p=p, q=p, n=4 * np.ones_like(p), axis="y")
    both = gemm + reduce
    for key in ("cycles", "compute_cycles", "comm_cycles", "hops", "routing_stages", "mean_core_cycles"):
        assert np.allclose(getattr(both, key), getattr(gemm, key) + getattr(reduce, key)), key
    assert np.allclose(both.memory_per_core_bytes, np.maximum(gemm.memory_per_core_bytes, reduce.memory_per_core_bytes))
    assert np.allclose(both.routes_per_core, np.maximum(gemm.routes_per_core, reduce.routes_per_core))
    assert both.route_budget == gemm.route_budget and both.memory_budget == gemm.memory_budget
    three = reduce.scaled(3)
    for key in ("cycles", "compute_cycles", "comm_cycles", "hops", "routing_stages", "mean_core_cycles"):
        assert np.allclose(getattr(three, key), 3 * getattr(reduce, key)), key
    assert np.array_equal(three.memory_per_core_bytes, reduce.memory_per_core_bytes)
    assert np.array_equal(three.routes_per_core, reduce.routes_per_core)


def test_benchmark_json_has_a_row_per_kernel(run_cli):
    out = _json(run_cli, "benchmark", "--part", "kernels", "--quick", "--configs", "2000", "--limit", "0.3",
                "--repeats", "1", "--json")
    assert set(out) == {"kernels"}
    payload = out["kernels"]
    assert payload["clock"] == "cpu" and payload["repeats"] == 1
    assert payload["executor_meshgemm_32x32_8x8x8_s"] > 0 and "executor_meshgemm_64x64_8x8x8_s" not in payload
    rows = payload["closed_forms"]
    assert [(row["kernel"], row["algo"]) for row in rows] == list(KERNELS)
    for row in rows:
        if row["configs_per_s"] is None:  # stopped at the limit: said so
            assert "passed 0.3 s" in row["note"], row
        else:
            assert row["configs_per_s"] > 0 and 1000 <= row["configs"] <= 2000, row
        assert row["scalar_us"] is None or row["scalar_us"] > 0, row


@pytest.mark.parametrize("kernel", list(KERNELS.values()), ids=lambda k: f"{k.family}-{k.name}")
def test_benchmark_configurations_are_valid_and_all_vary(kernel):
    spec = load_hardware("wse3")
    configs = random_configurations(spec, kernel, 3000)  # kernel.check accepted them
    assert set(configs) == set(kernel.parameters)
    for name in kernel.parameters:
        values = configs[name]
        if name == "axis":
            assert values == "y"
            continue
        assert values.shape == (3000,) and len(np.unique(values)) > 1, name
    assert 2 <= configs["p"].min() and max(configs["p"].max(), configs["q"].max()) <= MESH_MAX
    if kernel.family == "gemm" and not getattr(kernel, "square", True):
        assert np.any(configs["p"] != configs["q"])  # the non-square variant, where allowed


def test_benchmark_stops_a_call_past_the_limit():
    class Stuck(MulticastBroadcast):
        def cost(self, spec, **params):
            time.sleep(5)

    row = closed_form_figures(load_hardware("wse3"), Stuck(), 2000, 1, limit=0.05)
    assert row["configs_per_s"] is None and row["scalar_us"] is None
    assert "vectorised: 1,000 configurations passed 0.05 s" in row["note"] and "scalar" in row["note"]


def test_benchmark_names_a_family_without_generator():
    class Unknown(MulticastBroadcast):
        family = "softmax"

    row = closed_form_figures(load_hardware("wse3"), Unknown(), 100, 1, limit=1.0)
    assert row["configs_per_s"] is None and "no generator" in row["note"] and "softmax" in row["note"]
