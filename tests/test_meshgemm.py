"""MeshGEMM: the closed form against the executor, routes, memory and blocks."""

from __future__ import annotations

import numpy as np
import pytest
from _support import CALIBRATED, PRESET, square_config

from plummer.errors import SpecError
from plummer.kernels.meshgemm import MeshGEMM, meshgemm_routes


@pytest.mark.parametrize("spec", [CALIBRATED, PRESET], ids=["calibrated", "preset"])
def test_closed_form_equals_executor(spec):
    kernel = MeshGEMM()
    for config in kernel.sweep():
        if config["p"] * config["q"] > 100:
            continue  # keep the test fast; the closed form is per-P, checked on small meshes
        run = kernel.execute(spec, **config).execution
        cost = kernel.cost(spec, **config)
        assert float(cost.cycles) == pytest.approx(run.cycles, rel=1e-9), config
        assert float(cost.mean_core_cycles) == pytest.approx(run.mean_core_cycles, rel=1e-9), config
        assert float(cost.routes_per_core) == run.routes_per_core.max(), config
        assert float(cost.memory_per_core_bytes) == run.peak_memory_bytes.max(), config


def test_non_square_is_rejected():
    with pytest.raises(SpecError, match="'q'.*square"):
        MeshGEMM().cost(PRESET, p=4, q=6, m=12, k=12, n=8)


def test_meshgemm_routes_and_step_are_independent_of_p():
    assert meshgemm_routes(8) == meshgemm_routes(16) == meshgemm_routes(32)
    kernel = MeshGEMM()
    for p in (8, 16, 32):
        assert float(kernel.cost(PRESET, **square_config(p, 1, 1, 16)).routes_per_core) == meshgemm_routes(8)
    # per-step critical path: cycles grow linearly in P with a P-independent slope
    c = [float(kernel.cost(PRESET, **square_config(p, 2, 2, 2)).cycles) for p in (8, 16, 32)]
    assert c[2] - c[1] == pytest.approx(2 * (c[1] - c[0]))


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
            config = square_config(p, mt, kt, nt)
            run = kernel.execute(bare, **config)
            predicted = float(kernel.cost(bare, **config).cycles)
            assert run.correct
            assert run.execution.cycles <= predicted <= 1.12 * run.execution.cycles, config


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



#: Measured WSE-3 MeshGEMM runs (P, M = K = N, mean cycles over cores; shared/data/wse3): the
#: largest mesh, and the two P = 144 runs, one of which is the published per-run log (mean
#: 93,940, max 94,003: every core aligns for floor(P/2) steps, so all finish together).
MEASURED_ROWS = [(720, 5760, 480_748.0), (144, 1152, 93_940.0), (144, 144, 23_319.0)]


@pytest.mark.parametrize("p, size, measured", MEASURED_ROWS)
def test_shipped_preset_reproduces_measured_runs(p, size, measured):
    """The makespan with the shipped wse3 preset (no refit) within 5% of the measured cycles,
    and the mean over cores within 0.1% of the makespan, as in the per-run log."""
    cost = MeshGEMM().cost(PRESET, p=p, q=p, m=size, k=size, n=size)
    assert float(cost.cycles) == pytest.approx(measured, rel=0.05)
    assert float(cost.mean_core_cycles) == pytest.approx(float(cost.cycles), rel=1e-3)


def test_refit_holds_out_within_two_percent_mean_five_percent_max():
    """The preset's calibration command (P >= 464 held out): MeshGEMM and MeshGEMV predict
    the held-out runs within 2% on average and 5% at worst."""
    from pathlib import Path

    from plummer.calibrate import calibrate, load_measurements

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "wse3"
    records = load_measurements(sorted(data.glob("*.json")))
    errors = calibrate(records, PRESET, holdout_min_p=464).errors.set_index("kernel")
    for kernel in ("meshgemm", "meshgemv"):
        assert errors.loc[kernel, "n_holdout"] > 0, kernel
        assert errors.loc[kernel, "mape_holdout"] <= 0.02, kernel
        assert errors.loc[kernel, "max_err_holdout"] <= 0.05, kernel
