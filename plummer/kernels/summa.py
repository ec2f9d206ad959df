"""SUMMA: at each step the owner column broadcasts its A panel along the rows and the owner
row its B panel along the columns; every core adds the panels' product to its C tile.

The program (executor) and the closed form live side by side.

Panel decomposition, on a ``p`` x ``q`` mesh (``p`` columns, ``q`` rows): core ``(x, y)``
holds C block ``(y, x)`` of ``Mt x Nt`` (``Mt = M / q``, ``Nt = N / p``). K is cut into
``S = lcm(p, q)`` panels of ``Kt = K / S`` (so ``k`` must be a multiple of ``p`` and ``q``).
Panel ``s`` of A is owned by column ``o_s = s // (S / p)`` (each column holds ``S / p``
consecutive panels, ``Mt x K / p`` elements), panel ``s`` of B by row ``r_s = s // (S / q)``.
On a square mesh ``S = P`` and owner ``s`` is column / row ``s``.

Program:

1. The host places the panels at their owners and zeroes C (not timed).
2. Step ``s = 0 .. S - 1``: the owners send panel ``s`` (A along the row, B along the
   column) into the receivers' double buffers; every core runs ``C += A_s . B_s`` (one call:
   ``step_overhead`` + ``Kt`` loop iterations + ``Kt Nt`` vector FMAs of length ``Mt``).
   The owner of panel ``s + 1`` issues its send when it starts step ``s`` (a zero-cost gate
   on its PE, :meth:`Mesh.work`), so the broadcast of the next panel overlaps the current product.

Variants: :class:`SUMMA` multicasts (one pass-through message east and one west per owner
and step, a distinct color per source: O(p + q) colors per core, which exceeds the route
budget for large meshes); :class:`SUMMARelay` relays the panels core by core through the
PEs (O(1) colors, ``beta`` per stage).
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, Kernel, KernelRun
from plummer.kernels._gemm import (
    GEMM_PARAMETERS,
    gemm_params,
    random_operands,
    scalar_params,
    tile_product,
)
from plummer.mesh import Mesh, Segment, compute_cycles, serialization_cycles


def _tiles(v: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """``(p, q, S, Mt, Kt, Nt)`` of validated GEMM parameters."""
    p, q, m, k, n = (v[name] for name in GEMM_PARAMETERS)
    panels = np.lcm(p, q)
    return p, q, panels, m // q, k // panels, n // p


def _step_compute(spec: HardwareSpec, mt: ArrayLike, kt: ArrayLike, nt: ArrayLike) -> np.ndarray:
    """Cycles of one step's local product (``step_overhead`` included)."""
    mt, kt, nt = (np.asarray(x) for x in (mt, kt, nt))
    return spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)


def _memory(spec: HardwareSpec, p, q, panels, mt, kt, nt) -> np.ndarray:
    """Bytes per core: own A and B panels, C, and the receive buffers: two per operand
    (one when a core receives only one panel of it, as on a 2-wide axis)."""
    own = mt * kt * (panels // p) + kt * nt * (panels // q)
    recv_a = np.minimum(2, panels - panels // p)
    recv_b = np.minimum(2, panels - panels // q)
    return (own + recv_a * mt * kt + recv_b * kt * nt + mt * nt) * spec.dtype_bytes


def _execute(kernel: Kernel, spec: HardwareSpec, relay: bool, seed: int, trace: bool,
             params: dict[str, ArrayLike]) -> KernelRun:
    """Run SUMMA (multicast or relayed broadcasts) on the executor."""
    v = gemm_params(kernel.name, spec, params, square=False)
    p, q, panels, mt, kt, nt = (int(x) for x in _tiles(scalar_params(v)))
    m, k, n = mt * q, kt * panels, nt * p
    a, b = random_operands(seed, (m, k), (k, n))
    mesh = Mesh(spec, p, q, trace=trace)
    per_col, per_row = panels // p, panels // q

    def owner_col(s: int) -> int:
        return s // per_col

    def owner_row(s: int) -> int:
        return s // per_row

    for y in range(q):
        for x in range(p):
            mesh.load((x, y), "C", np.zeros((mt, nt), dtype=np.float32))
            for s in range(x * per_col, (x + 1) * per_col):
                mesh.load((x, y), f"A{s}", a[y * mt:(y + 1) * mt, s * kt:(s + 1) * kt])
            for s in range(y * per_row, (y + 1) * per_row):
                mesh.load((x, y), f"B{s}", b[s * kt:(s + 1) * kt, x * nt:(x + 1) * nt])

    def a_buf(s: int, x: int) -> str:
        return f"A{s}" if owner_col(s) == x else f"Ar{s % 2}"

    def b_buf(s: int, y: int) -> str:
        return f"B{s}" if owner_row(s) == y else f"Br{s % 2}"

    def broadcast(s: int) -> None:
        o, r = owner_col(s), owner_row(s)
        if s > 0:  # the owners issue panel s when they start step s - 1
            for y in range(q):
                mesh.work((o, y), [a_buf(s - 1, o), b_buf(s - 1, y)], f"A{s}", 0.0)
            for x in range(p):
                mesh.work((x, r), [a_buf(s - 1, x), b_buf(s - 1, r)], f"B{s}", 0.0)
        for y in range(q):
            _line(mesh, relay, (o, y), f"A{s}", o, p, "E", "W", 0, f"Ar{s % 2}")
        for x in range(p):
            _line(mesh, relay, (x, r), f"B{s}", r, q, "S", "N", 4 if relay else p + 1, f"Br{s % 2}")

    broadcast(0)
    for s in range(panels):
        if s + 1 < panels:
            broadcast(s + 1)
        for y in range(q):
            for x in range(p):
                mesh.compute(
                    (x, y), [a_buf(s, x), b_buf(s, y), "C"], "C", tile_product,
                    fmas=mt * kt * nt, loops=kt, vector_ops=kt * nt,
                    overhead=spec.step_overhead_cycles,
                )
    result = mesh.run()
    output = np.block([[result.tile((x, y), "C") for x in range(p)] for y in range(q)])
    return KernelRun(output=output, reference=a @ b, execution=result)


def _line(mesh: Mesh, relay: bool, src: tuple[int, int], buffer: str, pos: int, length: int,
          plus: str, minus: str, base: int, dst: str) -> None:
    """Broadcast ``buffer`` from position ``pos`` of a line of ``length`` cores to both ends.

    Multicast: one message per direction, color ``base + pos`` going ``plus`` and
    ``base + pos + 1`` going ``minus`` (:func:`multicast_colors`). Relay: one-hop segments,
    color ``base + 2 * direction + (sender position mod 2)`` (4 colors per axis).
    """
    for direction, (step, hops) in enumerate(((plus, length - 1 - pos), (minus, pos))):
        if hops == 0:
            continue
        if relay:
            sign = 1 if direction == 0 else -1
            legs = [
                Segment(step, base + 2 * direction + (pos + sign * h) % 2) for h in range(hops)
            ]
            mesh.relay(src, buffer, legs, dst)
        else:
            mesh.send(src, buffer, step * hops, base + pos + direction, dst, multicast=True)


def multicast_colors(length: ArrayLike) -> np.ndarray:
    """Most colors a core of a line of ``length`` configures for the multicast broadcasts.

    Position ``o`` sends ``plus`` on color ``o`` (cores ``o .. length - 1``) and ``minus`` on
    color ``o + 1`` (cores ``0 .. o``): a color's two uses never share a core. Core ``x``
    sees the ``plus`` colors of the sources ``o <= min(x, length - 2)`` and the ``minus``
    colors of the sources ``o >= max(x, 1)``: ``min(x, length - 2) + 1 + length -
    max(x, 1)``, largest at ``x = 1``: ``length + 1`` (2 on a line of two cores).
    """
    length = np.asarray(length)
    return np.where(length >= 3, length + 1, np.where(length == 2, 2, 0)).astype(float)


def relay_colors(length: ArrayLike) -> np.ndarray:
    """Most colors a core of a line of ``length`` configures for the relayed broadcasts:
    per direction, the color it sends on and the one it receives on (2 at the ends)."""
    return np.where(np.asarray(length) >= 3, 4.0, 2.0)


def _longest_path(
    p: np.ndarray, q: np.ndarray, t_a: np.ndarray, t_b: np.ndarray, step: np.ndarray, per_core: float
) -> tuple[np.ndarray, np.ndarray]:
    """Max over the candidate critical paths of :func:`_summa_paths` of ``n_A t_a + n_B t_b
    + n_c step + n_dist per_core``, and the distance term of the maximising path.

    One evaluation per distinct mesh shape, vectorised over the configurations of that shape.
    """
    shape = np.broadcast_shapes(p.shape, q.shape, t_a.shape, t_b.shape, step.shape)
    p, q, t_a, t_b, step = (np.broadcast_to(x, shape) for x in (p, q, t_a, t_b, step))
    best = np.zeros(shape)
    dist = np.zeros(shape)
    for pq in set(zip(p.ravel().tolist(), q.ravel().tolist(), strict=True)):
        sel = (p == pq[0]) & (q == pq[1])
        coef = _summa_paths(*pq)
        vals = (coef[:, None, 0] * t_a[sel] + coef[:, None, 1] * t_b[sel]
                + coef[:, None, 2] * step[sel] + coef[:, None, 3] * per_core)
        arg = np.argmax(vals, axis=0)
        best[sel] = vals[arg, np.arange(arg.size)]
        dist[sel] = coef[arg, 3]
    return best, dist


@lru_cache(maxsize=None)
def _summa_paths(p: int, q: int) -> np.ndarray:
    """Coefficients ``(n_A, n_B, n_c, n_alpha)`` of the candidate critical paths (see
    :meth:`SUMMA.cost`), one row each, dominated rows removed."""
    panels = math.lcm(p, q)
    candidates_steps = sorted({0, 1, 2, panels - 3, panels - 2, panels - 1} & set(range(panels)))

    def options(width: int) -> list[tuple[frozenset[int], int]]:
        per = panels // width
        out: list[tuple[frozenset[int], int]] = [(frozenset(), 0)]
        for size in (1, 2):
            for steps in combinations(candidates_steps, size):
                first, last = steps[0] // per, steps[-1] // per
                dist = (last - first) + max(last, width - 1 - last)
                out.append((frozenset(steps), dist))
        return out

    rows = set()
    for steps_a, dist_a in options(p):
        for steps_b, dist_b in options(q):
            if steps_a & steps_b:
                continue
            jumps_late = len(steps_a - {0}) + len(steps_b - {0})
            rows.add((len(steps_a), len(steps_b), panels - jumps_late, dist_a + dist_b))
    rows_sorted = sorted(rows)
    keep = [
        r for r in rows_sorted
        if not any(o != r and all(oi >= ri for oi, ri in zip(o, r)) for o in rows_sorted)
    ]
    return np.array(keep, dtype=float)


class SUMMA(Kernel):
    """SUMMA with hardware-multicast broadcasts on a ``p`` x ``q`` mesh."""

    name = "summa"
    family = "gemm"
    parameters = GEMM_PARAMETERS

    def check(self, spec: HardwareSpec, **params: ArrayLike) -> None:
        gemm_params(self.name, spec, params, square=False)

    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form, derived from the program above and the machine's rules.

        With ``c`` the step's product, ``T_A = T(Mt Kt)``, ``T_B = T(Kt Nt)``: core ``x``
        of a row gets panel ``s`` at ``g + |x - o_s| alpha + T_A`` where ``g`` is the time
        the owner started step ``s - 1`` (0 for ``s = 0``); likewise for B. So a core
        starts step ``s`` at ``max(end of step s-1, its A arrival, its B arrival)``: a
        longest path through the steps that either stays on a core (``c``) or jumps from an
        owner (``T + alpha * distance``). With ``c >= T_A, T_B`` (always so for tiles
        whose product outweighs their transfer) a path jumps at most twice per axis (more
        jumps add no distance, since owners advance monotonically): first from an early
        owner, last from a late one, landing at the far end. ``cycles = launch + max over
        such paths of (n_A T_A + n_B T_B + n_c c + n_alpha alpha)``, with the coefficient
        rows enumerated once per mesh shape (:func:`_summa_paths`). For ``T > c`` this is a
        lower bound. ``mean_core_cycles`` is approximated by ``cycles`` (cores near the
        far ends finish last; the executor's mean is within 0.5% below in the sweep).
        """
        v = gemm_params(self.name, spec, params, square=False)
        p, q, panels, mt, kt, nt = _tiles(v)
        c = _step_compute(spec, mt, kt, nt)
        t_a = serialization_cycles(spec, mt * kt)
        t_b = serialization_cycles(spec, kt * nt)
        best, hops = _longest_path(p, q, t_a, t_b, c, spec.alpha)
        cycles = spec.launch_overhead_cycles + best
        return Cost.make(
            spec,
            cycles=cycles,
            compute_cycles=panels * c,
            hops=hops,
            routing_stages=0,
            memory_per_core_bytes=_memory(spec, p, q, panels, mt, kt, nt),
            routes_per_core=multicast_colors(p) + multicast_colors(q),
            mean_core_cycles=cycles,
        )

    def sweep(self) -> list[dict[str, Any]]:
        """Meshes 2x2 to 9x9 and non-square ones (the route budget caps multicast SUMMA),
        tiles from 1x1x1 to 16x16x16."""
        tiles = [(1, 1, 1), (2, 3, 1), (1, 8, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)]
        meshes = [(2, 2), (3, 3), (4, 4), (5, 5), (7, 7), (8, 8), (9, 9), (2, 3), (4, 6), (6, 4)]
        return [
            {"p": p, "q": q, "m": q * mt, "k": math.lcm(p, q) * kt, "n": p * nt}
            for p, q in meshes
            for mt, kt, nt in tiles
        ]

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False, **params: ArrayLike) -> KernelRun:
        return _execute(self, spec, False, seed, trace, params)


class SUMMARelay(Kernel):
    """SUMMA whose broadcasts are relayed core by core through the PEs (O(1) colors)."""

    name = "summa-relay"
    family = "gemm"
    parameters = GEMM_PARAMETERS

    def check(self, spec: HardwareSpec, **params: ArrayLike) -> None:
        gemm_params(self.name, spec, params, square=False)

    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form: :meth:`SUMMA.cost`'s longest path with relayed jumps.

        A panel relayed over ``d`` cores arrives after ``d (alpha + beta) + T`` (each
        stage: the head waits ``beta`` at the PE, the data stream behind it), and every
        core that forwards a panel spends ``beta + T`` of its PE on it each step, so a
        step's PE time is ``c' = c + (beta + T_A) + (beta + T_B)`` on an inner core
        (the relays of one step compete with the product, which the executor orders by
        readiness). ``cycles = launch + max over paths (n_A T_A + n_B T_B + n_c c' +
        n_d (alpha + beta))`` (approximate: relays that arrive while the PE computes wait
        for it).
        """
        v = gemm_params(self.name, spec, params, square=False)
        p, q, panels, mt, kt, nt = _tiles(v)
        c = _step_compute(spec, mt, kt, nt)
        t_a = serialization_cycles(spec, mt * kt)
        t_b = serialization_cycles(spec, kt * nt)
        relay_a = np.where(p >= 3, spec.beta + t_a, 0.0)
        relay_b = np.where(q >= 3, spec.beta + t_b, 0.0)
        c_busy = c + relay_a + relay_b
        best, dist = _longest_path(p, q, t_a, t_b, c_busy, spec.alpha + spec.beta)
        cycles = spec.launch_overhead_cycles + best
        return Cost.make(
            spec,
            cycles=cycles,
            compute_cycles=panels * c,
            hops=dist,
            routing_stages=dist,
            memory_per_core_bytes=_memory(spec, p, q, panels, mt, kt, nt),
            routes_per_core=relay_colors(p) + relay_colors(q),
            mean_core_cycles=cycles,
        )

    def sweep(self) -> list[dict[str, Any]]:
        """Meshes 2x2 to 32x32 (odd and even, some non-square), tiles 1x1x1 to 16x16x16."""
        tiles = [(1, 1, 1), (2, 3, 1), (1, 8, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)]
        meshes = [(2, 2), (3, 3), (4, 4), (5, 5), (7, 7), (8, 8), (11, 11), (16, 16), (24, 24),
                  (32, 32), (2, 3), (4, 6), (6, 4)]
        return [
            {"p": p, "q": q, "m": q * mt, "k": math.lcm(p, q) * kt, "n": p * nt}
            for p, q in meshes
            for mt, kt, nt in tiles
            if p * q * math.lcm(p, q) * mt * kt * nt <= 32 * 32 * 32 * 8 * 8 * 8
        ]

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False, **params: ArrayLike) -> KernelRun:
        return _execute(self, spec, True, seed, trace, params)
