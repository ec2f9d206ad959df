"""SUMMA (multicast) and SUMMA-relay: closed forms and recurrence against the executor,
routes, and the relay's beta."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _support import BARE, CALIBRATED, PRESET, SPECS, slope, square_config

from plummer.errors import RoutingError
from plummer.kernels._maxplus import per_mesh
from plummer.kernels.summa import (
    SUMMA,
    SUMMARelay,
    _relay_any,
    _relay_finish,
    _step_compute,
    summa_relay_timing,
)
from plummer.mesh import serialization_cycles


@pytest.mark.parametrize("spec", [PRESET, CALIBRATED], ids=["preset", "calibrated"])
def test_summa_closed_form_equals_executor(spec):
    kernel = SUMMA()
    for config in kernel.sweep():
        if config["p"] * config["q"] > 100:
            continue  # keep the test fast; the closed form is per-P, checked on small meshes
        run = kernel.execute(spec, **config).execution
        cost = kernel.cost(spec, **config)
        assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), config
        # the mean is approximated by the makespan: up to 1.67% above the executor's
        over = (float(cost.mean_core_cycles) - run.mean_core_cycles) / run.mean_core_cycles
        assert 0.0 <= over <= 0.0167, config
        assert float(cost.routes_per_core) == run.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == run.peak_memory_bytes.max(), config


def test_non_square_is_allowed():
    for kernel in (SUMMA(), SUMMARelay()):
        kernel.check(PRESET, p=4, q=6, m=12, k=12, n=8)


def test_summa_non_square_output():
    for kernel in (SUMMA(), SUMMARelay()):
        run = kernel.execute(PRESET, p=4, q=6, m=12, k=24, n=8)
        assert run.correct and run.max_abs_error < 1e-3


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


def _random_specs(rng: np.random.Generator, count: int, hard: bool = False) -> list:
    """Random timing parameters; ``hard`` adds relay stages without ``beta``, zero overheads
    and hops dear against products (where the closed form is only a bound)."""
    def pick(*options: float) -> float:
        return float(options[rng.integers(len(options))])

    return [
        PRESET.replace(
            alpha=pick(rng.uniform(0.01, 5.0), rng.uniform(0.0, 30.0)) if hard else rng.uniform(0.1, 5.0),
            beta=pick(0.0, rng.uniform(0.0, 30.0)) if hard else rng.uniform(0.0, 20.0),
            fma_per_cycle=rng.uniform(1.0, 8.0), vector_op_overhead_cycles=rng.uniform(0.0, 3.0),
            loop_overhead_cycles=pick(0.0, rng.uniform(0.0, 50.0)) if hard else rng.uniform(0.0, 50.0),
            step_overhead_cycles=pick(0.0, rng.uniform(0.0, 150.0)) if hard else rng.uniform(0.0, 150.0),
        )
        for _ in range(count)
    ]


def _random_meshes(rng: np.random.Generator, count: int, largest: int, panels: int):
    """``count`` meshes 2..``largest``, half of them non-square with ``lcm(p, q) <= panels``."""
    p = rng.integers(2, largest + 1, count)
    q = np.where(rng.random(count) < 0.5, p, rng.integers(2, largest + 1, count))
    return p, np.where(np.lcm(p, q) > panels, p, q)


def _compute_bound(spec, p, q, mt, kt, nt) -> np.ndarray:
    """Where the products outlast the relay hand-offs (the earlier O(1) form's domain)."""
    s = np.lcm(p, q)
    c = _step_compute(spec, mt, kt, nt)
    w = spec.alpha + spec.beta
    s_a = spec.beta + serialization_cycles(spec, mt * kt)
    s_b = spec.beta + serialization_cycles(spec, kt * nt)
    return (c >= s // p * s_a + w + spec.alpha) & (c >= s // q * s_b + w + spec.alpha)


def _check_against_recurrence(seed: int, specs: int, hard: bool) -> tuple[np.ndarray, int, int]:
    """Closed form against the recurrence on random specs, meshes 2..40 (half non-square,
    lcm(p, q) <= 120), tiles 1..32: cycles at 1e-9, hops exactly, the mean a lower bound
    within 1e-4 (the docstring's figures). Returns configurations per regime (products or
    relay hand-offs the longer), non-square ones and those with an inexact mean."""
    rng = np.random.default_rng(seed)
    regimes = np.zeros(2, dtype=int)
    non_square = inexact = 0
    for spec in _random_specs(rng, specs, hard=hard):
        p, q = _random_meshes(rng, 20, 40, 120)
        mt, kt, nt = (rng.integers(1, 33, 20) for _ in range(3))
        end, mean, hops = summa_relay_timing(spec, p, q, mt, kt, nt)
        latest, mean_ref, hops_ref = per_mesh(_relay_finish, spec, (p, q), (mt, kt, nt))
        np.testing.assert_allclose(end, latest, rtol=1e-9)
        np.testing.assert_array_equal(hops, hops_ref)
        assert np.all(mean <= mean_ref * (1 + 1e-12)) and np.all(mean >= mean_ref * (1 - 1e-4))
        inexact += int(np.sum(~np.isclose(mean, mean_ref, rtol=1e-9)))
        bound = _compute_bound(spec, p, q, mt, kt, nt)
        regimes += [int(bound.sum()), int((~bound).sum())]
        non_square += int(np.sum(p != q))
    return regimes, non_square, inexact


def test_summa_relay_closed_form_equals_the_recurrence():
    """In both regimes the O(1) solution's makespan and hops equal the recurrence's; its
    mean is exact but on a few configurations, never above and at most 1e-4 below."""
    regimes, non_square, inexact = _check_against_recurrence(0, 60, hard=False)
    assert regimes.min() > 100 and non_square > 150, (regimes, non_square)
    assert inexact <= 2


def test_summa_relay_closed_form_on_hard_specs():
    """The same figures where relay stages cost no ``beta``, overheads vanish or hops are dear
    (up to 30 cycles)."""
    regimes, _, inexact = _check_against_recurrence(5, 40, hard=True)
    assert regimes.min() > 100 and inexact <= 4, (regimes, inexact)


def test_summa_relay_late_start():
    """Where a hop outweighs a product and a relay stage (``alpha >= c + a``) and a column owns
    two or more panels, the y path seeds at step 0 and the x path at step 1: exact against the
    recurrence."""
    spec = BARE.replace(alpha=20.0, beta=0.5)
    p = np.array([3, 4, 5, 2, 6, 3, 4, 7])
    q = np.array([6, 8, 10, 4, 4, 9, 12, 14])
    mt, kt, nt = np.ones(8, int), np.ones(8, int), np.array([1, 2, 1, 3, 1, 1, 2, 1])
    c = _step_compute(spec, mt, kt, nt)
    assert np.all(np.lcm(p, q) // p >= 2) and np.all(spec.alpha >= c + spec.beta + mt * kt)
    end, mean, hops = summa_relay_timing(spec, p, q, mt, kt, nt)
    latest, mean_ref, hops_ref = per_mesh(_relay_finish, spec, (p, q), (mt, kt, nt))
    np.testing.assert_allclose(end, latest, rtol=1e-9)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-9)
    np.testing.assert_array_equal(hops, hops_ref)


def test_summa_relay_fast_paths_equal_the_general_form():
    """The square, tall and wide solutions (meshes from 4 x 4, no late start) equal the
    general one (:func:`_relay_any`, which the recurrence tests check) at 1e-12, hops
    exactly, on meshes up to the fabric, for single configurations too."""
    rng = np.random.default_rng(3)
    for spec in [*_random_specs(rng, 8), *_random_specs(rng, 8, hard=True)]:
        n = 6000
        p = rng.integers(2, PRESET.fabric_width + 1, n)
        q = np.where(rng.random(n) < 0.3, p, rng.integers(2, PRESET.fabric_height + 1, n))
        small = rng.random(n) < 0.3
        p = np.where(small, rng.integers(2, 12, n), p)
        q = np.where(small & (rng.random(n) < 0.5), rng.integers(2, 12, n), q)
        mt, kt, nt = (rng.integers(1, 33, n) for _ in range(3))
        end, mean, hops = summa_relay_timing(spec, p, q, mt, kt, nt)
        c = _step_compute(spec, mt, kt, nt)
        a = spec.beta + serialization_cycles(spec, mt * kt)
        b = spec.beta + serialization_cycles(spec, kt * nt)
        general = _relay_any(spec, p * 1.0, q * 1.0, np.lcm(p, q) * 1.0, c, a, b)
        np.testing.assert_allclose(end, general[0], rtol=1e-12)
        np.testing.assert_allclose(mean, general[1], rtol=1e-12)
        np.testing.assert_array_equal(hops, general[2])
        for i in range(0, n, 500):
            one = summa_relay_timing(spec, *(int(x[i]) for x in (p, q, mt, kt, nt)))
            assert all(type(x) is float for x in one)
            assert one == pytest.approx((end[i], mean[i], hops[i]), rel=1e-12)


def test_summa_relay_one_configuration_matches_the_vectorised_form():
    """A single configuration (Python ints) gives numpy float64 scalars equal to the
    vectorised evaluation of the same configurations."""
    kernel = SUMMARelay()
    configs = [(2, 2, 1, 1, 1), (2, 3, 4, 2, 8), (5, 3, 7, 1, 2), (6, 6, 3, 3, 3), (660, 660, 8, 8, 8),
               (760, 1000, 4, 2, 3), (9, 24, 16, 16, 16)]
    p, q, mt, kt, nt = (np.array(column) for column in zip(*configs))
    s = np.lcm(p, q)
    many = kernel.cost(CALIBRATED, p=p, q=q, m=q * mt, k=s * kt, n=p * nt)
    for i, (pi, qi, mi, ki, ni) in enumerate(configs):
        one = kernel.cost(CALIBRATED, p=pi, q=qi, m=qi * mi, k=math.lcm(pi, qi) * ki, n=pi * ni)
        for key in ("cycles", "mean_core_cycles", "hops", "memory_per_core_bytes", "routes_per_core",
                    "compute_cycles"):
            value = getattr(one, key)
            assert type(value) is np.float64, key
            assert value == pytest.approx(getattr(many, key)[i], rel=1e-12), (key, configs[i])


@pytest.mark.parametrize("spec", [*SPECS, BARE], ids=["preset", "calibrated", "bare"])
def test_summa_relay_closed_form_equals_executor(spec):
    """The closed form and the recurrence it solves both equal the executor at 1e-9 (cycles
    and mean over cores) on the sweep's meshes up to 10 x 10 and on non-square meshes with
    many panels per owner, where relay hand-offs outlast the products (``BARE``: no overheads)."""
    kernel = SUMMARelay()
    configs = [c for c in kernel.sweep() if c["p"] * c["q"] <= 100]
    configs += [{"p": p, "q": q, "m": q * mt, "k": math.lcm(p, q) * kt, "n": p * nt}
                for p, q in ((3, 5), (6, 9), (10, 10), (2, 7), (10, 4), (5, 2), (7, 3), (2, 9), (9, 2), (3, 8))
                for mt, kt, nt in ((2, 3, 2), (1, 1, 1), (32, 1, 1), (1, 1, 32))]
    communication_bound = 0
    for config in configs:
        p, q = config["p"], config["q"]
        s = math.lcm(p, q)
        tiles = (config["m"] // q, config["k"] // s, config["n"] // p)
        run = kernel.execute(spec, **config).execution
        cost = kernel.cost(spec, **config)
        latest, mean, _ = _relay_finish(spec, p, q, *(np.array([t]) for t in tiles))
        launch = spec.launch_overhead_cycles
        assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), config
        assert float(cost.mean_core_cycles) == pytest.approx(run.mean_core_cycles, rel=1e-9), config
        assert launch + float(latest[0]) == pytest.approx(run.cycles, rel=1e-9), config
        assert launch + float(mean[0]) == pytest.approx(run.mean_core_cycles, rel=1e-9), config
        assert float(cost.routes_per_core) == run.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == run.peak_memory_bytes.max(), config
        communication_bound += not bool(_compute_bound(spec, p, q, *tiles))
    assert communication_bound >= (20 if spec is BARE else 6)


def test_summa_relay_hops_are_the_slope_in_alpha():
    """``hops`` is d cycles / d alpha of the executor, from above (the relay hops on the
    critical path), on square and non-square meshes in both regimes."""
    kernel = SUMMARelay()
    for spec in (CALIBRATED, BARE):
        for p, q, mt, kt, nt in ((4, 4, 2, 2, 2), (3, 5, 1, 1, 1), (6, 4, 4, 1, 1), (5, 5, 1, 4, 1)):
            config = {"p": p, "q": q, "m": q * mt, "k": math.lcm(p, q) * kt, "n": p * nt}
            hops = float(kernel.cost(spec, **config).hops)
            assert slope(kernel, spec, config, "alpha") == pytest.approx(hops, abs=1e-6), config
    # ties: with alpha = beta = 1 and a step of 3 cycles, XB(p - 1) with YB(q - 1) (all but one
    # hop) and XB(p - 1) with YA(q - 2) (2 fewer) take equally long; the slope is the former's
    tied = BARE.replace(alpha=1.0, beta=1.0, step_overhead_cycles=2.0)
    for p, q in ((4, 8), (8, 4), (5, 10)):
        config = {"p": p, "q": q, "m": q, "k": math.lcm(p, q), "n": p}
        many = kernel.cost(tied, **{key: np.array([value] * 2) for key, value in config.items()})
        for hops in (float(kernel.cost(tied, **config).hops), float(many.hops[0])):
            assert hops == 2 * (p + q - 2) - 1
            assert slope(kernel, tied, config, "alpha") == pytest.approx(hops, abs=1e-6), config


def test_summa_relay_closed_form_covers_wse3_llm_layouts():
    """1e5 WSE-3 GEMMs on meshes 2..fabric (square and not) with tiles 1..32 evaluate in
    closed form; on square meshes of 100..750 with tiles 4..32 (LLM shapes) the products
    outlast the hand-offs and the critical path crosses 4P - 9 relay hops."""
    rng = np.random.default_rng(2)
    n = 100_000
    p = rng.integers(2, PRESET.fabric_width + 1, n)
    q = rng.integers(2, PRESET.fabric_height + 1, n)
    mt, kt, nt = (rng.integers(1, 33, n) for _ in range(3))
    cost = SUMMARelay().cost(PRESET, p=p, q=q, m=q * mt, k=np.lcm(p, q) * kt, n=p * nt)
    assert cost.cycles.shape == (n,) and np.all(np.isfinite(cost.cycles))
    assert np.all(cost.cycles > cost.compute_cycles) and np.all(cost.mean_core_cycles <= cost.cycles)
    p = rng.integers(100, 751, n)
    mt, kt, nt = (rng.choice([4, 8, 16, 32], n) for _ in range(3))
    assert _compute_bound(PRESET, p, p, mt, kt, nt).all()
    cost = SUMMARelay().cost(PRESET, p=p, q=p, m=p * mt, k=p * kt, n=p * nt)
    assert np.all(cost.hops == 4 * p - 9)
