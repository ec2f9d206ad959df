"""Cannon on a mesh without torus links: outputs, the closed form against the recurrence and
the executor, routes, memory and bad inputs."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from _support import BARE, PRESET, random_spec, slope, square_config

from plummer.errors import SpecError
from plummer.kernels._maxplus import per_mesh
from plummer.kernels.cannon import Cannon, _cannon_timing, cannon_compute_bound
from plummer.kernels.meshgemm import MeshGEMM

KERNEL = Cannon()


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
    rng = np.random.default_rng(7 + stress)
    checked = 0
    for _ in range(60):
        spec = random_spec(rng, stress)
        p = np.full(30, int(rng.integers(2, 41)))
        mt, kt, nt = rng.integers(1, 17, (3, 30))
        exact, end, mean, hops, stages = (
            np.broadcast_to(x, p.shape) for x in cannon_compute_bound(spec, p, mt, kt, nt)
        )
        if not exact.any():
            continue
        ref = per_mesh(_cannon_timing, spec, (p[exact],), (mt[exact], kt[exact], nt[exact]))
        for got, want in zip((end, mean, hops, stages), ref, strict=True):
            np.testing.assert_allclose(got[exact], want, rtol=1e-9)
        checked += int(exact.sum())
    assert checked > 1000


@pytest.mark.parametrize("spec", [PRESET, BARE], ids=["preset", "bare"])
def test_formula_equals_the_executor_where_its_condition_holds(spec):
    tested = 0
    for p in range(2, 16 + 1):
        for mt, kt, nt in [(1, 1, 1), (2, 3, 1), (4, 4, 4), (3, 8, 5)]:
            config = square_config(p, mt, kt, nt)
            if not bool(cannon_compute_bound(spec, p, mt, kt, nt)[0]):
                continue
            run = KERNEL.execute(spec, **config).execution
            cost = KERNEL.cost(spec, **config)
            assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), config
            assert float(cost.mean_core_cycles) == pytest.approx(run.mean_core_cycles, rel=1e-9), config
            tested += 1
    assert tested >= 20


def test_cannons_critical_path_holds_the_wrap_around_meshgemms_two_hop_edges():
    """Compute-bound, the critical path is the last row's skew: P - 2 one-hop steps and the
    (P - 1)-hop wrap-around, 2P - 3 hops; MeshGEMM's alignment has floor(P/2) edges of <= 2
    hops."""
    for p in (4, 8, 16, 24):
        config = square_config(p, 4, 4, 4)
        assert slope(Cannon(), PRESET, config, "alpha") == pytest.approx(2 * p - 3, abs=1e-3)
        assert float(Cannon().cost(PRESET, **config).hops) == 2 * p - 3
        assert slope(MeshGEMM(), PRESET, config, "alpha") <= 2 * (p // 2) + 1e-3


def test_cannon_pays_the_wrap_around_once_per_trip_and_trails_meshgemm():
    """Communication-bound (no overheads, 1x1x1 tiles), the critical path runs through all
    2P - 2 tile moves of a row (skew and shifts) and crosses the wrap-around twice, once per
    trip around the ring: 4P - 6 hops, not (2P - 2)(P - 1). The tiles are pipelined, so a
    move costs less than the ring's cycle mean bound ``T + 2 alpha`` on average, whatever P.
    MeshGEMM needs only floor(P/2) alignment steps, so Cannon is slower by a gap that grows
    with P."""
    sizes = (4, 8, 16, 24)
    cannon = [Cannon().execute(BARE, **square_config(p, 1, 1, 1)).execution.cycles for p in sizes]
    mesh = [MeshGEMM().execute(BARE, **square_config(p, 1, 1, 1)).execution.cycles for p in sizes]
    for p, cycles in zip(sizes, cannon):
        assert float(Cannon().cost(BARE, **square_config(p, 1, 1, 1)).hops) == 4 * p - 6
        assert cycles / (2 * p - 2) < 1 + 2 * BARE.alpha  # T = 1 cycle for one element
    gaps = [c - m for c, m in zip(cannon, mesh)]
    assert all(g > 0 for g in gaps) and all(a < b for a, b in pairwise(gaps))
    assert gaps[-1] > 3 * gaps[1]


def test_cannon_condition_holds_for_llm_configurations():
    """P = 660 with tiles 4..32: the condition holds except for the smallest ``Kt Nt`` (the
    wrap-around's wave then makes the B tiles wait), so 10^5 such configurations evaluate
    in closed form, at numpy speed."""
    t = np.arange(4, 33)
    mt, kt, nt = np.meshgrid(t, t, t, indexing="ij")
    exact = cannon_compute_bound(PRESET, np.full(mt.shape, 660), mt, kt, nt)[0]
    assert exact.mean() > 0.97 and exact[:, 8:, 8:].all()
    rng = np.random.default_rng(0)
    p = rng.integers(100, 751, 100_000)
    mt, kt, nt = rng.integers(4, 33, (3, p.size))
    kt, nt = np.maximum(kt, 12), np.maximum(nt, 12)
    assert cannon_compute_bound(PRESET, p, mt, kt, nt)[0].all()
    cost = Cannon().cost(PRESET, p=p, q=p, m=p * mt, k=p * kt, n=p * nt)
    assert cost.cycles.shape == p.shape and np.all(cost.cycles > cost.compute_cycles)

