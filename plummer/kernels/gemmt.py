"""GEMM-T: C[M, N] = A[M, K] . B[N, K]^T without a transpose (Q.K^T in prefill).

The program (executor), the reference recurrence and the closed form live side by side.

Program, on a p x q mesh (p columns, q rows). Logical core (I, J), row I < q and column
J < p, sits at physical (J, ring[I]), ``ring`` the INTERLEAVE ring of the q rows
(:mod:`plummer.kernels._ring`). K splits over the columns (``Kt = K / p``), M over the rows
(``Mt = M / q``) and B's N rows into q blocks of ``Nt = N / q``:

1. The host places A[I, J] (Mt x Kt) and B block I's column slice B[I, J] (Nt x Kt) at
   (I, J) (not timed).
2. Step ``s = 0 .. q - 1``: core (I, J) holds B block ``b = (I - s) mod q`` and computes the
   partial ``A[I, J] . B[b, J]^T`` (Mt x Nt; one call: ``step_overhead`` + ``Kt`` outer
   iterations + ``Kt * Nt`` vector FMAs of length ``Mt``) into its partial buffer; the row
   reduce-adds the partials (:meth:`Mesh.reduce`: chains from both ends of the row to the
   root, one add-and-forward stage per core) into C block (I, b) at column ``b mod p``.
   Meanwhile the B tiles move one position forward along the column's ring (edges of <= 2
   hops) into the other B buffer.

The root follows the B block, not the step: C block (I, b) lives at column ``b mod p`` for
every row I. When p = q this is the square kernel's rotating root, ``(I - s) mod p``. For
p != q the alternative, ``(I - s) mod p``, breaks at the ring's wrap when p does not divide
q (row q - 1 hands its B tile to row 0, whose roots do not continue row q - 1's), and the B
tiles can then arrive late even where the condition below holds (measured with that
scheme's recurrence at the condition's edge, p about 20 and q about 2p: up to 5% on the
makespan):
with the root on the block, row I at step s + 1 has exactly the roots row I - 1 had at step
s, for every I, which is what :func:`gemmt_no_wait`'s condition rests on. The C layout is
also static: column x holds the blocks ``b = x mod p`` of every row, ``ceil(q / p)`` of them
at most. Why not the WaferLLM logical lcm(p, q) x lcm(p, q) grid: it takes lcm(p, q) steps
of smaller products (each with its own step overhead and row reduction), where q steps
suffice here; the price of q steps is the uneven C ownership, at most one Mt x Nt block
more than the average.

In prefill, GEMM-T computes scores = Q . K^T per head group, Q and K both L x d: ``m = L``
(queries over the q rows), ``k = d`` (head dimension over the p columns), ``n = L`` (keys,
q blocks of L / q circulating down the columns); the scores of query block I against key
block b end at column ``b mod p`` of row I, a block-cyclic layout of the keys that is the
same for every query block (what the softmax along the row and P.V need).

The partial has one buffer, so a core's next product waits until the buffer has been read
(rule 7): by its own reduction stage, or, at a leaf, by its leg until the head reaches the
next PE. That fixes every PE's order, product s -> stage s -> product s + 1, through the
data dependencies alone (never through rule 6's ready order), as a PE running its tasks in
program order would; the timing then follows :func:`_gemmt_timing` exactly.

Colors: the reduction chains use 0, 1 towards the east and 2, 3 towards the west (the
last digit alternates along a chain, whatever the root, so a core's routes never change);
the B ring 4..9 (:func:`~plummer.kernels._ring.edge_color`). Memory: A, two B buffers,
the partial and the core's C blocks.
"""

from __future__ import annotations

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
    int_params,
    maximum,
    minimum,
    require,
)
from plummer.kernels._gemm import (
    GEMM_PARAMETERS,
    GemmKernel,
    blocks,
    operands_or_random,
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
    spec: HardwareSpec, p: int, q: int, mt: np.ndarray, kt: np.ndarray, nt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The reference: the program's timing step by step, rules 4-7, for ``len(mt)`` tile
    shapes on a ``p`` x ``q`` mesh; the latest and the mean core end (cycles, without
    launch), and the hops and stages on the latest core's critical path. O(q p^2) per tile
    shape; the tests compare it with the executor and :meth:`GEMMT.cost` with it (the cost
    never calls it). State arrays are ``(tiles, logical row I, column x)``.

    With ``c = step_overhead + compute_cycles(Mt Kt Nt, Kt, Kt Nt)``, ``T = T(Mt Nt)``,
    ``T_B = T(Nt Kt)`` and per core ``R`` the time its partial buffer is free (0 at first)
    and ``B_s`` its B tile's arrival, step s is:

    - product ``E = max(R, B_s) + c`` (the PE is free by then: its stage ended);
    - chains, root ``r = ((I - s) mod q) mod p``: a leaf (column 0 or p - 1, not the root)
      puts its partial on its link at ``L = max(E, L_prev + T)``; a stage on the east chain
      starts at ``S(x) = max(E(x), H(x - 1) + alpha)`` with the head leaving ``H(x) = S(x) +
      beta`` (``H = L`` at the leaf), the west chain alike, and the root takes both (rule 5);
    - the partial's buffer is free at ``R = S + beta + T`` after a stage (the PE streams the
      sum) and at ``L + T`` at a leaf (its leg's tail has left, rule 7); a core's last event
      is its last stage's end, its last leaf leg's tail, or its last B send's tail;
    - B: the send starts at ``max(B_s, send_prev + T_B)`` and ``B_{s+1}(I) = max(send(I - 1)
      + h alpha + T_B, E_{s-1}, send_prev + T_B)`` over the ring edge of ``h`` hops (the
      buffer is read by product and send s - 1).
    """
    mt, kt, nt = (np.asarray(x, dtype=float)[:, None, None] for x in (mt, kt, nt))
    alpha, beta = spec.alpha, spec.beta
    c = spec.step_overhead_cycles + compute_cycles(spec, mt * kt * nt, kt, kt * nt)
    t, t_b = serialization_cycles(spec, mt * nt), serialization_cycles(spec, kt * nt)
    ring = np.array(interleave_ring(q))
    source = (np.arange(q) - 1) % q  # logical row I receives B from I - 1
    hops_b = np.abs(ring - ring[source])[:, None]
    shape = (mt.shape[0], q, p)
    rows, x = np.arange(q)[:, None], np.arange(p)[None, :]
    zero = (np.zeros(shape), np.zeros(shape), np.zeros(shape))
    ready, b_ready, b_sent, before, leg = zero, zero, never(shape), never(shape), never(shape)
    for step in range(q):
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
        root = ((rows - step) % q) % p  # the root takes both chains
        start = choose(x < root, from_e, choose(x > root, from_w, latest(from_e, from_w)))
        leaf = ((x == 0) & (root != 0)) | ((x == p - 1) & (root != p - 1))
        stage_end = delay(start, beta + t, 0.0, 1.0)
        ready = choose(leaf, delay(leg, t), stage_end)  # the partial's buffer is free
        leg = choose(leaf, leg, never(shape))
        if step == q - 1:
            break
        b_start = latest(b_ready, delay(b_sent, t_b))
        b_ready = latest(
            delay(gather(b_start, source, 1), hops_b * alpha + t_b, hops_b),
            before, delay(b_sent, t_b),  # the buffer: read by product and send s - 1
        )
        b_sent, before = b_start, end
    return summarise(latest(ready, delay(b_sent, t_b)))


def _pick(condition: Any, yes: Any, no: Any) -> Any:
    """``yes`` where ``condition`` holds, else ``no``; plain Python for a Python bool."""
    if type(condition) is bool:
        return yes if condition else no
    return np.where(condition, yes, no)


def _sum_max_2i(p: Any, k: Any, p1: Any = None) -> Any:
    """``S(k) = sum_{i < k} max(p - 1, 2 i)`` (hops, over the first ``k`` row residues): ``2 i``
    wins from ``i = h = ceil(p / 2)``; ``(S(k), h)``."""
    half = floor((p + 1) * 0.5)
    low = half * (half - 1)
    return (p - 1 if p1 is None else p1) * minimum(k, half) + maximum(k * (k - 1), low) - low, half


def _sum_max_mirror(p: Any, k: Any) -> Any:
    """``sum_{l < k} max(l, p - 1 - l)`` (hops of the root core of a one-step chain)."""
    h = floor((p + 1) * 0.5)
    low = minimum(k, h)
    return low * (p - 1) - low * (low - 1) * 0.5 + maximum(0.0, k * (k - 1) - h * (h - 1)) * 0.5


def _sum_long(u: float, beta: float, p: Any, e: Any, f: Any, top: Any) -> Any:
    """``u sum H - beta sum N`` over all cores for q > p (:func:`gemmt_no_wait`), by Horner
    in F, e and p, with ``S(p - 1) = (5p^2 - 12p + 8 - [p odd]) / 4`` folded in."""
    p1 = p - 1
    s_e, half = _sum_max_2i(p, e, p1)
    pp, ep, up = p * p, e * p, u * p
    some = 1.0 * (e >= 1)  # numpy adds two bools as "or"
    b2 = 2 * beta
    return f * (f * pp * (2 * up - (2 * u + b2))
                + p * (((u / 12) * p + (0.75 * u - 1.5 * beta)) * p + (1.5 * beta - u / 3) - (u / 2) * half)
                + ep * (4 * up - (2 * u + b2)) - (beta * pp) * (some + top) - beta) \
        + up * (s_e + maximum(p1, 2 * e)) \
        + e * (e * (e * (4 * u / 3) + (3 * u - b2))
               + ((-u / 2 * p - (1.5 * u + b2)) * p + (5 * u / 3 - beta))) \
        + p * ((-0.5 * u) * p + (0.5 * u - b2)) + (0.5 * beta) * top * (p * p1) + beta * (1 + some * p1)


def _sum_short(u: float, beta: float, p: Any, e: Any) -> Any:
    """``u sum H - beta sum N`` over all cores for q <= p (:func:`gemmt_no_wait`)."""
    p1 = p - 1
    s_e, _ = _sum_max_2i(p, e, p1)
    return u * ((e + 1) * (s_e + maximum(p1 - e, e)) + 0.5 * p1 * (p - 2)) - beta * p \
        + e * (e * (e * (4 * u / 3) + (3 * u - 2.5 * beta) - u * p) + ((u / 2 * p - (2.5 * u + beta)) * p
                                                                  + (8 * u / 3 - 1.5 * beta)))


def gemmt_no_wait(
    spec: HardwareSpec, p: Any, q: Any, c: Any, t: Any
) -> tuple[Any, Any, Any, Any]:
    """The recurrence solved where no product waits for its B tile: ``(end, mean, hops,
    stages)``, the latest and the mean core end in cycles (without launch) and the counts on
    the latest core's critical path, for a ``p`` x ``q`` mesh, products of ``c`` cycles and
    partials of ``T = t`` cycles. Exact (equal to :func:`_gemmt_timing`) under the condition
    ``c + T >= h alpha + T_B`` (``h = 2`` hops per ring edge, 1 for q = 2); O(1), numbers or
    numpy arrays.

    Condition. Row I's roots from step 1 on are row I - 1's from step 0 on (the root is the
    block's, and the block moves with B), for every I including the ring's wrap. Each step
    is a monotone, additively homogeneous max-plus map of the row's buffer times R, and a
    first step delays every core by at least ``c + T``, so ``R_s(I) >= R_{s-1}(I - 1) + c +
    T``. B tile s + 1 leaves row I - 1 by ``R_{s-1}(I - 1)`` (induction: its send waits for
    its arrival, which is before the product) and arrives ``<= h alpha + T_B`` later, so by
    ``R_s(I)``: no product waits, sends ``T_B <= c + T`` apart never queue, the last send's
    tail ends before the last stage, and the double buffer's write-after-read (``E_{s-1}``)
    is earlier still.

    Longest paths. Without waits each row is on its own: subtract ``(s + 1) c`` from step s
    and a row is a longest path over nodes (step s, column x), x's stage start (a leaf's: its
    leg). Edges: within step s towards its root ``r_s = ((I - s) mod q) mod p``, ``u = alpha
    + beta`` from a stage and ``alpha`` from a leaf; from step s to s + 1, ``w = beta + T``
    from a stage or the root and ``T`` from a leaf; a core ends ``w`` (``T`` at a leaf) after
    its step q - 1. Every path holds q step edges, so it is ``q w + H u - N beta``, H its hops
    and N its leaf moves (an ``alpha`` hop or a ``T`` edge, each ``beta`` short); the longest
    path below has both the most hops and the fewest leaf moves, for every alpha and beta.

    The root falls one column per step and jumps up after reaching 0: to p - 1, or once,
    where the block wraps from 0 to q - 1, to ``e = (q - 1) mod p``. Call a fall a tooth, with
    its top t. A path only moves towards the root, so the longest one rides it and is at
    column 0 at every step whose root is 0: the row's first tooth (top ``i = I mod p``) gives
    ``(hops, leaf moves) = (max(p - 1, 2i), 1 + [i = p - 1])`` (from p - 1 west, or from 0
    east to i and back with the root), every later full tooth of top t ``(2t, [t >= 1] + [t =
    p - 1])`` (from the leaf 0 east to t, back with the root; p - 1 is a leaf once it moves
    on). Call Z their sum before the row's last tooth (top t, d steps, last root ``l = t - d +
    1``), which gives core x ``Z +``: ``(2t - x, 1 + [t = p - 1])`` for ``l <= x < t``; ``(t,
    [t >= 1] + [t = p - 1](d - 1))`` at x = t (it sits there); ``(x, 1)`` for ``1 <= x < l``;
    ``(0, d)`` at ``x = 0 < l``. A core x > t (the short tooth last) keeps what it had at the
    end of the tooth before and sits (d more leaf moves at p - 1); a row of a single tooth (q
    <= p, row q - 1) is the first tooth cut short.

    Latest core. With ``F = floor((q - 1) / p)``: for e != 0, row 0, column 1: ``H = 2q + p -
    4 - 2F`` hops and ``N = 2 + 2F + [e = p - 1 >= 2]`` leaf moves (teeth 0, e, then p - 1);
    for e = 0, row q - 1, column 0: one hop more and ``N = 1 + 2F``. It dominates every other
    core in both counts, so ``end = q (c + w) + H u - N beta`` with ``H`` hops and ``H + q -
    N`` stages; square P x P: ``3P - 4`` hops, ``4P - 7`` stages.

    Mean. Per row, with ``i = I mod p``: rows ``I <= pF - 2`` end on a full tooth of top p -
    1 with ``d = p - 1 - i`` (``p`` for i = p - 1; F rows for each i <= p - 2, F - 1 for i = p
    - 1), ``Z = (max(p - 1, 2i) + 2(p - 1)(F - 1) + 2e, 2F - 1 + [e >= 1] + [e = p - 1])``
    (for i = p - 1 one full tooth fewer after the first), and the last tooth sums over x to
    ``(d (d - 1) + p (p - 1) / 2, 3d - 2 + [d < p] (p - 1))``; rows ``pF - 1 <= I <= q - 2``
    end on the short tooth with ``d = q - 1 - I``; row q - 1 ends on a full tooth at root 0.
    Summed, with ``S(k) = sum_{i < k} max(p - 1, 2i)`` and ``S(p - 1) = (5p^2 - 12p + 8 -
    [p odd]) / 4``:

    - q > p: ``sum H = 2F^2 p^2 (p - 1) + F p S(p - 1) + 2F e p (2p - 1) - F p (7p^2 - 21p +
      14) / 6 + p S(e) + p max(p - 1, 2e) + (8e^3 + 18e^2 - 3e p^2 - 9e p + 10e) / 6 - p (p -
      1) / 2`` and ``sum N = 2F^2 p^2 + 2F e p + 3F p (p - 1) / 2 + F + 2e^2 + 2e p + e + 2p
      - 1 + [e >= 1](F p^2 - p + 1) + [e = p - 1] p (2F p - p + 1) / 2``;
    - q <= p (e = q - 1): ``sum H = (e + 1)(S(e) + max(p - 1 - e, e)) + (8e^3 - 6e^2 p +
      18e^2 + 3e p^2 - 15e p + 16e) / 6 + (p - 1)(p - 2) / 2``, ``sum N = (5e^2 + 2e p + 3e)
      / 2 + p``;

    and ``mean = q (c + w) + (u sum H - beta sum N) / (p q)``, evaluated below by Horner.
    """
    alpha, beta = spec.alpha, spec.beta
    u = alpha + beta
    steps = q * (c + beta + t)
    q1 = q - 1
    f = floor(q1 / p)
    e = q1 - p * f
    first = e == 0  # the short tooth is a single step at root 0
    p1 = p - 1
    top = e == p1  # the short tooth is a full one
    # the latest core; with e = 0 its row's hops, (p - 1)(2F + 1), are one more than the formula
    f2 = 2 * f
    hops = 2 * q + p - 4 - f2 + first
    moves = 2 + f2 + top * (p >= 3) - first
    end = steps + hops * u - moves * beta
    # u sum H - beta sum N over all cores: one of two polynomials, q > p or not
    short = f == 0
    if type(short) is bool:
        total = _sum_short(u, beta, p, e) if short else _sum_long(u, beta, p, e, f, top)
    elif short.all():
        total = _sum_short(u, beta, p, e)
    elif not short.any():
        total = _sum_long(u, beta, p, e, f, top)
    else:  # masks cost more than the shorter polynomial everywhere
        total = np.where(short, _sum_short(u, beta, p, e), _sum_long(u, beta, p, e, f, top))
    mean = steps + total / (p * q)
    return end, mean, hops, hops + q - moves


def gemmt_b_bound(
    spec: HardwareSpec, p: Any, q: Any, c: Any, t: Any, t_b: Any
) -> tuple[Any, Any, Any, Any, Any]:
    """Where :func:`gemmt_no_wait`'s condition fails (products may wait for B): ``(end,
    mean, hops, stages, products)``, lower bounds on the latest and mean core end (cycles,
    without launch), the counts of the latest path found and the products on it. O(1) per
    configuration (a fixed set of candidate paths), numbers or numpy arrays.

    A B tile crosses the ring edge into row k in ``2 alpha + T_B``, less ``alpha`` into rows
    0 and ``ceil(q / 2)`` (the ring's one-hop edges). Every path of the recurrence bounds it
    from below; the candidates are: no wait (:func:`gemmt_no_wait`), and a B tile riding the
    ring ``q - n`` edges (its block b0 at a step whose root is 0) before the row it lands in
    runs the last n steps without waiting (its longest path as in :func:`gemmt_no_wait`: the
    start ``(p - 1, 1)``, full teeth, a last tooth cut after d steps, best core ``x = l``, or
    ``x = t`` for d = 1), with n = 1 (the last step alone), and teeth: no full tooth or the
    most of them, with the short tooth e last, inside or absent, ``d`` in {1, 2, the most,
    the d where the B ride stops crossing row ``ceil(q / 2)``}, b0 placed to cross the fewest
    one-hop edges. Not in the bound: the B ring's double buffer (a tile lands only once the
    product two steps back has read the buffer), whose pull grows with the mesh.

    Measured against the recurrence over the sweep of the test
    ``test_b_bound_is_a_lower_bound_within_its_stated_figures`` (120 draws: random specs,
    typical, stress, and with no overheads but the step's, alpha up to 25 cycles, fma rate
    1..8; p, q in 2..16; 16 tiles of 1..16 per axis; the 211 configurations where a B tile
    may wait): the end is at most 0.9% low and the mean at most 10.5% low (over five times
    as many draws: 0.6% and 8.3%). On larger meshes the double buffer costs more: at p, q
    in 30..64 with the no-overhead specs, the end was up to 14% low.

    The mean is the largest of three families' means (each a set of real paths): no wait;
    every row's last step alone (the B tile of block b rides ``q - 1`` edges; the one-step
    chain to the root ``b mod p``: ``sum_x`` hops ``l (l - 1) / 2 + (p - 1 - l)(p - 2 - l) /
    2 + max(l, p - 1 - l)``, one leaf move per core); and every row started at its first
    step with root 0 (step ``i = I mod p``: the no-wait table with the first tooth replaced by
    ``(p - 1, 1)`` and i fewer steps, after a B ride of i edges).
    """
    alpha, beta = spec.alpha, spec.beta
    w, u = beta + t, alpha + beta
    per_edge = 2 * alpha + t_b
    f = floor((q - 1) / p)
    e = q - 1 - p * f
    mark = q - floor(q * 0.5)  # the second one-hop edge leads into row ceil(q / 2)
    cover = -floor(-mark / p)  # the first zero-root block at or above it, in units of p

    def ones(b0: Any, n: Any) -> Any:
        """One-hop edges the B ride of ``q - n`` edges to the run of blocks ``b0, b0 - 1, ...,
        b0 - n + 1`` crosses: the marks not among those blocks (``b0 < q``)."""
        below = b0 - mark
        return 2.0 - (b0 < n) - (below - q * floor(below / q) < n)

    candidates: list[tuple[Any, Any, Any, Any]] = []

    def candidate(valid: Any, b0s: list[tuple[Any, Any]], n: Any, h: Any, moves: Any) -> None:
        one = 2.0
        for b0, ok in b0s:
            one = _pick(ok, minimum(one, ones(b0, n)), one)
        value = (q - n) * per_edge - alpha * one + n * (c + w) + u * h - beta * moves
        candidates.append((_pick(valid, value, -np.inf), 2 * (q - n) - one + h, h + n - moves, n))

    def last_tooth(top: Any, d: Any) -> tuple[Any, Any]:
        """(hops, leaf moves) of the best core of a last tooth of top ``top`` cut after d steps."""
        return _pick(d == 1, top, top + d - 1), _pick(d == 1, 1.0 * (top >= 1), 1.0 + (top == p - 1))

    candidate(True, [(0.0, True)], 1.0, p - 1, 1.0)  # the last step alone
    full = f >= 1
    for m in (0.0, f - 1):  # a: m full teeth of top p - 1, then a cut one of top p - 1
        for d in (1.0, 2.0, p):
            h, moves = last_tooth(p - 1, d)
            b0s = [((m + 1) * p, full), (f * p, full), (cover * p, full & (m + 1 <= cover) & (cover <= f))]
            candidate(full, b0s, 1 + m * p + d, p - 1 + 2 * (p - 1) * m + h, 1 + 2 * m + moves)
    for m in (0.0, f, minimum(cover, f)):  # b: m full teeth of top p - 1, then the short tooth cut
        most = e + 1 - (m == f)
        for d in (1.0, 2.0, most, q - mark):
            h, moves = last_tooth(e, d)
            candidate((d >= 1) & (d <= most), [(m * p, True)], 1 + m * p + d,
                      p - 1 + 2 * (p - 1) * m + h, 1 + 2 * m + moves)
    reach = minimum(maximum(-floor((q - mark - e - 2) / -p), 0.0), maximum(f - 1, 0.0))
    for m in (0.0, f - 1, reach):  # c: m full teeth of top p - 1 and the short tooth, then a cut one
        most = p - (m == f - 1)
        for d in (1.0, 2.0, most, q - mark - e - 1 - m * p):
            h, moves = last_tooth(p - 1, d)
            b0s = [(m * p, full), (0.0, full), (cover * p, full & (cover <= m))]
            candidate(full & (d >= 1) & (d <= most), b0s, 1 + m * p + e + 1 + d,
                      p - 1 + 2 * (p - 1) * m + 2 * e + h, 1 + 2 * m + 1.0 * (e >= 1) + (e == p - 1) + moves)
    free_end, free_mean, free_hops, free_stages = gemmt_no_wait(spec, p, q, c, t)
    candidates.append((free_end, free_hops, free_stages, q))
    end, hops, stages, products = _latest(candidates)
    # the means of the three families
    size = p * q
    whole = floor(q / p)
    rest = q - p * whole

    def one_step(k: Any) -> Any:
        """sum over roots l < k of the one-step chain's hops summed over the row"""
        return (k * (k - 1) * (k - 2) + p * (p - 1) * (p - 2) - (p - k) * (p - k - 1) * (p - k - 2)) / 6 \
            + _sum_max_mirror(p, k)

    last_mean = (q - 1) * per_edge - alpha * (2 * q - 2) / q + c + w - beta \
        + u * (whole * one_step(p) + one_step(rest)) / size
    residues = whole * p * (p - 1) * 0.5 + rest * (rest - 1) * 0.5
    block = floor((mark - 1) / p)
    crossing = maximum(0.0, minimum(q - 1, (block + 1) * p - 1) - mark + 1)
    shift = ((per_edge - c - w) * residues - alpha * crossing
             - u * (whole * _sum_max_2i(p, p)[0] + _sum_max_2i(p, rest)[0] - q * (p - 1)) + beta * whole)
    # cores whose no-wait path does not pass column 0 at the first zero-root step
    fix = _pick((q >= p + 1) & (q <= 2 * p - 1), beta * (p - 2), 0.0)
    fix = fix + _pick(q < p, (p - q) * u * (_sum_max_2i(p, q - 1)[0] - (q - 1) * (p - 1))
                      + beta * (q - 1) * (q - 2) * 0.5, 0.0)
    # row q - 1 of a mesh with q <= p: the first zero-root step is its last step
    ee = q - 1
    beyond = ee < p - 1
    row_h = _pick(beyond, (p - 2 - ee) * (p - 1 - ee) * 0.5, 0.0) + (ee + 1) * maximum(p - 1 - ee, ee) \
        + ee * (ee + 1) * 0.5
    row_n = _pick(beyond, (p - 2 - ee) + q + ee + 1, 2 * ee + q)
    row_shift = ee * per_edge - alpha - ee * (c + w) - u * (maximum(p - 1, 2 * ee) - (p - 1)) \
        + beta * (ee == p - 1)
    true_row = p * ((q - 1) * per_edge - alpha + c + w - beta) + u * ((p - 1) + (p - 2) * (p - 1) * 0.5)
    shifted_row = p * q * (c + w) + u * row_h - beta * row_n + p * row_shift
    fix = fix + _pick(q <= p, true_row - shifted_row, 0.0)
    first_zero_mean = free_mean + (p * shift + fix) / size
    mean = maximum(free_mean, maximum(last_mean, first_zero_mean))
    return end, mean, hops, stages, products


def _latest(candidates: list[tuple[Any, Any, Any, Any]]) -> tuple[Any, Any, Any, Any]:
    """The latest of ``(time, hops, stages, products)`` candidates (the first, on a tie)."""
    if type(candidates[-1][0]) is float:
        return max(candidates, key=lambda candidate: candidate[0])
    value, hop, stage, count = (np.array(np.broadcast_arrays(*parts)) for parts in zip(*candidates))
    pick = np.argmax(value, axis=0)[None]
    return tuple(np.take_along_axis(x, pick, axis=0)[0] for x in (value, hop, stage, count))


def gemmt_waits(spec: HardwareSpec, q: Any, c: Any, t: Any, t_b: Any) -> Any:
    """Where a B tile may arrive after its product could start: ``c + T < h alpha + T_B``
    (``h = 2`` hops per ring edge, 1 on a ring of two), the complement of
    :func:`gemmt_no_wait`'s condition."""
    return c + t < minimum(q - 1, 2.0) * spec.alpha + t_b


def gemmt_routes(p: Any, q: Any) -> Any:
    """Colors per core: the row chains need 4 at a core with roots on both sides (3 when q =
    2 and p >= 3: roots 0 and 1 only; 2 when p = 2), the B ring 3 (2 when q = 2)."""
    if type(p) is not float and np.min(p) >= 3 and np.min(q) >= 3:
        return 7.0
    return 4.0 + 1.0 * (p >= 3) + (q >= 3) + (p >= 3) * (q >= 3)


class GEMMT(GemmKernel):
    """GEMM-T, ``C = A . B^T``, on a p x q mesh (p columns, q rows); ``k`` splits over the
    columns, ``m`` over the rows and ``n`` into q blocks.

    Example:
        >>> from plummer.hardware import load_hardware
        >>> cost = GEMMT().cost(load_hardware("wse3"), p=660, q=660, m=660 * 16, k=660 * 4, n=660 * 16)
        >>> float(cost.hops), float(cost.routing_stages)  # 3P - 4 and 4P - 7
        (1976.0, 2633.0)
        >>> tall = GEMMT().cost(load_hardware("wse3"), p=128, q=660, m=660 * 16, k=128 * 4, n=660 * 16)
        >>> float(tall.hops)  # 2q + p - 4 - 2F with F = floor(659 / 128) = 5
        1434.0
        >>> float(tall.memory_per_core_bytes)  # 2 B x (A 64 + B 2 x 64 + (1 + 6 C blocks) x 256)
        3968.0
    """

    name = "gemm-t"
    square = False

    def params(self, spec: HardwareSpec, params: dict[str, ArrayLike]) -> dict[str, np.ndarray]:
        """The checked parameters as int arrays: a mesh of at least 2 x 2 within the fabric;
        ``m`` over the q rows, ``k`` over the p columns, ``n`` into q blocks. Rule by rule, so
        the error names the first parameter at fault."""
        v = int_params(self.name, params, GEMM_PARAMETERS)
        p, q, m, k, n = (v[name] for name in GEMM_PARAMETERS)
        require(self.name, p >= 2, "p", p, "must be >= 2 (a mesh of at least 2x2)")
        require(self.name, q >= 2, "q", q, "must be >= 2 (a mesh of at least 2x2)")
        require(self.name, p <= spec.fabric_width, "p", p, f"exceeds the fabric width {spec.fabric_width}")
        require(self.name, q <= spec.fabric_height, "q", q, f"exceeds the fabric height {spec.fabric_height}")
        require(self.name, m % q == 0, "m", m,
                "must be a multiple of the mesh height q (A's rows over the rows)")
        require(self.name, k % p == 0, "k", k,
                "must be a multiple of the mesh width p (the shared dimension over the columns)")
        require(self.name, n % q == 0, "n", n,
                "must be a multiple of the mesh height q (B's rows in q blocks)")
        return v

    def _sizes(self, spec: HardwareSpec, params: dict[str, ArrayLike]) -> tuple[Any, ...]:
        """``(p, q, Mt, Kt, Nt)`` as floats (Python floats for one configuration of Python ints,
        else float arrays), with every rule of :meth:`params` checked at once; on a fault,
        :meth:`params` runs rule by rule to name it."""
        p, q, m, k, n = (params.get(name) for name in GEMM_PARAMETERS)
        if len(params) == 5 and all(type(x) is int for x in (p, q, m, k, n)):
            if (2 <= p <= spec.fabric_width and 2 <= q <= spec.fabric_height and m >= 1 and k >= 1 and n >= 1
                    and m % q == 0 and k % p == 0 and n % q == 0):
                return float(p), float(q), float(m // q), float(k // p), float(n // q)
            self.params(spec, params)  # raises
        v = int_params(self.name, params, GEMM_PARAMETERS)
        p, q, m, k, n = (as_float(v[name]) for name in GEMM_PARAMETERS)
        mt, kt, nt = m / q, k / p, n / q  # exact where the sizes divide (below 2^53)
        if not (np.min(p) >= 2 and np.min(q) >= 2 and np.max(p) <= spec.fabric_width
                and np.max(q) <= spec.fabric_height and np.array_equal(mt, np.floor(mt))
                and np.array_equal(kt, np.floor(kt)) and np.array_equal(nt, np.floor(nt))):
            self.params(spec, params)  # raises
        return p, q, mt, kt, nt

    @blockwise
    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form, O(1) per configuration: :func:`gemmt_no_wait` (exact) where ``c + T
        >= h alpha + T_B``, :func:`gemmt_b_bound` (lower bounds, errors stated there)
        elsewhere.

        ``c = step_overhead + compute_cycles(Mt Kt Nt, Kt, Kt Nt)``, ``T = T(Mt Nt)``, ``T_B
        = T(Nt Kt)``; ``cycles = launch + end``, ``mean_core_cycles = launch + mean``;
        ``hops`` and ``routing_stages`` those of the latest core's critical path (``d cycles
        / d alpha`` and ``/ d beta``); ``compute_cycles`` the products on it (q of them, fewer
        on a B-bound path that rides the ring before its row). Memory: A,
        two B buffers, the partial and ``ceil(q / p)`` C blocks (column x owns the blocks
        ``b = x mod p``). Routes: :func:`gemmt_routes`.
        """
        p, q, mt, kt, nt = self._sizes(spec, params)
        mn, kn = mt * nt, kt * nt
        c = spec.step_overhead_cycles + compute_cycles(spec, mt * kn, kt, kn)
        t, t_b = serialization_cycles(spec, mn), serialization_cycles(spec, kn)
        end, mean, hops, stages = gemmt_no_wait(spec, p, q, c, t)
        products = q
        waits = gemmt_waits(spec, q, c, t, t_b)
        if type(waits) is bool:
            if waits:
                end, mean, hops, stages, products = gemmt_b_bound(spec, p, q, c, t, t_b)
        elif waits.any():
            shape = np.broadcast_shapes(*(np.shape(x) for x in (p, q, c, t, t_b, end)))
            end, mean, hops, stages = (np.array(np.broadcast_to(x, shape)) for x in (end, mean, hops, stages))
            products = np.array(np.broadcast_to(q, shape))
            where = np.broadcast_to(waits, shape)
            parts = (np.broadcast_to(x, shape)[where] for x in (p, q, c, t, t_b))
            bound = gemmt_b_bound(spec, *parts)
            for out, part in zip((end, mean, hops, stages, products), bound, strict=True):
                out[where] = part
        blocks_c = floor((q - 1) / p) + 1
        return Cost.make(
            spec,
            cycles=spec.launch_overhead_cycles + end,
            compute_cycles=products * c,
            hops=hops,
            routing_stages=stages,
            memory_per_core_bytes=spec.dtype_bytes * (mt * kt + 2 * kn + (1 + blocks_c) * mn),
            routes_per_core=gemmt_routes(p, q),
            mean_core_cycles=spec.launch_overhead_cycles + mean,
        )

    def sweep(self) -> list[dict[str, Any]]:
        """Square meshes 2x2 to 16x16 (odd and even) and p x q meshes with p above, below,
        dividing and not dividing q, with tiles from 1x1x1 to 16x16x16."""
        tiles = [(1, 1, 1), (2, 3, 1), (1, 8, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)]
        meshes = [(p, p) for p in (2, 3, 4, 5, 7, 8, 11, 16)] + [
            (2, 3), (3, 2), (2, 5), (5, 2), (3, 5), (5, 3), (4, 6), (6, 4), (3, 9), (9, 3),
            (4, 10), (10, 4), (5, 12), (12, 5), (7, 16), (16, 7),
        ]
        return [
            {"p": p, "q": q, "m": q * mt, "k": p * kt, "n": q * nt}
            for p, q in meshes
            for mt, kt, nt in tiles
            if p * q * mt * kt * nt <= 16 * 16 * 8 * 8 * 8
        ]

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: ArrayLike) -> KernelRun:
        v = self.configuration(spec, params)
        p, q, m, k, n = v["p"], v["q"], v["m"], v["k"], v["n"]
        mt, kt, nt = m // q, k // p, n // q
        a, b = operands_or_random(self.name, operands, seed, (m, k), (n, k))
        a_blocks, b_blocks = blocks(a, q, p), blocks(b, q, p)
        ring = interleave_ring(q)
        mesh = Mesh(spec, p, q, trace=trace)
        for i in range(q):
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

        for step in range(q):
            cur = step % 2
            for i in range(q):
                for j in range(p):
                    mesh.compute(
                        (j, ring[i]), ["A", f"B{cur}"], "P", _partial,
                        fmas=mt * kt * nt, loops=kt, vector_ops=kt * nt,
                        overhead=spec.step_overhead_cycles,
                    )
            for i in range(q):
                block = (i - step) % q
                mesh.reduce("P", chains(ring[i], block % p), (block % p, ring[i]), f"C{block}")
            if step == q - 1:
                break
            for j in range(p):
                for i in range(q):
                    src, dst = ring_edge(q, i)
                    path = ("S" if dst > src else "N") * abs(dst - src)
                    mesh.send((j, src), f"B{cur}", path, edge_color(q, i, True, _B_RING), f"B{1 - cur}")

        result = mesh.run()
        output = np.block([
            [result.tile((block % p, ring[i]), f"C{block}") for block in range(q)] for i in range(q)
        ])
        return KernelRun(output=output, reference=a @ b.T, execution=result)
