"""Speed figures of the executor and the closed forms (``plummer benchmark``).

For every kernel of :data:`plummer.kernels.KERNELS`: configurations per second of its
closed form vectorised over random valid configurations in which every numeric parameter
varies (LLM-sized: meshes of 2 to 750 cores a side, tiles of 1 to 32 elements; the axis
is ``"y"``), and microseconds per call for one configuration (Python ints). A family's
generator (:data:`GENERATORS`) proposes variants, most general first (non-square meshes
before square ones, free vector lengths before multiples of the line), and the first one
the kernel's ``check`` accepts is used, so new algorithms and relaxed rules are picked up
without a change here. Times are the process's CPU time by default (on a shared machine
the wall clock also counts the time other processes hold the CPU; on an idle one both
agree), or the wall clock; each figure is the median of ``repeats`` runs. A call that
takes longer than the time limit (wall clock) is stopped and reported as such (some closed
forms fall back to a recurrence of ``P`` steps).
"""

from __future__ import annotations

import itertools
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.kernels import KERNELS, Kernel, get_kernel

#: Largest mesh side and tile (elements) of the random configurations.
MESH_MAX = 750
TILE_MAX = 32

#: Configurations of one scalar timing run (the first ones of the random set).
SCALAR_CALLS = 200

#: The clocks a benchmark can read.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}

Configurations = dict[str, Any]


# ----------------------------------------------------------- configurations
def _tiles(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.integers(1, TILE_MAX + 1, size)


def _sides(rng: np.random.Generator, unit: np.ndarray) -> np.ndarray:
    """Random multiples of ``unit`` from ``max(2, unit)`` to :data:`MESH_MAX`."""
    low = np.where(unit == 1, 2, 1)
    return unit * rng.integers(low, MESH_MAX // unit + 1)


def _gemm(kernel: Kernel, size: int, rng: np.random.Generator) -> Iterator[Configurations]:
    """``p = c u`` by ``q = c v`` meshes (``u, v <= 3``), then square ones (``u = v = 1``);
    ``m, k, n`` are multiples of ``lcm(p, q)`` (tiles of 1 to 32 per multiple), so any rule
    that splits a size over ``p`` or ``q`` holds."""
    for most in (3, 1):
        u, v = rng.integers(1, most + 1, size), rng.integers(1, most + 1, size)
        c = rng.integers(2, MESH_MAX // np.maximum(u, v) + 1)
        p, q = c * u, c * v
        unit = np.lcm(p, q)
        yield {"p": p, "q": q, "m": unit * _tiles(rng, size), "k": unit * _tiles(rng, size),
               "n": unit * _tiles(rng, size)}


def _line(kernel: Kernel, size: int, rng: np.random.Generator) -> Configurations:
    """A line kernel's mesh and tree: ``q`` cores along the axis ``y``, ``p`` across, both
    multiples of a group count ``g <= 27`` (so ``group_num = g`` divides both);
    ``k_tree`` 1 to 4, ``group_num`` 0 (the default) or ``g`` (0 or 1 for K = 1);
    ``distance`` 1 to 750."""
    groups = rng.integers(1, 28, size)
    out: Configurations = {"p": _sides(rng, groups), "q": _sides(rng, groups), "axis": "y"}
    if "k_tree" in kernel.parameters:
        out["k_tree"] = rng.integers(1, 5, size)
        chosen = np.where(out["k_tree"] == 1, 1, groups)
        out["group_num"] = np.where(rng.random(size) < 0.5, 0, chosen)
    if "distance" in kernel.parameters:
        out["distance"] = rng.integers(1, MESH_MAX + 1, size)
    return out


def _vectors(kernel: Kernel, size: int, rng: np.random.Generator) -> Iterator[Configurations]:
    """Allreduce and broadcast: ``n`` of 1 to 32 elements, then ``n`` in chunks of 1 to
    32 per core of the line (the ring's rule)."""
    line = _line(kernel, size, rng)
    yield {**line, "n": _tiles(rng, size)}
    yield {**line, "n": line["q"] * _tiles(rng, size)}


def _gemv(kernel: Kernel, size: int, rng: np.random.Generator) -> Iterator[Configurations]:
    """GEMV: tiles ``Mt = m / q`` (M splits along the axis) and ``Nt = n / p`` of 1 to 32."""
    line = _line(kernel, size, rng)
    yield {**line, "m": line["q"] * _tiles(rng, size), "n": line["p"] * _tiles(rng, size)}


def _shift(kernel: Kernel, size: int, rng: np.random.Generator) -> Iterator[Configurations]:
    """Shift: tiles ``m / p`` by ``n / q`` of 1 to 32."""
    line = _line(kernel, size, rng)
    yield {**line, "m": line["p"] * _tiles(rng, size), "n": line["q"] * _tiles(rng, size)}


#: Per family, the variants of random configurations (most general first).
GENERATORS: dict[str, Callable[[Kernel, int, np.random.Generator], Iterator[Configurations]]] = {
    "gemm": _gemm,
    "allreduce": _vectors,
    "broadcast": _vectors,
    "gemv": _gemv,
    "shift": _shift,
}


def random_configurations(spec: HardwareSpec, kernel: Kernel, size: int, seed: int = 0) -> Configurations:
    """``size`` random valid configurations of ``kernel`` (one array per numeric parameter,
    every one varying): the first variant of its family's generator that ``kernel.check``
    accepts. A :class:`SpecError` names the family without a generator, or the rule no
    variant meets."""
    generate = GENERATORS.get(kernel.family)
    if generate is None:
        raise SpecError(f"benchmark: no generator of configurations for kernel family '{kernel.family}'")
    rng = np.random.default_rng(seed)
    rejected = []
    for configs in generate(kernel, size, rng):
        missing = set(kernel.parameters) - set(configs)
        if missing:
            raise SpecError(f"benchmark: no generator for parameters {', '.join(sorted(missing))} of {kernel.name}")
        try:
            kernel.check(spec, **configs)
        except SpecError as exc:
            rejected.append(str(exc))
            continue
        return configs
    raise SpecError(f"benchmark: no variant of the {kernel.family} configurations fits {kernel.name}: {rejected[-1]}")


def one_configuration(configs: Configurations, index: int) -> dict[str, Any]:
    """Configuration ``index`` of ``configs`` as Python ints (and the axis)."""
    return {name: int(value[index]) if isinstance(value, np.ndarray) else value for name, value in configs.items()}


# ------------------------------------------------------------------ timing
class _TimeLimit(Exception):
    """A timed call ran past its limit."""


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_TimeLimit` in the block after ``seconds`` (None, or a thread other
    than the main one: no limit)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise _TimeLimit

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _seconds(fn: Callable[[], Any], clock: Callable[[], float], limit: float | None = None) -> float:
    """Seconds of ``fn()`` on ``clock``; :class:`_TimeLimit` past ``limit`` seconds."""
    with _time_limit(limit):
        start = clock()
        fn()
        return clock() - start


def _median_seconds(fn: Callable[[], Any], clock: Callable[[], float], repeats: int,
                    limit: float | None = None) -> float:
    return statistics.median(_seconds(fn, clock, limit) for _ in range(repeats))


def _first(configs: Configurations, count: int) -> Configurations:
    return {name: v[:count] if isinstance(v, np.ndarray) else v for name, v in configs.items()}


def closed_form_figures(
    spec: HardwareSpec, kernel: Kernel, size: int, repeats: int, limit: float,
    clock: Callable[[], float] = time.process_time, seed: int = 0,
) -> dict[str, Any]:
    """One kernel's row: configurations per second vectorised over ``size`` random
    configurations (``configs``: fewer, by tenfold steps from 1,000, where ``size`` would
    take longer than ``limit`` seconds) and microseconds per call for one configuration
    (:data:`SCALAR_CALLS` different ones), medians of ``repeats`` after one run that fills
    the kernels' tables and caches (``first_call_us``: that run's); ``note`` says what was
    cut short (a figure that passed ``limit`` is None)."""
    row: dict[str, Any] = {"kernel": kernel.family, "algo": kernel.name}
    try:
        configs = random_configurations(spec, kernel, size, seed)
    except SpecError as exc:
        return row | {"configs": 0, "configs_per_s": None, "scalar_us": None, "note": str(exc)}
    notes = []
    counts = [n for n in (1_000, 10_000, 100_000) if n < size] + [size]
    used, rate = counts[0], None
    try:
        _seconds(lambda: kernel.cost(spec, **_first(configs, used)), clock, limit)  # fills tables, caches
        for count, following in itertools.pairwise(counts):
            part = _first(configs, count)
            # the limit is on the wall clock
            if _seconds(lambda part=part: kernel.cost(spec, **part), time.perf_counter, limit) * following / count > limit:
                notes.append(f"vectorised over {count:,} ({following:,} would pass {limit:g} s)")
                break
            used = following
        part = _first(configs, used)
        rate = used / _median_seconds(lambda: kernel.cost(spec, **part), clock, repeats, limit)
    except _TimeLimit:
        notes.append(f"vectorised: {used:,} configurations passed {limit:g} s")
    singles = [one_configuration(configs, i) for i in range(min(SCALAR_CALLS, size))]
    scalar_us = first_us = None
    try:
        def calls() -> None:
            for one in singles:
                kernel.cost(spec, **one)

        first_us = _seconds(calls, clock, limit) / len(singles) * 1e6  # fills the caches
        scalar_us = _median_seconds(calls, clock, repeats, limit) / len(singles) * 1e6
    except _TimeLimit:
        notes.append(f"scalar: {len(singles)} calls passed {limit:g} s")
    return row | {"configs": used, "configs_per_s": rate, "scalar_us": scalar_us, "first_call_us": first_us,
                  "note": "; ".join(notes)}


def run_benchmark(
    spec: HardwareSpec, repeats: int = 3, large: bool = True, size: int = 1_000_000,
    limit: float = 20.0, clock: str = "cpu",
) -> dict[str, Any]:
    """Executor seconds for MeshGEMM (32x32, and 64x64 if ``large``) with 8x8x8 tiles and
    a K-tree allreduce over 64x64, and :func:`closed_form_figures` of every kernel
    (``closed_forms``: one row each, ``size`` configurations, ``limit`` seconds per call);
    ``load_average``: the machine's over the last minute when it starts; ``clock``: a key
    of :data:`CLOCKS`."""
    if repeats < 1:
        raise SpecError(f"--repeats = {repeats} must be >= 1")
    if clock not in CLOCKS:
        raise SpecError(f"--clock = {clock!r} must be one of {', '.join(CLOCKS)}")
    read = CLOCKS[clock]
    gemm = get_kernel("gemm", "meshgemm")
    out: dict[str, Any] = {"hardware": spec.name, "clock": clock, "repeats": repeats,
                           "load_average": os.getloadavg()[0]}
    out["executor_meshgemm_32x32_8x8x8_s"] = _median_seconds(
        lambda: gemm.execute(spec, p=32, q=32, m=256, k=256, n=256), read, repeats
    )
    if large:
        out["executor_meshgemm_64x64_8x8x8_s"] = _median_seconds(
            lambda: gemm.execute(spec, p=64, q=64, m=512, k=512, n=512), read, repeats
        )
    if ("allreduce", "ktree") in KERNELS:
        ktree = get_kernel("allreduce", "ktree")
        out["executor_ktree_allreduce_64x64_s"] = _median_seconds(
            lambda: ktree.execute(spec, p=64, q=64, n=16, k_tree=2, group_num=8, axis="y"), read, repeats
        )
    out["closed_forms"] = [
        closed_form_figures(spec, kernel, size, repeats, limit, read) for kernel in KERNELS.values()
    ]
    return out


__all__ = ["CLOCKS", "GENERATORS", "MESH_MAX", "SCALAR_CALLS", "TILE_MAX", "closed_form_figures",
           "one_configuration", "random_configurations", "run_benchmark"]
