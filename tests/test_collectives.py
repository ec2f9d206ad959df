"""Collectives, GEMV and shift: real results on the executor, closed forms against it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plummer.benchmark import one_configuration, random_configurations
from plummer.errors import RoutingError, SpecError
from plummer.hardware import load_hardware
from plummer.kernels import COST_KEYS, allreduce, broadcast, gemv, shift

FITTED = load_hardware("wse3").replace(
    alpha=2.85, beta=9.2, fma_per_cycle=4.9, vector_op_overhead_cycles=2.1,
    loop_overhead_cycles=39.0, step_overhead_cycles=121.0, message_overhead_cycles=33.5,
    launch_overhead_cycles=51.0,
)
PRESET = load_hardware("wse3")
KERNELS = allreduce.KERNELS + broadcast.KERNELS + gemv.KERNELS + shift.KERNELS


#: What :class:`~plummer.kernels.allreduce.KTreeAllreduce` states for K >= 3 over its sweep:
#: the executor's makespan and mean exceed the closed form (a lower bound) by at most these
#: fractions, by (broadcast, vector of more than 16 elements).
K3_BOUNDS = {
    (True, False): (0.0048, 0.0048), (True, True): (0.24, 0.25),
    (False, False): (0.0058, 0.0016), (False, True): (0.28, 0.070),
}


def _k3_gaps(kernel, config, cost, ex):
    """(bound key, makespan gap, mean gap) of a K >= 3 configuration: executor over closed form."""
    elements = config["n"] if kernel.family == "allreduce" else config["n"] // config["p" if config["axis"] == "y" else "q"]
    key = (kernel.name != "reduce-ktree", elements > 16)
    return key, 1 - float(cost.cycles) / ex.cycles, 1 - float(cost.mean_core_cycles) / ex.mean_core_cycles


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: f"{k.family}-{k.name}")
@pytest.mark.parametrize("spec", [FITTED, PRESET], ids=["fitted", "preset"])
def test_sweep_correct_and_closed_form_matches(kernel, spec):
    for config in kernel.sweep():
        run = kernel.execute(spec, **config)
        assert run.correct, config
        cost = kernel.cost(spec, **config)
        ex = run.execution
        if config.get("k_tree", 2) >= 3:  # a lower bound, within what the docstring states
            key, gap, gap_mean = _k3_gaps(kernel, config, cost, ex)
            assert -1e-12 <= gap <= K3_BOUNDS[key][0], config
            assert -1e-12 <= gap_mean <= K3_BOUNDS[key][1], config
        else:
            assert float(cost.cycles) == pytest.approx(ex.cycles, rel=1e-9), config
            assert float(cost.mean_core_cycles) == pytest.approx(ex.mean_core_cycles, rel=1e-9), config
        assert int(cost.routes_per_core) == int(ex.routes_per_core.max()), config
        assert int(cost.memory_per_core_bytes) == int(ex.peak_memory_bytes.max()), config


def test_k3_bounds_are_the_measured_maxima():
    """The stated K >= 3 figures are the sweep's maxima rounded up to two digits (not a margin)."""
    worst = {key: [0.0, 0.0] for key in K3_BOUNDS}
    for kernel in (allreduce.KTreeAllreduce(), allreduce.ReduceKTree()):
        for spec in (FITTED, PRESET):
            for config in kernel.sweep():
                if config["k_tree"] >= 3:
                    ex = kernel.execute(spec, **config).execution
                    key, gap, gap_mean = _k3_gaps(kernel, config, kernel.cost(spec, **config), ex)
                    worst[key] = [max(worst[key][0], gap), max(worst[key][1], gap_mean)]
    for key, bounds in K3_BOUNDS.items():
        for measured, stated in zip(worst[key], bounds):
            assert 0.95 * stated <= measured <= stated, (key, measured, stated)


@pytest.mark.parametrize("kernel", [allreduce.KTreeAllreduce(), allreduce.ReduceKTree()], ids=lambda k: k.name)
def test_ktree_k2_exact_on_every_group_count(kernel):
    """Exact also where level-2 edges wait behind level-1 messages (long vectors)."""
    waited = 0
    for length in (7, 12, 36, 64):
        for g in [d for d in range(1, length + 1) if length % d == 0]:
            for n in (1, 8, 64, 200):
                cfg = {"p": 2, "q": length, "n": n, "k_tree": 2, "group_num": g, "axis": "y"}
                ex = kernel.execute(FITTED, **cfg).execution
                cost = kernel.cost(FITTED, **cfg)
                assert float(cost.cycles) == pytest.approx(ex.cycles, rel=1e-9), cfg
                assert float(cost.mean_core_cycles) == pytest.approx(ex.mean_core_cycles, rel=1e-9), cfg
                waited += ex.link_waits > 0
    assert waited >= 20  # the link wait of two-level trees is exercised, not avoided


@pytest.mark.parametrize("name", ["pipeline", "pipeline-mid", "ktree", "ring"])
@pytest.mark.parametrize("length", [5, 6])
def test_scalar_allreduce_is_n_equals_1(name, length):
    kernel = next(k for k in allreduce.KERNELS if k.name == name)
    run = kernel.execute(FITTED, p=length, q=3, n=1 if name != "ring" else length)
    assert run.correct
    if name != "ring":
        assert run.output.shape == (3, length, 1)


def test_odd_and_even_meshes_both_axes():
    for kernel in KERNELS:
        if kernel.name == "ktree-2d":
            configs = [{"p": 5, "q": 4, "n": 3}, {"p": 4, "q": 7, "n": 2, "axis": "y"}]
        elif kernel.family in ("allreduce", "broadcast"):
            configs = [{"p": 5, "q": 4, "n": 20}, {"p": 4, "q": 6, "n": 12, "axis": "y"}]
        elif kernel.family == "gemv":
            configs = [{"p": 5, "q": 4, "m": 10, "n": 8, "axis": "x"}, {"p": 3, "q": 6, "m": 12, "n": 6, "axis": "y"}]
        else:
            configs = [{"p": 5, "q": 4, "m": 10, "n": 8, "distance": 2}, {"p": 3, "q": 6, "m": 6, "n": 12, "distance": 7, "axis": "y"}]
        for config in configs:
            assert kernel.execute(FITTED, **config).correct, (kernel.name, config)


def test_ktree_critical_path_stages_and_hops():
    kernel = allreduce.KTreeAllreduce()
    # closed form: about K * P^(1/K) / 2 stages, about P hops
    p = 64
    for k in (1, 2, 3):
        cost = kernel.cost(FITTED, p=2, q=p, n=1, k_tree=k, group_num=0, axis="y")
        assert float(cost.routing_stages) <= k * p ** (1 / k)
        assert p - 1 <= float(cost.hops) <= 2 * p
    stages = [float(kernel.cost(FITTED, p=2, q=400, n=1, k_tree=k, group_num=0, axis="y").routing_stages) for k in (1, 2, 3)]
    assert stages[0] > stages[1] > stages[2]
    # the executor's makespan decomposes exactly into those stages and hops
    for q, g in ((48, 6), (63, 7), (64, 8)):
        cfg = {"p": 2, "q": q, "n": 4, "k_tree": 2, "group_num": g, "axis": "y"}
        cost = kernel.cost(FITTED, **cfg)
        n_per_group = q // g
        assert float(cost.routing_stages) == n_per_group // 2 + g // 2
        root = (g // 2) * n_per_group + n_per_group // 2
        assert float(cost.hops) == root + max(root, q - 1 - root)
        ex = kernel.execute(FITTED, **cfg).execution
        fixed = FITTED.launch_overhead_cycles + 3 * FITTED.message_overhead_cycles + 4
        assert ex.cycles == pytest.approx(
            fixed + FITTED.beta * float(cost.routing_stages) + FITTED.alpha * float(cost.hops), rel=1e-12
        )


def test_best_group_count_near_sqrt_p():
    kernel = gemv.KTreeGEMV()
    for p in (144, 400, 720):
        groups = np.array([d for d in range(1, p + 1) if p % d == 0])
        cycles = kernel.cost(FITTED, p=p, q=p, m=p, n=p, k_tree=2, group_num=groups, axis="y").cycles
        best = groups[int(np.argmin(cycles))]
        assert math.sqrt(p) / 2 <= best <= 2 * math.sqrt(p), (p, best)


def test_meshgemv_beats_pipeline_more_with_p():
    sizes = np.array([64, 128, 256, 512, 720])
    params = {"p": sizes, "q": sizes, "m": sizes, "n": sizes, "axis": "y"}
    tree = gemv.KTreeGEMV().cost(FITTED, k_tree=2, group_num=0, **params).cycles
    pipe = gemv.PipelineGEMV().cost(FITTED, **params).cycles
    ratio = pipe / tree
    assert np.all(ratio > 1) and np.all(np.diff(ratio) > 0)


def test_route_budget():
    small = FITTED.replace(max_routes_per_core=5)
    kernel = allreduce.KTreeAllreduce()
    cfg = {"p": 2, "q": 9, "n": 1, "k_tree": 2, "group_num": 3, "axis": "y"}
    assert float(kernel.cost(FITTED, **cfg).routes_per_core) == 6  # K + 1 per side of the root
    assert not bool(kernel.cost(small, **cfg).fits_routes)
    with pytest.raises(RoutingError):
        kernel.execute(small, **cfg)
    assert bool(kernel.cost(small, **dict(cfg, k_tree=1, group_num=0)).fits_routes)


@pytest.mark.parametrize(
    "kernel, params, field",
    [
        (allreduce.KTreeAllreduce(), {"p": 12, "q": 2, "n": 1, "group_num": 5}, "group_num"),
        (allreduce.KTreeAllreduce(), {"p": 12, "q": 2, "n": 1, "k_tree": 1, "group_num": 3}, "group_num"),
        (allreduce.KTreeAllreduce(), {"p": 12, "q": 2, "n": 1, "group_num": -1}, "group_num"),
        (allreduce.PipelineAllreduce(), {"p": 12, "q": 2, "n": 1, "axis": "z"}, "axis"),
        (allreduce.PipelineAllreduce(), {"p": 1, "q": 2, "n": 1}, "p"),
        (allreduce.RingAllreduce(), {"p": 4, "q": 2, "n": 6}, "n"),
        (broadcast.MulticastBroadcast(), {"p": 4, "q": 2, "n": 0}, "n"),
        (gemv.KTreeGEMV(), {"p": 4, "q": 4, "m": 6, "n": 4, "axis": "y"}, "m"),
        (shift.Shift(), {"p": 4, "q": 2, "m": 4, "n": 2, "distance": 0}, "distance"),
        (allreduce.KTreeAllreduce(), {"p": 4, "q": 2, "n": 1, "bogus": 1}, "bogus"),
    ],
)
def test_bad_parameters_name_the_parameter(kernel, params, field):
    with pytest.raises(SpecError, match=field):
        kernel.cost(FITTED, **params)
    with pytest.raises(SpecError, match=field):
        kernel.check(FITTED, **params)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: f"{k.family}-{k.name}")
@pytest.mark.parametrize("long_vectors", [False, True], ids=["tiles", "long"])
def test_vectorised_equals_one_configuration_at_a_time(kernel, long_vectors):
    """The array path (per-line tables, blocks) gives what the executor-checked path for
    one configuration gives, over random LLM-sized configurations (K = 1 to 4, group
    counts, meshes up to 750) and, with long vectors, where two-level trees wait."""
    configs = random_configurations(FITTED, kernel, 40_000, seed=7)  # two blocks
    if long_vectors:
        for name, factor in (("n", 9), ("m", 1)):
            if name in configs:
                configs[name] = configs[name] * factor
    vector = kernel.cost(FITTED, **configs)
    assert vector.cycles.shape == (40_000,)
    for i in range(0, 40_000, 97):
        one = kernel.cost(FITTED, **one_configuration(configs, i))
        for key in COST_KEYS + ("mean_core_cycles",):
            assert float(getattr(one, key)) == pytest.approx(getattr(vector, key)[i], rel=1e-12, abs=1e-9), (key, i)


def test_vectorised_shapes_broadcast():
    sizes = np.array([[16], [64]])
    cost = gemv.KTreeGEMV().cost(FITTED, p=sizes, q=sizes, m=sizes * 4, n=np.array([16, 64]) * 64, k_tree=2,
                                 group_num=np.array([4, 8]), axis="y")
    assert cost.cycles.shape == cost.routes_per_core.shape == (2, 2)
    for row, p in enumerate((16, 64)):
        for col, (n, g) in enumerate(((16 * 64, 4), (64 * 64, 8))):
            one = gemv.KTreeGEMV().cost(FITTED, p=p, q=p, m=p * 4, n=n, k_tree=2, group_num=g, axis="y")
            assert float(one.cycles) == pytest.approx(cost.cycles[row, col], rel=1e-12)


def test_shift_every_core_steps_in_lock_step():
    """Every core performs all L steps, also for L >= p: each takes launch + L * S."""
    kernel = shift.Shift()
    step = 2 * FITTED.message_overhead_cycles + FITTED.alpha + 1  # T(1) = 1 on wse3
    for length, distance in ((16, 8), (16, 16), (5, 12), (2, 3)):
        run = kernel.execute(FITTED, p=length, q=1, m=length, n=1, distance=distance)
        assert run.correct, (length, distance)
        ex = run.execution
        expected = FITTED.launch_overhead_cycles + distance * step
        assert ex.cycles == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(ex.core_cycles, expected, rtol=1e-12)  # no edge runs ahead or behind
        assert ex.link_waits == 0
        cost = kernel.cost(FITTED, p=length, q=1, m=length, n=1, distance=distance)
        assert float(cost.mean_core_cycles) == pytest.approx(ex.mean_core_cycles, rel=1e-12)
    # beyond the line the cost keeps growing by one step per step (the measured kernel does)
    far = kernel.cost(FITTED, p=8, q=8, m=8, n=8, distance=np.array([7, 8, 16, 32])).cycles
    np.testing.assert_allclose(np.diff(far), np.array([1, 8, 16]) * step)
