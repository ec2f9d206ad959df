"""The GEMM family as a whole: outputs, vectorisation, memory limits, errors and the bulk
parameter checks. Each kernel's closed form against its executor is in its own test file."""

from __future__ import annotations

import numpy as np
import pytest
from _support import CALIBRATED, PRESET, square_config

from plummer.errors import CoreMemoryError, SpecError
from plummer.kernels.meshgemm import MeshGEMM
from plummer.kernels.summa import SUMMA, SUMMARelay

KERNELS = [MeshGEMM(), SUMMA(), SUMMARelay()]


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
@pytest.mark.parametrize("p", [2, 3, 4, 5, 8])
def test_output_is_a_times_b(kernel, p):
    for mt, kt, nt in [(1, 1, 1), (2, 3, 1), (4, 4, 4)]:
        run = kernel.execute(CALIBRATED, seed=p, **square_config(p, mt, kt, nt))
        assert run.correct and run.max_abs_error < 1e-3


def test_closed_form_is_vectorised():
    p = np.array([2, 3, 4, 8, 16, 32] * 1000)
    for kernel in KERNELS:
        cost = kernel.cost(CALIBRATED, p=p, q=p, m=4 * p, k=4 * p, n=4 * p)
        assert cost.cycles.shape == p.shape and np.all(cost.cycles > 0)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.name)
def test_tiles_past_memory_raise(kernel):
    small = PRESET.replace(memory_bytes=256)
    config = square_config(3, 8, 8, 8)
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

