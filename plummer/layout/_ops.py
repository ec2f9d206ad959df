"""Operations of a layer plan, and the cost of local (per-core) work.

An :class:`Op` is one step of a transformer layer on a region: a mesh kernel (a GEMM, an
allreduce, a shift) with its parameters, or local work every core does on its own tiles.
A plan is a list of ops; two interpreters read it: the closed form
(:mod:`plummer.layout._evaluate`, vectorised over a batch of layouts) and the executor
(:mod:`plummer.layout._execute`, real tensors on a small mesh).

Local work is costed with the machine's compute rule (:func:`plummer.mesh.compute_cycles`,
rule 6): an elementwise op over ``rows`` vectors of ``cols`` elements issues ``k`` vector
instructions per row (``k`` primitive operations per element), ``k * rows * cols`` element
operations at the FMA rate, and one outer-loop iteration per row, as a local product of
the GEMM kernels does (its ``loops`` are its outer iterations, its ``vector_ops`` the vector
instructions it issues).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Primitive vector operations per element of each kind of local work. The hardware's
#: instruction counts are not published: these are guesses (an exp or a sigmoid as a
#: short polynomial), the same for every chip; they enter the cost through the calibrated
#: per-instruction overhead and FMA rate.
LOCAL_OPS_PER_ELEMENT = {
    "add": 1,          # residual add
    "sumsq": 1,        # sum of squares (one FMA per element)
    "scale": 2,        # RMSNorm: x * rsqrt(mean) * weight
    "rope": 3,         # x * cos + rotate(x) * sin, interleaved pairs
    "max": 1,          # running maximum
    "exp_sum": 5,      # exp(x - max) (a short polynomial, guess) and the running sum
    "divide": 1,       # scale by 1 / sum
    "silu_mul": 6,     # silu(gate) * up: sigmoid (exp, add, reciprocal), two products
    "store": 1,        # copy a new K/V entry into the cache
}

@dataclass(frozen=True)
class Op:
    """One operation of a layer plan, vectorised over a batch of layouts.

    ``kind`` is ``gemm`` (its algorithm per layout in ``codes``, an index into
    :data:`~plummer.layout._layout.GEMM_ALGOS`), ``gemm-t``, ``allreduce`` (algorithm codes
    into :data:`~plummer.layout._layout.ALLREDUCE_ALGOS`), ``shift`` or ``local``.
    ``params`` are the kernel's parameters with the *true* (unpadded) sizes, int arrays
    (elements; ``p`` x ``q`` the mesh the kernel runs on, which may be a group of columns);
    the interpreters pad them as the kernel requires. For ``local`` ops, ``params`` hold
    per-core ``fmas``, ``loops`` and ``vector_ops`` (already on padded tiles).
    ``repeats``: times the op runs in sequence per layer (0 switches it off).
    ``flops``: useful model FLOPs per layer (true sizes, all repeats, the whole region).
    ``weights``: the op's B operand is a weight matrix kept in every core for every layer
    of the region (its tile is resident memory); ``live_bytes``: other tensors each core
    holds while the op runs (the residual stream, a tensor waiting for a later op), bytes.
    """

    name: str
    kind: str
    params: dict[str, Any]
    repeats: Any
    flops: Any = 0.0
    codes: Any = None
    axis: str | None = None
    weights: bool = False
    live_bytes: Any = 0.0
    context: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def local_work(kind: str, rows: Any, cols: Any, count: Any = 1) -> dict[str, Any]:
    """Per-core ``fmas, loops, vector_ops`` of ``count`` elementwise ops of ``kind`` over
    ``rows`` vectors of ``cols`` elements (float arrays)."""
    k = LOCAL_OPS_PER_ELEMENT[kind]
    rows = np.asarray(rows, dtype=float) * count
    return {"fmas": k * rows * np.asarray(cols, dtype=float), "loops": rows, "vector_ops": k * rows}


def dot_work(rows: Any, length: Any) -> dict[str, Any]:
    """Per-core work of ``rows`` products of a vector of ``length`` elements into one
    accumulator each (a local GEMV or attention step): one FMA per element, one vector
    instruction per row, no outer loop (as the GEMV kernel's local product)."""
    rows = np.asarray(rows, dtype=float)
    return {"fmas": rows * np.asarray(length, dtype=float), "loops": np.zeros_like(rows),
            "vector_ops": rows}
