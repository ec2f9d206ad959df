"""The exact max-plus recurrence of the ring GEMM program (MeshGEMM and Cannon, square and
P x Q): the reference the closed forms are checked against, in the tests only.

It follows :class:`plummer.kernels._virtual.RingGemm` and rules 4-8 event by event, for
every core at once (arrays ``(configurations, q, p)``), in O(S p q) per mesh:

- alignment of row I (direction d, ``n_I`` steps): the activation of step k starts when the
  core's previous message has been completed (``R_k``; its data or the 0-cycle program
  point, which a message that does not read the tile received waits for), the message leaves at ``s_k = max(R_k + mo, s_{k-1} + T_A)`` (link free when the
  previous tail left), is delivered at ``max(s_k(src) + h alpha + T_A, w_k)`` where ``w_k``
  waits for the readers of the destination tiles (a tile that moved at step k - 1: the
  send and activation of k - 1; a spare that took a resent tile: its completion ``R_k``),
  and completed by the PE after its own activation: ``R_{k+1} = max(delivery, R_k + mo) + mo``;
- products: ``S_t = max(E_{t-1}, A_t, B_t)`` with ``A_t``, ``B_t`` the arrival of step t's
  new tiles, ``E_t = S_t + c``, the first at ``S_0 = X = R_{n_I}``; step t's message leaves
  once its new tiles arrived, ``s_t = max(A_t, s_{t-1} + T_A)`` (``s_0 = X``), and arrives
  at ``A_{t+1} = max(s_t(src) + h alpha + T_A, E_{t-1}, s_{t-1} + T_A)`` (the spare: read by
  product and send t - 1); B likewise along the column ring, loaded at time 0 (``s_0 = 0``);
- a core ends at ``max(E_{S-1}, tails of its last sends)`` plus the launch overhead.
"""

from __future__ import annotations

import math

import numpy as np

from plummer.kernels._ring import wrapped_line
from plummer.kernels._virtual import RingGemm
from plummer.mesh import compute_cycles, serialization_cycles


def step_costs(spec, p, q, ms, ks, ns):
    """``(c, T_A, T_B)`` of the virtual kernel (arrays over tile shapes), in cycles."""
    s = math.lcm(p, q)
    bp, bq = s // p, s // q
    ms, ks, ns = (np.asarray(x, dtype=float) for x in (ms, ks, ns))
    c = spec.step_overhead_cycles + compute_cycles(
        spec, ms * bq * ks * ns * bp, bp * bq * ks, bp * bq * ks * ns)
    return c, serialization_cycles(spec, ms * bq * ks), serialization_cycles(spec, ks * ns * bp)


def ring_gemm_ends(spec, program: RingGemm, p: int, q: int, c, t_a, t_b) -> np.ndarray:
    """Every core's elapsed cycles, ``(configurations, q, p)`` (logical I, J), for step
    costs ``c, t_a, t_b`` (1-D arrays, cycles)."""
    s = math.lcm(p, q)
    rows, cols = program.row_ring(p), program.col_ring(q)
    plan = program.alignment(p, q)
    alpha, mo = spec.alpha, spec.message_overhead_cycles
    c, t_a, t_b = (np.asarray(x, dtype=float)[:, None, None] for x in (c, t_a, t_b))
    shape = (c.shape[0], q, p)
    inf = np.full(shape, -np.inf)
    h_fwd = np.array([rows.hops(j, True) for j in range(p)], dtype=float)  # edge j -> j + 1
    g_fwd = np.array([cols.hops(i, True) for i in range(q)], dtype=float)
    h_into = np.roll(h_fwd, 1)  # the forward edge into J, from J - 1
    g_into = np.roll(g_fwd, 1)
    forward = np.array(plan.forward)[:, None]
    steps = np.array(plan.steps)[:, None]
    moves = np.array(plan.moves)  # (q, bq)

    # alignment
    ready = np.zeros(shape)  # R_k
    sent, act_end = inf.copy(), inf.copy()
    for k in range(max(plan.steps)):
        running = k < steps  # (q, 1)
        start_send = ready + mo if mo else ready
        s_k = np.maximum(start_send, sent + t_a)
        arr_f = np.roll(s_k, 1, axis=2) + h_into * alpha + t_a  # from J - 1
        arr_b = np.roll(s_k, -1, axis=2) + h_fwd * alpha + t_a  # from J + 1 (edge J <- J+1)
        arrive = np.where(forward, arr_f, arr_b)
        moved_before = (k <= moves).any(axis=1)[:, None]  # a tile that moved at k - 1 (or k = 0)
        resent = (k > moves).any(axis=1)[:, None]  # a spare that took a resent tile at k - 1
        wait = np.maximum(np.where(moved_before, np.maximum(sent + t_a, act_end), -np.inf),
                          np.where(resent, ready, -np.inf))
        delivered = np.maximum(arrive, wait)
        new_ready = np.maximum(delivered, start_send) + mo if mo else delivered
        ready = np.where(running, new_ready, ready)
        sent = np.where(running, s_k, sent)
        act_end = np.where(running, start_send if mo else -np.inf, act_end)
    x = ready  # alignment end, X(I, J)

    # products
    a_in = [x]  # newest A tile of step t (t = 0: the aligned window)
    b_in = [np.zeros(shape)]
    a_sent, b_sent = [], []
    e_prev = x + c  # E_0
    e_before = e_prev  # E_{t-2}, used from t = 2 on
    for t in range(1, s):
        # the messages of step t - 1 leave once its new tiles arrived (step 0: A after the
        # alignment, B at once) and the previous tail left
        sa = np.maximum(a_in[-1], a_sent[-1] + t_a) if a_sent else a_in[-1]
        sb = np.maximum(b_in[-1], b_sent[-1] + t_b) if b_sent else b_in[-1]
        arrive_a = np.roll(sa, 1, axis=2) + h_into * alpha + t_a
        arrive_b = np.roll(sb, 1, axis=1) + g_into[:, None] * alpha + t_b
        if t >= 2:
            arrive_a = np.maximum.reduce([arrive_a, e_before, a_sent[-1] + t_a])
            arrive_b = np.maximum.reduce([arrive_b, e_before, b_sent[-1] + t_b])
        a_sent.append(sa)
        b_sent.append(sb)
        a_in.append(arrive_a)
        b_in.append(arrive_b)
        e_before = e_prev
        e_prev = np.maximum.reduce([e_prev, arrive_a, arrive_b]) + c
    last = e_prev
    if a_sent:
        last = np.maximum.reduce([last, a_sent[-1] + t_a, b_sent[-1] + t_b])
    return last + spec.launch_overhead_cycles


def ring_gemm_timing(spec, program: RingGemm, p: int, q: int, ms, ks, ns):
    """(makespan, mean over cores) per virtual tile shape ``ms x ks x ns``, cycles."""
    c, t_a, t_b = step_costs(spec, p, q, ms, ks, ns)
    ends = ring_gemm_ends(spec, program, p, q, np.atleast_1d(c), np.atleast_1d(t_a), np.atleast_1d(t_b))
    flat = ends.reshape(ends.shape[0], -1)
    return flat.max(axis=1), flat.mean(axis=1)


def bound_sweep(seed: int):
    """The stated sweep of the bounds: 40 meshes (13 square, 2 to 29 cores a side, and 27
    P x Q with S = lcm(p, q) <= 120), each with 4 random specs (alpha 0.2-12, message
    overhead 0 or 0-30, launch 0-60; one spec bare: step overhead 0-5 and free products;
    three with step overhead 0-60, FMA rate 1, 8 or 10^9 a cycle, loop and vector
    overheads 0 or small) and 16 virtual tile shapes (1-8 a side, some A columns and B rows
    8-39 tall), so communication-bound regimes are common. Yields
    ``(spec, p, q, ms, ks, ns)`` with 1-D tile arrays."""
    from _support import PRESET

    rng = np.random.default_rng(seed)
    meshes = [(p, p) for p in (2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 16, 21, 29)]
    while len(meshes) < 40:
        p, q = (int(x) for x in rng.integers(2, 30, 2))
        if p != q and math.lcm(p, q) <= 120:
            meshes.append((p, q))
    for p, q in meshes:
        for bare in (True, False, False, False):
            spec = PRESET.replace(
                alpha=float(rng.uniform(0.2, 12.0)),
                message_overhead_cycles=float(rng.choice([0.0, rng.uniform(0.0, 30.0)])),
                step_overhead_cycles=float(rng.uniform(0.0, 5.0 if bare else 60.0)),
                fma_per_cycle=1e9 if bare else float(rng.choice([1.0, 8.0, 1e9])),
                loop_overhead_cycles=0.0 if bare else float(rng.choice([0.0, rng.uniform(0.0, 10.0)])),
                vector_op_overhead_cycles=0.0 if bare else float(rng.choice([0.0, rng.uniform(0.0, 3.0)])),
                launch_overhead_cycles=float(rng.uniform(0.0, 60.0)),
            )
            tiles = rng.integers(1, 9, (3, 16))
            tiles[0, :6] = rng.integers(8, 40, 6)  # tall A columns
            tiles[2, 6:10] = rng.integers(8, 40, 4)  # wide B rows
            yield spec, p, q, tiles[0], tiles[1], tiles[2]


def bound_errors(kernel, program: RingGemm, seeds):
    """Relative errors ``(closed form - recurrence) / recurrence`` of the cycles and the mean
    over :func:`bound_sweep` of ``seeds``, with the step costs ``(c, T_A, T_B)`` and the spec
    of each configuration: a list of ``(spec, p, q, c, t_a, t_b, cycles_error, mean_error)``."""
    out = []
    for seed in seeds:
        for spec, p, q, ms, ks, ns in bound_sweep(seed):
            s = math.lcm(p, q)
            c, t_a, t_b = step_costs(spec, p, q, ms, ks, ns)
            ends = ring_gemm_ends(spec, program, p, q, c, t_a, t_b).reshape(len(ms), -1)
            cost = kernel.cost(spec, p=p, q=q, m=s * ms, k=s * ks, n=s * ns)
            cycles = cost.cycles / ends.max(axis=1) - 1
            mean = cost.mean_core_cycles / ends.mean(axis=1) - 1
            out += [(spec, p, q, c[i], t_a[i], t_b[i], cycles[i], mean[i]) for i in range(len(ms))]
    return out


def cannon_exact(spec, p: int, q: int, c: float, t_a: float, t_b: float) -> bool:
    """Cannon's exactness condition (:meth:`plummer.kernels.cannon.Cannon.cost`) by
    enumeration over its rows, columns and chain lengths: the wave does not wrap (``d > 0``,
    ``d >= (p - 2) alpha / p``), the links keep up (``c >= T_A, T_B``), no B tile ridden from
    time 0 reaches a row after the row's own start (X plus its wave), and no B chain from
    row I to row I + n does either."""
    s = math.lcm(p, q)
    bq = s // q
    alpha = spec.alpha
    u = 2 * spec.message_overhead_cycles + t_a
    d = c - alpha - t_a
    delta = (p - 1) * alpha + t_a - c
    if not (d > 0 and d >= (p - 2) * alpha / p):
        return False
    if c < max(t_a, t_b):
        return False
    cores = np.arange(p)
    start = []
    for row in range(q):
        n = s - 1 - row * bq
        crossed = -(-(n - cores) // p)  # wrap-arounds of the skew chain into each core
        mu = (cores - n % p) % p  # how far into its row's wave a core is
        wave = np.where(mu <= s - 2, np.maximum(0.0, delta - mu * d), 0.0)
        start.append(n * u + alpha * (n + (p - 2) * crossed) + wave)
    start = np.array(start)
    # B from time 0: the hops of the ``m`` column edges into each row, by prefix sums
    hops = np.array([wrapped_line(q).hops(i) for i in range(q)], dtype=float)
    trips = s // q + 2
    prefix = np.concatenate([[0.0], np.cumsum(np.tile(hops, trips))])
    edges = np.arange(1, s)[:, None]
    ends = np.arange(q)[None, :] + (trips - 1) * q
    into = prefix[ends] - prefix[ends - edges]
    if np.any(alpha * into + edges * (t_b - c) > start.min(axis=1)[None, :] + 1e-9):
        return False
    return all(
        not np.any(start[: q - n] - start[n:] + n * (alpha + t_b) - (n + 1) * c > 1e-9)
        for n in range(1, q)
    )



def brute_window(ring, length: int) -> int:
    """Most hops of ``length`` consecutive edges of ``ring``, by summing them (the reference
    of the window functions of :mod:`plummer.kernels._ring`)."""
    hops = [ring.hops(k) for k in range(ring.n)]
    return max(sum(hops[(start + e) % ring.n] for e in range(length)) for start in range(ring.n))


def brute_rides(spec, kernel_name: str, p: int, q: int, c: float, t_a: float, t_b: float) -> float:
    """The longest of the A-ride and B-from-time-0 paths of the closed forms (cycles without
    launch), each maximised over every ride length with windows summed edge by edge:
    MeshGEMM's backward rows (alignment and ride start at the same core, both windows
    maximal at once), Cannon's row 0 (the ride continues its skew chain)."""
    from plummer.kernels._ring import interleave, wrapped_line
    from plummer.kernels._virtual import meshgemm_alignment

    s = math.lcm(p, q)
    alpha, u = spec.alpha, 2 * spec.message_overhead_cycles + t_a
    ring = interleave if kernel_name == "meshgemm" else wrapped_line
    rows, cols = ring(p), ring(q)
    if kernel_name == "meshgemm":
        steps = meshgemm_alignment(p, q).steps[0]
        a_ride = max(steps * u + alpha * (brute_window(rows, steps) + brute_window(rows, m)) + m * (t_a - c)
                     for m in range(s))
    else:
        a_ride = max((s - 1) * u + alpha * brute_window(rows, s - 1 + m) + m * (t_a - c) for m in range(s))
    b_ride = max(alpha * brute_window(cols, m) + m * (t_b - c) for m in range(s))
    return max(a_ride, b_ride) + s * c
