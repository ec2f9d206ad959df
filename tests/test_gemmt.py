"""GEMM-T (C = A . B^T): outputs, the closed form against the recurrence and
the executor, routes, memory and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from _support import BARE, PRESET, random_spec, slope, square_config

from plummer.errors import SpecError
from plummer.kernels._maxplus import per_mesh
from plummer.kernels.gemmt import GEMMT, _gemmt_timing, gemmt_compute_bound

KERNEL = GEMMT()


@pytest.mark.parametrize("p", [2, 3, 4, 5, 6, 7, 8])
def test_output_is_exact(p):
    for mt, kt, nt in [(1, 1, 1), (2, 3, 1), (4, 4, 4)]:
        run = KERNEL.execute(BARE, seed=p, **square_config(p, mt, kt, nt))
        assert run.correct and run.max_abs_error < 1e-3


@pytest.mark.parametrize("spec", [PRESET, BARE], ids=["preset", "bare"])
def test_closed_form_equals_executor_on_the_sweep(spec):
    for config in KERNEL.sweep():
        run = KERNEL.execute(spec, **config).execution
        cost = KERNEL.cost(spec, **config)
        rel = 5e-3 if run.link_waits == 0 else 0.05
        assert float(cost.cycles) == pytest.approx(run.cycles, rel=rel), config
        assert float(cost.mean_core_cycles) == pytest.approx(run.mean_core_cycles, rel=rel), config
        assert float(cost.routes_per_core) == run.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == run.peak_memory_bytes.max(), config


def test_hops_and_stages_are_the_executors_critical_path():
    for spec, p, tile in ((PRESET, 5, (2, 3, 1)), (BARE, 8, (1, 1, 1)), (BARE, 7, (4, 4, 4))):
        config = square_config(p, *tile)
        cost = KERNEL.cost(spec, **config)
        assert slope(KERNEL, spec, config, "alpha") == pytest.approx(float(cost.hops), abs=1e-3), config
        assert slope(KERNEL, spec, config, 'beta') == pytest.approx(float(cost.routing_stages), abs=1e-3)


def test_closed_form_is_vectorised():
    p = np.array([2, 3, 4, 8, 16, 32] * 1000)
    cost = KERNEL.cost(PRESET, p=p, q=p, m=4 * p, k=4 * p, n=4 * p)
    assert cost.cycles.shape == p.shape and np.all(cost.cycles > 0)
    assert np.all(cost.mean_core_cycles <= cost.cycles)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(SpecError, match="'q'.*square"):
        KERNEL.cost(PRESET, p=4, q=6, m=12, k=12, n=8)
    with pytest.raises(SpecError, match="'m'"):
        KERNEL.cost(PRESET, p=4, q=4, m=5, k=4, n=4)
    with pytest.raises(SpecError, match="'k'"):
        KERNEL.execute(PRESET, p=4, q=4, m=4, k=6, n=4)
    with pytest.raises(SpecError, match="'n'"):
        KERNEL.cost(PRESET, p=4, q=4, m=4, k=4, n=6)


@pytest.mark.parametrize("stress", [False, True], ids=["typical", "stress"])
def test_formula_equals_the_recurrence_where_its_condition_holds(stress):
    """Random specs, mesh sizes and tiles: wherever the condition holds, the O(1) formula
    equals the O(P^3) recurrence (the reference) to 1e-9, and the four figures agree."""
    rng = np.random.default_rng(11 + stress)
    checked = 0
    for _ in range(60):
        spec = random_spec(rng, stress)
        p = np.full(30, int(rng.integers(2, 41)))
        mt, kt, nt = rng.integers(1, 17, (3, 30))
        exact, end, mean, hops, stages = (
            np.broadcast_to(x, p.shape) for x in gemmt_compute_bound(spec, p, mt, kt, nt)
        )
        if not exact.any():
            continue
        ref = per_mesh(_gemmt_timing, spec, (p[exact],), (mt[exact], kt[exact], nt[exact]))
        for got, want in zip((end, mean, hops, stages), ref, strict=True):
            np.testing.assert_allclose(got[exact], want, rtol=1e-9)
        checked += int(exact.sum())
    assert checked > 1000


@pytest.mark.parametrize("spec", [PRESET, BARE], ids=["preset", "bare"])
def test_formula_equals_the_executor_where_its_condition_holds(spec):
    tested = 0
    for p in range(2, 12 + 1):
        for mt, kt, nt in [(1, 1, 1), (2, 3, 1), (4, 4, 4), (3, 8, 5)]:
            config = square_config(p, mt, kt, nt)
            if not bool(gemmt_compute_bound(spec, p, mt, kt, nt)[0]):
                continue
            run = KERNEL.execute(spec, **config).execution
            cost = KERNEL.cost(spec, **config)
            assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), config
            assert float(cost.mean_core_cycles) == pytest.approx(run.mean_core_cycles, rel=1e-9), config
            tested += 1
    assert tested >= 20


def test_gemmt_computes_a_times_b_transposed():
    run = GEMMT().execute(PRESET, seed=3, **square_config(3, 2, 3, 4))
    assert run.reference.shape == (6, 12) and run.correct


def test_gemmts_critical_path_has_3p_minus_4_hops_and_4p_minus_7_stages():
    """Compute-bound, the latest core (row 0, column 1) hops P - 1 west in step 0, P - 1
    west with the root, P - 1 east after its wrap and back west with it: 3P - 4 hops."""
    for p in (3, 6, 9):
        config = square_config(p, 4, 4, 4)
        assert bool(gemmt_compute_bound(PRESET, p, 4, 4, 4)[0])
        assert slope(GEMMT(), PRESET, config, "alpha") == pytest.approx(3 * p - 4, abs=1e-3)
        assert slope(GEMMT(), PRESET, config, "beta") == pytest.approx(4 * p - 7, abs=1e-3)


def test_gemmt_condition_holds_for_llm_configurations():
    """Q.K^T on WSE-3: P = 360..750 with tiles 4..32, the condition holds everywhere; 10^5
    such configurations evaluate in closed form, at numpy speed."""
    t = np.arange(4, 33)
    mt, kt, nt = np.meshgrid(t, t, t, indexing="ij")
    for p in (360, 660, 750):
        assert gemmt_compute_bound(PRESET, np.full(mt.shape, p), mt, kt, nt)[0].all()
    rng = np.random.default_rng(0)
    p = rng.integers(360, 751, 100_000)
    mt, kt, nt = rng.integers(4, 33, (3, p.size))
    assert gemmt_compute_bound(PRESET, p, mt, kt, nt)[0].all()
    cost = GEMMT().cost(PRESET, p=p, q=p, m=p * mt, k=p * kt, n=p * nt)
    assert cost.cycles.shape == p.shape and np.all(cost.cycles > cost.compute_cycles)

