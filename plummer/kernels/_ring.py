"""The INTERLEAVE ring of MeshGEMM: a logical ring on a line of cores with edges of <= 2 hops.

For a line of ``n`` cores the ring visits the even positions going out and the odd ones
coming back: ``0, 2, 4, ..., 5, 3, 1`` (DESIGN.md section 2). Data move forward along the
ring, ``ring[k] -> ring[k + 1]``: even ``i`` sends to ``min(i + 2, n - 1)`` and odd ``i`` to
``max(i - 2, 0)``; the two turning edges are one hop.
"""

from __future__ import annotations

from functools import cache


@cache
def interleave_ring(n: int) -> tuple[int, ...]:
    """Physical positions of logical ring positions ``0..n-1``."""
    evens = list(range(0, n, 2))
    odds = list(range(1, n, 2))
    return tuple(evens + odds[::-1])


@cache
def ring_edge(n: int, k: int, forward: bool = True) -> tuple[int, int]:
    """(source, destination) physical positions of the edge leaving logical position ``k``.

    Forward edges go ``ring[k] -> ring[k + 1]``; backward edges ``ring[k] -> ring[k - 1]``.
    """
    ring = interleave_ring(n)
    step = 1 if forward else -1
    return ring[k % n], ring[(k + step) % n]


def edge_color(n: int, k: int, forward: bool, base: int) -> int:
    """Color of the ring edge leaving logical position ``k``: ``base`` + 3 x direction
    (0 up the line, 1 down) + a phase that differs between consecutive edges.

    The phase is ``k mod 2``, and 2 for the closing edge of an odd ring (an odd cycle
    needs a third phase). So a core never receives and sends on one color, and since
    edges of one direction never overlap, a pass-through core routes a color it neither
    sends nor receives on. Uses colors ``base .. base + 5``.
    """
    src, dst = ring_edge(n, k, forward)
    phase = 2 if (n % 2 and k % n == n - 1) else k % 2
    return base + (0 if dst > src else 3) + phase


@cache
def ring_colors(n: int, forward: bool, base: int) -> tuple[frozenset[int], ...]:
    """Colors (:func:`edge_color`) each position of a line of ``n`` configures for the
    ring's edges: the sender, the pass-through core and the receiver of every edge."""
    colors: list[set[int]] = [set() for _ in range(n)]
    for k in range(n):
        src, dst = ring_edge(n, k, forward)
        for position in range(min(src, dst), max(src, dst) + 1):
            colors[position].add(edge_color(n, k, forward, base))
    return tuple(frozenset(c) for c in colors)
