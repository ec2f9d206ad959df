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
and gives an exact recurrence (:func:`_relay_finish`, the tests' reference), solved in O(1)
on every mesh (:func:`summa_relay_timing`).
"""

from __future__ import annotations

import math
from functools import cache
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, KernelRun, as_float, blockwise, floor, maximum, minimum
from plummer.kernels._gemm import (
    GEMM_PARAMETERS,
    GemmKernel,
    operands_or_random,
    tile_product,
)
from plummer.mesh import Mesh, Segment, compute_cycles, serialization_cycles


def _where(condition: Any, yes: Any, no: Any) -> Any:
    """``np.where``; a conditional expression for one configuration (a Python bool)."""
    if type(condition) is bool:
        return yes if condition else no
    return np.where(condition, yes, no)


def _tiles(v: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """``(p, q, S, Mt, Kt, Nt)`` of validated GEMM parameters."""
    p, q, m, k, n = (v[name] for name in GEMM_PARAMETERS)
    panels = np.lcm(p, q)
    return p, q, panels, m // q, k // panels, n // p


def _step_compute(spec: HardwareSpec, mt: ArrayLike, kt: ArrayLike, nt: ArrayLike) -> np.ndarray:
    """Cycles of one step's local product (``step_overhead`` included)."""
    mt, kt, nt = (np.asarray(x) for x in (mt, kt, nt))
    return spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)


def _memory(spec: HardwareSpec, p: Any, q: Any, panels: Any, mt: Any, kt: Any, nt: Any) -> Any:
    """Bytes per core: own A and B panels, C, and the receive buffers: two per operand
    (one when a core receives only one panel of it, as on a 2-wide axis)."""
    per_col, per_row = panels / p, panels / q  # exact: p and q divide S
    own = mt * kt * per_col + kt * nt * per_row
    recv_a = minimum(2.0, panels - per_col)
    recv_b = minimum(2.0, panels - per_row)
    return (own + recv_a * mt * kt + recv_b * kt * nt + mt * nt) * spec.dtype_bytes


def _loaded_mesh(
    kernel: GemmKernel, spec: HardwareSpec, seed: int, trace: bool, params: dict[str, ArrayLike],
    operands: Any = None,
) -> tuple[Mesh, np.ndarray, np.ndarray, tuple[int, int, int, int, int, int]]:
    """The mesh of a SUMMA run, every core holding its C tile (zeros) and the panels of A
    and B it owns; the operands A and B (given, or random); and ``(p, q, panels, Mt, Kt, Nt)``."""
    p, q, panels, mt, kt, nt = (int(x) for x in _tiles(kernel.configuration(spec, params)))
    a, b = operands_or_random(kernel.name, operands, seed, (mt * q, kt * panels), (kt * panels, nt * p))
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
             params: dict[str, ArrayLike], operands: Any = None) -> KernelRun:
    """Run SUMMA with multicast broadcasts on the executor."""
    mesh, a, b, (p, q, panels, mt, kt, nt) = _loaded_mesh(kernel, spec, seed, trace, params, operands)
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
                   params: dict[str, ArrayLike], operands: Any = None) -> KernelRun:
    """Run SUMMA with relayed broadcasts on the executor, each core's PE tasks in the fixed
    order of the module docstring."""
    mesh, a, b, (p, q, panels, mt, kt, nt) = _loaded_mesh(kernel, spec, seed, trace, params, operands)
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


def relay_colors(length: ArrayLike) -> Any:
    """Most colors a core of a line of ``length`` configures for the relayed broadcasts:
    per direction, the color it sends on and the one it receives on (2 at the ends)."""
    return _where(as_float(length) >= 3.0, 4.0, 2.0)


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


def _best(*candidates: tuple[Any, Any]) -> tuple[Any, Any]:
    """The largest of ``(cycles, hops)`` candidates, and the most hops among those within
    1e-9 (relative) of it: the derivative of the maximum with respect to ``alpha`` from
    above, as :func:`~plummer.kernels._maxplus.latest` counts it."""
    if type(candidates[0][0]) is float:  # one configuration
        best = max(value for value, _ in candidates)
        floor_ = best - 1e-9 * max(1.0, abs(best))
        return best, max(hops for value, hops in candidates if value >= floor_)
    best = candidates[0][0]
    for value, _ in candidates[1:]:
        best = np.maximum(best, value)
    floor_ = best - 1e-9 * np.maximum(1.0, np.abs(best))
    most = (candidates[0][0] >= floor_) * (candidates[0][1] + 1.0)  # hops + 1 where tied, else 0
    for value, count in candidates[1:]:
        most = np.maximum(most, (value >= floor_) * (count + 1.0))
    return best, most - 1.0


def summa_relay_timing(
    spec: HardwareSpec, p: ArrayLike, q: ArrayLike, mt: ArrayLike, kt: ArrayLike, nt: ArrayLike
) -> tuple[Any, Any, Any]:
    """The recurrence of :meth:`SUMMARelay.cost` in closed form, O(1) per configuration:
    ``(end, mean, hops)``, the latest and the mean core end in cycles (without launch) and the
    relay hops on the latest core's critical path (ties: the most hops). Numbers in, Python
    floats out; arrays in (any broadcastable shapes), arrays out.

    **Paths.** With ``S = lcm(p, q)``, ``P = S / p`` and ``Q = S / q`` (the panels each owner
    column / row holds), ``a = beta + T_A``, ``b = beta + T_B`` (a relay stage), ``w = alpha +
    beta``, ``g = beta + c``: a core's end is the longest path into it through the
    recurrence's maxima. Read each step of a path as one move of its core ``(x, y)``: the A
    chain moves it along its row *away* from the owner column ``o_s`` (``w`` per hop), or,
    from ``x = o_s``, the seed moves it anywhere (``w`` per hop, ``- beta``, and no product:
    ``- c``); then the B chain or seed along the column likewise (the B seed leaves the owner
    row at its product's start, so it skips that step's product *and* the core's A stage).
    A step costs ``c`` (no seed), ``a`` if it ends off the owner column (and used the A
    phase), ``b`` if off the owner row. Staying on one core costs every core's own work
    ``S (c + a + b) - P a - Q b``; a path gains ``w`` per hop and loses ``g`` per seed (only
    ``beta`` at step 0, where no product precedes), ``a`` per step it ends on the owner
    column, ``b`` on the owner row, and ``a`` per B seed taken off the owner column (the A
    stage it skips). As owners only advance, an axis' moves are: start (at 0 and seed at step
    0, or from 1: ``- w``), travel ahead of the owner to a column ``z``, where the owner
    catches it at step ``z P``; then either wait ``P`` steps on the owner column (``- P a``)
    and travel back (``XA(z)``: ``2 z - X`` hops to end at ``X <= z``), or seed back at once
    (``XB(z)``: ``- g``, ``X < z``); on the last column ``XA(p - 1)`` ends at ``X = p - 1``.
    Likewise ``YA``, ``YB`` with ``Q``, ``b``. The two axes are independent but for the seeds:
    at most one per step; step 0 gets the x seed (the y path starts at 1, ``- beta - w``; or
    the y seed with x seeding at step 1, ``+ max(0, alpha - c - a)`` when ``P >= 2``; a 2-wide
    axis' ``XA(0)`` needs no start); a y seed at ``S - Q`` (``YB(q - 1)``) or ``S - 2Q``
    (``YB(q - 2)``) forfeits ``a`` unless it falls in the x path's wait on the owner column,
    possibly delayed ``k < Q`` steps (``- k b``) to do so; on a square mesh ``XB(p - 1)`` and
    ``YB(q - 1)`` both seed at the last step, and ``XA(p - 2)`` cannot travel back if the
    y seed takes it (so ``XA(p - 3)`` instead).

    **Solution.** Every end is ``S (c + a + b) + 2 (p + q - 2) w - w (X + Y) + F``, with ``F``
    the best of the combinations above for the end's class: ``X <= p - 3``, ``X = p - 2``,
    ``X = p - 1`` (which shapes can end there) times the same for ``Y``, and on ``X <=`` the
    column where ``XA`` waits while the y seed of ``S - Q`` (or ``S - 2 Q``) leaves (or one
    column on, delayed); the mean sums the classes' counts. Every term is a path of the
    recurrence, so every figure is a lower bound. Measured against the recurrence on 20000
    random configurations (meshes 2 to 40, half of them non-square with ``S <= 240``; tiles 1
    to 32; half with ``alpha`` 0.1 to 5, ``beta`` 0 to 20 and overheads, half with ``alpha``
    0.01 to 30, ``beta`` 0 or 0 to 30, overheads 0 or not) and 480 on meshes 4 to 120 (``S <=
    400``): the makespan equals it at 1e-9 and the hops exactly on all of them; the mean on all
    but 4 (all with ``beta = 0``), at most 7.8e-5 below (a y seed delayed into the wait of an
    ``XA(z)`` with ``z`` between ``z1 + 1`` and ``p - 2``, and ``YB`` rows delayed into a wait,
    are left out of the mean). The tests assert these figures: makespan at 1e-9, hops exact,
    mean at most 1e-4 below.
    """
    p, q = as_float(p), as_float(q)
    mt, kt, nt = as_float(mt), as_float(kt), as_float(nt)
    if type(p) is float and type(q) is float:
        panels = float(math.lcm(int(p), int(q)))
    else:
        panels = np.lcm(np.asarray(p, dtype=np.int64), np.asarray(q, dtype=np.int64)).astype(float)
    c = spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)
    a = spec.beta + serialization_cycles(spec, mt * kt)
    b = spec.beta + serialization_cycles(spec, kt * nt)
    return _relay_solve(spec, p, q, panels, c, a, b)


def _relay_solve(spec: HardwareSpec, p: Any, q: Any, panels: Any, c: Any, a: Any, b: Any
                 ) -> tuple[Any, Any, Any]:
    """:func:`summa_relay_timing` from ``S = lcm(p, q)``, the product ``c`` and the relay
    stages ``a``, ``b`` (cycles): square meshes from 4 x 4 by :func:`_relay_square`, the
    other meshes from 4 x 4 without the late start by :func:`_relay_tall` or
    :func:`_relay_wide`, the rest by :func:`_relay_any`."""
    if type(p) is float and type(q) is float and type(c) is float:
        if p == q and p >= 4.0:
            return _relay_square(spec, p, q, panels, c, a, b)
        if p >= 4.0 and q >= 4.0 and not (panels >= 2.0 * p and spec.alpha >= c + a):
            return (_relay_tall if q > p else _relay_wide)(spec, p, q, panels, c, a, b)
        return _relay_any(spec, p, q, panels, c, a, b)
    p, q, panels, c, a, b = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (p, q, panels, c, a, b)))
    shape = p.shape
    p, q, panels, c, a, b = (x.reshape(-1) for x in (p, q, panels, c, a, b))
    wide = (p >= 4.0) & (q >= 4.0)
    square = wide & (p == q)
    generic = wide & ~square & ~((panels >= 2.0 * p) & (spec.alpha >= c + a))
    tall = generic & (q > p)
    outputs = [np.empty(p.size) for _ in range(3)]
    for group, solve in ((square, _relay_square), (tall, _relay_tall), (generic & ~tall, _relay_wide),
                         (~(square | generic), _relay_any)):
        count = int(np.count_nonzero(group))
        if not count:
            continue
        index = slice(None) if count == group.size else np.flatnonzero(group)
        for out, value in zip(outputs, solve(spec, *(x[index] for x in (p, q, panels, c, a, b))),
                              strict=True):
            out[index] = value
    end, mean, hops = (out.reshape(shape) for out in outputs)
    return end, mean, hops


def _relay_any(spec: HardwareSpec, p: Any, q: Any, panels: Any, c: Any, a: Any, b: Any
               ) -> tuple[Any, Any, Any]:
    """:func:`summa_relay_timing` on any mesh, from ``lcm(p, q)``, the product ``c`` and the
    relay stages ``a = beta + T_A``, ``b = beta + T_B`` (cycles).

    A combination is named by its x shape, then its y shape: ``b1`` is ``XB(p - 1)`` (or
    ``YB(q - 1)``), ``b2`` ``XB(p - 2)``, ``a2`` ``XA(p - 2)``, ``a3`` ``XA(p - 3)``, ``l`` the
    last column's ``XA(p - 1)`` (row's ``YA(q - 1)``); ``a2b1`` is ``XA(p - 2)`` with ``YB(q -
    1)``. Its value, the start's included, is relative to ``S (c + a + b) + 2 (p + q - 2) w``
    at ``X = Y = 0``."""
    per_col, per_row = panels / p, panels / q  # P, Q
    alpha, beta = spec.alpha, spec.beta
    w, g = alpha + beta, beta + c
    never = -math.inf
    square, two_x, two_y, wide_y = p == q, p == 2.0, q == 2.0, q >= 3.0
    pa, qb = per_col * a, per_row * b

    # starts: x seeds at step 0, y starts at 1; or y seeds at 0 and x at step 1 (P >= 2)
    late_gain = alpha - c - a
    late = (per_col >= 2.0) & (late_gain >= 0.0)
    start = _where(late, late_gain, 0.0) - beta - w
    start_hops = _where(late, 0.0, 1.0)  # hops the start misses: the y path's first
    # XA(0) on a 2-wide x axis (YA(0) on a 2-wide y axis) needs no start of its own
    start_x = _where(two_x, -beta, start)
    hops_x = _where(two_x, 0.0, start_hops)
    start_y = _where(two_y, -beta, start)
    hops_y = _where(two_y, 0.0, start_hops)
    start_xy = _where(two_x, _where(two_y, 0.0, -beta), start_y)
    hops_xy = _where(two_x | two_y, 0.0, start_hops)

    def forfeit(seed: Any, low: Any, high: Any) -> Any:
        """``a`` unless a y seed at step ``seed`` (or delayed, ``b`` a step, by less than
        ``Q``) falls in the x path's wait ``[low, high)``."""
        delay = low - seed
        early = _where(delay <= per_row - 1.0, minimum(a, delay * b), a)
        return _where(seed >= high, a, _where(seed >= low, 0.0, early))

    seed_1, seed_2 = panels - per_row, panels - 2.0 * per_row  # YB(q - 1), YB(q - 2)
    wait_lo, wait_hi = panels - 2.0 * per_col, panels - per_col  # XA(p - 2); XA(p - 1): [hi, S)

    # combinations (x shape, y shape) for X, Y <= their axis' - 2, less 2 (p + q - 2) w
    b1b1 = _where(square, never, -2.0 * g - a + start)
    b1a2 = -g - 2.0 * w - qb + start_y
    b1b2 = -2.0 * (g + w) - a + start  # also XB(p - 2) with YB(q - 1)
    a2b1 = -2.0 * w - pa - g - forfeit(seed_1, wait_lo, wait_hi) + start_x
    a2b1_far = _where(square, never, a2b1)  # square: XA(p - 2) cannot travel back (X <= p - 3)
    a2a2 = -4.0 * w - pa - qb + start_xy
    a2b2 = -4.0 * w - pa - g - forfeit(seed_2, wait_lo, wait_hi) + start_x
    a3b1 = _where(square & (p >= 3.0), -4.0 * w - pa - g - a + _where(p == 3.0, -beta, start), never)
    # X = p - 1 (XA(p - 1), waiting the last P steps), or Y = q - 1
    lb1 = -pa - g - forfeit(seed_1, wait_hi, panels) + start
    la2 = -pa - 2.0 * w - qb + start_y
    lb2 = -pa - 2.0 * w - g - forfeit(seed_2, wait_hi, panels) + start
    ll = -pa - qb + start
    b1l = -g - qb + start
    a2l = -2.0 * w - pa - qb + start_x
    # XA(z) waiting where the y seed of S - Q leaves (z1), one column on with it delayed
    # (z1 + 1), or where that of S - 2Q leaves (z2): for X <= z only
    z1 = floor(seed_1 / per_col)
    z2 = floor(seed_2 / per_col)
    delay = (z1 + 1.0) * per_col - seed_1
    ok_1 = z1 <= p - 3.0
    ok_1b = (z1 <= p - 4.0) & (delay <= per_row - 1.0)
    ok_2 = (z2 <= p - 3.0) & wide_y
    al_1 = _where(ok_1, -2.0 * (p - 1.0 - z1) * w - pa - g + start, never)
    al_1b = _where(ok_1b, -2.0 * (p - 2.0 - z1) * w - pa - g - minimum(a, delay * b) + start, never)
    al_2 = _where(ok_2, -2.0 * (p - z2) * w - pa - g + start, never)

    # YB(zy) on the last row caught during XA(p - 2)'s wait: for Y < zy <= q - 3 only
    zy = floor((wait_hi - 1.0) / per_row)
    ok_y = (zy * per_row >= wait_lo) & (zy <= q - 3.0)
    al_y = _where(ok_y, -2.0 * w - pa - 2.0 * (q - 1.0 - zy) * w - g + start_x, never)

    # each class' best combination
    f_ii = maximum(maximum(maximum(b1b1, b1a2), maximum(b1b2, a2b1_far)),
                   maximum(maximum(a2a2, a2b2), a3b1))
    f_in = maximum(maximum(maximum(b1b1, b1a2), maximum(b1b2, a2b1_far)), maximum(a2a2, a3b1))
    f_ni = maximum(maximum(maximum(b1b1, b1a2), maximum(b1b2, a2b1)), maximum(a2a2, a2b2))
    f_nn = maximum(maximum(b1b1, b1a2), maximum(a2b1, a2a2))
    f_xl = maximum(b1l, a2l)
    f_li = maximum(maximum(lb1, la2), lb2)
    f_ln = maximum(lb1, la2)
    inner_x, inner_y = p - 2.0, q - 2.0  # cells of the classes X <= p - 3, Y <= q - 3
    total = (inner_x * (inner_y * f_ii + f_in + f_xl) + inner_y * (f_ni + f_li)
             + f_nn + f_xl + f_ln + ll)

    # the prefixes X <= z: cells [0, n_2) take the best of the three, [n_2, n_1) of al_1
    # and al_1b, [n_1, n_1b) al_1b alone (n_2 <= n_1 < n_1b where valid)
    n_1b = _where(ok_1b, z1 + 2.0, 0.0)
    n_1 = _where(ok_1, z1 + 1.0, 0.0)
    n_2 = _where(ok_2, z2 + 1.0, 0.0)
    for weight, f, third in ((inner_y, f_ii, al_2), (1.0, f_in, never)):
        top_1b = maximum(f, al_1b)
        top_1 = maximum(top_1b, al_1)
        top_2 = maximum(top_1, third)
        n_third = n_2 if third is al_2 else 0.0
        total = total + weight * (maximum(n_1b - n_1, 0.0) * (top_1b - f)
                                  + maximum(n_1 - n_third, 0.0) * (top_1 - f)
                                  + n_third * (top_2 - f))

    # the x classes' columns past the prefixes, rows Y < zy (the prefixes' cells keep theirs)
    columns = maximum(p - 2.0 - maximum(maximum(n_1b, n_1), n_2), 0.0)
    rows = _where(ok_y, zy, 0.0)
    total = total + rows * (columns * maximum(al_y - f_ii, 0.0) + maximum(al_y - f_ni, 0.0))

    # the latest core: each combination at the nearest end its classes allow
    # (X, Y = 0 for the first two classes of either axis: p - 2 = 0 on a 2-wide axis)
    wide = 2.0 * (p + q - 2.0)
    far_y = (q - 1.0) * w
    latest, hops = _best(
        (b1b1, wide - start_hops),
        (b1a2, wide - 2.0 - hops_y),
        (_where(wide_y | (p >= 3.0), b1b2, never), wide - 2.0 - start_hops),
        (a2b1 - _where(square, (p - 2.0) * w, 0.0),
         wide - 2.0 - hops_x - _where(square, p - 2.0, 0.0)),
        (a2a2, wide - 4.0 - hops_xy),
        (_where(wide_y, a2b2, never), wide - 4.0 - hops_x),
        (a3b1, wide - 4.0 - _where(p == 3.0, 0.0, start_hops)),
        (b1l - far_y, wide - start_hops - (q - 1.0)),
        (a2l - far_y, wide - 2.0 - hops_x - (q - 1.0)),
        (lb1 - (p - 1.0) * w, wide - start_hops - (p - 1.0)),
        (la2 - (p - 1.0) * w, wide - 2.0 - hops_y - (p - 1.0)),
        (_where(wide_y, lb2, never) - (p - 1.0) * w, wide - 2.0 - start_hops - (p - 1.0)),
        (ll - (p + q - 2.0) * w, wide - start_hops - (p + q - 2.0)),
        (al_1, wide - 2.0 * (p - 1.0 - z1) - start_hops),
        (al_1b, wide - 2.0 * (p - 2.0 - z1) - start_hops),
        (al_2, wide - 2.0 * (p - z2) - start_hops),
        (al_y, wide - 2.0 - hops_x - 2.0 * (q - 1.0 - zy)),
    )
    work = panels * (c + a + b) + wide * w
    end = work + latest
    mean = work + total / (p * q) - 0.5 * (p + q - 2.0) * w
    return end, mean, hops


def _relay_square(spec: HardwareSpec, p: Any, q: Any, panels: Any, c: Any, a: Any, b: Any
                  ) -> tuple[Any, Any, Any]:
    """:func:`_relay_any` on a square mesh from 4 x 4 (``P = Q = 1``, ``S = p``): the
    combinations that can win there, at no cost for the ones that cannot. ``XB(p - 1)`` and
    ``YB(p - 1)`` would both seed at the last step; the y seed of ``S - 1`` forfeits ``a``
    against ``XA(p - 2)``'s wait (step ``S - 2``), that of ``S - 2`` does not, and ``XA(p - 1)``
    waits the last step, where ``YB(p - 1)`` seeds but ``YB(p - 2)`` (2 steps early) forfeits;
    no ``XA(z)`` waits elsewhere for a y seed. The ends ``X = p - 1`` with ``YA``, ``YB(p - 2)``
    and ``Y = p - 1`` lose to ``X = 0``'s ``a2a2``, ``a2b2``, ``b1a2``, which they trail by
    ``(p - 3) w`` at least."""
    largest = max if type(c) is float else np.maximum
    alpha, beta = spec.alpha, spec.beta
    w, g = alpha + beta, beta + c
    start = -beta - w
    b1a2 = -g - 2.0 * w - b
    b1b2 = -2.0 * (g + w) - a
    a2b1 = -2.0 * (w + a) - g  # the y seed of S - 1 forfeits a
    a2a2 = -4.0 * w - a - b
    a2b2 = -4.0 * w - a - g
    a3b1 = a2b2 - a
    lb1 = -a - g
    la2 = -a - 2.0 * w - b
    lb2 = -2.0 * (a + w) - g
    f_ii = largest(largest(b1a2, b1b2), largest(a2a2, a2b2))
    f_in = largest(largest(b1a2, b1b2), largest(a2a2, a3b1))
    f_ni = largest(f_ii, a2b1)
    f_nn = largest(largest(b1a2, a2b1), a2a2)
    f_xl = largest(-g - b, -2.0 * w - a - b)
    f_ln = largest(lb1, la2)
    f_li = largest(f_ln, lb2)
    inner = p - 2.0
    total = (inner * (inner * f_ii + f_in + f_xl) + inner * (f_ni + f_li)
             + f_nn + f_xl + f_ln - a - b)
    wide = 4.0 * (p - 1.0)
    latest, hops = _best(  # combinations of as many hops merged first
        (largest(b1a2, b1b2), wide - 3.0), (a2b1 - inner * w, wide - 1.0 - p),
        (largest(a2a2, a2b2), wide - 5.0), (lb1 - (p - 1.0) * w, wide - p),
    )
    work = p * (c + a + b) + wide * w + start
    return work + latest, work + total / (p * p) - (p - 1.0) * w, hops


def _relay_tall(spec: HardwareSpec, p: Any, q: Any, panels: Any, c: Any, a: Any, b: Any
                ) -> tuple[Any, Any, Any]:
    """:func:`_relay_any` on a mesh from 4 x 4 with more rows than columns (``q > p``, so
    ``Q < P``) and no late start (``alpha < c + a`` or ``P = 1``): no axis needs a start of
    its own, and ``XB(p - 1)``, ``YB(q - 1)`` seed at different steps, so ``YB(q - 1)`` beats
    ``YB(q - 2)`` with ``XB(p - 1)`` by ``2 w``. The y seed of ``S - Q`` lies in ``XA(p - 1)``'s
    wait ``[S - P, S)`` and after ``XA(p - 2)``'s ``[S - 2 P, S - P)``; that of ``S - 2 Q`` in
    the first iff ``2 Q <= P``, else ``2 Q - P < Q`` steps before it, and then in the second.
    No ``XA(z)`` waits for them elsewhere; ``YB(zy)`` may be caught in ``XA(p - 2)``'s wait.
    The ends ``X = p - 1`` with ``YA`` and ``Y = q - 1`` trail ``X = 0``'s ``a2a2`` and
    ``b1a2`` by ``(p - 3) w``, ``(q - 3) w`` at least."""
    largest, least = (max, min) if type(c) is float else (np.maximum, np.minimum)
    w, g = spec.alpha + spec.beta, spec.beta + c
    per_col, per_row = panels / p, panels / q
    pa, qb = per_col * a, per_row * b
    half = 2.0 * per_row <= per_col
    b1b1 = -2.0 * g - a
    b1a2 = -g - 2.0 * w - qb
    a2b1 = -2.0 * w - pa - g - a
    a2a2 = -4.0 * w - pa - qb
    a2b2 = -4.0 * w - pa - g - _where(half, a, 0.0)
    lb1 = -pa - g
    la2 = -pa - 2.0 * w - qb
    lb2 = -pa - 2.0 * w - g - _where(half, 0.0, least(a, (2.0 * per_row - per_col) * b))
    f_in = largest(largest(b1b1, b1a2), largest(a2b1, a2a2))
    f_ii = largest(f_in, a2b2)
    f_xl = largest(-g - qb, -2.0 * w - pa - qb)
    f_ln = largest(lb1, la2)
    f_li = largest(f_ln, lb2)
    # YB(zy), the last row caught during XA(p - 2)'s wait, for Y < zy <= q - 3
    zy = floor((panels - per_col - 1.0) / per_row)
    ok_y = (zy * per_row >= panels - 2.0 * per_col) & (zy <= q - 3.0)
    al_y = _where(ok_y, -2.0 * w - pa - g - 2.0 * (q - 1.0 - zy) * w, -math.inf)
    rows = _where(ok_y, zy, 0.0)
    inner_x, inner_y = p - 2.0, q - 2.0
    total = (inner_x * (inner_y * f_ii + f_in + f_xl) + inner_y * (f_ii + f_li)
             + f_in + f_xl + f_ln - pa - qb + rows * (p - 1.0) * largest(al_y - f_ii, 0.0))
    wide = 2.0 * (p + q - 2.0)
    latest, hops = _best(  # combinations of as many hops merged first
        (b1b1, wide - 1.0), (largest(b1a2, a2b1), wide - 3.0), (largest(a2a2, a2b2), wide - 5.0),
        (lb1 - (p - 1.0) * w, wide - p), (lb2 - (p - 1.0) * w, wide - p - 2.0),
        (al_y, wide - 3.0 - 2.0 * (q - 1.0 - zy)),
    )
    work = panels * (c + a + b) + (wide - 1.0) * w - spec.beta
    mean = work + total / (p * q) - 0.5 * (p + q - 2.0) * w
    return work + latest, mean, hops


def _relay_wide(spec: HardwareSpec, p: Any, q: Any, panels: Any, c: Any, a: Any, b: Any
                ) -> tuple[Any, Any, Any]:
    """:func:`_relay_any` on a mesh from 4 x 4 with more columns than rows (``q < p``, so
    ``Q > P``) and no late start: as :func:`_relay_tall`, but the y seed of ``S - Q`` lies
    ``Q - P < Q`` steps before ``XA(p - 1)``'s wait, in ``XA(p - 2)``'s iff ``Q <= 2 P`` (else
    ``Q - 2 P`` steps before it), and that of ``S - 2 Q`` before ``XA(p - 1)``'s by more than
    ``Q`` steps, ``2 Q - 2 P`` before ``XA(p - 2)``'s (in reach iff ``Q < 2 P``). ``XA(z1)``,
    ``XA(z1 + 1)`` and ``XA(z2)`` may wait for them (``z2 <= p - 3`` always); no ``YB(zy)`` is
    caught in ``XA(p - 2)``'s wait, and ``X = p - 1`` with ``YB(q - 2)`` trails ``a2b2``."""
    largest, least = (max, min) if type(c) is float else (np.maximum, np.minimum)
    w, g = spec.alpha + spec.beta, spec.beta + c
    per_col, per_row = panels / p, panels / q
    pa, qb = per_col * a, per_row * b
    b1b1 = -2.0 * g - a
    b1a2 = -g - 2.0 * w - qb
    a2b1 = -2.0 * w - pa - g - _where(per_row <= 2.0 * per_col, 0.0,
                                     least(a, (per_row - 2.0 * per_col) * b))
    a2a2 = -4.0 * w - pa - qb
    a2b2 = -4.0 * w - pa - g - _where(per_row < 2.0 * per_col,
                                     least(a, (2.0 * (per_row - per_col)) * b), a)
    lb1 = -pa - g - least(a, (per_row - per_col) * b)
    la2 = -pa - 2.0 * w - qb
    lb2 = -pa - 2.0 * w - g - a
    f_in = largest(largest(b1b1, b1a2), largest(a2b1, a2a2))
    f_ii = largest(f_in, a2b2)
    f_xl = largest(-g - qb, -2.0 * w - pa - qb)
    f_ln = largest(lb1, la2)
    f_li = largest(f_ln, lb2)
    inner_x, inner_y = p - 2.0, q - 2.0
    total = (inner_x * (inner_y * f_ii + f_in + f_xl) + inner_y * (f_ii + f_li)
             + f_in + f_xl + f_ln - pa - qb)
    # XA(z) waiting for the y seed of S - Q (z1), one column on with it delayed (z1 + 1), or
    # for that of S - 2 Q (z2): for X <= z; cells [0, n_2) take the best of the three,
    # [n_2, n_1) of the first two, [n_1, n_1b) the second (n_2 <= n_1 < n_1b where valid)
    seed_1 = panels - per_row
    z1 = floor(seed_1 / per_col)
    z2 = floor((seed_1 - per_row) / per_col)
    delay = (z1 + 1.0) * per_col - seed_1
    ok_1 = z1 <= p - 3.0
    ok_1b = (z1 <= p - 4.0) & (delay <= per_row - 1.0)
    base = -pa - g
    al_1 = _where(ok_1, base - 2.0 * (p - 1.0 - z1) * w, -math.inf)
    al_1b = _where(ok_1b, base - 2.0 * (p - 2.0 - z1) * w - least(a, delay * b), -math.inf)
    al_2 = base - 2.0 * (p - z2) * w
    n_1b = _where(ok_1b, z1 + 2.0, 0.0)
    n_1 = _where(ok_1, z1 + 1.0, 0.0)
    n_2 = z2 + 1.0
    top_1b, top_1b_n = largest(f_ii, al_1b), largest(f_in, al_1b)
    top_1, top_1_n = largest(top_1b, al_1), largest(top_1b_n, al_1)
    only_1b = largest(n_1b - n_1, 0.0)
    total = (total + inner_y * (only_1b * (top_1b - f_ii) + largest(n_1 - n_2, 0.0) * (top_1 - f_ii)
                                + n_2 * (largest(top_1, al_2) - f_ii))
             + only_1b * (top_1b_n - f_in) + n_1 * (top_1_n - f_in))
    wide = 2.0 * (p + q - 2.0)
    latest, hops = _best(  # combinations of as many hops merged first
        (b1b1, wide - 1.0), (largest(b1a2, a2b1), wide - 3.0), (largest(a2a2, a2b2), wide - 5.0),
        (lb1 - (p - 1.0) * w, wide - p),
        (al_1, wide - 2.0 * (p - 1.0 - z1) - 1.0), (al_1b, wide - 2.0 * (p - 2.0 - z1) - 1.0),
        (al_2, wide - 2.0 * (p - z2) - 1.0),
    )
    work = panels * (c + a + b) + (wide - 1.0) * w - spec.beta
    mean = work + total / (p * q) - 0.5 * (p + q - 2.0) * w
    return work + latest, mean, hops


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
        far ends finish last): the executor's mean is up to 1.67% below it on the sweep's
        meshes up to 10 x 10, on the WSE-3 preset and a fitted spec (the tests assert that figure).
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

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: ArrayLike) -> KernelRun:
        return _execute(self, spec, seed, trace, params, operands)


class SUMMARelay(GemmKernel):
    """SUMMA whose broadcasts are relayed core by core through the PEs (O(1) colors)."""

    name = "summa-relay"
    square = False

    @blockwise
    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form: :func:`summa_relay_timing`, O(1) per configuration on every mesh.

        It solves the recurrence below, derived from the relayed program (module docstring)
        and rules 4-7 (:func:`_relay_finish` evaluates it step by step, O(S p q) per mesh
        shape: the tests' reference). With ``c`` the step's product, ``w = alpha + beta`` and a
        relay stage of ``s_A = beta + T_A`` (``s_B = beta + T_B``): let ``t`` and ``e = t + c``
        be the start and end of a core's product ``s - 1`` (both 0 before the first step).
        Panel ``s`` of A leaves its owner column ``o`` at the owner's ``t`` (its send gate); at
        core ``x`` of a row its stage starts at ``a(x) = max(e(x), a(x -+ 1) + w)`` (the head
        waits for the PE, which finishes product ``s - 1`` first), and ``a(o -+ 1) = t(o) +
        alpha`` (the seed): a prefix maximum, ``a(x) = max_j (g(j) + |x - j| w)`` with ``g =
        e`` and ``g(o) = t(o) - beta``. The B stages follow the A stage on each core: along
        each column ``b(y) = max(a(y) + s_A, b(y -+ 1) + w)`` with the same seed at the owner
        row (and ``e`` in place of the A stage on the owner column). Product ``s`` then starts
        at ``b + s_B`` (on the owner row: at the end of its A stage, or ``e``). Exact (rules
        4-7, no link is shared on these one-hop legs). ``cycles = launch + max``,
        ``mean_core_cycles = launch + mean`` over the cores' last product ends; ``hops`` and
        ``routing_stages`` count the relay hops (one PE stage each) on the latest core's
        critical path.
        """
        v = self.params(spec, params)
        p, q, m, k, n = as_float(v["p"]), as_float(v["q"]), as_float(v["m"]), as_float(v["k"]), \
            as_float(v["n"])
        if type(p) is float and type(q) is float:
            panels = float(math.lcm(int(p), int(q)))
        else:
            panels = np.lcm(v["p"], v["q"]).astype(float)
        mt, kt, nt = m / q, k / panels, n / p
        c = spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)
        a = spec.beta + serialization_cycles(spec, mt * kt)
        b = spec.beta + serialization_cycles(spec, kt * nt)
        end, mean, hops = _relay_solve(spec, p, q, panels, c, a, b)
        return Cost.make(
            spec,
            cycles=spec.launch_overhead_cycles + end,
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

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: ArrayLike) -> KernelRun:
        return _execute_relay(self, spec, seed, trace, params, operands)
