"""MeshGEMM: the closed form against the executor and the reference recurrence (exact where
the products dominate, a measured lower bound elsewhere), P x Q meshes, routes, memory,
the measured runs, blocks and bad inputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _ring_reference import bound_errors, ring_gemm_timing, step_costs
from _support import BARE, CALIBRATED, PRESET, random_spec, slope, square_config

from plummer.errors import SpecError
from plummer.kernels._base import BLOCK_SIZE
from plummer.kernels._virtual import meshgemm_alignment, meshgemm_steps
from plummer.kernels.meshgemm import PROGRAM, MeshGEMM, meshgemm_routes

KERNEL = MeshGEMM()

#: The bound's figures on ``bound_sweep`` seeds 0 and 1 (MeshGEMM.cost's docstring): the
#: closed form is at most this far below the recurrence, never above.
CYCLES_BOUND, MEAN_BOUND = 0.0028, 0.030


def exact_regime(spec, config) -> bool:
    """MeshGEMM.cost's exact regime: ``c >= 3 alpha + T_A`` and ``c >= 2 alpha + T_B``."""
    from _ring_reference import step_costs

    s = math.lcm(config["p"], config["q"])
    c, t_a, t_b = step_costs(spec, config["p"], config["q"], config["m"] // s, config["k"] // s, config["n"] // s)
    return bool(c >= 3 * spec.alpha + t_a and c >= 2 * spec.alpha + t_b)


@pytest.mark.parametrize("spec, exact_at_least", [(CALIBRATED, 30), (PRESET, 30), (BARE, 0)],
                         ids=["calibrated", "preset", "bare"])
def test_closed_form_against_the_executor_on_the_sweep(spec, exact_at_least):
    """Exact (1e-9) in the exact regime, else the stated lower bound; routes and memory
    always equal the executor's. Meshes up to 100 cores here (plummer validate runs all)."""
    exact = 0
    for config in KERNEL.sweep():
        if config["p"] * config["q"] > 100:
            continue
        run = KERNEL.execute(spec, **config)
        cost = KERNEL.cost(spec, **config)
        ex = run.execution
        assert run.correct, config
        assert float(cost.routes_per_core) == ex.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == ex.peak_memory_bytes.max(), config
        if exact_regime(spec, config):
            exact += 1
            assert float(cost.cycles) == pytest.approx(ex.cycles, rel=1e-9), config
            assert float(cost.mean_core_cycles) == pytest.approx(ex.mean_core_cycles, rel=1e-9), config
        else:
            assert -1e-9 <= 1 - float(cost.cycles) / ex.cycles <= CYCLES_BOUND, config
            assert -1e-9 <= 1 - float(cost.mean_core_cycles) / ex.mean_core_cycles <= MEAN_BOUND, config
    assert exact >= exact_at_least


def test_large_meshes_on_the_executor():
    """P = 31 and 32 (odd and even): the executor and the closed form agree to 1e-9."""
    for p, tile in ((31, (2, 2, 2)), (32, (1, 4, 2))):
        config = square_config(p, *tile)
        run = KERNEL.execute(PRESET, **config)
        cost = KERNEL.cost(PRESET, **config)
        assert run.correct
        assert float(cost.cycles) == pytest.approx(run.execution.cycles, rel=1e-9)
        assert float(cost.mean_core_cycles) == pytest.approx(run.execution.mean_core_cycles, rel=1e-9)


def test_the_reference_recurrence_is_the_executor():
    """The recurrence the bounds are measured against equals the executor (random specs,
    square and P x Q, with and without message overheads)."""
    rng = np.random.default_rng(11)
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


def test_exact_regime_equals_the_recurrence_and_the_bound_holds_elsewhere():
    """Over the stated sweep (``bound_sweep`` seeds 0 and 1, 5120 configurations): exact
    to 1e-9 where ``c >= 3 alpha + T_A`` and ``c >= 2 alpha + T_B``; elsewhere never above
    the recurrence and at most the stated figures below it."""
    rows = bound_errors(KERNEL, PROGRAM, (0, 1))
    exact = [max(abs(e1), abs(e2)) for spec, p, q, c, t_a, t_b, e1, e2 in rows
             if c >= 3 * spec.alpha + t_a and c >= 2 * spec.alpha + t_b]
    bound = np.array([(e1, e2) for spec, p, q, c, t_a, t_b, e1, e2 in rows
                      if not (c >= 3 * spec.alpha + t_a and c >= 2 * spec.alpha + t_b)])
    assert len(exact) > 2000 and max(exact) < 1e-9
    assert len(bound) > 2000
    assert bound.max() < 1e-9  # a lower bound
    assert -bound[:, 0].min() <= CYCLES_BOUND
    assert -bound[:, 1].min() <= MEAN_BOUND


def test_cycles_are_exact_from_2_alpha_plus_T_on():
    """The cycles are exact already for ``c >= 2 alpha + max(T_A, T_B)`` (the odd rings'
    waves only touch the mean)."""
    rows = bound_errors(KERNEL, PROGRAM, (2,))
    cycles = [abs(e1) for spec, p, q, c, t_a, t_b, e1, e2 in rows if c >= 2 * spec.alpha + max(t_a, t_b)]
    assert len(cycles) > 1000 and max(cycles) < 1e-9


def test_square_kernel_closed_form():
    """On a square mesh, compute-bound: ``launch + floor(P/2) (2 mo + T_A) + alpha (P - 1)
    + P c``, every core aligned at the same time on an even ring (mean = cycles)."""
    for p in (8, 9, 16, 17):
        config = square_config(p, 4, 4, 4)
        cost = KERNEL.cost(PRESET, **config)
        t_a = 16.0  # 4 x 4 elements of 4 wire bytes at 4 bytes a cycle
        c = PRESET.step_overhead_cycles + 4 * PRESET.loop_overhead_cycles + 16 * PRESET.vector_op_overhead_cycles + 64 / PRESET.fma_per_cycle
        want = PRESET.launch_overhead_cycles + p // 2 * (2 * PRESET.message_overhead_cycles + t_a) + PRESET.alpha * (p - 1) + p * c
        assert float(cost.cycles) == pytest.approx(want, rel=1e-12)
        gap = float(cost.cycles - cost.mean_core_cycles)
        assert gap == (0.0 if p % 2 == 0 else pytest.approx(PRESET.alpha * (1 - 1 / p)))


def test_hops_and_stages_are_the_critical_paths():
    """``hops`` is ``d cycles / d alpha`` of the executor, in both regimes."""
    for spec, config in ((PRESET, square_config(5, 2, 3, 1)), (PRESET, {"p": 4, "q": 6, "m": 12, "k": 12, "n": 24}),
                         (BARE, square_config(8, 1, 1, 1)), (BARE, {"p": 3, "q": 6, "m": 6, "k": 6, "n": 6})):
        cost = KERNEL.cost(spec, **config)
        assert slope(KERNEL, spec, config, "alpha") == pytest.approx(float(cost.hops), abs=1e-3), config
        assert slope(KERNEL, spec, config, "message_overhead_cycles") == pytest.approx(float(cost.routing_stages), abs=1e-3), config


def test_alignment_steps_closed_form_is_the_plan():
    """N (meshgemm_steps) is the most steps any row's plan needs, and the closed form's
    two PE stages per alignment step use it, on every mesh shape up to 40 x 40."""
    p, q = np.meshgrid(np.arange(2, 41), np.arange(2, 41))
    steps = meshgemm_steps(p, q)
    assert steps.tolist() == np.vectorize(lambda a, b: meshgemm_alignment(a, b).steps[0])(p, q).tolist()
    s = np.lcm(p, q)
    cost = KERNEL.cost(PRESET, p=p, q=q, m=4 * s, k=4 * s, n=4 * s)  # compute-bound
    assert np.array_equal(cost.routing_stages, 2 * steps)


def test_routes_formula_is_the_exact_count():
    p, q = np.meshgrid(np.arange(2, 40), np.arange(2, 40))
    routes = KERNEL.cost(PRESET, p=p, q=q, m=np.lcm(p, q), k=np.lcm(p, q), n=np.lcm(p, q)).routes_per_core
    exact = np.vectorize(meshgemm_routes)(p, q)
    assert np.array_equal(routes, exact)
    assert meshgemm_routes(32) == 9 <= PRESET.route_budget


def test_pxq_outputs_and_sizes():
    """P x Q meshes multiply A and B on the executor; sizes must be multiples of S."""
    for p, q in ((2, 3), (4, 6), (6, 4), (5, 3)):
        s = math.lcm(p, q)
        run = KERNEL.execute(CALIBRATED, seed=p * q, p=p, q=q, m=2 * s, k=s, n=3 * s)
        assert run.correct and run.output.shape == (2 * s, 3 * s)
    with pytest.raises(SpecError, match=r"'m' = 6 must be a multiple of S = lcm\(p, q\)"):
        KERNEL.cost(PRESET, p=4, q=6, m=6, k=12, n=12)
    with pytest.raises(SpecError, match=r"'m' = 6 must be a multiple of the mesh height q"):
        KERNEL.execute(PRESET, p=2, q=4, m=6, k=4, n=4)


def test_tiles_are_exact_for_every_p():
    """Tile sides are whole numbers whatever P (``m * (1/p)`` is not, from P = 75 on):
    memory per core is the exact number of bytes."""
    rng = np.random.default_rng(3)
    p = rng.integers(2, 700, 20_000)
    mt, kt, nt = (rng.integers(1, 32, p.size) for _ in range(3))
    cost = KERNEL.cost(PRESET, p=p, q=p, m=p * mt, k=p * kt, n=p * nt)
    db = PRESET.dtype_bytes
    assert cost.memory_per_core_bytes.tolist() == (db * (2 * mt * kt + 2 * kt * nt + mt * nt)).tolist()


def test_blocks_and_single_configurations_equal_one_evaluation():
    """Over more than BLOCK_SIZE configurations the closed form runs blockwise, and one
    configuration runs in plain Python numbers: the same numbers either way."""
    formula = MeshGEMM.cost.__wrapped__
    rng = np.random.default_rng(4)
    size = 2 * BLOCK_SIZE + 7
    p, q = rng.integers(2, 40, size), rng.integers(2, 40, size)
    s = np.lcm(p, q)
    config = {"p": p, "q": q, "m": s * rng.integers(1, 9, size), "k": s * rng.integers(1, 9, size), "n": s * rng.integers(1, 9, size)}
    blocked, whole = KERNEL.cost(BARE, **config), formula(KERNEL, BARE, **config)
    keys = ("cycles", "compute_cycles", "comm_cycles", "hops", "routing_stages",
            "memory_per_core_bytes", "routes_per_core", "mean_core_cycles")
    for key in keys:
        assert np.array_equal(getattr(blocked, key), getattr(whole, key)), key
    for i in rng.integers(0, size, 40):
        one = KERNEL.cost(BARE, **{name: int(value[i]) for name, value in config.items()})
        for key in keys:
            assert float(getattr(one, key)) == getattr(whole, key)[i], (key, i)
    bad = {name: value.copy() for name, value in config.items()}
    bad["n"][5] += 1  # first block, rule 'n'
    bad["p"][-1] = 1  # last block, rule 'p' (checked first)
    with pytest.raises(SpecError, match=r"'p' = 1 must be >= 2"):
        KERNEL.cost(PRESET, **bad)


#: Measured WSE-3 MeshGEMM runs (P, M = K = N, mean cycles over cores; shared/data/wse3): the
#: largest mesh, and the two P = 144 runs, one of which is the published per-run log (mean
#: 93,940, max 94,003: every core aligns for floor(P/2) steps, so all finish together).
MEASURED_ROWS = [(720, 5760, 480_748.0), (144, 1152, 93_940.0), (144, 144, 23_319.0)]


@pytest.mark.parametrize("p, size, measured", MEASURED_ROWS)
def test_shipped_preset_reproduces_measured_runs(p, size, measured):
    """The makespan with the shipped wse3 preset (no refit) within 5% of the measured cycles,
    and the mean over cores within 0.1% of the makespan, as in the per-run log."""
    cost = KERNEL.cost(PRESET, p=p, q=p, m=size, k=size, n=size)
    assert float(cost.cycles) == pytest.approx(measured, rel=0.05)
    assert float(cost.mean_core_cycles) == pytest.approx(float(cost.cycles), rel=1e-3)


def test_refit_holds_out_within_two_percent_mean_five_percent_max():
    """The preset's calibration command (P >= 464 held out): MeshGEMM and MeshGEMV predict
    the held-out runs within 2% on average and 5% at worst."""
    from plummer.calibrate import calibrate, load_measurements

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "wse3"
    records = load_measurements(sorted(data.glob("*.json")))
    errors = calibrate(records, PRESET, holdout_min_p=464).errors.set_index("kind")
    for kernel in ("meshgemm", "meshgemv"):
        assert errors.loc[kernel, "n_holdout"] > 0, kernel
        assert errors.loc[kernel, "mape_holdout"] <= 0.02, kernel
        assert errors.loc[kernel, "max_err_holdout"] <= 0.05, kernel


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
        want = brute_rides(spec, "meshgemm", p, q, c, t_a, t_b)
        assert float(cost.cycles) - spec.launch_overhead_cycles >= want * (1 - 1e-12), (p, q, ms, ks, ns)
