"""GEMM-T (C = A . B^T) on p x q meshes: outputs, the closed form against the reference
recurrence and the executor, routes, memory, vectorisation and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from _support import BARE, CALIBRATED, PRESET, random_spec, slope

from plummer.errors import SpecError
from plummer.kernels._base import BLOCK_SIZE
from plummer.kernels._maxplus import per_mesh
from plummer.kernels.gemmt import GEMMT, _gemmt_timing, gemmt_waits
from plummer.mesh import compute_cycles, serialization_cycles

KERNEL = GEMMT()

#: The figures :func:`~plummer.kernels.gemmt.gemmt_b_bound` states for its sweep: how far
#: below the recurrence its end and mean may be, as fractions.
B_BOUND_END, B_BOUND_MEAN = 0.009, 0.105


def config(p: int, q: int, mt: int, kt: int, nt: int) -> dict[str, int]:
    """A GEMM-T on p columns and q rows with tiles Mt x Kt (A) and Nt x Kt (B)."""
    return {"p": p, "q": q, "m": q * mt, "k": p * kt, "n": q * nt}


def waits(spec, p, q, mt, kt, nt):
    """Where the no-wait condition ``c + T >= h alpha + T_B`` fails (the kernel's test)."""
    mt, kt, nt = (np.asarray(x, dtype=float) for x in (mt, kt, nt))
    c = spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)
    t, t_b = serialization_cycles(spec, mt * nt), serialization_cycles(spec, kt * nt)
    return gemmt_waits(spec, float(q), c, t, t_b)


def stress_spec(rng):
    """No overheads but a random step one, a fast FMA and costly hops: B tiles wait."""
    return BARE.replace(
        alpha=float(rng.uniform(0.1, 25.0)), beta=float(rng.uniform(0.0, 20.0)),
        fma_per_cycle=float(rng.uniform(1.0, 8.0)),
        vector_op_overhead_cycles=float(rng.choice([0.0, rng.uniform(0.0, 1.0)])),
        step_overhead_cycles=float(rng.choice([0.0, rng.uniform(0.0, 30.0)])),
    )


@pytest.mark.parametrize(
    "p,q", [(2, 2), (3, 3), (4, 4), (7, 7), (2, 5), (5, 2), (3, 8), (8, 3), (4, 6), (6, 4)]
)
def test_output_is_exact(p, q):
    for mt, kt, nt in [(1, 1, 1), (2, 3, 1), (4, 4, 4)]:
        run = KERNEL.execute(BARE, seed=p + q, **config(p, q, mt, kt, nt))
        assert run.reference.shape == (q * mt, q * nt)
        assert run.correct and run.max_abs_error < 1e-3


@pytest.mark.parametrize("spec", [PRESET, BARE], ids=["preset", "bare"])
def test_closed_form_equals_executor_on_the_sweep(spec):
    """Exact (1e-9) where no B tile waits; elsewhere below the executor by at most the
    stated figures. Routes and memory per core exactly, uneven C blocks included."""
    bounded = 0
    for cfg in KERNEL.sweep():
        run = KERNEL.execute(spec, **cfg).execution
        cost = KERNEL.cost(spec, **cfg)
        p, q = cfg["p"], cfg["q"]
        if waits(spec, p, q, cfg["m"] // q, cfg["k"] // p, cfg["n"] // q):
            bounded += 1
            for got, want, figure in ((cost.cycles, run.cycles, B_BOUND_END),
                                      (cost.mean_core_cycles, run.mean_core_cycles, B_BOUND_MEAN)):
                assert want * (1 - figure) <= float(got) <= want * (1 + 1e-12), cfg
        else:
            assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), cfg
            assert float(cost.mean_core_cycles) == pytest.approx(run.mean_core_cycles, rel=1e-9), cfg
        assert float(cost.routes_per_core) == run.routes_per_core.max(), cfg
        assert float(cost.memory_per_core_bytes) == run.peak_memory_bytes.max(), cfg
    assert bounded > 10 if spec is BARE else bounded == 0


def test_hops_and_stages_are_the_executors_critical_path():
    cases = [(PRESET, (5, 5, 2, 3, 1)), (BARE, (7, 7, 4, 4, 4)), (PRESET, (4, 9, 2, 2, 2)),
             (PRESET, (9, 4, 1, 2, 3)), (PRESET, (3, 7, 4, 4, 4)), (PRESET, (2, 5, 4, 4, 4)),
             (PRESET, (6, 2, 4, 4, 4))]
    for spec, shape in cases:
        cfg = config(*shape)
        cost = KERNEL.cost(spec, **cfg)
        assert slope(KERNEL, spec, cfg, "alpha") == pytest.approx(float(cost.hops), abs=1e-3), cfg
        assert slope(KERNEL, spec, cfg, "beta") == pytest.approx(float(cost.routing_stages), abs=1e-3), cfg


def test_gemmts_critical_path_has_3p_minus_4_hops_and_4p_minus_7_stages():
    """Square: the latest core (row 0, column 1) hops P - 1 west in step 0, P - 1 east as
    the leaf 0 when the root jumps to P - 1 and P - 2 west with it: 3P - 4 hops."""
    for p in (3, 6, 9):
        cfg = config(p, p, 4, 4, 4)
        assert slope(KERNEL, PRESET, cfg, "alpha") == pytest.approx(3 * p - 4, abs=1e-3)
        assert slope(KERNEL, PRESET, cfg, "beta") == pytest.approx(4 * p - 7, abs=1e-3)
    p = np.arange(3, 700)
    cost = KERNEL.cost(PRESET, p=p, q=p, m=4 * p, k=4 * p, n=4 * p)
    assert cost.hops.tolist() == (3 * p - 4).tolist() and cost.routing_stages.tolist() == (4 * p - 7).tolist()


@pytest.mark.parametrize("stress", [False, True], ids=["typical", "stress"])
def test_formula_equals_the_recurrence_where_no_b_tile_waits(stress):
    """Random specs, p x q meshes and tiles: wherever no B tile waits, the O(1) formula
    equals the reference recurrence to 1e-9, with the same hops and stages."""
    rng = np.random.default_rng(11 + stress)
    checked = 0
    for _ in range(40):
        spec = random_spec(rng, stress)
        p, q = (int(x) for x in rng.integers(2, 29, 2))
        mt, kt, nt = rng.integers(1, 17, (3, 12))
        free = ~waits(spec, p, q, mt, kt, nt)
        if not free.any():
            continue
        mt, kt, nt = mt[free], kt[free], nt[free]
        cost = KERNEL.cost(spec, **config(p, q, mt, kt, nt))
        end, mean, hops, stages = per_mesh(_gemmt_timing, spec, (p, q), (mt, kt, nt))
        launch = spec.launch_overhead_cycles
        np.testing.assert_allclose(cost.cycles - launch, end, rtol=1e-9)
        np.testing.assert_allclose(cost.mean_core_cycles - launch, mean, rtol=1e-9)
        assert cost.hops.tolist() == hops.tolist() and cost.routing_stages.tolist() == stages.tolist()
        checked += int(free.sum())
    assert checked > 400


def test_b_bound_is_a_lower_bound_within_its_stated_figures():
    """The sweep :func:`gemmt_b_bound` states: random specs (typical, stress, and without
    overheads), p, q in 2..16, tiles 1..16 on each axis; every configuration where a B tile
    may wait. The end and the mean are never above the recurrence and at most the stated
    fractions below it."""
    rng = np.random.default_rng(3)
    worst_end = worst_mean = 0.0
    checked = 0
    for trial in range(120):
        spec = random_spec(rng, trial % 6 < 3) if trial % 3 == 0 else stress_spec(rng)
        p, q = (int(x) for x in rng.integers(2, 17, 2))
        mt, kt, nt = rng.integers(1, 17, (3, 16))
        slow = waits(spec, p, q, mt, kt, nt)
        if not slow.any():
            continue
        mt, kt, nt = mt[slow], kt[slow], nt[slow]
        cost = KERNEL.cost(spec, **config(p, q, mt, kt, nt))
        end, mean, _, _ = per_mesh(_gemmt_timing, spec, (p, q), (mt, kt, nt))
        launch = spec.launch_overhead_cycles
        low_end = (end - (cost.cycles - launch)) / end
        low_mean = (mean - (cost.mean_core_cycles - launch)) / mean
        assert low_end.min() > -1e-12 and low_mean.min() > -1e-12  # lower bounds
        worst_end, worst_mean = max(worst_end, low_end.max()), max(worst_mean, low_mean.max())
        checked += int(slow.sum())
    assert checked > 200
    assert worst_end <= B_BOUND_END and worst_mean <= B_BOUND_MEAN
    assert worst_end > 1e-3 and worst_mean > 0.05  # the figures are what this sweep measures


def test_one_configuration_equals_its_element_of_an_array():
    """One configuration runs in plain Python numbers, an array in numpy: the same doubles,
    field by field, in both regimes (with 8 FMAs per cycle and no overheads, B tiles wait)."""
    rng = np.random.default_rng(7)
    for spec in (CALIBRATED, BARE.replace(fma_per_cycle=8.0)):
        p, q = rng.integers(2, 40, 50), rng.integers(2, 40, 50)
        mt = rng.integers(1, 9, p.size)
        kt, nt = rng.integers(1, 9, (2, p.size))
        cfg = {"p": p, "q": q, "m": q * mt, "k": p * kt, "n": q * nt}
        slow = [waits(spec, int(p[i]), int(q[i]), mt[i], kt[i], nt[i]) for i in range(p.size)]
        assert sum(slow) == 0 if spec is CALIBRATED else sum(slow) > 10
        whole = KERNEL.cost(spec, **cfg)
        for i in range(p.size):
            one = KERNEL.cost(spec, **{name: int(value[i]) for name, value in cfg.items()})
            for key in ("cycles", "compute_cycles", "comm_cycles", "hops", "routing_stages",
                        "memory_per_core_bytes", "routes_per_core", "mean_core_cycles"):
                assert float(getattr(one, key)) == getattr(whole, key)[i], (spec.name, key, i)


def test_closed_form_is_vectorised_and_blocks_equal_one_evaluation():
    """Broadcast shapes, both regimes mixed, more configurations than a block: the same
    numbers as one unblocked evaluation of the formula."""
    rng = np.random.default_rng(4)
    size = 2 * BLOCK_SIZE + 7
    p, q = rng.integers(2, 300, size), rng.integers(2, 300, (2, 1))
    cfg = {"p": p, "q": q, "m": q * rng.integers(1, 9, size), "k": p * 3, "n": q}
    blocked, whole = KERNEL.cost(BARE, **cfg), GEMMT.cost.__wrapped__(KERNEL, BARE, **cfg)
    assert blocked.cycles.shape == whole.cycles.shape == (2, size)
    for key in ("cycles", "compute_cycles", "hops", "routing_stages", "memory_per_core_bytes",
                "routes_per_core", "mean_core_cycles"):
        assert np.array_equal(getattr(blocked, key), getattr(whole, key)), key
    assert np.all(whole.mean_core_cycles <= whole.cycles) and np.all(whole.compute_cycles <= whole.cycles)


def test_no_b_tile_waits_for_llm_configurations():
    """Q.K^T on WSE-3, square and not: tiles 4..32 never wait for B, so every evaluation is
    the exact formula."""
    t = np.arange(4, 33)
    mt, kt, nt = (x.ravel() for x in np.meshgrid(t, t, t, indexing="ij"))
    for p, q in ((360, 360), (660, 660), (750, 750), (762, 1172), (128, 660)):
        assert not waits(PRESET, p, q, mt, kt, nt).any()
    rng = np.random.default_rng(0)
    p, q = rng.integers(2, PRESET.fabric_width + 1, 100_000), rng.integers(2, PRESET.fabric_height + 1, 100_000)
    mt, kt, nt = rng.integers(4, 33, (3, p.size))
    cost = KERNEL.cost(PRESET, p=p, q=q, m=q * mt, k=p * kt, n=q * nt)
    c = PRESET.step_overhead_cycles + compute_cycles(PRESET, mt * kt * nt, kt, kt * nt)
    assert np.array_equal(cost.compute_cycles, q * c)  # q products on the path: no B wait taken
    assert np.all(cost.cycles > cost.compute_cycles)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(SpecError, match="'m' = 5 must be a multiple of the mesh height q"):
        KERNEL.cost(PRESET, p=4, q=6, m=5, k=12, n=6)
    with pytest.raises(SpecError, match="'k' = 6 must be a multiple of the mesh width p"):
        KERNEL.execute(PRESET, p=4, q=6, m=6, k=6, n=6)
    with pytest.raises(SpecError, match="'n' = 8 must be a multiple of the mesh height q"):
        KERNEL.cost(PRESET, p=4, q=6, m=6, k=4, n=8)
    with pytest.raises(SpecError, match="'q' = 1 must be >= 2"):
        KERNEL.cost(PRESET, p=4, q=np.array([4, 1]), m=4, k=4, n=4)
    with pytest.raises(SpecError, match="'p' = 763 exceeds the fabric width 762"):
        KERNEL.cost(PRESET, p=763, q=4, m=4, k=763, n=4)
    with pytest.raises(SpecError, match="'n' = 7 must be a multiple"):  # the first fault named
        KERNEL.cost(PRESET, p=np.array([4, 4]), q=4, m=4, k=4, n=np.array([4, 7]))
    with pytest.raises(SpecError, match="'k'.*must be an integer"):
        KERNEL.cost(PRESET, p=4, q=4, m=4, k=4.5, n=4)
    assert float(KERNEL.cost(PRESET, p=4, q=6, m=6, k=4, n=6).cycles) > 0  # p != q is fine
