"""Logical rings on a line of cores: MeshGEMM's INTERLEAVE ring and Cannon's wrapped line.

For a line of ``n`` cores the INTERLEAVE ring visits the even positions going out and the
odd ones coming back: ``0, 2, 4, ..., 5, 3, 1`` (DESIGN.md section 2). Data move forward
along the ring, ``ring[k] -> ring[k + 1]``: even ``i`` sends to ``min(i + 2, n - 1)`` and odd
``i`` to ``max(i - 2, 0)``; the two turning edges are one hop. Cannon's ring is the line
itself, one hop per edge but the one that closes the ring, ``n - 1`` hops (no torus link).

:class:`Ring` describes either for the programs (positions, edges, paths, colors); the
window and ride functions at the end are their closed forms (hops of consecutive edges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from plummer.kernels._base import maximum, minimum


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


@dataclass(frozen=True)
class Ring:
    """A logical ring over a line of ``n`` cores: ``positions[k]`` is the physical position
    (along the line) of logical position ``k``; data move *forward*, ``k -> k + 1``.

    Two kinds: ``"interleave"`` (MeshGEMM: :func:`interleave_ring`, every edge <= 2 hops,
    forward and backward edges) and ``"line"`` (Cannon on a mesh without torus links:
    position ``k`` at ``n - 1 - k``, so forward is one hop towards position 0 of the line,
    and the edge closing the ring runs ``n - 1`` hops back; forward only).
    """

    kind: str
    n: int
    positions: tuple[int, ...]

    def edge(self, k: int, forward: bool = True) -> tuple[int, int]:
        """(source, destination) physical positions of the edge leaving logical ``k``."""
        step = 1 if forward else -1
        return self.positions[k % self.n], self.positions[(k + step) % self.n]

    def hops(self, k: int, forward: bool = True) -> int:
        """Hops of the edge leaving logical ``k``."""
        src, dst = self.edge(k, forward)
        return abs(dst - src)

    def path(self, k: int, forward: bool, plus: str, minus: str) -> str:
        """The edge leaving ``k`` as a path of directions (``plus`` = towards higher positions)."""
        src, dst = self.edge(k, forward)
        return plus * (dst - src) if dst > src else minus * (src - dst)

    def color(self, k: int, forward: bool, base: int) -> int:
        """The color of the edge leaving ``k``, from ``base`` (6 colors for an INTERLEAVE
        ring, :func:`edge_color`; 3 for a line: its one-hop edges alternate ``base`` and
        ``base + 1`` by source position, the closing edge has ``base + 2``)."""
        if self.kind == "interleave":
            return edge_color(self.n, k, forward, base)
        if not forward:
            raise ValueError("a line ring has forward edges only")
        src = self.positions[k % self.n]
        return base + (src % 2 if src else 2)

    def colors(self, forward: bool, base: int) -> tuple[frozenset[int], ...]:
        """The colors each physical position configures for the ring's edges of one
        direction: sender, pass-through cores and receiver of every edge."""
        if self.kind == "interleave":
            return ring_colors(self.n, forward, base)
        colors: list[set[int]] = [set() for _ in range(self.n)]
        for k in range(self.n):
            src, dst = self.edge(k, forward)
            for position in range(min(src, dst), max(src, dst) + 1):
                colors[position].add(self.color(k, forward, base))
        return tuple(frozenset(c) for c in colors)


@cache
def interleave(n: int) -> Ring:
    """MeshGEMM's INTERLEAVE ring on ``n`` cores."""
    return Ring("interleave", n, interleave_ring(n))


@cache
def wrapped_line(n: int) -> Ring:
    """Cannon's ring on a line of ``n`` cores without a torus link."""
    return Ring("line", n, tuple(range(n - 1, -1, -1)))


# ------------------------------------------------------------- closed forms (vectorised)
# Hops of windows of consecutive ring edges, for the cost models: arguments are Python
# floats (one configuration) or float arrays, whole numbers; ``n`` is the ring's length.


def quotient(a: Any, n: Any) -> Any:
    """``floor(a / n)`` as a float (in place for arrays: numpy's floor of a fresh quotient
    allocates a second array, ten times slower over a block)."""
    if type(a) is float and type(n) is float:
        return float(math.floor(a / n))
    out = np.divide(a, n)
    return np.floor(out, out=out) if isinstance(out, np.ndarray) else np.floor(out)


def residue(a: Any, n: Any) -> Any:
    """``a mod n`` of whole numbers (``n > 0``), as a float, without numpy's slow fmod."""
    return a - n * quotient(a, n)


def interleave_window(length: Any, n: Any) -> Any:
    """Most hops of ``length`` consecutive edges of an INTERLEAVE ring of ``n`` cores.

    The ring's edges are 2 hops but its two turns (1 hop), which split the other edges
    into runs of ``floor((n - 1)/2)`` and ``ceil((n - 1)/2) - 1`` (``2n - 2`` hops a trip).
    A window holds both turns of every whole trip, and of the rest ``r = length mod n``
    one turn if ``r`` exceeds the longer run, else none: ``2 length - 2 floor(length/n)
    - [r > floor((n - 1)/2)]``. Averaged over its start, a window has ``length (2n - 2)/n``.
    """
    trips = quotient(length, n)
    rest = length - n * trips
    return 2 * (length - trips) - (2 * rest > n - 1) * 1.0


def interleave_ride(
    alpha: Any, gain: Any, longest: Any, n: Any, start: Any = 0.0
) -> tuple[Any, Any]:
    """``max over 0 <= m <= longest`` of ``alpha * (interleave_window(start + m, n) -
    interleave_window(start, n)) + m * gain``: the value and an ``m`` that attains it
    (``gain`` is cycles per edge beside its hops; ``longest >= 0``).

    Each edge adds ``beta = 2 alpha + gain``, each turn ``alpha`` less. If ``beta >= alpha``
    the sum never falls (``m = longest``); if ``beta <= 0`` it never rises (``m = 0``);
    else it peaks just before a turn, where ``start + m`` is ``G = floor((n - 1)/2)`` or
    ``n - 1`` modulo ``n``, and a trip changes it by ``n beta - 2 alpha``: the best such
    peaks are in the last trip if that is positive, else in the first. So the maximum is
    at ``0``, ``longest`` or one of two peaks.
    """
    base = interleave_window(start, n)
    last = n * (2 * alpha + gain) >= 2 * alpha
    best_m = longest
    best = alpha * (interleave_window(start + longest, n) - base) + longest * gain
    for turn in (quotient(n - 1, 2.0), n - 1):
        first = residue(turn - start, n)  # the first m >= 0 just before this turn
        ahead = longest - residue(longest - first, n)  # the last one <= longest
        peak = maximum(minimum(first + last * (ahead - first), longest), 0.0)
        value = alpha * (interleave_window(start + peak, n) - base) + peak * gain
        better = value > best
        best_m = best_m + better * (peak - best_m)
        best = maximum(best, value)
    worse = best < 0.0
    return maximum(best, 0.0), best_m - worse * best_m


def line_window(length: Any, n: Any) -> Any:
    """Most hops of ``length`` consecutive edges of a line ring of ``n`` cores (Cannon): its
    edges are one hop but the one closing the ring, ``n - 1`` hops, and a window of
    ``length`` edges holds at most ``ceil(length / n)`` of those: ``length + (n - 2)
    ceil(length / n)``. Averaged over its start, a window has ``length (2n - 2)/n``."""
    return length - (n - 2) * quotient(-length, n)


def line_ride(alpha: Any, gain: Any, longest: Any, n: Any, start: Any = 0.0) -> tuple[Any, Any]:
    """``max over 0 <= m <= longest`` of ``alpha * (line_window(start + m, n) -
    line_window(start, n)) + m * gain`` and an ``m`` that attains it.

    Each edge adds ``alpha + gain``, and the closing edge ``(n - 2) alpha`` more, where
    ``start + m`` passes ``1`` modulo ``n``; a trip adds ``n (alpha + gain) + (n - 2)
    alpha``. If ``alpha + gain >= 0`` the sum never falls (``m = longest``); else it peaks
    just after a closing edge, the first if a trip loses, the last if it gains: the
    maximum is at ``0``, ``longest`` or that peak.
    """
    base = line_window(start, n)
    best_m = longest
    best = alpha * (line_window(start + longest, n) - base) + longest * gain
    first = residue(-start, n) + 1.0  # the first m >= 1 whose edge closes the ring
    ahead = longest - residue(longest - first, n)  # the last one <= longest
    gains = n * (alpha + gain) + (n - 2) * alpha >= 0
    peak = maximum(minimum(first + gains * (ahead - first), longest), 0.0)
    value = alpha * (line_window(start + peak, n) - base) + peak * gain
    better = value > best
    best_m = best_m + better * (peak - best_m)
    best = maximum(best, value)
    worse = best < 0.0
    return maximum(best, 0.0), best_m - worse * best_m
