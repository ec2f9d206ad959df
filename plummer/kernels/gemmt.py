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
from plummer.kernels._base import Cost, KernelRun
from plummer.kernels._gemm import (
    GemmKernel,
    blocks,
    random_operands,
    recurrence_cost,
)
from plummer.kernels._maxplus import (
    Path,
    delay,
    gather,
    latest,
    never,
    summarise,
)
from plummer.kernels._ring import edge_color, interleave_ring, ring_edge
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
        ready = choose(leaf, delay(leg, t), stage_end)  # the partial's buffer is free
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


def gemmt_compute_bound(
    spec: HardwareSpec, p: ArrayLike, mt: ArrayLike, kt: ArrayLike, nt: ArrayLike
) -> tuple[np.ndarray, ...]:
    """:meth:`GEMMT.cost`'s recurrence solved in closed form where no tile waits: ``(exact,
    end, mean, hops, stages)``, the latest and mean core end in cycles (without launch) and
    the counts on the latest core's critical path; ``exact`` marks the configurations where
    the solution below satisfies every max of the recurrence, so equals it (elsewhere the
    values are meaningless). O(1) per configuration.

    With ``w = beta + T`` (a stage), ``u = alpha + beta`` (a chain hop) and no tile
    waiting, subtract ``(s + 1) c`` from step s: row I is then a c-free longest path problem
    over nodes (s, x), core x's stage start (a leaf's: its product end). Edges: to (s + 1,
    x), ``w`` from a stage or root, ``T`` from a leaf (its partial's buffer is free when
    its leg's tail has left); to the next core towards the root ``r_s = (I - s) mod P``,
    ``u`` from a stage, ``alpha`` from a leaf; every (0, x) starts at 0 and core x ends
    ``w`` after (P - 1, x) (``T`` at a leaf). Every path has P - 1 step edges and ``T <
    w``, ``alpha <= u``, so the longest has the most hops and the fewest leaf edges. The
    root moves one core west per step and wraps once, from 0 (step I) to P - 1, so the
    best path reaches column 0 at step I after ``K = max(P - 1, 2I)`` hops (from P - 1
    straight west, or from 0 east to the root I, then back west with it), then in step
    I + 1 goes east to x (x <= I), or to P - 1 and back west with the root to x (x > I); a
    leaf column (not the last root) is reached as a root and held. So with ``E(I, x) = P c
    + F`` (a first hop from a leaf is ``alpha``, not ``u``):

    - ``1 <= x <= I <= P - 2``: ``F = P w + (K + x - 2) u + 2 alpha``;
    - ``I < x <= P - 2``: ``F = P w + (K + 2P - 5 - x) u + 3 alpha``;
    - ``x = 0, I <= P - 2``: ``F = (I + 1) w + (P - 2 - I) T + alpha + (K - 1) u + T``;
    - ``x = P - 1``: ``F = (I + 2) w + (P - 3 - I) T + 2 alpha + (K + P - 3) u + T`` (I <=
      P - 3), ``P w + (K + P - 3) u + 2 alpha`` (I = P - 2);
    - ``I = P - 1``: ``F = P w + (2P - 4 - x) u + 2 alpha`` (x <= P - 2), ``w + (P - 2) T
      + alpha + (P - 2) u + T`` (x = P - 1).

    The latest core is (0, 1): ``end = P c + P w + (3P - 7) u + 3 alpha``, ``3P - 4`` hops,
    ``4P - 7`` stages (every other core is at least ``alpha`` earlier). Summing the table,
    with ``sum_{I <= P-2} K = (P - 1)(P - 1 + m) - m (m + 1)``, ``m = floor((P - 1) / 2)``:
    ``P^2 (mean - P c) = (P^3 - P^2 + P) w + ((5P^3 - 18P^2 + 13P - 6) / 6 + P sum K) u
    + ((7P^2 - 11P + 6) / 2 - (P - 1)(P - 2)) alpha + (P^2 - P) T``, where ``(P - 1)(P -
    2)`` leaf step edges weigh ``T`` and the ``2P - 2`` leaf cores end ``T`` after their
    last product.

    Condition: ``P >= 3``; ``w > alpha`` (strict: a tie would change the counts); and B
    never waits, ``c > alpha + T_B`` (a leaf's link is always free for its next leg: its
    next product starts after the last leg's tail left). By induction a core's B send
    starts by its product's (sends are ``T_B <= c`` apart), and row I's roots are row
    I - 1's preceded by I, so its step s + 1 is row I - 1's step s after one more step,
    which adds ``>= alpha`` to every offset (the steps are monotone, additively
    homogeneous max-plus maps): B (``<= 2`` hops) arrives by ``E_s(I - 1) - c + 2 alpha +
    T_B < E_{s+1}(I) - c``, before the product starts. Sufficient, not necessary; it holds
    on every WSE-3 configuration with tiles 4..32.
    """
    p = np.asarray(p, dtype=float)
    mt, kt, nt = (np.asarray(x, dtype=float) for x in (mt, kt, nt))
    alpha, beta = spec.alpha, spec.beta
    c = spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)
    t, t_b = serialization_cycles(spec, mt * nt), serialization_cycles(spec, kt * nt)
    w, u = beta + t, alpha + beta
    exact = (p >= 3) & (w > alpha) & (c > alpha + t_b)
    end = p * c + p * w + (3 * p - 7) * u + 3 * alpha
    m = np.floor((p - 1) / 2)
    sum_k = (p - 1) * (p - 1 + m) - m * (m + 1)
    total = ((p**3 - p**2 + p) * w + ((5 * p**3 - 18 * p**2 + 13 * p - 6) / 6 + p * sum_k) * u
             + ((7 * p**2 - 11 * p + 6) / 2 - (p - 1) * (p - 2)) * alpha + (p**2 - p) * t)
    return exact, end, p * c + total / p**2, 3 * p - 4, 4 * p - 7


class GEMMT(GemmKernel):
    """GEMM-T, ``C = A . B^T``, on a square P x P mesh (``p == q``); ``k`` splits over the
    columns, ``m`` over the rows and ``n`` into P blocks."""

    name = "gemm-t"

    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form (:func:`gemmt_compute_bound`) where it is exact, else the recurrence.

        The recurrence, a per-step max-plus one derived from the program and rules 4-7:
        with ``c = step_overhead + compute_cycles(Mt Kt Nt, Kt, Kt Nt)``, ``T = T(Mt Nt)``,
        ``T_B = T(Nt Kt)``, and per core (logical row I, column x) ``R`` the time its
        partial buffer is free (0 at first) and ``B_s`` its B tile's arrival, step s is:

        - product ``E = max(R, B_s) + c`` (the PE is free by then: its stage ended);
        - chains, root ``r = (I - s) mod P``: a leaf (column 0 or P - 1, not the root) puts
          its partial on its link at ``L = max(E, L_prev + T)``; a stage on the east chain
          starts at ``S(x) = max(E(x), H(x - 1) + alpha)`` with the head leaving ``H(x) =
          S(x) + beta`` (``H = L`` at the leaf), the west chain alike, and the root takes
          both (rule 5): a prefix recurrence along the row, both ways;
        - the partial's buffer is free at ``R = S + beta + T`` after a stage (the PE
          streams the sum) and at ``L + T`` at a leaf (its leg's tail has left, rule 7);
          a core's last event is the stage's end, or its leaf leg's tail ``L + T``;
        - B: ``s = max(B_s, s_prev + T_B)`` and ``B_{s+1}(I) = max(s(I - 1) + h alpha +
          T_B, E_{s-1}, s_prev + T_B)`` over the ring edge of ``h`` hops (the buffer is read
          by product and send s - 1).

        Every max is one numpy operation over ``(tiles, P, P)`` arrays (the chains: P per
        step), :func:`~plummer.kernels._maxplus.per_mesh`; exact (equal to the executor
        to rounding on every sweep configuration, both presets, link waits included).
        ``cycles = launch + max`` and ``mean_core_cycles = launch + mean`` over the cores'
        last events; ``hops`` and ``routing_stages`` are those of the latest core's critical
        path (``d cycles / d alpha`` and ``/ d beta``); ``compute_cycles`` counts the
        products. It runs only where :func:`gemmt_compute_bound`'s condition fails.
        """
        v = self.params(spec, params)
        mt, kt, nt = v["m"] // v["p"], v["k"] // v["p"], v["n"] // v["p"]
        mn, kn = mt * nt, kt * nt
        c = spec.step_overhead_cycles + compute_cycles(spec, mt * kn, kt, kn)
        return recurrence_cost(
            spec, v, c, gemmt_compute_bound, _gemmt_timing,
            memory_elements=mt * kt + 2 * kn + 2 * mn, routes=np.where(v["p"] >= 3, 7.0, 4.0),
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
        v = self.configuration(spec, params)
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
