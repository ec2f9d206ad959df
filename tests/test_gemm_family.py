"""The GEMM family: outputs, closed forms against the executor, routes, memory and errors.

Cannon and GEMM-T are not written yet; their tests belong here when they are.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from plummer.errors import CoreMemoryError, RoutingError, SpecError
from plummer.hardware import load_hardware
from plummer.kernels._maxplus import per_mesh
from plummer.kernels.meshgemm import MeshGEMM, meshgemm_routes
from plummer.kernels.summa import SUMMA, SUMMARelay, _relay_finish, summa_relay_compute_bound

PRESET = load_hardware("wse3")
CALIBRATED = PRESET.replace(
    alpha=2.85, beta=9.2, fma_per_cycle=4.9, vector_op_overhead_cycles=2.1,
    loop_overhead_cycles=39.0, step_overhead_cycles=121.0, message_overhead_cycles=33.5,
    launch_overhead_cycles=51.0,
)
SPECS = [PRESET, CALIBRATED]
KERNELS = [MeshGEMM(), SUMMA(), SUMMARelay()]


def _config(p: int, mt: int, kt: int, nt: int) -> dict[str, int]:
    return {"p": p, "q": p, "m": p * mt, "k": p * kt, "n": p * nt}


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("p", [2, 3, 4, 5, 8])
def test_output_is_a_times_b(kernel, p):
    for mt, kt, nt in [(1, 1, 1), (2, 3, 1), (4, 4, 4)]:
        run = kernel.execute(CALIBRATED, seed=p, **_config(p, mt, kt, nt))
        assert run.correct and run.max_abs_error < 1e-3


def test_summa_non_square_output():
    for kernel in (SUMMA(), SUMMARelay()):
        run = kernel.execute(PRESET, p=4, q=6, m=12, k=24, n=8)
        assert run.correct and run.max_abs_error < 1e-3


@pytest.mark.parametrize(
    "kernel, spec",
    [(MeshGEMM(), CALIBRATED), (MeshGEMM(), PRESET), (SUMMA(), PRESET), (SUMMA(), CALIBRATED)],
    ids=["meshgemm-calibrated", "meshgemm-preset", "summa-preset", "summa-calibrated"],
)
def test_closed_form_equals_executor(kernel, spec):
    for config in kernel.sweep():
        if config["p"] * config["q"] > 100:
            continue  # keep the test fast; the closed form is per-P, checked on small meshes
        run = kernel.execute(spec, **config).execution
        cost = kernel.cost(spec, **config)
        assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), config
        # summa's mean is approximated by the makespan; meshgemm's is exact
        mean_tolerance = 1e-9 if kernel.name == "meshgemm" else 0.02
        if spec is CALIBRATED or kernel.name == "meshgemm":
            assert float(cost.mean_core_cycles) == pytest.approx(
                run.mean_core_cycles, rel=mean_tolerance
            ), config
        assert float(cost.routes_per_core) == run.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == run.peak_memory_bytes.max(), config


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


def test_closed_form_is_vectorised():
    p = np.array([2, 3, 4, 8, 16, 32] * 1000)
    for kernel in KERNELS:
        cost = kernel.cost(CALIBRATED, p=p, q=p, m=4 * p, k=4 * p, n=4 * p)
        assert cost.cycles.shape == p.shape and np.all(cost.cycles > 0)


def test_meshgemm_routes_and_step_are_independent_of_p():
    assert meshgemm_routes(8) == meshgemm_routes(16) == meshgemm_routes(32)
    kernel = MeshGEMM()
    for p in (8, 16, 32):
        assert float(kernel.cost(PRESET, **_config(p, 1, 1, 16)).routes_per_core) == meshgemm_routes(8)
    # per-step critical path: cycles grow linearly in P with a P-independent slope
    c = [float(kernel.cost(PRESET, **_config(p, 2, 2, 2)).cycles) for p in (8, 16, 32)]
    assert c[2] - c[1] == pytest.approx(2 * (c[1] - c[0]))


def test_summa_routes_grow_and_overflow_the_budget():
    kernel = SUMMA()
    routes = [float(kernel.cost(PRESET, **_config(p, 1, 1, 1)).routes_per_core) for p in (4, 8, 16, 32)]
    assert routes == sorted(routes) and routes[0] < routes[-1]
    big = kernel.cost(PRESET, **_config(32, 1, 1, 1))
    assert not bool(big.fits_routes)
    small_ok = kernel.cost(PRESET, **_config(9, 1, 1, 1))
    assert bool(small_ok.fits_routes)
    with pytest.raises(RoutingError, match="route budget"):
        kernel.execute(PRESET, **_config(12, 1, 1, 1))
    relay = SUMMARelay().cost(PRESET, **_config(32, 1, 1, 1))
    assert bool(relay.fits_routes)


def test_summa_relay_pays_beta_per_stage():
    kernel = SUMMARelay()
    config = _config(6, 2, 2, 2)
    low = kernel.execute(CALIBRATED.replace(beta=5.0), **config).execution.cycles
    high = kernel.execute(CALIBRATED.replace(beta=50.0), **config).execution.cycles
    assert high > low
    assert float(kernel.cost(CALIBRATED.replace(beta=50.0), **config).cycles) > float(
        kernel.cost(CALIBRATED.replace(beta=5.0), **config).cycles
    )
    multicast = SUMMA()
    same = [multicast.execute(CALIBRATED.replace(beta=b), **config).execution.cycles for b in (5.0, 50.0)]
    assert same[0] == same[1]


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_tiles_past_memory_raise(kernel):
    small = PRESET.replace(memory_bytes=256)
    config = _config(3, 8, 8, 8)
    assert not bool(kernel.cost(small, **config).fits_memory)
    with pytest.raises(CoreMemoryError, match=r"core \(\d+, \d+\)"):
        kernel.execute(small, **config)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_clear_errors(kernel):
    with pytest.raises(SpecError, match="'m'"):
        kernel.cost(PRESET, p=4, q=4, m=5, k=4, n=4)
    with pytest.raises(SpecError, match="'k'"):
        kernel.cost(PRESET, p=4, q=4, m=4, k=6, n=4)
    with pytest.raises(SpecError, match="'n'"):
        kernel.cost(PRESET, p=4, q=4, m=4, k=4, n=6)


def test_non_square_only_where_allowed():
    with pytest.raises(SpecError, match="'q'.*square"):
        MeshGEMM().cost(PRESET, p=4, q=6, m=12, k=12, n=8)
    for kernel in (SUMMA(), SUMMARelay()):
        kernel.check(PRESET, p=4, q=6, m=12, k=12, n=8)


def test_meshgemm_vectorised_routes_match_the_exact_count():
    p = np.arange(2, 400)
    routes = MeshGEMM().cost(PRESET, p=p, q=p, m=p, k=p, n=p).routes_per_core
    assert routes.tolist() == [float(meshgemm_routes(int(x))) for x in p]


def test_meshgemm_communication_bound_closed_form_is_an_upper_bound():
    """With no software overheads the shifts outlast the product; the ring's one-hop turns
    then make the executor faster than the closed form, never slower."""
    bare = PRESET.replace(
        alpha=1.0, fma_per_cycle=1.0, vector_op_overhead_cycles=0.0, loop_overhead_cycles=0.0,
        step_overhead_cycles=0.0, message_overhead_cycles=0.0, launch_overhead_cycles=0.0,
    )
    kernel = MeshGEMM()
    for p in (3, 4, 5, 8):
        for mt, kt, nt in ((1, 1, 1), (1, 8, 2)):
            config = _config(p, mt, kt, nt)
            run = kernel.execute(bare, **config)
            predicted = float(kernel.cost(bare, **config).cycles)
            assert run.correct
            assert run.execution.cycles <= predicted <= 1.12 * run.execution.cycles, config


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


def test_meshgemm_tiles_are_exact_for_every_p():
    """Mt = m / p etc. are whole numbers (m * (1 / p) is not, from P = 75 on: it rounded
    some serializations up by a cycle): memory per core is then the exact number of bytes."""
    rng = np.random.default_rng(3)
    p = rng.integers(2, 700, 20_000)
    mt, kt, nt = (rng.integers(1, 32, p.size) for _ in range(3))
    cost = MeshGEMM().cost(PRESET, p=p, q=p, m=p * mt, k=p * kt, n=p * nt)
    db = PRESET.dtype_bytes
    assert cost.memory_per_core_bytes.tolist() == (db * (2 * mt * kt + 2 * kt * nt + mt * nt)).tolist()


def test_meshgemm_blocks_equal_one_evaluation():
    """Over more than BLOCK_SIZE configurations the closed form runs blockwise: the same
    numbers, shapes and errors as one evaluation of the formula."""
    from plummer.kernels._base import BLOCK_SIZE

    kernel = MeshGEMM()
    formula = MeshGEMM.cost.__wrapped__
    rng = np.random.default_rng(4)
    p = rng.integers(2, 300, 2 * BLOCK_SIZE + 7)
    config = {"p": p, "q": p, "m": p * rng.integers(1, 9, p.size), "k": 3 * p, "n": p.reshape(-1, 1)[:, [0, 0]].T}
    config["p"], config["q"], config["m"], config["k"] = (config[x].reshape(1, -1) for x in "pqmk")
    blocked, whole = kernel.cost(PRESET, **config), formula(kernel, PRESET, **config)
    assert blocked.cycles.shape == whole.cycles.shape == (2, p.size)
    for key in ("cycles", "compute_cycles", "comm_cycles", "hops", "routing_stages",
                "memory_per_core_bytes", "routes_per_core", "mean_core_cycles"):
        assert np.array_equal(getattr(blocked, key), getattr(whole, key)), key
    # two faults in different blocks: the first rule's fault is named, as without blocks
    bad = {name: np.array(value).reshape(-1) for name, value in config.items() if name != "n"}
    bad["n"] = bad["p"] * 2
    bad["n"][5] += 1  # first block, rule 'n'
    bad["p"] = bad["p"].copy()
    bad["p"][-1] = 1  # last block, rule 'p' (checked first)
    with pytest.raises(SpecError, match=r"'p' = 1 must be >= 2"):
        kernel.cost(PRESET, **bad)


@pytest.mark.parametrize("square", [True, False])
def test_gemm_bulk_checks_agree_with_the_rules(square):
    """gemm_params checks everything at once and only on failure rule by rule; both agree."""
    from plummer.kernels._gemm import gemm_params

    rng = np.random.default_rng(5 + square)
    for trial in range(300):
        size = int(rng.integers(1, 4))
        p = rng.integers(1, 6, size)
        q = p if square and trial % 3 else rng.integers(1, 6, size)
        params = {"p": p, "q": q, **{x: rng.integers(1, 5, size) * [1, p, q][rng.integers(3)] for x in "mkn"}}
        if trial % 2:  # one configuration, as Python ints
            params = {name: int(value[0]) for name, value in params.items()}
        arrays = {name: np.atleast_1d(value) for name, value in params.items()}
        ok = [
            2 <= arrays["p"][i] <= PRESET.fabric_width and 2 <= arrays["q"][i] <= PRESET.fabric_height
            and (not square or arrays["p"][i] == arrays["q"][i])
            and arrays["m"][i] % arrays["q"][i] == 0 and arrays["k"][i] % arrays["p"][i] == 0
            and (square or arrays["k"][i] % arrays["q"][i] == 0) and arrays["n"][i] % arrays["p"][i] == 0
            for i in range(arrays["p"].size)
        ]
        if all(ok):
            gemm_params("x", PRESET, params, square)
        else:
            with pytest.raises(SpecError):
                gemm_params("x", PRESET, params, square)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_one_configuration_equals_its_element_of_an_array(kernel):
    """A single configuration runs the formula in plain Python numbers where an array runs
    it in numpy: the same doubles either way, field by field."""
    rng = np.random.default_rng(7)
    p = rng.integers(2, 40, 40)
    config = {"p": p, "q": p, "m": p * rng.integers(1, 9, p.size),
              "k": p * rng.integers(1, 9, p.size), "n": p * rng.integers(1, 9, p.size)}
    whole = kernel.cost(CALIBRATED, **config)
    for i in range(p.size):
        one = kernel.cost(CALIBRATED, **{name: int(value[i]) for name, value in config.items()})
        for key in ("cycles", "compute_cycles", "comm_cycles", "hops", "routing_stages",
                    "memory_per_core_bytes", "routes_per_core", "mean_core_cycles"):
            assert float(getattr(one, key)) == getattr(whole, key)[i], (key, i)
