"""SUMMA (multicast) and SUMMA-relay: closed forms and recurrence against the executor,
routes, and the relay's beta."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _support import CALIBRATED, PRESET, SPECS, square_config

from plummer.errors import RoutingError
from plummer.kernels._maxplus import per_mesh
from plummer.kernels.summa import SUMMA, SUMMARelay, _relay_finish, summa_relay_compute_bound


@pytest.mark.parametrize("spec", [PRESET, CALIBRATED], ids=["preset", "calibrated"])
def test_summa_closed_form_equals_executor(spec):
    kernel = SUMMA()
    for config in kernel.sweep():
        if config["p"] * config["q"] > 100:
            continue  # keep the test fast; the closed form is per-P, checked on small meshes
        run = kernel.execute(spec, **config).execution
        cost = kernel.cost(spec, **config)
        assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), config
        # the mean is approximated by the makespan
        if spec is CALIBRATED:
            assert float(cost.mean_core_cycles) == pytest.approx(run.mean_core_cycles, rel=0.02), config
        assert float(cost.routes_per_core) == run.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == run.peak_memory_bytes.max(), config


def test_non_square_is_allowed():
    for kernel in (SUMMA(), SUMMARelay()):
        kernel.check(PRESET, p=4, q=6, m=12, k=12, n=8)


def test_summa_non_square_output():
    for kernel in (SUMMA(), SUMMARelay()):
        run = kernel.execute(PRESET, p=4, q=6, m=12, k=24, n=8)
        assert run.correct and run.max_abs_error < 1e-3


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"alpha={s.alpha}")
def test_summa_relay_closed_form_matches_executor(spec):
    """Within 0.5% where no link is shared at once, 5% everywhere (the recurrence is in
    fact exact on the whole sweep), for the makespan and the mean over cores."""
    kernel = SUMMARelay()
    for config in kernel.sweep():
        if config["p"] * config["q"] > 100:
            continue
        run = kernel.execute(spec, **config).execution
        cost = kernel.cost(spec, **config)
        rel = 0.005 if run.link_waits == 0 else 0.05
        assert float(cost.cycles) == pytest.approx(run.cycles, rel=rel), config
        assert float(cost.mean_core_cycles) == pytest.approx(run.mean_core_cycles, rel=rel), config
        assert float(cost.routes_per_core) == run.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == run.peak_memory_bytes.max(), config


def test_summa_routes_grow_and_overflow_the_budget():
    kernel = SUMMA()
    routes = [float(kernel.cost(PRESET, **square_config(p, 1, 1, 1)).routes_per_core) for p in (4, 8, 16, 32)]
    assert routes == sorted(routes) and routes[0] < routes[-1]
    big = kernel.cost(PRESET, **square_config(32, 1, 1, 1))
    assert not bool(big.fits_routes)
    small_ok = kernel.cost(PRESET, **square_config(9, 1, 1, 1))
    assert bool(small_ok.fits_routes)
    with pytest.raises(RoutingError, match="route budget"):
        kernel.execute(PRESET, **square_config(12, 1, 1, 1))
    relay = SUMMARelay().cost(PRESET, **square_config(32, 1, 1, 1))
    assert bool(relay.fits_routes)


def test_summa_relay_pays_beta_per_stage():
    kernel = SUMMARelay()
    config = square_config(6, 2, 2, 2)
    low = kernel.execute(CALIBRATED.replace(beta=5.0), **config).execution.cycles
    high = kernel.execute(CALIBRATED.replace(beta=50.0), **config).execution.cycles
    assert high > low
    assert float(kernel.cost(CALIBRATED.replace(beta=50.0), **config).cycles) > float(
        kernel.cost(CALIBRATED.replace(beta=5.0), **config).cycles
    )
    multicast = SUMMA()
    same = [multicast.execute(CALIBRATED.replace(beta=b), **config).execution.cycles for b in (5.0, 50.0)]
    assert same[0] == same[1]


def _random_specs(rng: np.random.Generator, count: int) -> list:
    return [
        PRESET.replace(
            alpha=rng.uniform(0.1, 5.0), beta=rng.uniform(0.0, 20.0),
            fma_per_cycle=rng.uniform(1.0, 8.0), vector_op_overhead_cycles=rng.uniform(0.0, 3.0),
            loop_overhead_cycles=rng.uniform(0.0, 50.0), step_overhead_cycles=rng.uniform(0.0, 150.0),
        )
        for _ in range(count)
    ]


def test_summa_relay_closed_form_equals_the_recurrence():
    """Where its condition holds, the O(1) solution equals the per-step recurrence (cycles,
    mean, hops) on random specs, meshes 2..40 (non-square where lcm(p, q) <= 120), tiles 1..16."""
    rng = np.random.default_rng(0)
    matched = 0
    for spec in _random_specs(rng, 150):
        p = rng.integers(2, 41, 20)
        q = np.where(rng.random(20) < 0.5, p, rng.integers(2, 41, 20))
        q = np.where(np.lcm(p, q) > 120, p, q)
        mt, kt, nt = (rng.integers(1, 17, 20) for _ in range(3))
        exact, end, mean, hops = summa_relay_compute_bound(spec, p, q, mt, kt, nt)
        if not exact.any():
            continue
        latest, mean_ref, hops_ref = per_mesh(_relay_finish, spec, (p[exact], q[exact]), (mt[exact], kt[exact], nt[exact]))
        np.testing.assert_allclose(end[exact], latest, rtol=1e-9)
        np.testing.assert_allclose(mean[exact], mean_ref, rtol=1e-9)
        np.testing.assert_array_equal(hops[exact], hops_ref)
        matched += int(exact.sum())
    assert matched > 2000


def test_summa_relay_condition_is_exact_on_square_meshes():
    """On square meshes from 3 x 3 the closed form (makespan or mean) fails wherever its
    condition does (small overheads, so that it often does)."""
    rng = np.random.default_rng(1)
    failed = 0
    for spec in _random_specs(rng, 60):
        spec = spec.replace(step_overhead_cycles=rng.uniform(0.0, 30.0),
                            loop_overhead_cycles=rng.uniform(0.0, 10.0))
        p = rng.integers(3, 13, 10)
        mt, kt, nt = (rng.integers(1, 17, 10) for _ in range(3))
        exact, end, mean, _ = summa_relay_compute_bound(spec, p, p, mt, kt, nt)
        if exact.all():
            continue
        latest, mean_ref, _ = per_mesh(_relay_finish, spec, (p[~exact], p[~exact]), (mt[~exact], kt[~exact], nt[~exact]))
        same = np.isclose(end[~exact], latest, rtol=1e-9) & np.isclose(mean[~exact], mean_ref, rtol=1e-9)
        assert not np.any(same)
        failed += int((~exact).sum())
    assert failed > 20


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"alpha={s.alpha}")
def test_summa_relay_closed_form_equals_executor(spec):
    """The O(1) solution against the executor on meshes up to 10 x 10, where it holds."""
    kernel = SUMMARelay()
    configs = [c for c in kernel.sweep() if c["p"] * c["q"] <= 100]
    configs += [{"p": p, "q": q, "m": q * 2, "k": math.lcm(p, q) * 3, "n": p * 2}
                for p, q in ((3, 5), (6, 9), (10, 10), (2, 7), (10, 4))]
    checked = 0
    for config in configs:
        p, q = config["p"], config["q"]
        s = math.lcm(p, q)
        exact, end, mean, _ = summa_relay_compute_bound(
            spec, p, q, config["m"] // q, config["k"] // s, config["n"] // p)
        if not exact:
            continue
        run = kernel.execute(spec, **config).execution
        cost = kernel.cost(spec, **config)
        assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), config
        assert float(spec.launch_overhead_cycles + end) == pytest.approx(run.cycles, rel=1e-9), config
        assert float(spec.launch_overhead_cycles + mean) == pytest.approx(run.mean_core_cycles, rel=1e-9), config
        checked += 1
    assert checked >= 25


def test_summa_relay_closed_form_covers_wse3_llm_layouts():
    """Square WSE-3 meshes of 100..750 with tiles 4..32 (LLM GEMM shapes) are all in the
    closed form's domain (no O(P^3) recurrence), so 1e5 of them evaluate at numpy speed."""
    rng = np.random.default_rng(2)
    n = 100_000
    p = rng.integers(100, 751, n)
    mt, kt, nt = (rng.choice([4, 8, 16, 32], n) for _ in range(3))
    exact = summa_relay_compute_bound(PRESET, p, p, mt, kt, nt)[0]
    assert exact.all()
    cost = SUMMARelay().cost(PRESET, p=p, q=p, m=p * mt, k=p * kt, n=p * nt)
    assert cost.cycles.shape == (n,) and np.all(cost.cycles > cost.compute_cycles)
    assert np.all(cost.hops == 4 * p - 9)

