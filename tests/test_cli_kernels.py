"""``plummer cost``, ``run``, ``validate`` and ``benchmark``, and the Cost arithmetic layouts use."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from plummer.benchmark import MESH_MAX, closed_form_figures, random_configurations
from plummer.errors import PlummerError
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


# ------------------------------------------------------------ kernel input checks
KTREE_LINES = [("allreduce", "ktree"), ("allreduce", "reduce-ktree"), ("allreduce", "ktree-2d"), ("gemv", "ktree")]


def test_max_ktree_levels():
    from plummer.kernels.allreduce import KTREE_ANY_LINE, max_ktree_levels

    assert KTREE_ANY_LINE == 4
    assert [max_ktree_levels(n) for n in (2, 3, 15, 16, 31, 32, 63, 64, 1172)] == [4, 4, 4, 4, 4, 5, 5, 6, 10]
    lengths = np.array([2, 16, 32, 64, 1172])
    assert max_ktree_levels(lengths).tolist() == [max_ktree_levels(int(n)) for n in lengths]


@pytest.mark.parametrize("family, algo", KTREE_LINES)
def test_api_refuses_a_deeper_ktree_than_the_line_allows(family, algo):
    spec = load_hardware("wse3")
    kernel = get_kernel(family, algo)
    sizes = {"n": 64, "m": 64} if family == "gemv" else {"n": 8}
    kernel.cost(spec, p=8, q=8, k_tree=4, **sizes)  # 4: allowed on any line
    kernel.cost(spec, p=32, q=32, k_tree=5, **sizes)  # 5 = log2(32)
    for method in (kernel.cost, kernel.check, kernel.execute):
        with pytest.raises(PlummerError, match=r"'k_tree' = 5 must be <= 4 on a line of 8 cores"):
            method(spec, p=8, q=8, k_tree=5, **sizes)
    with pytest.raises(PlummerError, match=r"'k_tree' = 7 must be <= 6 on a line of 64 cores"):  # vectorised
        kernel.cost(spec, p=np.array([64, 64]), q=np.array([64, 64]), k_tree=np.array([6, 7]),
                    **{k: np.array([v * 8, v * 8]) for k, v in sizes.items()})


@pytest.mark.parametrize(
    "kernel, params, words",
    [
        (("gemm", "meshgemm"), {"p": 0, "q": 8, "m": 8, "k": 8, "n": 8}, ["'p' = 0", ">= 1"]),
        (("gemm", "meshgemm"), {"p": 8, "q": -8, "m": 8, "k": 8, "n": 8}, ["'q' = -8", ">= 1"]),
        (("gemm", "cannon"), {"p": 8, "q": 8, "m": 8, "k": 0, "n": 8}, ["'k' = 0", ">= 1"]),
        (("gemm", "summa"), {"p": 8, "q": 8, "m": 8, "k": 8, "n": -16}, ["'n' = -16", ">= 1"]),
        (("allreduce", "ring"), {"p": 8, "q": 8, "n": 0}, ["'n' = 0", ">= 1"]),
        (("allreduce", "ktree"), {"p": 8, "q": 8, "n": 4, "k_tree": 0}, ["'k_tree' = 0", ">= 1"]),
        (("allreduce", "ktree"), {"p": 8, "q": 8, "n": 4, "group_num": -1}, ["'group_num' = -1", ">= 0"]),
        (("broadcast", "multicast"), {"p": 8, "q": 8, "n": -2}, ["'n' = -2", ">= 1"]),
        (("gemv", "pipeline"), {"p": 8, "q": 8, "m": 0, "n": 8}, ["'m' = 0", ">= 1"]),
        (("shift", "shift"), {"p": 8, "q": 8, "m": 8, "n": 8, "distance": 0}, ["'distance' = 0", ">= 1"]),
        (("shift", "shift"), {"p": 8, "q": 8, "m": -8, "n": 8, "distance": 1}, ["'m' = -8", ">= 1"]),
    ],
)
def test_api_refuses_zero_and_negative_sizes(kernel, params, words):
    spec = load_hardware("wse3")
    for method in ("cost", "execute"):
        with pytest.raises(PlummerError) as info:
            getattr(get_kernel(*kernel), method)(spec, **params)
        for word in words:
            assert word in str(info.value), (method, word, str(info.value))


@pytest.mark.parametrize(
    "argv, words",
    [
        (("cost", "allreduce", "--mesh", "8x8", "--n", "4", "--k-tree", "5"),
         ["--k-tree", "= 5", "<= 4", "8 cores"]),
        (("run", "allreduce", "--mesh", "8x2", "--n", "4", "--k-tree", "9"), ["--k-tree", "= 9", "<= 4"]),
        (("cost", "allreduce", "--algo", "ktree-2d", "--mesh", "64x8", "--n", "4", "--k-tree", "5"),
         ["--k-tree", "= 5", "<= 4", "8 cores"]),
        (("cost", "gemv", "--mesh", "64x64", "--m", "64", "--n", "64", "--k-tree", "7"),
         ["--k-tree", "= 7", "<= 6", "64 cores"]),
        (("cost", "allreduce", "--mesh", "8x8", "--n", "4", "--k-tree", "0"), ["--k-tree", "= 0", ">= 1"]),
        (("cost", "allreduce", "--mesh", "8x8", "--n", "4", "--group-num", "-1"), ["--group-num", "= -1", ">= 0"]),
        (("cost", "shift", "--mesh", "8x8", "--m", "16", "--n", "16", "--distance", "-1"),
         ["--distance", "= -1", ">= 1"]),
        (("cost", "gemm", "--mesh", "0", "--m", "8", "--k", "8", "--n", "8"), ["--mesh", "'0'", ">= 1"]),
        (("cost", "gemm", "--mesh", "8x0", "--m", "8", "--k", "8", "--n", "8"), ["--mesh", "'8x0'", ">= 1"]),
        (("cost", "gemm", "--mesh", "8x8x8", "--m", "8", "--k", "8", "--n", "8"), ["--mesh", "'8x8x8'", "PxQ"]),
        (("cost", "gemm", "--mesh", "1000", "--m", "1000", "--k", "1000", "--n", "1000"),
         ["--mesh P", "= 1000", "fabric width"]),
        (("cost", "gemm", "--mesh", "8x8", "--m", "0", "--k", "8", "--n", "8"), ["--m", "= 0", ">= 1"]),
        (("cost", "gemm", "--mesh", "8x8", "--m", "8", "--k", "-8", "--n", "8"), ["--k", "= -8", ">= 1"]),
        (("run", "gemm", "--mesh", "4x4", "--m", "8", "--k", "8", "--n", "0"), ["--n", "= 0", ">= 1"]),
        (("cost", "allreduce", "--mesh", "8x8", "--n", "-3"), ["--n", "= -3", ">= 1"]),
        (("cost", "broadcast", "--mesh", "8x8", "--n", "0"), ["--n", "= 0", ">= 1"]),
        (("cost", "gemv", "--mesh", "8x8", "--m", "0", "--n", "8"), ["--m", "= 0", ">= 1"]),
        (("run", "shift", "--mesh", "4x4", "--m", "0", "--n", "8", "--distance", "1"), ["--m", "= 0", ">= 1"]),
        (("cost", "allreduce", "--mesh", "1x8", "--n", "8"), ["--mesh P", "= 1", ">= 2"]),
    ],
)
def test_cli_kernel_input_errors_name_the_option(run_cli, argv, words):
    code, out, err = run_cli(*argv)
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def test_mesh_of_one_number_is_square(run_cli):
    square = _json(run_cli, "cost", "gemm", "--mesh", "8", "--m", "64", "--k", "64", "--n", "64", "--json")
    assert (square["p"], square["q"]) == (8, 8)
    assert square == _json(run_cli, "cost", "gemm", "--mesh", "8x8", "--m", "64", "--k", "64", "--n", "64", "--json")
    code, out, _ = run_cli("cost", "--help")
    assert "one number P means PxP" in " ".join(out.split())


def test_a_shift_as_long_as_the_axis_is_allowed(run_cli):
    # measured on WSE-3 (shift.json has L = P and L = 2P): every core runs all L steps
    cycles = [_json(run_cli, "cost", "shift", "--mesh", "8x8", "--m", "16", "--n", "16", "--distance", d,
                    "--json")["cycles"] for d in (7, 8, 16)]
    assert cycles[0] < cycles[1] < cycles[2]
    run = _json(run_cli, "run", "shift", "--mesh", "4x4", "--m", "8", "--n", "8", "--distance", "4", "--json")
    assert run["correct"] is True and run["cycles"] == pytest.approx(run["predicted_cycles"])


def test_help_says_how_deep_a_ktree_may_be(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    _, out, _ = run_cli("cost", "--help")
    assert "at most floor(log2 of the cores along the axis), or 4 on any line" in out


def test_the_search_benchmark_table_prints_regrets_and_shares_in_percent(capsys):
    from plummer.cli._kernels import _print_studies

    runs = [{"trials_to_1pct": 33}, {"trials_to_1pct": None}]
    figures = {"studies": [{"study": "s", "points": 10, "exhaustive_s": 0.1, "seeds": 2, "runs": runs,
                            "median_regret": {"10": None, "50": 0.25, "300": 0.0},
                            "runs_within_1pct": 1, "median_evaluation_share": 0.044}],
               "exhaustive": {"points": 100, "seconds": 2.0, "points_per_s": 50.0}}
    _print_studies(figures)
    header, row = capsys.readouterr().out.splitlines()[2:4]
    assert header.split()[4:7] == ["@10", "@50", "@300"]  # after "study points exhaustive s"
    assert row.split() == ["s", "10", "0.1", "-", "25.0%", "0.0%", "1/2", "33", "-", "4.4%"]
