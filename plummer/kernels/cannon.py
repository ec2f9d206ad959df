"""Cannon's algorithm on a mesh without torus links: the wrap-around crosses the whole line.

The program (executor) and the closed form live side by side.

Program, on a P x P mesh, core (x, y) = (J, I) holds C block (I, J):

1. The host places A[I, J] and the pre-skewed B[(I + J) mod P, J] at (J, I) (not timed).
2. Skew of A (timed): row I does I one-position west shifts, as MeshGEMM's alignment does
   with ring steps. Each is a store-and-forward step: the sender's PE activates the message
   (``message_overhead``), the tile crosses its edge, the receiver's PE completes it
   (``message_overhead``). Core J sends one hop west to J - 1; core 0's tile wraps around
   to core P - 1 the long way, P - 1 hops east, passed through by every router of the row
   (a mesh has no torus link).
3. P compute steps: C += A_cur . B_cur (one call: ``step_overhead`` + ``Kt`` outer
   iterations + ``Kt * Nt`` vector FMAs of length ``Mt``), while A_cur moves one core west
   (core 0's: P - 1 hops east) and B_cur one core north (row 0's: P - 1 hops south) into
   the other buffers (double buffering), overlapping the product.

This is MeshGEMM's program (double buffers, asynchronous sends that overlap the product)
on the naive ring with its wrap-around instead of the INTERLEAVE ring, so the two differ
only by the ring and the skew; it is what a Cannon on this dataflow machine would run. A
classic synchronous Cannon (compute, then shift, single buffers) would add each shift's
latency to its step but, as there is no global barrier, would still pay the wrap-around
once per trip around the ring rather than once per step (see :meth:`Cannon.cost`).

Colors: the one-hop edge leaving core J uses ``J mod 2`` (so a core never receives and
sends on one color), the wrap-around its own color 2 (B: 3, 4, 5 on the columns). Every
core of a line passes the wrap-around through: 3 colors per line, 6 per core (4 for P = 2).
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
    tile_product,
)
from plummer.kernels._maxplus import (
    Path,
    delay,
    gather,
    latest,
    never,
    summarise,
)
from plummer.mesh import Mesh, compute_cycles, serialization_cycles

#: Color bases: A along rows, B along columns (one-hop edges: base + 0/1; wrap-around: base + 2).
_A_BASE, _B_BASE = 0, 3

def _cannon_timing(
    spec: HardwareSpec, p: int, mt: np.ndarray, kt: np.ndarray, nt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The recurrence of :meth:`Cannon.cost` for ``len(mt)`` tile shapes on a ``p`` x ``p``
    mesh: the latest and the mean core end (cycles, without launch), and the hops and stages
    on the latest core's critical path. State arrays are ``(tiles, row I, column J)``."""
    mt, kt, nt = (np.asarray(x, dtype=float)[:, None, None] for x in (mt, kt, nt))
    alpha, mo = spec.alpha, spec.message_overhead_cycles
    c = spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)
    t_a, t_b = serialization_cycles(spec, mt * kt), serialization_cycles(spec, kt * nt)
    source = (np.arange(p) + 1) % p  # position J receives from J + 1, P - 1 from 0
    hops = np.where(np.arange(p) == p - 1, p - 1.0, 1.0)  # hops of the edge into position J
    line = (mt.shape[0], 1, p)

    # skew: every row runs the same steps, row I stops after I of them
    ready: list[Path] = [(np.zeros(line), np.zeros(line), np.zeros(line))]  # tile after k steps
    sent: list[Path] = [never(line)]  # link start of the send of step k - 1
    for k in range(p - 1):
        start = latest(delay(ready[k], mo), delay(sent[k], t_a))
        arrive = delay(gather(start, source, 2), hops * alpha + t_a, hops, 2.0)
        free = [arrive, delay(sent[k], t_a)]  # the buffer: read by send k - 1 until its tail left
        if mo:
            free.append(delay(ready[k], mo))  # the PE: activating send k first
        ready.append(delay(latest(*free), mo))
        sent.append(start)

    def by_row(paths: list[Path]) -> Path:
        return tuple(np.concatenate([path[n] for path in paths[:p]], axis=1) for n in range(3))  # type: ignore[return-value]

    a_ready, a_sent = by_row(ready), by_row(sent)
    shape = a_ready[0].shape
    b_ready, b_sent = (np.zeros(shape), np.zeros(shape), np.zeros(shape)), never(shape)
    end = never(shape)
    for step in range(p):
        before = end
        end = delay(latest(a_ready, b_ready, before), c)
        if step == p - 1:
            break
        a_start = latest(a_ready, delay(a_sent, t_a))  # link free once the previous tail left
        b_start = latest(b_ready, delay(b_sent, t_b))
        a_ready = latest(
            delay(gather(a_start, source, 2), hops * alpha + t_a, hops),
            before, delay(a_sent, t_a),  # the buffer: read by product and send s - 1
        )
        b_ready = latest(
            delay(gather(b_start, source, 1), hops[:, None] * alpha + t_b, hops[:, None]),
            before, delay(b_sent, t_b),
        )
        a_sent, b_sent = a_start, b_start
    return summarise(latest(end, delay(a_sent, t_a), delay(b_sent, t_b)))


def cannon_compute_bound(
    spec: HardwareSpec, p: np.ndarray, mt: np.ndarray, kt: np.ndarray, nt: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Cannon's recurrence (:meth:`Cannon.cost`) solved in closed form where products run
    back to back: ``(exact, end, mean, hops, stages)``, the latest and mean core end in
    cycles (without launch) and the counts on the latest core's critical path; ``exact``
    marks the configurations where the solution below satisfies every max of the
    recurrence, so equals it (elsewhere the values are meaningless). O(1) per configuration.

    With ``g = alpha + T_A``, ``u = 2 mo + g`` (one skew step) and ``d = c - g > 0``:

    - skew: every step of a tile costs ``u`` and the first tile into P - 1 crosses the
      wrap-around, so ``X_I(J) = I u + (P - 2) alpha [J >= P - I]``, 2 stages per step;
    - products: relative to ``X_I``, every edge of row I's ring costs ``g`` per step but the
      one into ``J* = P - 1 - I`` (from a core whose skew crossed the wrap-around, or the
      wrap-around itself on row 0): ``(P - 1) alpha + T_A``. So core ``J* - m`` (mod P)
      starts its second product ``delta_m = max(0, delta - m d)`` late, ``delta = max(0,
      (P - 1) alpha + T_A - c)``, a wave that fades after ``K = ceil(delta / d)`` cores,
      then runs back to back: ``E_{P-1} = X_I(J) + P c + delta_m``;
    - latest core: row P - 1, column 1, or column P - 1 when ``late = delta_1 > 0``: ``end = (P -
      1) u + (P - 2) alpha + P c + late``, ``2P - 3`` hops (``+ P`` when late), ``2P - 2``
      stages; ``mean = (P - 1) u / 2 + (P - 2)(P - 1) alpha / (2P) + P c + (K delta - d
      K (K - 1) / 2) / P``.

    Condition (each max of the recurrence then takes the branch used above): ``d > 0``,
    ``K < P``, ``delta != d`` (a tie would change the critical path), and B never waits:
    with ``Q = u + alpha + T_B``, a tile that row I + n freed after its product reaches
    row I ``n (alpha + T_B)`` later while row I is ``n u`` ahead, with 2c of
    double-buffer slack, so ``n (Q - c) + b_n <= c`` for every n >= 1, where
    ``b_n`` is the most row I + n can lag beyond ``n u``: ``min(delta, n d)`` along the
    wave and ``(P - 2) alpha - delta_{n-1}`` across the wrap-around's step in X. Both are
    checked at their maxima (``n = K, K + 1`` resp. ``floor(delta / d)``, ``+ 1``), and
    ``Q <= c`` for the rest.
    """
    p = np.asarray(p, dtype=float)
    mt, kt, nt = (np.asarray(x, dtype=float) for x in (mt, kt, nt))
    alpha, mo = spec.alpha, spec.message_overhead_cycles
    c = spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)
    t_a, t_b = serialization_cycles(spec, mt * kt), serialization_cycles(spec, kt * nt)
    g = alpha + t_a
    u = 2 * mo + g
    d = c - g
    safe = np.where(d > 0, d, 1.0)
    delta = np.maximum(0.0, (p - 1) * alpha + t_a - c)
    waves = np.ceil(delta / safe)
    late_raw = delta - d
    late = np.maximum(0.0, late_raw)
    slack = c - (u + alpha + t_b)  # -(Q - c)

    def wave(m: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, delta - m * d)

    bump = [np.maximum(n, 1.0) for n in (waves, waves + 1)]
    along = [np.maximum(n, 1.0) for n in (np.floor(delta / safe), np.floor(delta / safe) + 1)]
    b_ok = slack >= 0
    for n in bump:
        b_ok &= (p - 2) * alpha - wave(n - 1) - n * slack <= c
    for n in along:
        b_ok &= np.minimum(delta, n * d) - n * slack <= c
    exact = (d > 0) & (waves < p) & (late_raw != 0) & b_ok
    end = (p - 1) * u + (p - 2) * alpha + p * c + late
    mean = ((p - 1) * u / 2 + (p - 2) * (p - 1) * alpha / (2 * p) + p * c
            + (waves * delta - d * waves * (waves - 1) / 2) / p)
    hops = 2 * p - 3 + p * (late > 0)
    return exact, end, mean, hops, 2 * p - 2


class Cannon(GemmKernel):
    """Cannon's algorithm on a square P x P mesh (``p == q``) without torus links."""

    name = "cannon"

    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form (:func:`cannon_compute_bound`) where it is exact, else the recurrence.

        The recurrence, derived from the program and rules 4-7, with ``c = step_overhead +
        compute_cycles(Mt Kt Nt, Kt, Kt Nt)``, ``T_A = T(Mt Kt)``, ``T_B = T(Kt Nt)``, ``mo``
        the message overhead and ``h_J`` the hops of the edge into position J (1, and P - 1
        for the wrap-around into J = P - 1):

        - skew (every row runs the same steps; row I stops after I): the send of step k
          leaves at ``s_k(J) = max(X_k(J) + mo, s_{k-1}(J) + T_A)`` (activation; the link
          is free once the previous tail left) and a core's next tile is ready at
          ``X_{k+1}(J) = max(s_k(J + 1) + h_J alpha + T_A, s_{k-1}(J) + T_A, X_k(J) + mo)
          + mo`` (arrival; the buffer is read by the send of step k - 1 until its tail
          leaves, rule 7; the PE activates its own send first; then the completion task);
        - products: ``E_s = max(A_s, B_s, E_{s-1}) + c``; the shifts leave when their tile
          is in place, ``s = max(A_s, s_prev + T_A)``, and arrive at ``A_{s+1}(J) = max(s(J
          + 1) + h_J alpha + T_A, E_{s-1}(J), s_prev(J) + T_A)``: the buffer is read by
          product and send s - 1 (double buffering); B likewise along the columns;
        - a core ends at ``max(E_{P-1}, tails of its last sends)``.

        Every max is one numpy operation over ``(tiles, P, P)`` arrays, ``2P`` steps in all
        (:func:`~plummer.kernels._maxplus.per_mesh`, O(P^3) per mesh size); exact (equal to the executor to
        rounding on every sweep configuration, both presets). ``cycles = launch + max`` and
        ``mean_core_cycles = launch + mean`` over the cores; ``hops`` and
        ``routing_stages`` (two per skew step) are those of the latest core's critical
        path, i.e. ``d cycles / d alpha``. It runs only where
        :func:`cannon_compute_bound`'s condition fails.

        Communication-bound, a tile moves one position per ``T + alpha`` except across the
        wrap-around, ``T + (P - 1) alpha``: the tiles are pipelined around the ring, so the
        wrap-around is paid once per trip of P steps (its cycle mean is ``T + 2 alpha (P -
        1) / P``, MeshGEMM's ring has the same), and the critical path crosses it about
        once per P steps.
        """
        v = self.params(spec, params)
        mt, kt, nt = v["m"] // v["p"], v["k"] // v["p"], v["n"] // v["p"]
        mk, kn = mt * kt, kt * nt
        c = spec.step_overhead_cycles + compute_cycles(spec, mk * nt, kt, kn)
        return recurrence_cost(
            spec, v, c, cannon_compute_bound, _cannon_timing,
            memory_elements=2 * mk + 2 * kn + mt * nt, routes=np.where(v["p"] >= 3, 6.0, 4.0),
        )

    def sweep(self) -> list[dict[str, Any]]:
        """Meshes 2x2 to 24x24 (odd and even) with tiles from 1x1x1 to 16x16x16."""
        tiles = [(1, 1, 1), (2, 3, 1), (1, 8, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)]
        return [
            {"p": p, "q": p, "m": p * mt, "k": p * kt, "n": p * nt}
            for p in (2, 3, 4, 5, 7, 8, 11, 16, 24)
            for mt, kt, nt in tiles
            if p <= 16 and p * p * mt * kt * nt <= 16 * 16 * 8 * 8 * 8
            or p == 24 and (mt, kt, nt) in ((1, 8, 2), (4, 4, 4))
        ]

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False, **params: ArrayLike) -> KernelRun:
        v = self.configuration(spec, params)
        p, m, k, n = v["p"], v["m"], v["k"], v["n"]
        mt, kt, nt = m // p, k // p, n // p
        a, b = random_operands(seed, (m, k), (k, n))
        a_blocks, b_blocks = blocks(a, p, p), blocks(b, p, p)
        mesh = Mesh(spec, p, p, trace=trace)
        mo = spec.message_overhead_cycles
        for i in range(p):
            for j in range(p):
                mesh.load((j, i), "A0", a_blocks[i][j])
                mesh.load((j, i), "B0", b_blocks[(i + j) % p][j])
                mesh.load((j, i), "C", np.zeros((mt, nt), dtype=np.float32))

        def shift(core: tuple[int, int], position: int, buffer: str, target: str,
                  back: str, forth: str, base: int, overhead: float = 0.0) -> None:
            """One position towards ``back``; position 0 wraps around the long way."""
            path = back if position else forth * (p - 1)
            color = base + (position % 2 if position else 2)
            mesh.send(core, buffer, path, color, target, overhead=overhead, receive_overhead=overhead)

        a_cur = [0] * p
        for step in range(p - 1):  # skew: row i does i one-position shifts
            for i in range(step + 1, p):
                for j in range(p):
                    shift((j, i), j, f"A{a_cur[i]}", f"A{1 - a_cur[i]}", "W", "E", _A_BASE, mo)
                a_cur[i] = 1 - a_cur[i]

        b_cur = 0
        for step in range(p):
            for i in range(p):
                for j in range(p):
                    mesh.compute(
                        (j, i), [f"A{a_cur[i]}", f"B{b_cur}", "C"], "C", tile_product,
                        fmas=mt * kt * nt, loops=kt, vector_ops=kt * nt,
                        overhead=spec.step_overhead_cycles,
                    )
            if step == p - 1:
                break
            for i in range(p):
                for j in range(p):
                    shift((j, i), j, f"A{a_cur[i]}", f"A{1 - a_cur[i]}", "W", "E", _A_BASE)
                    shift((j, i), i, f"B{b_cur}", f"B{1 - b_cur}", "N", "S", _B_BASE)
            a_cur = [1 - x for x in a_cur]
            b_cur = 1 - b_cur

        result = mesh.run()
        output = np.block([[result.tile((j, i), "C") for j in range(p)] for i in range(p)])
        return KernelRun(output=output, reference=a @ b, execution=result)
