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

The relayed program (:func:`_execute_relay`) fixes the order of each core's PE tasks, so
that its timing follows from the dependencies alone and never from which task happens to
become ready first (rule 6's ready order): every core runs, per step ``s``,

    product ``s``  ->  relay stage of ``A_{s+1}``  ->  relay stage of ``B_{s+1}``  ->  product ``s + 1``

(a core skips the stage of a panel it owns; an owner's zero-cost send gate for panel
``s + 1`` sits right before its product ``s``). A core thus accepts the next panels only
once its current product is done, as a PE running its tasks in program order would; the
receive buffers exist from the start (placeholders the core holds anyway), the product
``s`` reads the ``s + 1`` buffers as a fence (write-after-read, rule 7), and a zero-cost
:meth:`Mesh.work` between the two stages orders B after A. Against letting the PE pick by
readiness, this costs at most a few ``alpha + beta`` on the meshes of the sweep (<= 3.6%)
and gives an exact recurrence (:func:`_relay_finish`), solved in O(1) where the products
outlast the relay hand-offs (:func:`summa_relay_compute_bound`).
"""

from __future__ import annotations

import math
from functools import cache
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, KernelRun
from plummer.kernels._gemm import (
    GEMM_PARAMETERS,
    GemmKernel,
    random_operands,
    tile_product,
)
from plummer.kernels._maxplus import formula_or_recurrence
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


def _loaded_mesh(
    kernel: GemmKernel, spec: HardwareSpec, seed: int, trace: bool, params: dict[str, ArrayLike]
) -> tuple[Mesh, np.ndarray, np.ndarray, tuple[int, int, int, int, int, int]]:
    """The mesh of a SUMMA run, every core holding its C tile (zeros) and the panels of A
    and B it owns; the operands A and B; and ``(p, q, panels, Mt, Kt, Nt)``."""
    p, q, panels, mt, kt, nt = (int(x) for x in _tiles(kernel.configuration(spec, params)))
    a, b = random_operands(seed, (mt * q, kt * panels), (kt * panels, nt * p))
    mesh = Mesh(spec, p, q, trace=trace)
    per_col, per_row = panels // p, panels // q
    for y in range(q):
        for x in range(p):
            mesh.load((x, y), "C", np.zeros((mt, nt), dtype=np.float32))
            for s in range(x * per_col, (x + 1) * per_col):
                mesh.load((x, y), f"A{s}", a[y * mt:(y + 1) * mt, s * kt:(s + 1) * kt])
            for s in range(y * per_row, (y + 1) * per_row):
                mesh.load((x, y), f"B{s}", b[s * kt:(s + 1) * kt, x * nt:(x + 1) * nt])
    return mesh, a, b, (p, q, panels, mt, kt, nt)


def _execute(kernel: GemmKernel, spec: HardwareSpec, seed: int, trace: bool,
             params: dict[str, ArrayLike]) -> KernelRun:
    """Run SUMMA with multicast broadcasts on the executor."""
    mesh, a, b, (p, q, panels, mt, kt, nt) = _loaded_mesh(kernel, spec, seed, trace, params)
    per_col, per_row = panels // p, panels // q

    def owner_col(s: int) -> int:
        return s // per_col

    def owner_row(s: int) -> int:
        return s // per_row

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
            _line(mesh, (o, y), f"A{s}", o, p, "E", "W", 0, f"Ar{s % 2}")
        for x in range(p):
            _line(mesh, (x, r), f"B{s}", r, q, "S", "N", p + 1, f"Br{s % 2}")

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


def _line(mesh: Mesh, src: tuple[int, int], buffer: str, pos: int, length: int,
          plus: str, minus: str, base: int, dst: str) -> None:
    """Multicast ``buffer`` from position ``pos`` of a line of ``length`` cores to both ends:
    one message per direction, color ``base + pos`` going ``plus`` and ``base + pos + 1``
    going ``minus`` (:func:`multicast_colors`)."""
    for direction, (step, hops) in enumerate(((plus, length - 1 - pos), (minus, pos))):
        if hops:
            mesh.send(src, buffer, step * hops, base + pos + direction, dst, multicast=True)


def _relay_line(mesh: Mesh, src: tuple[int, int], buffer: str, pos: int, length: int,
                plus: str, minus: str, base: int, dst: str) -> None:
    """Relay ``buffer`` from position ``pos`` of a line of ``length`` cores to both ends in
    one-hop segments, color ``base + 2 * direction + (sender position mod 2)`` (4 colors
    per axis, :func:`relay_colors`)."""
    for direction, (step, hops) in enumerate(((plus, length - 1 - pos), (minus, pos))):
        if hops:
            sign = 1 if direction == 0 else -1
            legs = [
                Segment(step, base + 2 * direction + (pos + sign * h) % 2) for h in range(hops)
            ]
            mesh.relay(src, buffer, legs, dst)


def _execute_relay(kernel: GemmKernel, spec: HardwareSpec, seed: int, trace: bool,
                   params: dict[str, ArrayLike]) -> KernelRun:
    """Run SUMMA with relayed broadcasts on the executor, each core's PE tasks in the fixed
    order of the module docstring."""
    mesh, a, b, (p, q, panels, mt, kt, nt) = _loaded_mesh(kernel, spec, seed, trace, params)
    per_col, per_row = panels // p, panels // q

    def a_buf(s: int, x: int) -> str:
        return f"A{s}" if s // per_col == x else f"Ar{s % 2}"

    def b_buf(s: int, y: int) -> str:
        return f"B{s}" if s // per_row == y else f"Br{s % 2}"

    for y in range(q):
        for x in range(p):
            # the receive buffers the core will use, present from the start (no extra peak)
            for name in sorted({a_buf(s, x) for s in range(panels)} - {f"A{s}" for s in range(panels)}):
                mesh.load((x, y), name, np.zeros((mt, kt), dtype=np.float32))
            for name in sorted({b_buf(s, y) for s in range(panels)} - {f"B{s}" for s in range(panels)}):
                mesh.load((x, y), name, np.zeros((kt, nt), dtype=np.float32))

    def relay(s: int) -> None:
        o, r = s // per_col, s // per_row
        for y in range(q):
            _relay_line(mesh, (o, y), f"A{s}", o, p, "E", "W", 0, f"Ar{s % 2}")
        for y in range(q):  # a core's B stage follows its A stage
            for x in range(p):
                if x != o and y != r:
                    mesh.work((x, y), [f"Ar{s % 2}"], f"Br{s % 2}", 0.0)
        for x in range(p):
            _relay_line(mesh, (x, r), f"B{s}", r, q, "S", "N", 4, f"Br{s % 2}")

    def product(a_, b_, c_, *fences):
        return tile_product(a_, b_, c_)

    relay(0)
    for s in range(panels):
        if s + 1 < panels:  # the owners of panel s + 1 issue it when they start step s
            o, r = (s + 1) // per_col, (s + 1) // per_row
            for y in range(q):
                mesh.work((o, y), [a_buf(s, o), b_buf(s, y), "C"], f"A{s + 1}", 0.0)
            for x in range(p):
                mesh.work((x, r), [a_buf(s, x), b_buf(s, r), "C"], f"B{s + 1}", 0.0)
        for y in range(q):
            for x in range(p):
                fences = [a_buf(s + 1, x), b_buf(s + 1, y)] if s + 1 < panels else []
                mesh.compute(
                    (x, y), [a_buf(s, x), b_buf(s, y), "C", *fences], "C", product,
                    fmas=mt * kt * nt, loops=kt, vector_ops=kt * nt,
                    overhead=spec.step_overhead_cycles,
                )
        if s + 1 < panels:  # recorded after product s: its stages wait for it (rule 7)
            relay(s + 1)
    result = mesh.run()
    output = np.block([[result.tile((x, y), "C") for x in range(p)] for y in range(q)])
    return KernelRun(output=output, reference=a @ b, execution=result)


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


@cache
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


def _relay_scan(g: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max_{j <= i} g[j] + (i - j) w`` along the last axis, and the maximising ``j``."""
    idx = np.arange(g.shape[-1])
    v = g - idx * w
    best = np.maximum.accumulate(v, axis=-1)
    source = np.maximum.accumulate(np.where(v >= best, idx, 0), axis=-1)
    return best + idx * w, source


def _relay_chain(ready: np.ndarray, seed: np.ndarray, o: int, w: np.ndarray, beta: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Stage starts along the last axis for a panel relayed both ways from position ``o``:
    ``start(i) = max(ready(i), start(i -+ 1) + alpha + beta)``, with the owner's send
    leaving at ``seed`` (its head reaches ``o -+ 1`` at ``seed + alpha``). Also returns
    the position whose ``ready`` (or the owner's seed) the maximum came from."""
    g = ready.copy()
    g[..., o] = seed - beta
    start = np.empty_like(ready)
    source = np.empty(ready.shape, dtype=int)
    start[..., o:], up = _relay_scan(g[..., o:], w)
    source[..., o:] = o + up
    down_start, down = _relay_scan(g[..., o::-1], w)
    start[..., :o + 1], source[..., :o + 1] = down_start[..., ::-1], (o - down)[..., ::-1]
    return start, source


def _relay_finish(spec: HardwareSpec, p: int, q: int, mt: np.ndarray, kt: np.ndarray,
                  nt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per configuration (1-D ``mt, kt, nt`` on one ``p`` x ``q`` mesh): the latest and the
    mean end of the cores' last products, and the relay hops on the latest one's critical
    path. The recurrence of :meth:`SUMMARelay.cost`, one step at a time over arrays of
    ``(configurations, q, p)``."""
    mt, kt, nt = (np.asarray(x, dtype=float)[:, None, None] for x in (mt, kt, nt))
    panels = math.lcm(p, q)
    per_col, per_row = panels // p, panels // q
    c = _step_compute(spec, mt, kt, nt)
    stage_a = spec.beta + serialization_cycles(spec, mt * kt)
    stage_b = spec.beta + serialization_cycles(spec, kt * nt)
    w = np.full_like(c, spec.alpha + spec.beta)
    shape = (mt.shape[0], q, p)
    start, end = np.zeros(shape), np.zeros(shape)  # of the product s - 1 (none: 0)
    hops_start, hops_end = np.zeros(shape), np.zeros(shape)
    rows, cols = np.arange(q)[:, None], np.arange(p)[None, :]
    for s in range(panels):
        o, r = s // per_col, s // per_row
        a, src = _relay_chain(end, start[:, :, o], o, w, spec.beta)
        hops_g = hops_end.copy()
        hops_g[:, :, o] = hops_start[:, :, o]
        hops_a = np.take_along_axis(hops_g, src, axis=2) + np.abs(cols - src)
        ready_b = a + stage_a  # after the core's A stage; the owner column has none
        ready_b[:, :, o] = end[:, :, o]
        hops_rb = hops_a.copy()
        hops_rb[:, :, o] = hops_end[:, :, o]
        b, src = _relay_chain(ready_b.swapaxes(1, 2), start[:, r, :], r, w, spec.beta)
        b, src = b.swapaxes(1, 2), src.swapaxes(1, 2)
        hops_g = hops_rb.copy()
        hops_g[:, r, :] = hops_start[:, r, :]
        hops_b = np.take_along_axis(hops_g, src, axis=1) + np.abs(rows - src)
        start = b + stage_b  # after the core's B stage; the owner row has none
        start[:, r, :] = ready_b[:, r, :]
        hops_start = hops_b
        hops_start[:, r, :] = hops_rb[:, r, :]
        end, hops_end = start + c, hops_start
    flat = end.reshape(end.shape[0], -1)
    last = np.argmax(flat, axis=1)
    hops = hops_end.reshape(flat.shape)[np.arange(flat.shape[0]), last]
    return flat.max(axis=1), flat.mean(axis=1), hops


def summa_relay_compute_bound(
    spec: HardwareSpec, p: ArrayLike, q: ArrayLike, mt: ArrayLike, kt: ArrayLike, nt: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The recurrence of :meth:`SUMMARelay.cost` solved in closed form where no relay seed
    ever delays a core: ``(exact, end, mean, hops)``, the latest and mean core end in cycles
    (without launch) and the relay hops on the latest core's critical path; ``exact`` marks
    the configurations where the derivation holds (elsewhere the values are meaningless).
    O(1) per configuration, any ``p`` x ``q`` mesh.

    With ``S = lcm(p, q)``, ``s_A = beta + T_A``, ``s_B = beta + T_B``, ``w = alpha + beta``:
    ``E(y, x) = S c + (S - S/p) s_A + (S - S/q) s_B + X(x) + Y(y) - w - beta`` (and
    ``- alpha`` at core (0, 0) of a 2 x 2 mesh), with ``X(x) = w (p - 2 + |x - (p - 2)|)``
    (``w`` when ``p = 2``) and ``Y`` likewise with ``q``; the derivation is in
    :meth:`SUMMARelay.cost`. The latest core is (0, 0): ``2p + 2q - 9`` hops (a 2-wide axis
    counts 1 instead of ``2 (p - 2)``), and the mean of ``|x - (p - 2)|`` over the columns is
    ``((p - 2)(p - 1) / 2 + 1) / p``.

    Condition: ``c >= (S/p) s_A + w + alpha`` and ``c >= (S/q) s_B + w + alpha``; sufficient,
    and necessary on square meshes from 3 x 3 (where it fails, the makespan or the mean differ).
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    mt, kt, nt = (np.asarray(x, dtype=float) for x in (mt, kt, nt))
    panels = np.lcm(p.astype(np.int64), q.astype(np.int64)).astype(float)
    c = _step_compute(spec, mt, kt, nt)
    s_a = spec.beta + serialization_cycles(spec, mt * kt)
    s_b = spec.beta + serialization_cycles(spec, kt * nt)
    w = spec.alpha + spec.beta
    exact = ((c >= panels / p * s_a + w + spec.alpha)
             & (c >= panels / q * s_b + w + spec.alpha))
    work = panels * c + (panels - panels / p) * s_a + (panels - panels / q) * s_b

    def worst(n: np.ndarray) -> np.ndarray:
        """Largest ``X / w`` over an axis of ``n`` cores (at core 0)."""
        return np.where(n == 2, 1.0, 2 * (n - 2))

    def mean(n: np.ndarray) -> np.ndarray:
        """Mean ``X / w`` over an axis of ``n`` cores."""
        return np.where(n == 2, 1.0, n - 2 + ((n - 2) * (n - 1) / 2 + 1) / n)

    hops = worst(p) + worst(q) - 1
    end = work + hops * w - spec.beta
    corner = np.where((p == 2) & (q == 2), spec.alpha / 4, 0.0)
    average = work + (mean(p) + mean(q) - 1) * w - spec.beta - corner
    return exact, end, average, hops


class SUMMA(GemmKernel):
    """SUMMA with hardware-multicast broadcasts on a ``p`` x ``q`` mesh."""

    name = "summa"
    square = False

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
        far ends finish last; the executor's mean is up to 1.5% below in the sweep).
        """
        v = self.params(spec, params)
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
        return _execute(self, spec, seed, trace, params)


class SUMMARelay(GemmKernel):
    """SUMMA whose broadcasts are relayed core by core through the PEs (O(1) colors)."""

    name = "summa-relay"
    square = False

    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form (:func:`summa_relay_compute_bound`) where it holds, else the recurrence.

        The recurrence, derived from the relayed program (module docstring) and rules 4-7.
        With ``c`` the step's product, ``w = alpha + beta`` and a relay stage of ``s_A = beta
        + T_A`` (``s_B = beta + T_B``): let ``t`` and ``e = t + c`` be the start and end of a
        core's product ``s - 1`` (both 0 before the first step). Panel ``s`` of A leaves its
        owner column ``o`` at the owner's ``t`` (its send gate); at core ``x`` of a row its
        stage starts at ``a(x) = max(e(x), a(x -+ 1) + w)`` (the head waits for the PE, which
        finishes product ``s - 1`` first), and ``a(o -+ 1) = t(o) + alpha`` (the seed): a
        prefix maximum, ``a(x) = max_j (g(j) + |x - j| w)`` with ``g = e`` and ``g(o) = t(o) -
        beta``. The B stages follow the A stage on each core: along each column ``b(y) =
        max(a(y) + s_A, b(y -+ 1) + w)`` with the same seed at the owner row (and ``e`` in
        place of the A stage on the owner column). Product ``s`` then starts at ``b + s_B``
        (on the owner row: at the end of its A stage, or ``e``). Each step is a few prefix
        maxima over ``(configurations, q, p)`` arrays, exact (rules 4-7, no link is shared on
        these one-hop legs), once per distinct mesh shape and tile shape (:func:`~plummer.kernels._maxplus.per_mesh` over :func:`_relay_finish`;
        O(S p q) work per shape, 73 s at 660 x 660).

        Its solution. Write a core's product start as its own PE work plus idle, ``t = s c +
        n_A s_A + n_B s_B + I`` (``n_A`` the A stages it has run). Step 0 is set by the seeds:
        ``I = (max(x, 1) + max(y, 1) - 1) w - beta`` (0 at core (0, 0)). Suppose no later seed
        wins. Then every max splits into a row and a column part, ``I = X(x) + Y(y) - w -
        beta``, from ``X = w max(x, 1)``. While column ``o`` keeps the panels, ``X`` rises by
        exactly ``w`` per core away from ``o - 1`` on both sides, so every relay reaches a core
        as its own product ends (a tie): ``X`` is unchanged. At the first step of an owner
        ``o >= 2``, ``X`` has its vertex at ``o - 2`` (the flat start for ``o = 2``) and the
        relay from core ``o - 1`` (``w`` above it) reaches each ``x <= o - 2`` at ``e(o - 1) +
        (o - 1 - x) w``, ``2 w`` after ``x``'s own end (``w`` on the flat start): ``X = w (o -
        1 + |x - (o - 1)|)``. Columns alike. At the end, every core having skipped ``S/p`` A
        and ``S/q`` B stages: ``E(y, x) = S c + (S - S/p) s_A + (S - S/q) s_B + X(x) + Y(y) - w
        - beta`` with ``X = w (p - 2 + |x - (p - 2)|)`` (``w`` if ``p = 2``; on a 2 x 2 mesh core
        (0, 0) keeps ``I = 0``). Latest at (0, 0), ``2p + 2q - 9`` hops; the mean uses
        ``sum_x |x - (p - 2)| = (p - 2)(p - 1) / 2 + 1``.

        Condition: no seed wins. The tightest is at the first step of an owner ``o >= 2``,
        towards ``o - 1``: ``t(o) - t(o - 1) = (S/p) s_A + w`` (``o - 1`` skipped its ``S/p``
        A stages; ``X`` rises ``w``), so the seed, at ``o - 1``'s PE at ``t(o) + alpha``, loses
        iff ``c >= (S/p) s_A + w + alpha``; the other seeds have more slack. Likewise B with
        ``S/q`` and ``s_B`` (on the owner column, where no A stage delays the chain). On
        square meshes from 3 x 3 (``c >= T + 2 w``) it is also necessary; on the WSE-3 preset it
        holds for every square mesh with tiles up to 32 x 32 x 32. ``cycles = launch + max``,
        ``mean_core_cycles = launch + mean`` over the cores' last product ends; ``hops`` and
        ``routing_stages`` count the relay hops on the latest core's critical path.
        """
        v = self.params(spec, params)
        p, q, panels, mt, kt, nt = _tiles(v)
        c = _step_compute(spec, mt, kt, nt)
        exact, *values = summa_relay_compute_bound(spec, p, q, mt, kt, nt)
        latest, mean, hops = formula_or_recurrence(
            exact, tuple(values), _relay_finish, spec, (p, q), (mt, kt, nt), budget=1 << 20
        )
        return Cost.make(
            spec,
            cycles=spec.launch_overhead_cycles + latest,
            compute_cycles=panels * c,
            hops=hops,
            routing_stages=hops,
            memory_per_core_bytes=_memory(spec, p, q, panels, mt, kt, nt),
            routes_per_core=relay_colors(p) + relay_colors(q),
            mean_core_cycles=spec.launch_overhead_cycles + mean,
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
        return _execute_relay(self, spec, seed, trace, params)
