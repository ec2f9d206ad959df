"""MeshGEMM: Cannon-style cyclic shifting on the INTERLEAVE ring (WaferLLM, OSDI 2025).

The program (executor) and the closed form live side by side.

Program, on a P x P mesh, logical core (I, J) at physical (ring[J], ring[I]):

1. The host places A[I, J] and the pre-skewed B[(I + J) mod P, J] at (I, J) (not timed).
2. Alignment of A (timed), as the measured kernel does it: every row runs ``floor(P/2)``
   store-and-forward steps, backward along the ring for ``I <= P/2``, else forward. Row I
   needs its tiles ``a_I = min(I, P - I)`` ring positions away; after ``a_I`` steps it
   keeps its aligned tile and resends it (the receiver discards the copy but waits for it
   before its next step), so the sends happen, are timed, and every core finishes its
   alignment after the same number of steps. Each step: the sender's PE activates the
   message (``message_overhead``), the tile crosses one ring edge (<= 2 hops), the
   receiver's PE completes it (``message_overhead``).
3. P compute steps: C += A_cur . B_cur (one call: ``step_overhead`` + ``Kt`` outer
   iterations + ``Kt * Nt`` vector FMAs of length ``Mt``), while A_cur moves one ring
   position forward along the row and B_cur along the column into the other buffers
   (double buffering), overlapping the product.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec
from plummer.kernels._base import (
    Cost,
    KernelRun,
    as_float,
    blockwise,
    floor,
    maximum,
    minimum,
)
from plummer.kernels._gemm import (
    GemmKernel,
    blocks,
    random_operands,
    tile_product,
)
from plummer.kernels._ring import edge_color, interleave_ring, ring_colors, ring_edge
from plummer.mesh import Mesh, compute_cycles, serialization_cycles

#: The double buffers of A and B (names made once: a tile name is a dict key on every use).
_A, _B = ("A0", "A1"), ("B0", "B1")

#: Color bases: A forward along rows, A backward along rows (alignment), B forward along columns.
_A_FORWARD, _A_BACKWARD, _B_FORWARD = 0, 6, 12


def _path(src: int, dst: int, plus: str, minus: str) -> str:
    return plus * (dst - src) if dst > src else minus * (src - dst)


@cache
def meshgemm_routes(p: int) -> int:
    """Most distinct colors any core of a ``p`` x ``p`` MeshGEMM configures (exact, O(p))."""
    ring = interleave_ring(p)
    row_fwd = [len(c) for c in ring_colors(p, True, _A_FORWARD)]
    row_bwd = [len(c) for c in ring_colors(p, False, _A_BACKWARD)]
    col_fwd = [len(c) for c in ring_colors(p, True, _B_FORWARD)]
    backward_rows = {ring[i] for i in range(p // 2 + 1)}  # rows aligning backward
    with_bwd = max(f + b for f, b in zip(row_fwd, row_bwd))
    without = max(row_fwd)
    return max(col_fwd[y] + (with_bwd if y in backward_rows else without) for y in range(p))


class MeshGEMM(GemmKernel):
    """MeshGEMM on a square P x P mesh (``p == q``)."""

    name = "meshgemm"

    @blockwise
    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form, derived from the program above and the machine's rules.

        With ``T(x)`` the serialization of x elements, ``h = 2`` hops per ring edge
        (1 for P = 2), ``mo`` the message overhead:

        - compute step ``c = step_overhead + compute_cycles(Mt Kt Nt, Kt, Kt Nt)``;
          its shifts take ``s = h alpha + T(max(Mt Kt, Kt Nt))`` and overlap it, so a step
          lasts ``max(c, s)`` (the first is only ``c``: its tiles are in place);
        - alignment: every row runs ``floor(P/2)`` store-and-forward steps of ``2 mo + T(Mt Kt)``
          plus ``alpha`` per hop, so core J's tile is ready after ``floor(P/2)`` steps and the
          hops of the ``floor(P/2)`` ring edges its chain crossed. Every window of ``P/2``
          edges of an even ring holds one of its two one-hop turns: ``P - 1`` hops at every
          core. On an odd ring the windows of ``(P - 1)/2`` edges hold one turn but one
          (J = 0 backward, J = (P - 1)/2 forward), which holds none: ``P - 1`` hops there,
          ``P - 2`` elsewhere, a mean of ``P - 2 + 1/P``;
        - ``cycles = launch + align + c + (P - 1) max(c, s)`` with the latest core's
          alignment; ``mean_core_cycles`` the same with the mean alignment.
        """
        v = self.params(spec, params)
        p, m, k, n = (as_float(v[name]) for name in ("p", "m", "k", "n"))  # arrays or numbers
        inverse = 1.0 / p
        mt, kt, nt = m / p, k / p, n / p  # exact: sizes divide p
        mk, kn = mt * kt, kt * nt
        t_a = serialization_cycles(spec, mk)
        shifts = p - 1  # steps after the first, each overlapping a shift
        hops = minimum(shifts, 2.0)  # ring edges: one hop on a 2-core line
        step_c = spec.step_overhead_cycles + compute_cycles(spec, mk * nt, kt, kn)
        step = maximum(step_c, hops * spec.alpha + serialization_cycles(spec, maximum(mk, kn)))
        steps_align = floor(p * 0.5)
        hops_align = shifts  # the latest core's alignment chain: P - 1 hops (see above)
        odd = p - 2 * steps_align  # 1 for odd P, else 0
        align = steps_align * (2 * spec.message_overhead_cycles + t_a) + spec.alpha * hops_align
        mean_align = align - spec.alpha * odd * (1 - inverse)
        body = step_c + shifts * step
        # meshgemm_routes(p) is 6 for p = 2, 8 for p = 3 and 9 for every p >= 4 (3 colors per
        # ring direction at a core): min(2p + 2, 9); the tests check this against the exact
        # count and the executor
        routes = minimum(2 * p + 2, 9.0)
        return Cost.make(
            spec,
            cycles=spec.launch_overhead_cycles + align + body,
            compute_cycles=p * step_c,
            hops=hops_align + shifts * hops,
            routing_stages=2 * steps_align,
            memory_per_core_bytes=(2 * spec.dtype_bytes) * (mk + kn) + spec.dtype_bytes * mt * nt,
            routes_per_core=routes,
            mean_core_cycles=spec.launch_overhead_cycles + mean_align + body,
        )

    def sweep(self) -> list[dict[str, Any]]:
        """Meshes 2x2 to 32x32 (odd and even) with tiles from 1x1x1 to 16x16x16."""
        tiles = [(1, 1, 1), (2, 3, 1), (1, 8, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)]
        return [
            {"p": p, "q": p, "m": p * mt, "k": p * kt, "n": p * nt}
            for p in (2, 3, 4, 5, 7, 8, 11, 16, 24, 32)
            for mt, kt, nt in tiles
            if p * p * mt * kt * nt <= 32 * 32 * 8 * 8 * 8
        ]

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False, **params: ArrayLike) -> KernelRun:
        v = self.configuration(spec, params)
        p, m, k, n = v["p"], v["m"], v["k"], v["n"]
        mt, kt, nt = m // p, k // p, n // p
        a, b = random_operands(seed, (m, k), (k, n))
        a_blocks, b_blocks = blocks(a, p, p), blocks(b, p, p)
        ring = interleave_ring(p)
        mesh = Mesh(spec, p, p, trace=trace)
        mo = spec.message_overhead_cycles

        def core(i: int, j: int) -> tuple[int, int]:
            return ring[j % p], ring[i % p]

        for i in range(p):
            for j in range(p):
                mesh.load(core(i, j), "A0", a_blocks[i][j])
                mesh.load(core(i, j), "B0", b_blocks[(i + j) % p][j])
                mesh.load(core(i, j), "C", np.zeros((mt, nt), dtype=np.float32))

        # alignment of A: every row runs floor(p/2) store-and-forward steps, backward for
        # i <= p/2, else forward; row i moves its tiles min(i, p - i) positions, then resends
        # its aligned tile (into the neighbour's other buffer, which it discards) and waits for
        # the neighbour's copy before the next step (a program point on its PE, 0 cycles)
        a_cur = [0] * p
        for step in range(p // 2):
            for i in range(p):
                forward = i > p - i
                for j in range(p):
                    src, dst = ring_edge(p, j, forward)
                    mesh.send(
                        (src, ring[i]), _A[a_cur[i]], _path(src, dst, "E", "W"),
                        edge_color(p, j, forward, _A_FORWARD if forward else _A_BACKWARD),
                        _A[1 - a_cur[i]], overhead=mo, receive_overhead=mo,
                    )
                if step < min(i, p - i):
                    a_cur[i] = 1 - a_cur[i]
                else:
                    for j in range(p):
                        mesh.work(core(i, j), [_A[1 - a_cur[i]]], _A[a_cur[i]], 0.0)

        # p compute-and-shift steps. Each logical position's forward ring edge is the same at
        # every step, along rows (A) and columns (B), and the buffers alternate, so the
        # inputs and sends of a step depend only on its parity: built once for both
        a_edges, b_edges = [], []
        for position in range(p):
            src, dst = ring_edge(p, position)
            a_edges.append((src, _path(src, dst, "E", "W"), edge_color(p, position, True, _A_FORWARD)))
            b_edges.append((src, _path(src, dst, "S", "N"), edge_color(p, position, True, _B_FORWARD)))
        cores = [[core(i, j) for j in range(p)] for i in range(p)]
        inputs: list[list[list[str]]] = []
        sends: list[list[tuple[tuple[int, int], str, str, int, str]]] = []
        for parity in (0, 1):
            inputs.append([[_A[a_cur[i] ^ parity], _B[parity], "C"] for i in range(p)])
            sends.append([])
            for i in range(p):
                a_src, a_dst = _A[a_cur[i] ^ parity], _A[1 - (a_cur[i] ^ parity)]
                b_row, b_path, b_color = b_edges[i]
                for j in range(p):
                    a_col, a_path, a_color = a_edges[j]
                    sends[parity].append(((a_col, ring[i]), a_src, a_path, a_color, a_dst))
                    sends[parity].append(
                        ((ring[j], b_row), _B[parity], b_path, b_color, _B[1 - parity])
                    )
        step_overhead = spec.step_overhead_cycles
        for step in range(p):
            for i in range(p):
                mesh.compute_all(
                    cores[i], inputs[step % 2][i], "C", tile_product,
                    fmas=mt * kt * nt, loops=kt, vector_ops=kt * nt, overhead=step_overhead,
                )
            if step < p - 1:
                mesh.send_all(sends[step % 2])

        result = mesh.run()
        output = np.block([[result.tile(core(i, j), "C") for j in range(p)] for i in range(p)])
        return KernelRun(output=output, reference=a @ b, execution=result)
