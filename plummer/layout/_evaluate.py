"""The closed-form interpreter of layer plans: every op through its kernel's vectorised cost.

Composition (what a layer costs). A layer is one program whose ops run one after another,
each starting when the previous one has ended on every core (a barrier), and which pays the
launch overhead once: ``layer = launch + sum over ops of repeats x (cycles - launch)``,
where a kernel op's ``cycles`` (its closed-form makespan) includes one launch and local work
has none. The executor check (:mod:`plummer.layout._execute`) runs the same ops with the
same barrier. On the machine the next op may start on a core as soon as its inputs are
there, so the barrier makes this an upper bound of a fused program.

Evaluation is grouped: the ops of one plan that use the same kernel (and axis) are
concatenated into one vectorised call over (layouts x ops), so a whole layer costs a
handful of numpy passes whatever the batch size. Sizes are padded here, per kernel, as the
kernels require (:func:`padded_gemm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.kernels import get_kernel
from plummer.layout._arrays import pad
from plummer.layout._layout import ALLREDUCE_ALGOS, GEMM_ALGOS
from plummer.layout._ops import Op
from plummer.mesh import compute_cycles


def padded_gemm(algo: str, p: np.ndarray, q: np.ndarray, m: np.ndarray, k: np.ndarray,
                n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The smallest sizes ``>= (m, k, n)`` a GEMM algorithm accepts on a ``p`` x ``q`` mesh
    (the kernels' divisibility rules; a padded row or column costs time and memory)."""
    if algo in ("meshgemm", "cannon"):
        s = np.lcm(p, q)
        return pad(m, s), pad(k, s), pad(n, s)
    if algo == "summa-relay":
        return pad(m, q), pad(k, np.lcm(p, q)), pad(n, p)
    if algo == "gemm-t":
        return pad(m, q), pad(k, p), pad(n, q)
    raise ValueError(algo)


@dataclass(frozen=True)
class OpCost:
    """One op's closed-form figures per layout (arrays of the batch's shape): ``cycles`` one
    run's makespan (launch included for a kernel), ``compute_cycles`` its processor time on
    the critical path, ``memory_bytes`` per core while it runs (its own operands and buffers),
    ``resident_bytes`` kept per core for every layer (weights), ``routes`` colors per core,
    ``launch`` the launch overhead its cycles include."""

    cycles: np.ndarray
    compute_cycles: np.ndarray
    memory_bytes: np.ndarray
    resident_bytes: np.ndarray
    routes: np.ndarray
    launch: float


def _kernel_name(op: Op, code: int | None) -> tuple[str, str]:
    if op.kind == "gemm":
        return "gemm", GEMM_ALGOS[code]
    if op.kind == "gemm-t":
        return "gemm", "gemm-t"
    if op.kind == "allreduce":
        return "allreduce", ALLREDUCE_ALGOS[code]
    return "shift", "shift"


def _kernel_params(op: Op, algo: str, params: dict[str, np.ndarray]) -> dict[str, Any]:
    """The kernel's parameters for ``op`` run with ``algo``: sizes padded as it requires."""
    if op.kind in ("gemm", "gemm-t"):
        m, k, n = padded_gemm(algo, params["p"], params["q"], params["m"], params["k"], params["n"])
        return {"p": params["p"], "q": params["q"], "m": m, "k": k, "n": n}
    if op.kind == "allreduce":
        length = params["p"] if op.axis == "x" else params["q"]
        n = pad(params["n"], length) if algo == "ring" else params["n"]
        base = {"p": params["p"], "q": params["q"], "n": n, "axis": op.axis}
        if algo == "ktree":  # group counts are checked (and flagged) with the layout
            base |= {"k_tree": params["k_tree"], "group_num": params["group_num"]}
        return base
    return {**params, "axis": op.axis}


def op_shape(op: Op) -> tuple[int, ...]:
    """The broadcast shape of an op's parameters, repeats and algorithm codes: the layouts
    it actually varies over (a batch built as an outer product of its columns evaluates each
    op only over the columns it depends on)."""
    parts = [np.shape(v) for v in op.params.values()] + [np.shape(op.repeats)]
    if op.codes is not None:
        parts.append(np.shape(op.codes))
    return np.broadcast_shapes(*parts)


def _flat(value: Any, shape: tuple[int, ...], size: int) -> np.ndarray:
    """``value`` broadcast to ``shape``, as a flat array of ``size``."""
    array = np.asarray(value)
    if array.shape != shape:
        array = np.broadcast_to(array, shape)
    return array.reshape(size)


def _identity(op: Op) -> tuple[Any, ...]:
    """Ops of one plan built from the same parameter objects and equal extras cost the same
    (the two RMSNorms, the softmax's two allreduces): they are evaluated once. Extras are
    compared by value where hashable, else (arrays) by object, as the parameters are."""
    extra = tuple((key, _hashable(value)) for key, value in sorted(op.extra.items()))
    return (op.kind, op.axis, op.weights, id(op.params), id(op.codes), extra)


def _hashable(value: Any) -> Any:
    """``value`` if it is hashable, else a key of the object itself."""
    try:
        hash(value)
    except TypeError:
        return ("object", id(value))
    return value


def evaluate_ops(spec: HardwareSpec, ops: Sequence[Op], known: dict[str, OpCost] | None = None) -> dict[str, OpCost]:
    """Closed-form figures of every op of a plan, each over its own :func:`op_shape`; ops
    already in ``known`` (by name) are taken from there. An empty batch is an error."""
    db = spec.dtype_bytes
    results: dict[str, OpCost] = {}
    # requests per kernel: (op, its layouts' index or None for all, parameters)
    requests: dict[tuple[str, str, str | None], list[tuple[Op, Any, dict[str, np.ndarray]]]] = {}
    shapes = {op.name: op_shape(op) for op in ops}
    empty = next((name for name, shape in shapes.items() if math.prod(shape) == 0), None)
    if empty is not None:
        raise SpecError(f"an empty batch of layouts (op '{empty}' has shape {shapes[empty]}): "
                        "give at least one layout")
    first: dict[tuple[Any, ...], str] = {}
    copies: dict[str, str] = {}
    for op in ops:
        if known is not None and op.name in known:
            results[op.name] = known[op.name]
            continue
        key = _identity(op)
        if key in first:
            copies[op.name] = first[key]
            continue
        first[key] = op.name
        shape = shapes[op.name]
        flat = math.prod(shape)
        params = {k: _flat(v, shape, flat) for k, v in op.params.items()}
        if op.kind == "local":
            # local work reads and writes the tiles other ops hold (``live_bytes``); what it
            # keeps of its own is a GEMV's weight tile
            cycles = compute_cycles(spec, params["fmas"], params["loops"], params["vector_ops"])
            cycles = np.reshape(cycles, shape)
            resident = np.broadcast_to(np.asarray(op.extra.get("resident", 0.0), dtype=float), shape)
            results[op.name] = OpCost(cycles=cycles, compute_cycles=cycles, memory_bytes=resident,
                                      resident_bytes=resident, routes=np.zeros(shape), launch=0.0)
            continue
        codes = None if op.codes is None else _flat(op.codes, shape, flat)
        if codes is None or np.all(codes == codes[0]):
            family, algo = _kernel_name(op, None if codes is None else int(codes[0]))
            requests.setdefault((family, algo, op.axis), []).append((op, None, params))
        else:
            for code in np.unique(codes).tolist():
                index = np.flatnonzero(codes == code)
                family, algo = _kernel_name(op, code)
                requests.setdefault((family, algo, op.axis), []).append(
                    (op, index, {k: v[index] for k, v in params.items()}))
    partial: dict[str, dict[str, np.ndarray]] = {}
    for (family, algo, axis), items in requests.items():
        kernel = get_kernel(family, algo)
        parts = [_kernel_params(op, algo, params) for op, _, params in items]
        names = [n for n in parts[0] if n != "axis"]
        sizes = [len(part["p"]) for part in parts]
        joined = {n: np.concatenate([np.asarray(part[n]).reshape(-1) for part in parts]) for n in names}
        if axis is not None:
            joined["axis"] = axis
        cost = kernel.cost(spec, **joined)
        bounds = np.cumsum([0, *sizes])
        for (op, index, _), part, lo, hi in zip(items, parts, bounds[:-1], bounds[1:], strict=True):
            flat = math.prod(shapes[op.name])
            out = partial.setdefault(op.name, {
                key: np.zeros(flat) for key in ("cycles", "compute", "memory", "routes", "resident")})
            where = slice(None) if index is None else index
            out["cycles"][where] = cost.cycles[lo:hi]
            out["compute"][where] = cost.compute_cycles[lo:hi]
            out["memory"][where] = cost.memory_per_core_bytes[lo:hi]
            out["routes"][where] = cost.routes_per_core[lo:hi]
            if op.weights:
                out["resident"][where] = part["k"] * part["n"] / (part["p"] * part["q"]) * db
    for op in ops:
        if op.name in partial:
            shape = shapes[op.name]
            out = partial[op.name]
            results[op.name] = OpCost(
                cycles=out["cycles"].reshape(shape), compute_cycles=out["compute"].reshape(shape),
                memory_bytes=out["memory"].reshape(shape), resident_bytes=out["resident"].reshape(shape),
                routes=out["routes"].reshape(shape), launch=spec.launch_overhead_cycles)
    for name, source in copies.items():
        results[name] = results[source]
    return results


def layer_cycles(ops: Sequence[Op], costs: dict[str, OpCost], launch: float) -> np.ndarray:
    """A layer's cycles: one launch, then every op's cycles less its own launch, times its
    repeats (module docstring)."""
    total = launch
    for op in ops:
        cost = costs[op.name]
        total = total + np.asarray(op.repeats) * (cost.cycles - cost.launch)
    return total
