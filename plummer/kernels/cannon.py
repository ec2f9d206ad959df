"""Cannon's algorithm on a mesh without torus links: the wrap-around crosses the whole line.

The program (executor) and the closed form live side by side.

Program (:class:`~plummer.kernels._virtual.RingGemm`), on a ``p`` x ``q`` mesh with the
virtual S x S grid of :mod:`plummer.kernels._virtual` (``S = lcm(p, q)``; for ``p = q``
one virtual tile per core), on line rings (:func:`~plummer.kernels._ring.wrapped_line`):
forward is one hop west along a row (north along a column), and the edge that closes the
ring runs from the first core of the line to the last, ``p - 1`` hops back, passed through
by every router of the line (a mesh has no torus link).

1. The host places A in its natural layout and the pre-skewed B at the cores (not timed).
2. Skew of A (timed): virtual row I' turns its tiles ``I'`` positions west (physical
   numbering, the top row 0), as MeshGEMM's alignment does with ring steps; a row of
   cores runs the steps its farthest virtual row needs (``I`` for core row I on a square
   mesh), its nearer ones resending, then stops. Each step is store-and-forward: the
   sender's PE activates the message (``message_overhead``), the boundary column crosses
   its edge, the receiver's PE completes it (``message_overhead``).
3. S compute steps: C += A . B over the core's virtual tiles, while the boundary column of
   A moves one core west (the first core's: ``p - 1`` hops east) and the boundary row of B
   one core north (the top row's: ``q - 1`` hops south) into the spare buffers (double
   buffering), overlapping the products; a step's messages leave once its new tiles arrived.

This is MeshGEMM's program on the line rings with their wrap-around instead of the
INTERLEAVE rings, so the two differ only by the ring and the skew; it is what a Cannon on
this dataflow machine would run. A classic synchronous Cannon (compute, then shift, single
buffers) would add each shift's latency to its step but, as there is no global barrier,
would still pay the wrap-around once per trip around the ring rather than once per step.

Colors: the one-hop edges alternate two colors by source core (so a core never receives
and sends on one color), the wrap-around has a third; every core of a line passes the
wrap-around through: 3 colors per line of 3 or more cores, 2 on a line of 2.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, KernelRun, blockwise, maximum, minimum
from plummer.kernels._gemm import GemmKernel
from plummer.kernels._ring import line_ride, line_window, quotient, residue, wrapped_line
from plummer.kernels._virtual import (
    RingGemm,
    cannon_alignment,
    grid,
    on_subset,
    pxq_sweep,
    virtual_sizes,
)
from plummer.mesh import compute_cycles, serialization_cycles

#: The program: line rings on both axes; colors A 0-2 (skew and shifts), B 3-5.
PROGRAM = RingGemm(wrapped_line, wrapped_line, cannon_alignment, 1, (0, 0, 3))


def _select(best: Any, value: Any, *pairs: tuple[Any, Any]) -> tuple[Any, ...]:
    """Where ``value > best``, the second of each pair, else the first."""
    better = value > best
    return tuple(old + better * (new - old) for old, new in pairs)


class Cannon(GemmKernel):
    """Cannon's algorithm on a ``p`` x ``q`` mesh without torus links (``m``, ``k``, ``n``
    multiples of ``lcm(p, q)``)."""

    name = "cannon"
    square = False

    @blockwise
    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form, derived from the program above and the machine's rules. O(1).

        With ``S = lcm(p, q)``, ``T_A``, ``T_B`` the serialization of the boundary column and
        row, ``c`` one step's products and ``mo`` the message overhead (cycles, as for
        :meth:`MeshGEMM.cost <plummer.kernels.meshgemm.MeshGEMM.cost>`), and ``l_n(L) = L +
        (n - 2) ceil(L/n)`` the most hops of L consecutive edges of an n-core line ring
        (:func:`~plummer.kernels._ring.line_window`; ``L (2n - 2)/n`` on average):

        - skew (rules 4-6): core row I runs ``n_I = S - 1 - I S/q`` store-and-forward steps
          (logical rows, I = 0 the last core row), each ``u = 2 mo + T_A`` plus ``alpha``
          per hop, so its core J is aligned at ``X = n_I u + alpha (n_I + (p - 2) C)``, ``C``
          the wrap-arounds its chain crossed: ``ceil(n_I / p)`` on the first ``n_I mod p``
          cores, ``floor(n_I / p)`` on the others (``ceil`` everywhere when ``p`` divides
          ``n_I``);
        - products (rules 4-7, as MeshGEMM's): every core's end is the longest of the paths:
          the products back to back from X; an A tile ridden ``m`` edges (its skew chain
          continued), then the products; B ridden from time 0; or an A tile ridden, then, once
          its product is done, B ridden (``m_A + m_B <= S - 3``). A ride gains ``alpha + T - c``
          an edge and ``(p - 2) alpha`` more at each wrap-around
          (:func:`~plummer.kernels._ring.line_ride`). Products back to back (``d = c -
          alpha - T_A > 0``), the tile that crossed the wrap-around into a row's first low
          core J arrives ``delta = (p - 1) alpha + T_A - c`` after its products would start,
          and ``delta - mu d`` at the core ``mu`` further on: every row has this wave, so
          the mean over the cores adds ``sum over mu < min(p, S - 1) of max(0, delta - mu
          d) / p``, and the latest core is row 0's (``n_0 = S - 1``): ``max(X_high +
          max(0, delta - d), X_low + delta)``, the second core of its wave or the first;
        - ``cycles = launch +`` the longest of these paths and ``mean_core_cycles = launch
          +`` the largest of their means over the cores (the products and the wave, or the
          rides at their longest).

        **Exact** (equal to the executor and the recurrence to 1e-9) where the products
        and the wave dominate: ``d >= (p - 2) alpha / p`` (a ring trip costs the products
        more than the tile: the wave does not wrap around), and B never waits: a B tile
        that a row freed after its product reaches the row ``n`` on, whose skew took ``n
        S/q`` steps fewer, ``n (alpha + T_B)`` later; with ``Q = (S/q) (u + alpha) + alpha +
        T_B`` and ``L_n`` the most the start of row ``I`` (X plus its wave) can exceed row
        ``I + n``'s beyond those steps, ``n (Q - c) + L_n <= c`` for every ``1 <= n < q``
        (``tests/test_cannon.py`` checks the condition by enumeration). For ``p = q`` this is
        the classic ``Q = u + alpha + T_B <= c``, every LLM layout with tiles of 12 or more
        on the WSE-3 preset. Elsewhere a **lower bound**: the paths are the executor's, but
        B's waits accumulate along the column and a core may mix rides (the mean counts each
        row's own start or row 0's B chain, whichever is later, not their mixtures). Over the
        stated sweep of ``tests/test_cannon.py`` (``bound_sweep`` seeds 0 and 1, as
        MeshGEMM's) the cycles are at most 7.4% and the mean 28.7% below the recurrence, never
        above (exact in 98% and 30% of the configurations outside the exact regime; the
        large errors are bare specs where B or the links pace every step). With the WSE-3
        preset on P x Q meshes up to 40 x 20 (virtual tiles 1 to 16), 99% of the
        configurations are exact and the rest within 0.05%.

        ``hops`` and ``routing_stages`` (two PE stages per skew step) are those of the
        longest path (``d cycles / d alpha``); memory is the executor's per core, as
        MeshGEMM's.
        """
        g = grid(self.name, spec, params)
        p, q, s, ms, ks, ns = g["p"], g["q"], g["s"], g["ms"], g["ks"], g["ns"]
        bp, bq = s / p, s / q  # virtual columns and rows per core
        alpha = spec.alpha
        a_col, b_row = ms * bq * ks, ks * ns * bp  # elements of the boundary column and row
        t_a, t_b = serialization_cycles(spec, a_col), serialization_cycles(spec, b_row)
        tiles = bp * bq * ks  # loops of a step's products
        c = spec.step_overhead_cycles + compute_cycles(spec, a_col * ns * bp, tiles, tiles * ns)
        u = 2 * spec.message_overhead_cycles + t_a
        last, longest = s - 1, maximum(s - 3, 0.0)
        skew_hops = last + (p - 2) * bp  # row 0's skew, S - 1 steps: l_p(S - 1)
        x_max = last * u + alpha * skew_hops
        row_trip, col_trip = 2 - 2 / p, 2 - 2 / q  # mean hops of an edge
        x_mean = (last - bq * (q - 1) * 0.5) * (u + alpha * row_trip)  # mean steps x a step
        products = s * c
        edge_a, edge_b = alpha + t_a - c, alpha + t_b - c  # what a one-hop edge gains

        # the wave from the wrap-around: delta at a row's first low core, d less a core on
        delta, d = (p - 2) * alpha + edge_a, -edge_a
        reach = minimum(p, last)  # cores a wave can reach: mu < min(p, S - 1)
        rising = d <= 0  # no decay: the wave reaches every core it can
        waves = rising * reach - (1 - rising) * quotient(-delta, d + rising * (1.0 - d))
        waves = minimum(waves, reach) * (delta > 0)  # ceil(delta / d), at most reach
        wave = (waves * delta - d * waves * (waves - 1) * 0.5) / p
        # per row, the mean over its cores is at least its own start (X and the wave) and
        # B's chain from row 0's first product, which row I receives I (alpha + T_B) after
        # row 0 freed it: two lines in I, so the larger one summed over the rows, split
        # where they cross
        chain = bq * (u + alpha * row_trip) + edge_b  # row I starts bq skew steps earlier
        climbs = chain > 0
        behind = c + wave  # the chain starts this far below row 0's own start
        first = maximum(quotient(behind, chain + (1 - climbs)) + 1, 1.0)  # first row it wins
        count = maximum(minimum(q - 1, longest) - first + 1, 0.0) * climbs
        gained = count * (chain * (first + minimum(q - 1, longest)) * 0.5 - behind)
        # the means: the products and the wave (or B's chain); the rides at their longest:
        # A from the skew, B from time 0, B once row 0's first product is done
        gain_a, gain_b = t_a - c + alpha * row_trip, t_b - c + alpha * col_trip
        ahead = maximum(wave + gained / q, maximum(last * gain_a, longest * gain_b - c))
        mean = products + maximum(x_mean + ahead, last * gain_b)

        # An A tile ridden from row 0's skew: its first peak is 2 edges on, past the next
        # wrap-around (the wave's second core), worth delta - d; it is the ride's best where
        # an edge loses and a trip does not gain. B's rides gain nothing where its trips
        # lose (so do its edges), but for B from time 0 crossing the wrap-around into row 0,
        # (q - 2) alpha + alpha + T_B - c < (q - 1) alpha <= x_max: never longer than the
        # skew. Elsewhere (communication-bound) every ride is evaluated.
        peak = ((p - 2) * alpha + 2 * edge_a) * (s >= 3)
        cycles, hops, stages = x_max + products + maximum(peak, 0.0), skew_hops + p * (peak > 0), 2 * last
        settled = (edge_a + alpha * (row_trip - 1) < 0) & (edge_b + alpha * (col_trip - 1) < 0)
        cycles, hops, stages = on_subset(
            settled == 0, _rides, (cycles, hops, stages), alpha=alpha, t_a=t_a, t_b=t_b, c=c,
            s=s, p=p, q=q, x_max=x_max, products=products,
        )

        routes = 6.0 - (p < 3) - (q < 3)
        memory = a_col * (bp + 1) + b_row * (bq + 1) + ms * bq * (ns * bp)
        return Cost.make(
            spec,
            cycles=spec.launch_overhead_cycles + cycles,
            compute_cycles=products,
            hops=hops,
            routing_stages=stages,
            memory_per_core_bytes=spec.dtype_bytes * memory,
            routes_per_core=routes,
            mean_core_cycles=spec.launch_overhead_cycles + mean,
        )

    def sweep(self) -> list[dict[str, Any]]:
        """Square meshes 2x2 to 24x24 (odd and even) with tiles from 1x1x1 to 16x16x16, and
        the P x Q meshes of :func:`~plummer.kernels._virtual.pxq_sweep`."""
        tiles = [(1, 1, 1), (2, 3, 1), (1, 8, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)]
        square = [
            {"p": p, "q": p, "m": p * mt, "k": p * kt, "n": p * nt}
            for p in (2, 3, 4, 5, 7, 8, 11, 16, 24)
            for mt, kt, nt in tiles
            if p <= 16 and p * p * mt * kt * nt <= 16 * 16 * 8 * 8 * 8
            or p == 24 and (mt, kt, nt) in ((1, 8, 2), (4, 4, 4))
        ]
        return square + pxq_sweep()

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: ArrayLike) -> KernelRun:
        v = self.configuration(spec, params)
        virtual_sizes(self.name, v)
        return PROGRAM.execute(spec, v, seed, trace, operands)



def _rides(
    cycles: Any, hops: Any, stages: Any, *, alpha: float, t_a: Any, t_b: Any, c: Any, s: Any,
    p: Any, q: Any, x_max: Any, products: Any,
) -> tuple[Any, Any, Any]:
    """The ride paths of :meth:`Cannon.cost`: the longest of ``cycles`` (with its ``hops``
    and ``stages``) and an A tile ridden from row 0's skew, B ridden from time 0, or A then
    B ridden from row 0."""
    last = s - 1
    ride, m = line_ride(alpha, t_a - c, last, p, last)
    value = x_max + ride + products
    cycles, hops = _select(cycles, value, (cycles, value), (hops, line_window(last + m, p)))
    ride, m = line_ride(alpha, t_b - c, last, q)
    value = ride + products
    cycles, hops, stages = _select(
        cycles, value, (cycles, value), (hops, line_window(m, q)), (stages, 0.0)
    )
    # an A tile ridden m_A edges on row 0, then B ridden m_B edges from row 0 (its column's
    # wrap-around is the q-th edge: the ride from start 1), m_A + m_B <= S - 3: one ride at
    # its best or its first peak (just past a wrap-around), the other at its best over the
    # edges left
    longest = maximum(s - 3, 0.0)
    best_ab, m_a, m_b = _two_rides(alpha, t_a - c, t_b - c, longest, p, q, last, 1.0)
    value = x_max + best_ab + products - c
    return _select(
        cycles, value, (cycles, value),
        (hops, line_window(last + m_a, p) + line_window(1 + m_b, q) - line_window(1.0, q)),
        (stages, 2 * last),
    )

def _first_peak(alpha: Any, gain: Any, longest: Any, n: Any, start: Any) -> tuple[Any, Any]:
    """The ride of :func:`~plummer.kernels._ring.line_ride` (same arguments) to just past
    its first wrap-around (or 0 edges if that is beyond ``longest``): value and length."""
    m = residue(-start, n) + 1.0
    m = m * (m <= longest)
    return alpha * (line_window(start + m, n) - line_window(start, n)) + m * gain, m


def _two_rides(
    alpha: Any, gain_a: Any, gain_b: Any, longest: Any, p: Any, q: Any, start_a: Any, start_b: Any
) -> tuple[Any, Any, Any]:
    """A ride of ``m_a`` edges on the row ring then one of ``m_b`` on the column ring,
    ``m_a + m_b <= longest`` (:func:`~plummer.kernels._ring.line_ride` each): the best of
    four pairs, one ride at its best or its first peak and the other at its best over the
    edges left. Returns the value and the two lengths."""
    best = None
    for ride_first in (True, False):
        gain, n, start = (gain_a, p, start_a) if ride_first else (gain_b, q, start_b)
        other = (gain_b, q, start_b) if ride_first else (gain_a, p, start_a)
        for take in (line_ride(alpha, gain, longest, n, start), _first_peak(alpha, gain, longest, n, start)):
            value, m = take
            fill, m_other = line_ride(alpha, other[0], longest - m, other[1], other[2])
            total = value + fill
            m_a, m_b = (m, m_other) if ride_first else (m_other, m)
            if best is None:
                best = (total, m_a, m_b)
            else:
                best = _select(best[0], total, (best[0], total), (best[1], m_a), (best[2], m_b))
    return best
