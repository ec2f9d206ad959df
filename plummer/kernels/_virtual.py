"""The P x Q virtual grid shared by MeshGEMM and Cannon, and the program both run on it.

Scheme (the WaferLLM paper's, ``notes/pxq.md``): a logical S x S grid, ``S = lcm(p, q)``,
on a mesh of ``p`` columns and ``q`` rows. Logical core (I, J) (ring positions: I along
the column ring, J along the row ring) hosts the block of ``bq = S / q`` virtual rows
``I' = I bq + ii`` and ``bp = S / p`` virtual columns ``J' = J bp + jj``, consecutive in
ring order, so every virtual ring edge is a rename inside a core or one physical ring edge
(between the last virtual position of one core and the first of the next). The virtual
kernel is Cannon's: S steps with virtual tiles ``(M/S) x (K/S)`` of A, ``(K/S) x (N/S)``
of B and ``(M/S) x (N/S)`` of C, so ``m, k, n`` must be multiples of S.

Invariant: at compute step ``t`` virtual core (I', J') holds ``A'[I', kappa]`` and
``B'[kappa, J']`` with ``kappa = (I' + J' + c0 - t) mod S``; A moves forward along the
virtual rows (J' -> J' + 1), B forward along the virtual columns (I' -> I' + 1). The
host places C = 0, A in its natural layout (``A'[I', J']`` at (I', J')) and B pre-skewed
(``B'[(I' + J' + c0) mod S, J']``; not timed). Virtual row I' must therefore turn its A
tiles by ``r = (I' + c0) mod S`` positions backward, or ``S - r`` forward, on the device
(timed): the alignment (MeshGEMM) or skew (Cannon).

Per core the program keeps one buffer per virtual tile: a window of ``bp`` A tiles per
virtual row (``bp + 1`` buffers with the spare that receives) and ``bq`` B tiles per
virtual column. A step of the virtual kernel is then, per physical core:

- one PE call for its ``bp bq`` virtual products (``fmas = (M/q)(K/S)(N/p)``, ``loops =
  bp bq (K/S)``, ``vector_ops = bp bq (K/S)(N/S)`` of length ``M/S``);
- one message of its boundary virtual column of A (``bq`` tiles, ``(M/q)(K/S)``
  elements; :meth:`~plummer.mesh.Mesh.send_tiles`) to the next core of the row ring, and
  one of its boundary virtual row of B (``bp`` tiles, ``(K/S)(N/p)`` elements) along the
  column ring; the other virtual moves are renames of buffers. A step's messages leave
  once the step's new tiles have arrived (the square kernel sends the tile it just
  received; where ``bp > 1`` or ``bq > 1`` the boundary is an older tile and the message
  waits for the new one, ``after=``), so the timing has the square kernel's structure: S
  steps on rings of ``p`` and ``q`` cores.

Alignment (A only), one direction per physical row: every core of row I runs ``n_I``
store-and-forward steps (:class:`Alignment`); each step sends the whole boundary column,
the virtual rows that have turned far enough resend their boundary tile (the receiver
keeps it in the spare and discards it), and a core waits for its neighbour's message
before its next step (a 0-cycle program point on its PE where the next message would
not read the tile just received). So a core's alignment ends after ``n_I`` steps
whatever its virtual rows need. For ``p = q`` this is exactly the square kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec
from plummer.kernels._base import KernelRun, int_params, require
from plummer.kernels._gemm import GEMM_PARAMETERS, gemm_params, operands_or_random
from plummer.kernels._ring import Ring
from plummer.mesh import Mesh


@dataclass(frozen=True)
class Alignment:
    """How each physical row turns its A tiles: per row I (logical, along the column
    ring) its direction (``forward``), its number of steps and, per virtual row ``ii`` of
    the row, how many of those steps move its tiles (the rest resend)."""

    forward: tuple[bool, ...]
    steps: tuple[int, ...]
    moves: tuple[tuple[int, ...], ...]


@cache
def meshgemm_alignment(p: int, q: int) -> Alignment:
    """MeshGEMM (``c0 = 0``): virtual row I' turns ``I'`` backward or ``S - I'`` forward;
    row I goes the way its farthest virtual row needs fewer steps (backward on a tie), and
    every row runs the largest of these counts, ``N`` (:func:`meshgemm_steps`)."""
    s = math.lcm(p, q)
    bq = s // q
    forward, moves = [], []
    for row in range(q):
        back = [row * bq + ii for ii in range(bq)]
        ahead = [(s - r) % s for r in back]
        go = max(back) > max(ahead)
        forward.append(go)
        moves.append(tuple(ahead if go else back))
    steps = max(max(m) for m in moves)
    return Alignment(tuple(forward), (steps,) * q, tuple(moves))


@cache
def cannon_alignment(p: int, q: int) -> Alignment:
    """Cannon (``c0 = 1``): virtual row I' turns ``S - 1 - I'`` forward (the skew runs the
    way the tiles then shift); row I runs its farthest virtual row's count and stops."""
    s = math.lcm(p, q)
    bq = s // q
    moves = tuple(tuple(s - 1 - (row * bq + ii) for ii in range(bq)) for row in range(q))
    return Alignment((True,) * q, tuple(max(m) for m in moves), moves)


def meshgemm_steps(p: ArrayLike, q: ArrayLike) -> Any:
    """MeshGEMM's alignment steps ``N`` (vectorised, O(1)): ``S/2`` for even ``q``, else
    ``bq (q + 1)/2 - 1``. Row I needs ``min(bq (I + 1) - 1, S - bq I)`` steps (its farthest
    virtual row backward, its nearest forward; row 0 goes backward, ``bq - 1``): the first
    grows with I, the second falls, and they cross between ``I = (q - 1)/2`` and the next
    row, which gives the two cases."""
    s = np.lcm(p, q)
    return np.where(q % 2 == 0, s // 2, s // q * (q + 1) // 2 - 1)


def virtual_sizes(kernel: str, v: dict[str, Any]) -> dict[str, Any]:
    """The virtual grid of checked GEMM parameters ``v`` (ints or int arrays): ``s``,
    ``bp``, ``bq`` and the virtual tile sides ``ms = m/S``, ``ks = k/S``, ``ns = n/S``
    (elements; Python ints for one configuration); raises a SpecError unless ``m``, ``k``
    and ``n`` are multiples of S."""
    p, q, m, k, n = (v[name] for name in ("p", "q", "m", "k", "n"))
    allowed = "must be a multiple of S = lcm(p, q), the side of the virtual grid"
    if all(isinstance(x, (int, np.integer)) for x in (p, q, m, k, n)):
        p, q, m, k, n = int(p), int(q), int(m), int(k), int(n)
        s = math.lcm(p, q)
        for name, value in (("m", m), ("k", k), ("n", n)):
            require(kernel, value % s == 0, name, value, allowed)
    else:
        s = np.lcm(p, q)
        for name, value in (("m", m), ("k", k), ("n", n)):
            require(kernel, value % s == 0, name, value, allowed)
    return {"s": s, "bp": s // p, "bq": s // q, "ms": m // s, "ks": k // s, "ns": n // s}


def block_product(bp: int, bq: int, ms: int, ns: int) -> Callable[..., np.ndarray]:
    """The PE call of one step: ``C += A'[ii, jj] . B'[jj, ii]`` for every virtual tile of
    the core. Its arguments are the A tiles (virtual row ``ii``, then window position
    ``jj``), the B tiles (virtual column ``jj``, then position ``ii``) and C."""

    def product(*tiles: np.ndarray) -> np.ndarray:
        *ab, c = tiles
        out = c.copy()
        for ii in range(bq):
            for jj in range(bp):
                out[ii * ms:(ii + 1) * ms, jj * ns:(jj + 1) * ns] += (
                    ab[ii * bp + jj] @ ab[bp * bq + jj * bq + ii]
                )
        return out

    return product


@dataclass(frozen=True)
class RingGemm:
    """A ring GEMM program: the row ring (A), the column ring (B), the alignment, the
    offset ``c0`` of the invariant and the color bases (A forward, A backward, B)."""

    row_ring: Callable[[int], Ring]
    col_ring: Callable[[int], Ring]
    alignment: Callable[[int, int], Alignment]
    c0: int
    colors: tuple[int, int, int]

    def execute(self, spec: HardwareSpec, v: dict[str, int], seed: int, trace: bool,
                operands: Any = None) -> KernelRun:
        """Run the program on real data (module docstring): ``operands`` ``(A, B)`` or random
        ones; ``v`` holds ``p, q, m, k, n``."""
        p, q, m, k, n = (v[name] for name in ("p", "q", "m", "k", "n"))
        s = math.lcm(p, q)
        bp, bq = s // p, s // q
        ms, ks, ns = m // s, k // s, n // s
        rows, cols = self.row_ring(p), self.col_ring(q)
        plan = self.alignment(p, q)
        a_fwd, a_bwd, b_fwd = self.colors
        a, b = operands_or_random("gemm", operands, seed, (m, k), (k, n))
        mesh = Mesh(spec, p, q, trace=trace)
        mo = spec.message_overhead_cycles
        core = [[(rows.positions[j], cols.positions[i]) for j in range(p)] for i in range(q)]

        def a_tile(ii: int, slot: int) -> str:
            return f"A{ii}.{slot}"

        def b_tile(jj: int, slot: int) -> str:
            return f"B{jj}.{slot}"

        for i in range(q):
            for j in range(p):
                for ii in range(bq):
                    row = i * bq + ii
                    for jj in range(bp):
                        col = j * bp + jj
                        mesh.load(core[i][j], a_tile(ii, jj),
                                  a[row * ms:(row + 1) * ms, col * ks:(col + 1) * ks])
                        kappa = (row + col + self.c0) % s
                        mesh.load(core[i][j], b_tile(jj, ii),
                                  b[kappa * ks:(kappa + 1) * ks, col * ns:(col + 1) * ns])
                mesh.load(core[i][j], "C", np.zeros((m // q, n // p), dtype=np.float32))

        # windows: per row i and virtual row ii, the buffer slots of positions 0..bp-1 and
        # the spare; B's windows are the same on every core (B only shifts, uniformly)
        a_win = [[list(range(bp)) for _ in range(bq)] for _ in range(q)]
        a_spare = [[bp] * bq for _ in range(q)]
        b_win = [list(range(bq)) for _ in range(bp)]
        b_spare = [bq] * bp

        def boundary(i: int, forward: bool) -> list[str]:
            """A tiles row i's cores send: each virtual row's last (forward) or first tile."""
            return [a_tile(ii, a_win[i][ii][-1 if forward else 0]) for ii in range(bq)]

        # alignment: every core of row i runs plan.steps[i] store-and-forward steps
        for step in range(max(plan.steps)):
            for i in range(q):
                if step >= plan.steps[i]:
                    continue
                forward = plan.forward[i]
                sent, spares = boundary(i, forward), [a_tile(ii, a_spare[i][ii]) for ii in range(bq)]
                for j in range(p):
                    mesh.send_tiles(
                        core[i][j], sent, rows.path(j, forward, "E", "W"),
                        rows.color(j, forward, a_fwd if forward else a_bwd), spares,
                        overhead=mo, receive_overhead=mo,
                    )
                moved = [step < plan.moves[i][ii] for ii in range(bq)]
                for ii in range(bq):
                    if moved[ii]:
                        win, old = a_win[i][ii], a_spare[i][ii]
                        a_spare[i][ii] = win[-1] if forward else win[0]
                        a_win[i][ii] = [old] + win[:-1] if forward else win[1:] + [old]
                # The core's next message (of the alignment, or the first of the products)
                # and its first product leave after this message arrived. They read a tile
                # just received if a virtual row moved and the new tile is its boundary:
                # always for bp = 1, and after the last backward step (the new tile is last
                # in the window, the products' boundary). Elsewhere a 0-cycle program point
                # on the PE reads the tile received and marks the boundary.
                last = step == plan.steps[i] - 1
                if not any(moved) or (bp > 1 and not (last and not forward)):
                    marked = boundary(i, True if last else forward)[0]
                    for j in range(p):
                        mesh.work(core[i][j], [spares[0]], marked, 0.0)

        # s compute-and-shift steps; from step 1 on, a step's messages leave once its new
        # tiles have arrived (the tiles sent are older where bp > 1 or bq > 1)
        product = block_product(bp, bq, ms, ns)
        fmas, loops, ops = (m // q) * ks * (n // p), bp * bq * ks, bp * bq * ks * ns
        a_paths = [(rows.path(j, True, "E", "W"), rows.color(j, True, a_fwd)) for j in range(p)]
        b_paths = [(cols.path(i, True, "S", "N"), cols.color(i, True, b_fwd)) for i in range(q)]
        for step in range(s):
            b_in = [b_tile(jj, b_win[jj][ii]) for jj in range(bp) for ii in range(bq)]
            for i in range(q):
                a_in = [a_tile(ii, a_win[i][ii][jj]) for ii in range(bq) for jj in range(bp)]
                mesh.compute_all(core[i], a_in + b_in + ["C"], "C", product, fmas=fmas,
                                 loops=loops, vector_ops=ops, overhead=spec.step_overhead_cycles)
            if step == s - 1:
                break
            b_sent = [b_tile(jj, b_win[jj][-1]) for jj in range(bp)]
            b_dst = [b_tile(jj, b_spare[jj]) for jj in range(bp)]
            b_after = [b_tile(0, b_win[0][0])] if step and bq > 1 else []
            if bp == bq == 1:  # one tile per message, the tile just received
                sends = []
                for i in range(q):
                    a_sent, a_dst = boundary(i, True)[0], a_tile(0, a_spare[i][0])
                    for j in range(p):
                        sends.append((core[i][j], a_sent, *a_paths[j], a_dst))
                        sends.append((core[i][j], b_sent[0], *b_paths[i], b_dst[0]))
                mesh.send_all(sends)
            else:
                for i in range(q):
                    a_sent = boundary(i, True)
                    a_dst = [a_tile(ii, a_spare[i][ii]) for ii in range(bq)]
                    a_after = [a_tile(0, a_win[i][0][0])] if step and bp > 1 else []
                    for j in range(p):
                        mesh.send_tiles(core[i][j], a_sent, *a_paths[j], a_dst, after=a_after)
                        mesh.send_tiles(core[i][j], b_sent, *b_paths[i], b_dst, after=b_after)
            for i in range(q):
                for ii in range(bq):
                    win, old = a_win[i][ii], a_spare[i][ii]
                    a_spare[i][ii], a_win[i][ii] = win[-1], [old] + win[:-1]
            for jj in range(bp):
                win, old = b_win[jj], b_spare[jj]
                b_spare[jj], b_win[jj] = win[-1], [old] + win[:-1]

        result = mesh.run()
        output = np.block([[result.tile(core[i][j], "C") for j in range(p)] for i in range(q)])
        return KernelRun(output=output, reference=a @ b, execution=result)


@cache
def ring_gemm_routes(program: RingGemm, p: int, q: int) -> int:
    """Most distinct colors any core of ``program`` on a ``p`` x ``q`` mesh configures
    (exact, O(p q)): its row ring's forward colors, the backward ones where its row aligns
    backward, and its column ring's forward colors."""
    rows, cols = program.row_ring(p), program.col_ring(q)
    plan = program.alignment(p, q)
    a_fwd, a_bwd, b_fwd = program.colors
    forward = rows.colors(True, a_fwd)
    backward = rows.colors(False, a_bwd) if not all(plan.forward) else None
    column = cols.colors(True, b_fwd)
    best = 0
    for i in range(q):
        y = cols.positions[i]
        for x in range(p):
            row = forward[x] | (backward[x] if backward is not None and not plan.forward[i] else frozenset())
            best = max(best, len(row) + len(column[y]))
    return best


def pxq_sweep() -> list[dict[str, int]]:
    """The P x Q configurations of the ring GEMMs' sweeps: meshes whose sides divide one
    another, share a factor, or are coprime (S up to 30), virtual tiles ``ms x ks x ns``
    from 1x1x1 to 4x4x4."""
    meshes = [(2, 4), (4, 2), (3, 6), (6, 3), (4, 8), (2, 3), (3, 2), (3, 5), (5, 3), (4, 6),
              (6, 4), (5, 6)]
    tiles = [(1, 1, 1), (2, 1, 3), (1, 3, 1), (4, 4, 4)]
    out = []
    for p, q in meshes:
        s = math.lcm(p, q)
        for ms, ks, ns in tiles:
            if s * s * ms * ks * ns <= 30 * 30 * 4:
                out.append({"p": p, "q": q, "m": s * ms, "k": s * ks, "n": s * ns})
    return out


def on_subset(need: Any, update: Callable[..., tuple[Any, ...]], values: tuple[Any, ...], **inputs: Any) -> tuple[Any, ...]:
    """``update(*values, **inputs)`` where ``need`` holds, ``values`` elsewhere.

    For one configuration (``need`` a bool) a branch; for arrays, ``update`` runs on the
    configurations that need it only (compressed), so a closed form's rarely binding
    terms cost nothing where they cannot bind. ``update`` returns a tuple like ``values``;
    its inputs are numbers or arrays broadcastable with ``need``.
    """
    if isinstance(need, (bool, np.bool_)):
        return update(*values, **inputs) if need else values
    if not need.any():
        return values
    shape = np.broadcast_shapes(np.shape(need), *map(np.shape, values), *map(np.shape, inputs.values()))
    need = np.broadcast_to(need, shape)
    idx = np.flatnonzero(need)

    def pick(x: Any) -> Any:
        return x if np.ndim(x) == 0 and shape else np.broadcast_to(x, shape).reshape(-1)[idx]

    new = update(*map(pick, values), **{name: pick(x) for name, x in inputs.items()})
    out = []
    for old, part in zip(values, new, strict=True):
        full = np.array(np.broadcast_to(old, shape), dtype=float)
        full.reshape(-1)[idx] = part
        out.append(full)
    return tuple(out)


@cache
def _gcd_table(width: int, height: int) -> np.ndarray:
    """``gcd(p, q)`` for ``0 <= p <= width``, ``0 <= q <= height``, flat (index ``p (height
    + 1) + q``): a lookup is ~5x faster than numpy's gcd over a block."""
    return np.gcd.outer(np.arange(width + 1), np.arange(height + 1)).astype(np.float64).ravel()


def grid(kernel: str, spec: HardwareSpec, params: dict[str, ArrayLike]) -> dict[str, Any]:
    """Checked ring GEMM parameters as floats (Python floats for one configuration):
    ``p, q, s`` and the virtual tile sides ``ms, ks, ns`` (elements), with ``odd = q mod
    2``. Errors as :func:`~plummer.kernels._gemm.gemm_params` and :func:`virtual_sizes`
    raise them, first rule first; the rules are checked at once and one by one only on
    failure (so the message names the same parameter)."""
    v = int_params(kernel, params, GEMM_PARAMETERS)
    p, q, m, k, n = (v[name] for name in GEMM_PARAMETERS)
    if all(isinstance(x, np.integer) for x in (p, q, m, k, n)):
        p, q, m, k, n = int(p), int(q), int(m), int(k), int(n)
        fits = 2 <= p <= spec.fabric_width and 2 <= q <= spec.fabric_height
        s = math.lcm(p, q) if fits else 0
        if not (fits and m % s == 0 and k % s == 0 and n % s == 0):
            virtual_sizes(kernel, gemm_params(kernel, spec, params, square=False))
        return {"p": float(p), "q": float(q), "s": float(s), "ms": float(m // s),
                "ks": float(k // s), "ns": float(n // s), "odd": float(q % 2)}
    if not (np.min(p) >= 2 and np.min(q) >= 2 and np.max(p) <= spec.fabric_width
            and np.max(q) <= spec.fabric_height):
        gemm_params(kernel, spec, params, square=False)  # raises, naming the parameter
    table = _gcd_table(spec.fabric_width, spec.fabric_height)
    divisor = table.take(p * (spec.fabric_height + 1) + q)
    odd = q & 1
    p, q = p.astype(np.float64), q.astype(np.float64)
    s = p * q / divisor
    shape = np.broadcast_shapes(np.shape(s), np.shape(m), np.shape(k), np.shape(n))
    sides = np.empty((3, *shape))
    for row, size in enumerate((m, k, n)):
        np.divide(size, s, out=sides[row])
    whole = np.floor(sides)
    if not np.array_equal(whole, sides):
        virtual_sizes(kernel, gemm_params(kernel, spec, params, square=False))
    sides = whole
    return {"p": p, "q": q, "s": s, "ms": sides[0], "ks": sides[1], "ns": sides[2], "odd": odd}
