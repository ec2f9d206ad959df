"""Cannon on a mesh without torus links: outputs, the O(1) closed form against the reference
recurrence and the executor (exact where its condition holds, a measured lower bound
elsewhere), P x Q meshes, routes, memory and bad inputs."""

from __future__ import annotations

import math
import time
from itertools import pairwise

import numpy as np
import pytest
from _ring_reference import bound_errors, cannon_exact, ring_gemm_timing, step_costs
from _support import BARE, CALIBRATED, PRESET, random_spec, slope, square_config

from plummer.errors import SpecError
from plummer.kernels._virtual import ring_gemm_routes
from plummer.kernels.cannon import PROGRAM, Cannon
from plummer.kernels.meshgemm import MeshGEMM

KERNEL = Cannon()

#: The bound's figures on ``bound_sweep`` seeds 0 and 1 (Cannon.cost's docstring): the closed
#: form is at most this far below the recurrence, never above.
CYCLES_BOUND, MEAN_BOUND = 0.074, 0.287


def condition(spec, config) -> bool:
    s = math.lcm(config["p"], config["q"])
    c, t_a, t_b = step_costs(spec, config["p"], config["q"], config["m"] // s, config["k"] // s, config["n"] // s)
    return cannon_exact(spec, config["p"], config["q"], float(c), float(t_a), float(t_b))


@pytest.mark.parametrize("p", [2, 3, 4, 5, 6, 7, 8])
def test_output_is_exact(p):
    for mt, kt, nt in [(1, 1, 1), (2, 3, 1), (4, 4, 4)]:
        run = KERNEL.execute(BARE, seed=p, **square_config(p, mt, kt, nt))
        assert run.correct and run.max_abs_error < 1e-3


@pytest.mark.parametrize("spec, exact_at_least", [(PRESET, 30), (CALIBRATED, 30), (BARE, 0)],
                         ids=["preset", "calibrated", "bare"])
def test_closed_form_against_the_executor_on_the_sweep(spec, exact_at_least):
    """Exact (1e-9) where the condition holds, else the stated lower bound; routes and
    memory always the executor's. Meshes up to 100 cores here (plummer validate runs all)."""
    exact = 0
    for config in KERNEL.sweep():
        if config["p"] * config["q"] > 100:
            continue
        run = KERNEL.execute(spec, **config)
        ex, cost = run.execution, KERNEL.cost(spec, **config)
        assert run.correct, config
        assert float(cost.routes_per_core) == ex.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == ex.peak_memory_bytes.max(), config
        if condition(spec, config):
            exact += 1
            assert float(cost.cycles) == pytest.approx(ex.cycles, rel=1e-9), config
            assert float(cost.mean_core_cycles) == pytest.approx(ex.mean_core_cycles, rel=1e-9), config
        else:
            assert -1e-9 <= 1 - float(cost.cycles) / ex.cycles <= CYCLES_BOUND, config
            assert -1e-9 <= 1 - float(cost.mean_core_cycles) / ex.mean_core_cycles <= MEAN_BOUND, config
    assert exact >= exact_at_least


def test_the_reference_recurrence_is_the_executor():
    rng = np.random.default_rng(12)
    for trial in range(24):
        spec = random_spec(rng, bool(trial % 2))
        if trial % 4 == 0:
            spec = spec.replace(message_overhead_cycles=0.0)
        p, q = (int(x) for x in rng.integers(2, 7, 2))
        s = math.lcm(p, q)
        ms, ks, ns = (int(x) for x in rng.integers(1, 6, 3))
        run = PROGRAM.execute(spec, {"p": p, "q": q, "m": s * ms, "k": s * ks, "n": s * ns}, 0, False)
        cycles, mean = ring_gemm_timing(spec, PROGRAM, p, q, [ms], [ks], [ns])
        assert cycles[0] == pytest.approx(run.execution.cycles, rel=1e-12), (p, q)
        assert mean[0] == pytest.approx(run.execution.mean_core_cycles, rel=1e-12), (p, q)


def test_exact_where_the_condition_holds_and_the_bound_elsewhere():
    """Over the stated sweep (``bound_sweep`` seeds 0 and 1, 5120 configurations): equal to
    the recurrence to 1e-9 where the condition holds; elsewhere never above it and at most
    the stated figures below."""
    rows = bound_errors(KERNEL, PROGRAM, (0, 1))
    holds = [cannon_exact(spec, p, q, c, t_a, t_b) for spec, p, q, c, t_a, t_b, _, _ in rows]
    errors = np.array([(e1, e2) for *_, e1, e2 in rows])
    exact, bound = errors[np.array(holds)], errors[~np.array(holds)]
    assert len(exact) > 1500 and np.abs(exact).max() < 1e-9
    assert len(bound) > 1500 and bound.max() < 1e-9
    assert -bound[:, 0].min() <= CYCLES_BOUND
    assert -bound[:, 1].min() <= MEAN_BOUND


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_on_random_specs_where_the_condition_holds(seed):
    """Random specs (typical and stress), square and P x Q meshes: wherever the condition
    holds the closed form equals the recurrence, both figures, to 1e-9."""
    rng = np.random.default_rng(40 + seed)
    checked = 0
    for trial in range(25):
        spec = random_spec(rng, bool(trial % 2))
        p, q = (int(x) for x in rng.integers(2, 13, 2))
        if trial % 3 == 0:
            q = p
        s = math.lcm(p, q)
        if s > 60:
            continue
        ms, ks, ns = rng.integers(1, 10, (3, 16))
        c, t_a, t_b = step_costs(spec, p, q, ms, ks, ns)
        holds = np.array([cannon_exact(spec, p, q, c[i], t_a[i], t_b[i]) for i in range(16)])
        if not holds.any():
            continue
        cycles, mean = ring_gemm_timing(spec, PROGRAM, p, q, ms[holds], ks[holds], ns[holds])
        cost = KERNEL.cost(spec, p=p, q=q, m=s * ms[holds], k=s * ks[holds], n=s * ns[holds])
        np.testing.assert_allclose(cost.cycles, cycles, rtol=1e-9)
        np.testing.assert_allclose(cost.mean_core_cycles, mean, rtol=1e-9)
        checked += int(holds.sum())
    assert checked > 150


def test_condition_holds_for_llm_configurations():
    """P = 660, tiles 12 to 32 a side on the WSE-3 preset: the condition holds, so the O(1)
    form is exact there (the recurrence would take tens of seconds per configuration)."""
    for mt, kt, nt in ((12, 12, 12), (32, 12, 20), (16, 32, 12)):
        assert condition(PRESET, square_config(660, mt, kt, nt)), (mt, kt, nt)


def test_one_configuration_is_fast_at_every_p():
    """O(1) per configuration: P = 660 with 4x4x4 tiles (35 s with the old recurrence
    fallback) and the largest square mesh of the fabric, at most a millisecond each."""
    for p in (660, 755):
        start = time.perf_counter()
        cost = KERNEL.cost(PRESET, **square_config(p, 4, 4, 4))
        assert time.perf_counter() - start < 1e-3 and float(cost.cycles) > 0


def test_hops_and_stages_are_the_executors_critical_path():
    for spec, config in ((PRESET, square_config(5, 2, 3, 1)), (BARE, square_config(8, 1, 1, 1)),
                         (BARE, square_config(7, 4, 4, 4)), (PRESET, {"p": 3, "q": 6, "m": 6, "k": 6, "n": 12})):
        cost = KERNEL.cost(spec, **config)
        assert slope(KERNEL, spec, config, "alpha") == pytest.approx(float(cost.hops), abs=1e-3), config


def test_routes_formula_is_the_exact_count():
    p, q = np.meshgrid(np.arange(2, 30), np.arange(2, 30))
    s = np.lcm(p, q)
    routes = KERNEL.cost(PRESET, p=p, q=q, m=s, k=s, n=s).routes_per_core
    assert np.array_equal(routes, np.vectorize(lambda a, b: ring_gemm_routes(PROGRAM, a, b))(p, q))


def test_closed_form_is_vectorised_over_every_parameter():
    rng = np.random.default_rng(1)
    p, q = rng.integers(2, 200, 50_000), rng.integers(2, 200, 50_000)
    s = np.lcm(p, q)
    cost = KERNEL.cost(PRESET, p=p, q=q, m=s * rng.integers(1, 9, p.size), k=s * rng.integers(1, 9, p.size), n=s)
    assert cost.cycles.shape == p.shape and np.all(cost.mean_core_cycles <= cost.cycles + 1e-6)
    assert np.all(cost.cycles >= cost.compute_cycles)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(SpecError, match=r"'m' = 6 must be a multiple of S = lcm\(p, q\)"):
        KERNEL.cost(PRESET, p=4, q=6, m=6, k=12, n=12)
    with pytest.raises(SpecError, match="'m'"):
        KERNEL.cost(PRESET, p=4, q=4, m=5, k=4, n=4)
    with pytest.raises(SpecError, match="'k'"):
        KERNEL.execute(PRESET, p=4, q=4, m=4, k=6, n=4)
    with pytest.raises(SpecError, match="'n'"):
        KERNEL.cost(PRESET, p=4, q=4, m=4, k=4, n=6)


def test_cannons_critical_path_holds_the_wrap_around_meshgemms_two_hop_edges():
    """Compute-bound, the critical path is the last row's skew: P - 2 one-hop steps and the
    (P - 1)-hop wrap-around, 2P - 3 hops; MeshGEMM's alignment has floor(P/2) edges of <= 2
    hops."""
    for p in (4, 8, 16, 24):
        config = square_config(p, 4, 4, 4)
        assert slope(KERNEL, PRESET, config, "alpha") == pytest.approx(2 * p - 3, abs=1e-3)
        assert float(KERNEL.cost(PRESET, **config).hops) == 2 * p - 3
        assert slope(MeshGEMM(), PRESET, config, "alpha") <= 2 * (p // 2) + 1e-3


def test_cannon_pays_the_wrap_around_once_per_trip_and_trails_meshgemm():
    """Communication-bound (no overheads, 1x1x1 tiles), the critical path runs through all
    2P - 2 tile moves of a row (skew and shifts) and crosses the wrap-around twice, once per
    trip around the ring: 4P - 6 hops, not (2P - 2)(P - 1). MeshGEMM needs only floor(P/2)
    alignment steps, so Cannon is slower by a gap that grows with P."""
    sizes = (4, 8, 16, 24)
    cannon = [KERNEL.execute(BARE, **square_config(p, 1, 1, 1)).execution.cycles for p in sizes]
    mesh = [MeshGEMM().execute(BARE, **square_config(p, 1, 1, 1)).execution.cycles for p in sizes]
    for p, cycles in zip(sizes, cannon):
        cost = KERNEL.cost(BARE, **square_config(p, 1, 1, 1))
        assert float(cost.hops) == 4 * p - 6
        assert float(cost.cycles) == pytest.approx(cycles, rel=1e-9)
        assert cycles / (2 * p - 2) < 1 + 2 * BARE.alpha  # T = 1 cycle for one element
    gaps = [c - m for c, m in zip(cannon, mesh)]
    assert all(g > 0 for g in gaps) and all(a < b for a, b in pairwise(gaps))
    assert gaps[-1] > 3 * gaps[1]


def test_closed_form_includes_the_best_rides():
    """Where rides pay (random stress specs, square and P x Q meshes with several trips
    around a ring), the cycles are at least the best A ride and the best B ride from time 0,
    maximised over every length with windows summed edge by edge."""
    from _ring_reference import brute_rides

    rng = np.random.default_rng(21)
    for _ in range(60):
        spec = random_spec(rng, True).replace(step_overhead_cycles=float(rng.uniform(0, 20)),
                                              fma_per_cycle=1e9, loop_overhead_cycles=0.0)
        p, q = (int(x) for x in rng.integers(2, 9, 2))
        s = math.lcm(p, q)
        ms, ks, ns = (int(x) for x in rng.integers(1, 12, 3))
        c, t_a, t_b = (float(x) for x in step_costs(spec, p, q, ms, ks, ns))
        cost = KERNEL.cost(spec, p=p, q=q, m=s * ms, k=s * ks, n=s * ns)
        want = brute_rides(spec, "cannon", p, q, c, t_a, t_b)
        assert float(cost.cycles) - spec.launch_overhead_cycles >= want * (1 - 1e-12), (p, q, ms, ks, ns)


def test_a_ride_over_several_trips_where_a_trip_gains():
    """An A edge loses (c > alpha + T_A) but a trip around the row gains (c < T_A + alpha
    (2p - 2)/p): on a 3 x 6 mesh (two trips) the best ride goes on past the first peak."""
    from _ring_reference import brute_rides

    spec = BARE.replace(alpha=10.0, fma_per_cycle=1e9, step_overhead_cycles=32.0)
    c, t_a, t_b = (float(x) for x in step_costs(spec, 3, 6, 20, 1, 1))
    assert (c, t_a, t_b) == pytest.approx((32.0, 20.0, 2.0))
    cost = KERNEL.cost(spec, p=3, q=6, m=120, k=6, n=6)
    assert float(cost.cycles) == pytest.approx(brute_rides(spec, "cannon", 3, 6, c, t_a, t_b), rel=1e-12)
    cycles, _ = ring_gemm_timing(spec, PROGRAM, 3, 6, [20], [1], [1])
    assert float(cost.cycles) <= cycles[0] * (1 + 1e-12)
