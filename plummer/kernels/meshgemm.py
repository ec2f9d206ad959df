"""MeshGEMM: Cannon-style cyclic shifting on the INTERLEAVE ring (WaferLLM, OSDI 2025).

The program (executor) and the closed form live side by side.

Program (:class:`~plummer.kernels._virtual.RingGemm`), on a ``p`` x ``q`` mesh with the
virtual S x S grid of :mod:`plummer.kernels._virtual` (``S = lcm(p, q)``; for ``p = q``
one virtual tile per core, the square kernel), logical core (I, J) at physical
(ring[J], ring[I]) of the INTERLEAVE rings (:func:`~plummer.kernels._ring.interleave`):

1. The host places A[I', J'] and the pre-skewed B[(I' + J') mod S, J'] at virtual (I', J')
   (not timed).
2. Alignment of A (timed), as the measured kernel does it: every row runs ``N``
   store-and-forward steps (:func:`~plummer.kernels._virtual.meshgemm_steps`, ``floor(P/2)``
   on a square mesh), backward along the ring where its virtual rows need fewer steps so
   (``I <= P/2`` on a square mesh), else forward. A virtual row turns its tiles as far as
   it needs (``I'`` backward or ``S - I'`` forward), then resends its aligned tile (the
   receiver discards the copy but waits for it before its next step), so the sends happen,
   are timed, and every core finishes its alignment after ``N`` steps. Each step: the
   sender's PE activates the message (``message_overhead``), the boundary column crosses
   one ring edge (<= 2 hops), the receiver's PE completes it (``message_overhead``).
3. S compute steps: C += A . B over the core's virtual tiles (one call: ``step_overhead``
   + the products' loops and vector FMAs), while the boundary column of A moves one ring
   position forward along the row and the boundary row of B along the column into the
   spare buffers, overlapping the products; a step's messages leave once its new tiles
   have arrived.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, KernelRun, blockwise, maximum
from plummer.kernels._gemm import GemmKernel
from plummer.kernels._ring import interleave, interleave_ride, interleave_window
from plummer.kernels._virtual import (
    RingGemm,
    grid,
    meshgemm_alignment,
    on_subset,
    pxq_sweep,
    ring_gemm_routes,
    virtual_sizes,
)
from plummer.mesh import compute_cycles, serialization_cycles

#: The program: INTERLEAVE rings on both axes; colors A forward 0-5, A backward 6-11, B 12-17.
PROGRAM = RingGemm(interleave, interleave, meshgemm_alignment, 0, (0, 6, 12))


def meshgemm_routes(p: int, q: int | None = None) -> int:
    """Most distinct colors any core of a ``p`` x ``q`` MeshGEMM configures (exact)."""
    return ring_gemm_routes(PROGRAM, p, p if q is None else q)


def _select(best: Any, value: Any, *pairs: tuple[Any, Any]) -> tuple[Any, ...]:
    """Where ``value > best``, the second of each pair, else the first."""
    better = value > best
    return tuple(old + better * (new - old) for old, new in pairs)


class MeshGEMM(GemmKernel):
    """MeshGEMM on a ``p`` x ``q`` mesh (``m``, ``k``, ``n`` multiples of ``lcm(p, q)``)."""

    name = "meshgemm"
    square = False

    @blockwise
    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """Closed form, derived from the program above and the machine's rules.

        With ``S = lcm(p, q)``, ``T_A = T((M/q)(K/S))`` and ``T_B = T((K/S)(N/p))`` the
        serialization of the boundary column and row (cycles), ``c = step_overhead +
        compute_cycles`` of one step's products, ``mo`` the message overhead and ``w_n(L)``
        the most hops of L consecutive edges of an n-core INTERLEAVE ring
        (:func:`~plummer.kernels._ring.interleave_window`; ``L (2n - 2)/n`` on average):

        - alignment (rules 4-6): a step's message leaves ``mo`` after the previous one
          arrived and arrives ``h alpha + T_A + mo`` later, so core J of row I is aligned
          at ``X = N u + alpha W(J)``, ``u = 2 mo + T_A``, with ``W(J)`` the hops of the
          ``N`` edges its chain crossed: ``max X = N u + alpha w_p(N)`` and ``mean X = N u +
          alpha N (2p - 2)/p`` in either direction (the link and buffer waits never bind);
        - products: a step's message leaves when its new tiles arrived, arrives ``h alpha +
          T`` later and is stored once the products of two steps ago are done (double
          buffers, rule 7); a product starts when its tiles arrived and the previous
          product is done. Every core's end is therefore the longest of the paths: the
          products back to back from X (``X + S c``); an A tile ridden ``m`` edges then
          the products (``X + alpha w_p(m) + m (T_A - c) + S c``: a backward row's
          alignment chain recrosses the same edges, so both windows are maximal at once);
          B ridden from time 0 (``alpha w_q(m) + m (T_B - c) + S c``); or an A tile ridden
          ``m_A`` edges and, once its product is done, B ridden ``m_B`` edges, ``m_A + m_B
          <= S - 3`` (``N u + alpha (w_p(N + m_A) + w_q(m_B)) + m_A (T_A - c) + m_B (T_B - c)
          + (S - 1) c``; every row reaches ``w_p(N + m_A)``). The best ride is at ``m = 0``,
          at its longest or just before a turn of the ring
          (:func:`~plummer.kernels._ring.interleave_ride`);
        - ``cycles = launch +`` the longest of these paths and ``mean_core_cycles = launch
          +`` the largest of their means over the cores (at ``m = 0`` or the longest ride).

        **Exact** (equal to the executor and the recurrence to 1e-9) where the products
        dominate: ``c >= 3 alpha + T_A`` and ``c >= 2 alpha + T_B`` (the cycles already for
        ``c >= 2 alpha + max(T_A, T_B)``; every measured run, and the square kernel's
        ``launch + N u + alpha (P - 1) + P c``). Elsewhere a **lower bound**: the paths are
        the executor's, but a core may take a mixture of them (rides with stops, the split of
        the edges between an A and a B ride is chosen, not searched). Over the stated sweep of
        ``tests/test_meshgemm.py`` (``bound_sweep`` seeds 0 and 1: 5120 configurations of
        random specs, communication-bound ones common, meshes 2 to 29 a side, square and P x
        Q, S <= 120) the cycles are at most 0.28% and the mean 3.0% below the recurrence,
        never above (exact in 99.9% and 94% of the configurations outside the exact regime;
        sampling that regime directly found the cycles up to 0.9% below, where T_B > T_A and
        both rides want every edge). With the WSE-3 preset every configuration we tried
        (P x Q meshes up to 40 x 20, virtual tiles 1 to 16 a side) is in the exact regime.

        ``hops`` and ``routing_stages`` (two PE stages per alignment step) are those of the
        longest path (``d cycles / d alpha``); memory is the executor's per core: per
        virtual row ``S/p + 1`` A tiles (a window and the spare), per virtual column ``S/q +
        1`` B tiles, and C.
        """
        g = grid(self.name, spec, params)
        p, q, s, ms, ks, ns = g["p"], g["q"], g["s"], g["ms"], g["ks"], g["ns"]
        bp, bq = s / p, s / q  # virtual columns and rows per core
        alpha = spec.alpha
        a_col, b_row = ms * bq * ks, ks * ns * bp  # elements of the boundary column and row
        t_a, t_b = serialization_cycles(spec, a_col), serialization_cycles(spec, b_row)
        tiles = bp * bq * ks  # loops of a step's products
        c = spec.step_overhead_cycles + compute_cycles(spec, a_col * ns * bp, tiles, tiles * ns)
        steps = s * 0.5 + g["odd"] * (bq * 0.5 - 1)  # meshgemm_steps: S/2, bq (q + 1)/2 - 1
        align_hops = interleave_window(steps, p)
        align = steps * (2 * spec.message_overhead_cycles + t_a)
        x_max = align + alpha * align_hops
        x_mean = align + alpha * steps * (2 - 2 / p)
        products = s * c
        last, longest = s - 1, maximum(s - 3, 0.0)

        # the products back to back from the alignment
        cycles, hops, stages = x_max + products, align_hops, 2 * steps
        # the means: the products; the rides at their longest: A from the alignment, B from
        # time 0, B once the first product is done (mean edges of a ring: 2 - 2/n hops)
        gain_a = t_a - c + alpha * (2 - 2 / p)
        gain_b = t_b - c + alpha * (2 - 2 / q)
        ahead = maximum(maximum(last * gain_a, longest * gain_b - c), 0.0)
        mean = products + maximum(x_mean + ahead, last * gain_b)
        # a ride can beat the products only where an edge gains: 2 alpha + T > c
        cycles, hops, stages = on_subset(
            2 * alpha + maximum(t_a, t_b) > c, _rides, (cycles, hops, stages), alpha=alpha,
            t_a=t_a, t_b=t_b, c=c, s=s, p=p, q=q, steps=steps, x_max=x_max,
            products=products, align_hops=align_hops,
        )

        # routes: 4 row colors on a 2-core row, else 6 (3 per direction); 2 column colors
        # on a 2- or 3-core column, else 3 (the tests check this against the exact count)
        routes = 9.0 - 2.0 * (p < 3) - (q < 4)
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
        """Square meshes 2x2 to 32x32 (odd and even) with tiles from 1x1x1 to 16x16x16, and
        P x Q meshes (one side a multiple of the other, and coprime sides) with virtual
        tiles from 1x1x1 to 4x4x4."""
        tiles = [(1, 1, 1), (2, 3, 1), (1, 8, 2), (4, 4, 4), (8, 8, 8), (16, 16, 16)]
        square = [
            {"p": p, "q": p, "m": p * mt, "k": p * kt, "n": p * nt}
            for p in (2, 3, 4, 5, 7, 8, 11, 16, 24, 31, 32)
            for mt, kt, nt in tiles
            if p * p * mt * kt * nt <= 32 * 32 * 8 * 8 * 8
        ]
        return square + pxq_sweep()

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: ArrayLike) -> KernelRun:
        v = self.configuration(spec, params)
        virtual_sizes(self.name, v)
        return PROGRAM.execute(spec, v, seed, trace, operands)



def _rides(
    cycles: Any, hops: Any, stages: Any, *, alpha: float, t_a: Any, t_b: Any, c: Any, s: Any,
    p: Any, q: Any, steps: Any, x_max: Any, products: Any, align_hops: Any,
) -> tuple[Any, Any, Any]:
    """The ride paths of :meth:`MeshGEMM.cost`: the longest of ``cycles`` (with its ``hops``
    and ``stages``) and an A tile ridden, B ridden from time 0, or A then B ridden."""
    last = s - 1
    # an A tile ridden, then the products
    ride, m = interleave_ride(alpha, t_a - c, last, p)
    value = x_max + ride + products
    cycles, hops = _select(cycles, value, (cycles, value), (hops, align_hops + interleave_window(m, p)))
    # B ridden from time 0
    ride, m = interleave_ride(alpha, t_b - c, last, q)
    value = ride + products
    cycles, hops, stages = _select(
        cycles, value, (cycles, value), (hops, interleave_window(m, q)), (stages, 0.0)
    )
    # an A tile ridden m_A edges, then (once its product is done) B ridden m_B edges,
    # m_A + m_B <= S - 3: each ride at its best if both fit, else one shortened
    longest = maximum(s - 3, 0.0)
    ride_a, m_a = interleave_ride(alpha, t_a - c, longest, p, steps)
    ride_b, m_b = interleave_ride(alpha, t_b - c, longest, q)
    fit_b, n_b = interleave_ride(alpha, t_b - c, longest - m_a, q)
    fit_a, n_a = interleave_ride(alpha, t_a - c, longest - m_b, p, steps)
    first_a = ride_a + fit_b >= fit_a + ride_b  # keep A's best ride, shorten B's
    both = m_a + m_b <= longest
    m_a = m_a + (1 - both) * (1 - first_a) * (n_a - m_a)
    m_b = m_b + (1 - both) * first_a * (n_b - m_b)
    ride = ride_a + ride_b + (1 - both) * (
        first_a * (fit_b - ride_b) + (1 - first_a) * (fit_a - ride_a))
    value = x_max + ride + products - c
    return _select(
        cycles, value, (cycles, value),
        (hops, interleave_window(steps + m_a, p) + interleave_window(m_b, q)), (stages, 2 * steps),
    )
