"""GEMM-T: C[M, N] = A[M, K] . B[N, K]^T without a transpose (Q.K^T in prefill).

The program (executor) and the closed form live side by side.

Program, on a P x P mesh; logical core (I, J) sits at physical (J, ring[I]) with ``ring``
the INTERLEAVE ring (:mod:`plummer.kernels._ring`) along the columns:

1. The host places A[I, J] (Mt x Kt) and B[I, J] (Nt x Kt) at (I, J) (not timed).
2. Step ``s = 0 .. P - 1``: every core computes the partial ``A[I, J] . B[(I - s) mod P,
   J]^T`` (Mt x Nt; one call: ``step_overhead`` + ``Kt`` outer iterations + ``Kt * Nt``
   vector FMAs of length ``Mt``) into its partial buffer; the row reduce-adds the partials
   (:meth:`Mesh.reduce`: chains from both ends of the row to the root, one add-and-forward
   stage per core) into C block ``(I, (I - s) mod P)`` at its owner, column ``(I - s) mod
   P``: the root rotates with the step and every core is the root once. Meanwhile the B
   tiles move one position forward along the column's ring (edges of <= 2 hops) into the
   other B buffer.

The partial has one buffer, so a core's next product waits until the buffer has been read
(rule 7): by its own reduction stage, or, at a leaf, by its leg until the head reaches the
next PE. That fixes every PE's order, product s -> stage s -> product s + 1, through the
data dependencies alone (never through rule 6's ready order), as a PE running its tasks in
program order would; the timing then follows from :meth:`GEMMT.cost`'s recurrence exactly.

Colors: the reduction chains use 0, 1 towards the east and 2, 3 towards the west (the
last digit alternates along a chain, whatever the root, so a core's routes never change);
the B ring 4..9 (:func:`~plummer.kernels._ring.edge_color`). Memory: A, two B buffers,
the partial and C.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, Kernel, KernelRun
from plummer.kernels._gemm import (
    GEMM_PARAMETERS,
    blocks,
    gemm_params,
    random_operands,
    scalar_params,
)
from plummer.kernels._ring import edge_color, interleave_ring, ring_edge
from plummer.kernels.cannon import Path, delay, gather, latest, never, per_mesh_size, summarise
from plummer.mesh import Mesh, compute_cycles, serialization_cycles

#: Color bases: the row reductions (4 colors) and the B ring along the columns (6 colors).
_REDUCE, _B_RING = 0, 4


def _partial(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a . b^T`` in fp32."""
    return a @ b.T


def choose(mask: np.ndarray, yes: Path, no: Path) -> Path:
    """``yes`` where ``mask`` holds, else ``no``."""
    return tuple(np.where(mask, a, b) for a, b in zip(yes, no))  # type: ignore[return-value]


def _gemmt_timing(
    spec: HardwareSpec, p: int, mt: np.ndarray, kt: np.ndarray, nt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The recurrence of :meth:`GEMMT.cost` for ``len(mt)`` tile shapes on a ``p`` x ``p``
    mesh: the latest and the mean core end (cycles, without launch), and the hops and stages
    on the latest core's critical path. State arrays are ``(tiles, logical row I, column x)``."""
    mt, kt, nt = (np.asarray(x, dtype=float)[:, None, None] for x in (mt, kt, nt))
    alpha, beta = spec.alpha, spec.beta
    c = spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)
    t, t_b = serialization_cycles(spec, mt * nt), serialization_cycles(spec, kt * nt)
    ring = np.array(interleave_ring(p))
    source = (np.arange(p) - 1) % p  # logical row I receives B from I - 1
    hops_b = np.abs(ring - ring[source])[:, None]
    shape = (mt.shape[0], p, p)
    rows, x = np.arange(p)[:, None], np.arange(p)[None, :]
    zero = (np.zeros(shape), np.zeros(shape), np.zeros(shape))
    ready, b_ready, b_sent, before, leg = zero, zero, never(shape), never(shape), never(shape)
    for step in range(p):
        end = delay(latest(ready, b_ready), c)
        # a leaf (position 0 or p - 1) puts its partial on its link once the link is free;
        # a stage starts once its product ended and the head from its outer neighbour
        # arrived, and its head leaves beta later
        leg = latest(end, delay(leg, t))
        column = [tuple(part[..., k] for part in end) for k in range(p)]
        east, west = [column[0]], [column[p - 1]]
        for k in range(1, p):
            head_e = tuple(part[..., 0] for part in leg) if k == 1 else delay(east[-1], beta, 0.0, 1.0)
            head_w = tuple(part[..., p - 1] for part in leg) if k == 1 else delay(west[-1], beta, 0.0, 1.0)
            east.append(latest(column[k], delay(head_e, alpha, 1.0)))
            west.append(latest(column[p - 1 - k], delay(head_w, alpha, 1.0)))
        from_e = tuple(np.stack(parts, axis=-1) for parts in zip(*east))
        from_w = tuple(np.stack(parts[::-1], axis=-1) for parts in zip(*west))
        root = (rows - step) % p  # the root takes both chains
        start = choose(x < root, from_e, choose(x > root, from_w, latest(from_e, from_w)))
        leaf = ((x == 0) & (root != 0)) | ((x == p - 1) & (root != p - 1))
        stage_end = delay(start, beta + t, 0.0, 1.0)
        ready = choose(leaf, delay(leg, alpha, 1.0), stage_end)  # the partial's buffer is free
        last = choose(leaf, delay(leg, t), stage_end)
        leg = choose(leaf, leg, never(shape))
        if step == p - 1:
            break
        b_start = latest(b_ready, delay(b_sent, t_b))
        b_ready = latest(
            delay(gather(b_start, source, 1), hops_b * alpha + t_b, hops_b),
            before, delay(b_sent, t_b),  # the buffer: read by product and send s - 1
        )
        b_sent, before = b_start, end
    return summarise(latest(last, delay(b_sent, t_b)))


class GEMMT(Kernel):
    """GEMM-T, ``C = A . B^T``, on a square P x P mesh (``p == q``); ``k`` splits over the
    columns, ``m`` over the rows and ``n`` into P blocks."""

    name = "gemm-t"
    family = "gemm"
    parameters = GEMM_PARAMETERS

    def check(self, spec: HardwareSpec, **params: ArrayLike) -> None:
        gemm_params(self.name, spec, params, square=True)

    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form: a per-step max-plus recurrence, derived from the program and rules 4-7.

        With ``c = step_overhead + compute_cycles(Mt Kt Nt, Kt, Kt Nt)``, ``T = T(Mt Nt)``,
        ``T_B = T(Nt Kt)``, and per core (logical row I, column x) ``R`` the time its
        partial buffer is free (0 at first) and ``B_s`` its B tile's arrival, step s is:

        - product ``E = max(R, B_s) + c`` (the PE is free by then: its stage ended);
        - chains, root ``r = (I - s) mod P``: a leaf (column 0 or P - 1, not the root) puts
          its partial on its link at ``L = max(E, L_prev + T)``; a stage on the east chain
          starts at ``S(x) = max(E(x), H(x - 1) + alpha)`` with the head leaving ``H(x) =
          S(x) + beta`` (``H = L`` at the leaf), the west chain alike, and the root takes
          both (rule 5): a prefix recurrence along the row, both ways;
        - the partial's buffer is free at ``R = S + beta + T`` after a stage (the PE
          streams the sum) and at ``L + alpha`` at a leaf (its leg's head at the next PE);
          a core's last event is the stage's end, or its leaf leg's tail ``L + T``;
        - B: ``s = max(B_s, s_prev + T_B)`` and ``B_{s+1}(I) = max(s(I - 1) + h alpha +
          T_B, E_{s-1}, s_prev + T_B)`` over the ring edge of ``h`` hops (the buffer is read
          by product and send s - 1).

        Every max is one numpy operation over ``(tiles, P, P)`` arrays (the chains: P per
        step), :func:`~plummer.kernels.cannon.per_mesh_size`; exact (equal to the executor
        to rounding on every sweep configuration, both presets, link waits included).
        ``cycles = launch + max`` and ``mean_core_cycles = launch + mean`` over the cores'
        last events; ``hops`` and ``routing_stages`` are those of the latest core's critical
        path (``d cycles / d alpha`` and ``/ d beta``); ``compute_cycles`` counts the
        products.
        """
        v = gemm_params(self.name, spec, params, square=True)
        p = v["p"].astype(float)
        mt, kt, nt = v["m"] // v["p"], v["k"] // v["p"], v["n"] // v["p"]
        mn, kn = mt * nt, kt * nt
        c = spec.step_overhead_cycles + compute_cycles(spec, mt * kn, kt, kn)
        end, mean, hops, stages = per_mesh_size(_gemmt_timing, spec, v["p"], mt, kt, nt)
        return Cost.make(
            spec,
            cycles=spec.launch_overhead_cycles + end,
            compute_cycles=p * c,
            hops=hops,
            routing_stages=stages,
            memory_per_core_bytes=(mt * kt + 2 * kn + 2 * mn) * spec.dtype_bytes,
            routes_per_core=np.where(p >= 3, 7.0, 4.0),
            mean_core_cycles=spec.launch_overhead_cycles + mean,
        )

    def sweep(self) -> list[dict[str, Any]]:
        """Meshes 2x2 to 16x16 (odd and even) with tiles from 1x1x1 to 16x16x16."""
        tiles = [(1, 1, 1), (2, 3, 1), (1, 8, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)]
        return [
            {"p": p, "q": p, "m": p * mt, "k": p * kt, "n": p * nt}
            for p in (2, 3, 4, 5, 7, 8, 11, 16)
            for mt, kt, nt in tiles
            if p * p * mt * kt * nt <= 16 * 16 * 8 * 8 * 8
        ]

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False, **params: ArrayLike) -> KernelRun:
        v = scalar_params(gemm_params(self.name, spec, params, square=True))
        p, m, k, n = v["p"], v["m"], v["k"], v["n"]
        mt, kt, nt = m // p, k // p, n // p
        a, b = random_operands(seed, (m, k), (n, k))
        a_blocks, b_blocks = blocks(a, p, p), blocks(b, p, p)
        ring = interleave_ring(p)
        mesh = Mesh(spec, p, p, trace=trace)
        for i in range(p):
            for j in range(p):
                mesh.load((j, ring[i]), "A", a_blocks[i][j])
                mesh.load((j, ring[i]), "B0", b_blocks[i][j])

        def chains(y: int, root: int) -> list[tuple[tuple[int, int], str, int]]:
            """Reduction edges of row ``y``: both ends chain towards column ``root``."""
            return [
                ((x, y), "E", _REDUCE + x % 2) if x < root else ((x, y), "W", _REDUCE + 2 + x % 2)
                for x in range(p)
                if x != root
            ]

        for step in range(p):
            cur = step % 2
            for i in range(p):
                for j in range(p):
                    mesh.compute(
                        (j, ring[i]), ["A", f"B{cur}"], "P", _partial,
                        fmas=mt * kt * nt, loops=kt, vector_ops=kt * nt,
                        overhead=spec.step_overhead_cycles,
                    )
            for i in range(p):
                root = (i - step) % p
                mesh.reduce("P", chains(ring[i], root), (root, ring[i]), "C")
            if step == p - 1:
                break
            for j in range(p):
                for i in range(p):
                    src, dst = ring_edge(p, i)
                    path = ("S" if dst > src else "N") * abs(dst - src)
                    mesh.send((j, src), f"B{cur}", path, edge_color(p, i, True, _B_RING), f"B{1 - cur}")

        result = mesh.run()
        output = np.block([[result.tile((j, ring[i]), "C") for j in range(p)] for i in range(p)])
        return KernelRun(output=output, reference=a @ b.T, execution=result)
