"""Max-plus bookkeeping for closed forms written as per-step recurrences over the mesh.

Where a kernel's timing has no clean formula in some regime, its closed form follows the
executor's rules one step at a time for every core at once (numpy arrays of shape
``(tile shapes, rows, columns)``): a *path* carries an event's time and the hops and PE
stages on its critical path; :func:`latest` is the max of max-plus algebra.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec

#: A path to an event: (its time in cycles, pass-through hops on it, PE stages on it), float
#: arrays of one broadcast shape.
Path = tuple[np.ndarray, np.ndarray, np.ndarray]


def delay(path: Path, cycles: ArrayLike, hops: ArrayLike = 0.0, stages: ArrayLike = 0.0) -> Path:
    """``path`` extended by an edge of ``cycles`` that crosses ``hops`` hops and ``stages`` stages."""
    return path[0] + cycles, path[1] + hops, path[2] + stages


def latest(*paths: Path) -> Path:
    """The elementwise latest of ``paths`` (a max-plus sum). Among the paths within 1e-9 of
    it, the counts of the one with the most hops (then stages): the time's derivative with
    respect to ``alpha`` from above, as a perturbation of the executor measures it."""
    times = np.broadcast_arrays(*(path[0] for path in paths))
    best = np.maximum.reduce(times)
    tied = [t >= best - 1e-9 * np.maximum(1.0, np.abs(best)) for t in times]
    hops = [np.broadcast_to(path[1], best.shape) for path in paths]
    stages = [np.broadcast_to(path[2], best.shape) for path in paths]
    most = np.max([np.where(t, h, -1.0) for t, h in zip(tied, hops)], axis=0)
    return best, most, np.max([np.where(t & (h == most), s, -1.0) for t, h, s in zip(tied, hops, stages)], axis=0)


def never(shape: tuple[int, ...]) -> Path:
    """The path of an event that constrains nothing (time -inf)."""
    return np.full(shape, -np.inf), np.zeros(shape), np.zeros(shape)


def gather(path: Path, index: np.ndarray, axis: int) -> Path:
    """``path`` taken at ``index`` along ``axis`` (the source of every position)."""
    return tuple(np.take(part, index, axis=axis) for part in path)  # type: ignore[return-value]


def summarise(last: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per tile shape (the first axis of ``last``, the cores' last events): the latest and
    the mean core end, and the hops and stages on the latest core's critical path."""
    time, hops, stages = (part.reshape(part.shape[0], -1) for part in last)
    worst = np.argmax(time, axis=1)
    pick = np.arange(time.shape[0])
    return time.max(axis=1), time.mean(axis=1), hops[pick, worst], stages[pick, worst]


def per_mesh(
    timing: Callable[..., tuple[np.ndarray, ...]],
    spec: HardwareSpec,
    mesh: tuple[np.ndarray, ...],
    tiles: tuple[np.ndarray, ...],
    budget: int = 1 << 18,
) -> tuple[np.ndarray, ...]:
    """Evaluate a per-step recurrence ``timing(spec, *mesh, *tiles)`` (Python ints for the
    mesh sizes, 1-D tile arrays in, 1-D arrays out) over broadcast parameter arrays: once
    per distinct mesh shape, on its distinct tile shapes, in chunks of at most ``budget``
    cores x tile shapes (the recurrence holds arrays of that size)."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in mesh + tiles))
    mesh = tuple(np.broadcast_to(x, shape).ravel() for x in mesh)
    tiles = tuple(np.broadcast_to(x, shape).ravel() for x in tiles)
    keys = np.stack(mesh, axis=1)
    outputs: list[np.ndarray] = []
    for key in np.unique(keys, axis=0).tolist():
        sel = np.flatnonzero(np.all(keys == key, axis=1))
        distinct, inverse = np.unique(np.stack([t[sel] for t in tiles], axis=1), axis=0, return_inverse=True)
        chunk = max(1, budget // int(np.prod(key)))
        parts = [timing(spec, *key, *distinct[i:i + chunk].T) for i in range(0, len(distinct), chunk)]
        for number, values in enumerate(zip(*parts, strict=True)):
            if number == len(outputs):
                outputs.append(np.zeros(keys.shape[0]))
            outputs[number][sel] = np.concatenate(values)[inverse.ravel()]
    return tuple(out.reshape(shape) for out in outputs)


def formula_or_recurrence(
    exact: np.ndarray,
    values: tuple[ArrayLike, ...],
    timing: Callable[..., tuple[np.ndarray, ...]],
    spec: HardwareSpec,
    mesh: tuple[ArrayLike, ...],
    tiles: tuple[ArrayLike, ...],
    budget: int = 1 << 18,
) -> tuple[np.ndarray, ...]:
    """An O(1) formula's ``values`` where its condition held (``exact``), the recurrence
    ``timing`` (through :func:`per_mesh`) on the other configurations only."""
    exact = np.asarray(exact)
    slow = ~exact
    if not slow.any():
        return tuple(values)
    outs = tuple(np.array(np.broadcast_to(x, exact.shape), dtype=float) for x in values)

    def pick(arrays: tuple[ArrayLike, ...]) -> tuple[np.ndarray, ...]:
        return tuple(np.broadcast_to(x, exact.shape)[slow] for x in arrays)

    parts = per_mesh(timing, spec, pick(mesh), pick(tiles), budget)
    for out, part in zip(outs, parts, strict=True):
        out[slow] = part
    return outs
