"""Speed figures of the executor and the closed forms (``plummer benchmark``).

Wall-clock figures on a shared machine are noisy: each is the median of ``repeats`` runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.kernels import KERNELS, get_kernel


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_benchmark(spec: HardwareSpec, repeats: int = 3, large: bool = True) -> dict[str, float]:
    """Executor seconds for MeshGEMM (32x32, and 64x64 if ``large``) with 8x8x8 tiles and
    a K-tree allreduce over 64x64; closed-form evaluations per second (vectorised over
    10^6 configurations) and microseconds per scalar call."""
    if repeats < 1:
        raise SpecError(f"--repeats = {repeats} must be >= 1")
    gemm = get_kernel("gemm", "meshgemm")
    out: dict[str, float] = {}
    out["executor_meshgemm_32x32_8x8x8_s"] = _median_seconds(
        lambda: gemm.execute(spec, p=32, q=32, m=256, k=256, n=256), repeats
    )
    if large:
        out["executor_meshgemm_64x64_8x8x8_s"] = _median_seconds(
            lambda: gemm.execute(spec, p=64, q=64, m=512, k=512, n=512), repeats
        )
    if ("allreduce", "ktree") in KERNELS:
        ktree = get_kernel("allreduce", "ktree")
        out["executor_ktree_allreduce_64x64_s"] = _median_seconds(
            lambda: ktree.execute(spec, p=64, q=64, n=16, k_tree=2, group_num=8, axis="y"), repeats
        )
    rng = np.random.default_rng(0)
    size = 1_000_000
    p = rng.integers(2, 700, size)
    tiles = [rng.integers(1, 32, size) * p for _ in range(3)]
    vector_s = _median_seconds(lambda: gemm.cost(spec, p=p, q=p, m=tiles[0], k=tiles[1], n=tiles[2]), repeats)
    out["closed_form_meshgemm_evals_per_s"] = size / vector_s
    scalar_s = _median_seconds(
        lambda: [gemm.cost(spec, p=64, q=64, m=512, k=512, n=512) for _ in range(1000)], repeats
    )
    out["closed_form_meshgemm_scalar_us"] = scalar_s / 1000 * 1e6
    return out
