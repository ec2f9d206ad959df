"""Allreduce and reduce of a vector along one mesh axis: pipeline, pipeline-mid, K-tree, ring.

Every row (``axis="x"``) or every column (``axis="y"``) of a ``p`` x ``q`` mesh holds one
vector of ``n`` elements per core and reduces it independently; a line has ``length`` =
``p`` (or ``q``) cores at positions ``0 .. length-1`` (west to east, or north to south).
A scalar allreduce (RMSNorm sums, softmax max and sum) is the same kernel with ``n = 1``.

Chain trees (pipeline, pipeline-mid, K-tree)
--------------------------------------------
All three are one :meth:`Mesh.reduce` per line over a *chain tree* of ``K`` levels. Level
``l`` groups its super-cores (the level-``l-1`` roots, spaced ``d_l`` cores apart; level
1: every core, ``d_1 = 1``) into groups of ``s_l`` consecutive ones; the super-core at
index ``a_l`` of each group is its root; the others chain-reduce towards it from both
ends (``a_l`` stages from the first, ``b_l = s_l - 1 - a_l`` from the last), each edge a
pass-through path of ``d_l`` hops into one add-and-forward stage (rule 5). A core that is
a root at several levels adds all its children in one stage. ``d_{l+1} = s_l d_l``.

- ``pipeline``: one level, ``s = length``, root at the end ``a = length - 1``;
- ``pipeline-mid``: one level, root in the middle ``a = length // 2`` (the K-tree, K = 1);
- ``ktree``: ``K = k_tree`` levels, ``a_l = s_l // 2``. Level 1 has ``group_num`` groups
  of ``length / group_num`` cores; the ``group_num`` roots are split again by the same
  rule with ``K - 1`` levels, where each level's group size is the divisor of what is
  left nearest to ``(what is left)^(1 / levels left)``; the top level is one chain.
  ``group_num = 0`` (or absent) picks level 1 by that rule too (about ``length^(1/K)``
  cores per group). K = 2 is exactly the measured MeshGEMV: ``g`` groups, chains from
  both ends to each group's middle, then the group roots chain-reduce (pass-through
  between roots, one stage per group root) to the global root
  ``(g // 2) (length / g) + (length / g) // 2``.

The allreduce then multicasts the sum from the root's stage back along the line (one
segment each way, ``alpha`` per hop, no ``beta``; rule 5: reduce+broadcast pays ``T``
once). The ``reduce-*`` kernels stop at the root. Before the reduction every core's PE
activates the kernel's message tasks, one per reduction level and one for the broadcast:
``(K + 1) * message_overhead`` (``K`` without broadcast; the pipelines have K = 1).

Colors: level ``l`` uses ``4 (l-1) + {0,1}`` towards the root from the start of a group
and ``4 (l-1) + {2,3}`` from its end (the last digit alternates along a chain, so no core
receives and sends on one color); the broadcast uses ``4K`` and ``4K + 1``. The global
root configures the most: ``[a_l >= 1] + [b_l >= 1]`` per level plus one per broadcast
direction (``K + 1`` routes per side of the root).

Closed form (:func:`line_timing`): a chain tree on a line takes ``stages beta + hops alpha
+ T`` cycles and ``mean_beta beta + mean_alpha alpha + T`` on average over its cores,
with coefficients that depend on the tree only (:class:`LineTiming`), where no message
waits for a link. A tree is its first level composed with the tree of its group roots
(:func:`compose`); the K-tree's upper levels are the default split, which depends on
``(K - 1, g)`` only. In a two-level tree a long message (``T > beta + s alpha``) makes the
first level-2 edge of every chain wait behind the level-1 messages it crosses; the wait
is added exactly (:func:`two_level_wait`). With three levels or more, upper edges can
wait too, which the closed form leaves out (a lower bound, :class:`KTreeAllreduce`).
Over arrays of configurations the coefficients are looked up per line in tables that
this closed form fills once (the pipeline by length, the K-tree by ``(K, g, length)``);
one configuration is computed in Python floats and kept per line.

Ring
----
Reduce-scatter then all-gather on the INTERLEAVE ring (:mod:`plummer.kernels._ring`, edges
of <= 2 hops): the vector is cut into ``length`` chunks of ``c = n / length``; in each of
the ``length - 1`` reduce-scatter steps every core sends one chunk to its ring successor,
which adds it to its own (store-and-forward: the sender's PE activates the message,
``message_overhead``; the chunk crosses the edge, ``h alpha + T(c)``; the receiver's PE
completes it, ``message_overhead``; then adds it, one vector op plus ``c`` FMAs at the
FMA rate). The ``length - 1`` all-gather steps forward the summed chunks the same way
without the add.
"""

from __future__ import annotations

import abc
import math
from functools import cache, lru_cache
from typing import Any, ClassVar, NamedTuple

import numpy as np

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.kernels._base import (
    Cost,
    Kernel,
    KernelRun,
    as_float,
    blockwise,
    floor,
    int_value,
    int_values,
    maximum,
    minimum,
    require,
)
from plummer.kernels._gemm import operands_or_random, scalar_params
from plummer.kernels._ring import edge_color, ring_edge
from plummer.mesh import Mesh, Segment, compute_cycles, serialization_cycles

AXES = ("x", "y")

#: (towards higher positions, towards lower positions) per axis.
_STEPS = {"x": ("E", "W"), "y": ("S", "N")}


# ------------------------------------------------------------------ parameters
def check_axis(kernel: str, axis: Any) -> str:
    """``axis`` if it is ``"x"`` or ``"y"``, else a :class:`SpecError` naming it."""
    if not isinstance(axis, str) or axis not in AXES:
        raise SpecError(f"{kernel}: parameter 'axis' = {axis!r} must be 'x' or 'y'")
    return axis


def line_params(kernel: Kernel, spec: HardwareSpec, params: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Validate a line kernel's parameters: ``axis`` (``"x"`` or ``"y"``), ``group_num``
    (>= 0, 0 = the default tree) and the other names of ``kernel.parameters`` (positive
    integers), after filling in ``kernel.defaults``; the mesh must fit the fabric and have
    at least 2 cores along the axis. Returns the values and the axis: int arrays, and
    Python ints for Python ints (whose arithmetic costs a fifth of numpy scalars')."""
    params = {**kernel.defaults, **params}
    axis = check_axis(kernel.name, params.pop("axis", None))
    group = None
    if "group_num" in kernel.parameters:
        group = int_value(kernel.name, "group_num", params.pop("group_num", None), minimum=0)
    values = int_values(kernel.name, params, _integer_names(kernel.parameters))
    if group is not None:
        values["group_num"] = group
    p, q = values["p"], values["q"]
    require(kernel.name, p <= spec.fabric_width, "p", p, f"exceeds the fabric width {spec.fabric_width}")
    require(kernel.name, q <= spec.fabric_height, "q", q, f"exceeds the fabric height {spec.fabric_height}")
    along = "p" if axis == "x" else "q"
    require(kernel.name, values[along] >= 2, along, values[along], _ALONG_TWO[axis])
    return values, axis


#: What a line of one core breaks, per axis.
_ALONG_TWO = {axis: f"must be >= 2: the reduction runs along axis '{axis}'" for axis in AXES}


@cache
def _integer_names(parameters: tuple[str, ...]) -> tuple[str, ...]:
    """The positive-integer parameters of a line kernel (all but ``axis`` and ``group_num``)."""
    return tuple(n for n in parameters if n not in ("axis", "group_num"))


def configuration(values: dict[str, Any]) -> dict[str, int]:
    """The one configuration an execution takes (from :func:`line_params`), as Python ints."""
    return scalar_params({name: np.asarray(value) for name, value in values.items()})


def along(values: dict[str, Any], axis: str) -> tuple[Any, Any]:
    """(cores along the axis, number of independent lines)."""
    return (values["p"], values["q"]) if axis == "x" else (values["q"], values["p"])


def line_core(axis: str, line: int, position: int) -> tuple[int, int]:
    """The core (x, y) at ``position`` along ``axis`` on line ``line``."""
    return (position, line) if axis == "x" else (line, position)


def line_config(axis: str, length: int, **params: Any) -> dict[str, Any]:
    """A sweep configuration: a line of ``length`` cores along ``axis``, 2 lines across."""
    mesh = {"p": length, "q": 2} if axis == "x" else {"p": 2, "q": length}
    return {**mesh, **params, "axis": axis}


# ------------------------------------------------------------- tree structure
@cache
def _default_groups(levels: int, length: int) -> int:
    """Groups at the bottom level for ``length`` cores and ``levels`` levels: ``length / s``
    with ``s`` the divisor of ``length`` nearest ``length^(1/levels)`` (ties: the smaller)."""
    if levels <= 1 or length <= 1:
        return 1
    target = length ** (1.0 / levels)
    divisors = {d for i in range(1, math.isqrt(length) + 1) if length % i == 0 for d in (i, length // i)}
    size = min(sorted(divisors), key=lambda s: abs(math.log(s / target)))
    return length // size


def pipeline_levels(length: int, middle: bool) -> list[tuple[int, int, int]]:
    """The one level ``(s, a, d)`` of a chain over the whole line, root at the end (or in
    the middle)."""
    return [(length, length // 2 if middle else length - 1, 1)]


def ktree_levels(length: int, k_tree: int, group_num: int) -> list[tuple[int, int, int]]:
    """The ``k_tree`` levels ``(s_l, a_l, d_l)`` of the K-tree of one configuration (module
    docstring): ``group_num`` groups at level 1 (0: the default), then the default split
    of the group roots."""
    levels = []
    groups = group_num or _default_groups(k_tree, length)
    current, spacing = length, 1
    for left in range(k_tree, 0, -1):  # levels still to build, this one included
        size = current // groups
        levels.append((size, size // 2, spacing))
        current, spacing = groups, spacing * size
        groups = _default_groups(left - 1, current)
    return levels


#: K-tree depth any line allows, however short: the sweeps validate K = 3 and 4 against the
#: executor on lines from 2 cores up, where some levels are empty.
KTREE_ANY_LINE = 4


def max_ktree_levels(length: Any) -> Any:
    """The deepest K-tree a line of ``length`` cores allows: ``floor(log2 length)`` levels
    can each merge at least two groups, and any line allows :data:`KTREE_ANY_LINE` (levels
    past the merges are empty: each only costs its message task). Numbers or int arrays.

    Example:
        >>> max_ktree_levels(8), max_ktree_levels(1024), max_ktree_levels(np.array([2, 63, 64]))
        (4, 10, array([4, 5, 6]))
    """
    if isinstance(length, (int, np.integer)):
        return max(KTREE_ANY_LINE, int(length).bit_length() - 1)
    return np.maximum(KTREE_ANY_LINE, np.floor(np.log2(np.asarray(length, dtype=np.float64))).astype(np.int64))


def check_ktree(kernel: str, length: np.ndarray, k: np.ndarray, group_num: np.ndarray) -> None:
    """``k_tree`` must not exceed :func:`max_ktree_levels` of the line, and ``group_num``
    must divide the line (and be 1 or 0 for K = 1)."""
    most = max_ktree_levels(length)
    ok = np.asarray(k <= most)
    if not ok.all():
        first = [np.broadcast_to(np.asarray(x), ok.shape)[~ok].ravel()[0].item() for x in (k, length, most)]
        raise SpecError(
            f"{kernel}: parameter 'k_tree' = {first[0]} must be <= {first[2]} on a line of {first[1]} cores "
            f"along the axis (floor(log2 cores) levels can merge, and {KTREE_ANY_LINE} are allowed on any line)"
        )
    require(  # 0 divides as 1 does
        kernel, length % (group_num + (group_num == 0)) == 0, "group_num", group_num,
        "must divide the number of cores along the axis (or be 0 for the default)",
    )
    require(kernel, (k > 1) | (group_num <= 1), "group_num", group_num, "must be 0 or 1 when k_tree = 1")


# --------------------------------------------------------------- closed form
class ChainTree(NamedTuple):
    """The integers the timing of a chain tree needs (numbers, or float arrays).

    ``stages = sum a_l``: PE stages on the root's critical path; ``root = sum a_l d_l``:
    the root's position, which is also the hops of that path; the non-root cores' stages
    end, in sum, ``wait_beta * beta + wait_alpha * alpha`` after the leaves inject;
    ``routes = sum ([a_l >= 1] + [b_l >= 1])``: the root's colors; ``chained``: levels
    with a chain (``s_l >= 2``); ``member``: the bound on a non-root core's colors
    (:func:`line_timing`) is ``max(m + chained, r + member)`` for a core that holds ``r``
    colors as a root and ``m`` as a member before the tree's first level.
    """

    stages: Any
    root: Any
    wait_beta: Any
    wait_alpha: Any
    routes: Any
    chained: Any
    member: Any


#: The tree of one core: no level, nothing to wait for.
ONE_CORE = ChainTree(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def compose(size: Any, root: Any, groups: Any, upper: ChainTree) -> ChainTree:
    """A first level of ``groups`` chains of ``size`` cores with the root at index
    ``root`` (``b = size - 1 - root`` cores beyond it), under the tree ``upper`` of the
    ``groups`` roots (spaced ``size`` cores apart, so its hops scale by ``size``).

    The first level's members end ``0 .. a - 1`` and ``0 .. b - 1`` stages of ``beta +
    alpha`` from their chain's ends (``tri(a) + tri(b)`` per group, ``tri(x) = x (x -
    1) / 2``); its roots send at ``a (beta + alpha)``, which every one of ``upper``'s
    ``groups - 1`` members waits for on top of its own time. The colors follow the
    recurrence of :func:`line_timing`, level by level (a max-plus product).
    """
    beyond = size - 1.0 - root
    local = groups * (root * (root - 1.0) + beyond * (beyond - 1.0)) * 0.5 + (groups - 1.0) * root
    ends = minimum(root, 1.0) + minimum(beyond, 1.0)  # [a >= 1] + [b >= 1] (integers >= 0)
    return ChainTree(
        stages=root + upper.stages,
        root=root + size * upper.root,
        wait_beta=local + upper.wait_beta,
        wait_alpha=local + size * upper.wait_alpha,
        routes=ends + upper.routes,
        chained=(size >= 2.0) + upper.chained,
        member=maximum(2.0 * (maximum(root, beyond) >= 2.0) + upper.chained, ends + upper.member),
    )


class LinkWait(NamedTuple):
    """The link wait of a two-level K-tree (:func:`two_level_wait`), independent of the
    spec: ``makespan``, ``mean_left`` and ``mean_right`` weigh the waits ``D_L`` and
    ``D_R`` of the level-2 edges of ``hops`` hops; the right chains lead by ``lead``
    stages of ``beta + alpha``. ``mean_right`` and ``lead`` are None where ``D_R`` does
    not reach the mean (with the broadcast every core waits as the root does)."""

    hops: Any
    makespan: Any
    mean_left: Any
    mean_right: Any
    lead: Any


class LineTiming(NamedTuple):
    """A chain-tree reduce (or allreduce) on a line, independent of the spec: from the
    moment every core's operand is ready it takes ``stages beta + hops alpha + T``
    cycles (the last event over the line's cores) and ``mean_beta beta + mean_alpha alpha
    + T`` on average over them (``T``: the vector's serialization), plus the ``wait`` of
    a two-level tree's edges behind other messages (None: no wait). ``stages`` and
    ``hops``: PE stages and pass-through hops on the critical path; ``routes``: most
    colors at any core. Numbers or float arrays.
    """

    stages: Any
    hops: Any
    mean_beta: Any
    mean_alpha: Any
    routes: Any
    wait: LinkWait | None = None


#: Fields of :class:`LineTiming` before its ``wait``.
_LINE_FIELDS = len(LineTiming._fields) - 1


def line_timing(length: Any, tree: ChainTree, broadcast: bool) -> LineTiming:
    """Closed form of a chain-tree reduce (and broadcast) on lines of ``length`` cores,
    from rules 4 and 5.

    An uncontended edge of ``d`` hops adds ``d alpha`` to the head and the receiving
    stage ``beta`` before the sum's head leaves, so along a level-``l`` chain each
    super-core's head leaves ``beta + d_l alpha`` after its predecessor's; every group of
    a level is identical, so all level-``l`` roots send their head at
    ``F_l = F_{l-1} + a_l (beta + d_l alpha)`` (``F_0 = 0``: leaves inject at once; the
    side with ``a_l >= b_l`` members is the later one): ``F_K = stages beta + root alpha``.
    A core's last event is its stage's end, ``head + T`` (a leaf: its tail leaving), so
    without broadcast the makespan is ``F_K + T`` and the mean sums ``F_{l-1} + k (beta +
    d_l alpha)`` over the members at distance ``k`` from their chain's end
    (:func:`compose`), plus ``F_K`` for the root. With the broadcast every core ends when
    the multicast reaches it, ``F_K + T + |y - root| alpha``: the makespan adds
    ``max(root, length - 1 - root)`` hops, the mean ``mean_y |y - root|``.

    Colors: the global root holds ``[a_l >= 1] + [b_l >= 1]`` per level (plus one per
    broadcast direction). A core that is a root below level ``m`` and a chain member at
    ``m`` holds at most the root's colors below ``m``, 2 at ``m`` (1 at a chain's end),
    at most one pass-through color per level above (and one broadcast color); that
    bound, ``max(chained, member)`` of :class:`ChainTree`, only exceeds the root's count
    for a chain with its root at the end (the pipeline), where it is attained, so the
    maximum of the two is exact.
    """
    root = tree.root
    member = maximum(tree.chained, tree.member)
    if broadcast:
        beyond = length - 1.0 - root
        spread = (root * (root + 1.0) + beyond * (beyond + 1.0)) * 0.5 / length  # mean |y - root|
        return LineTiming(
            stages=tree.stages,
            hops=root + maximum(root, beyond),
            mean_beta=tree.stages,
            mean_alpha=root + spread,
            routes=maximum(tree.routes + (root > 0.0) + (beyond > 0.0), member + 1.0),
        )
    inverse = 1.0 / length
    return LineTiming(
        stages=tree.stages,
        hops=root,
        mean_beta=(tree.wait_beta + tree.stages) * inverse,
        mean_alpha=(tree.wait_alpha + root) * inverse,
        routes=maximum(tree.routes, member),
    )


def pipeline_line(cores: Any, middle: bool, broadcast: bool) -> LineTiming:
    """One chain over lines of ``cores`` cores (an int or int array), root at the end or
    in the middle: :func:`_pipeline`, looked up by line in a table of it."""
    if type(cores) is int:
        return _pipeline_one(float(cores), middle, broadcast)
    cores = np.asarray(cores)
    table = _pipeline_table(_table_length(cores), middle, broadcast)
    return LineTiming(*(column.take(cores) for column in table[:_LINE_FIELDS]))  # one level: no wait


def _pipeline(length: Any, middle: bool, broadcast: bool) -> LineTiming:
    """The pipeline's closed form (numbers or float arrays)."""
    tree = compose(length, floor(length * 0.5) if middle else length - 1.0, 1.0, ONE_CORE)
    return line_timing(length, tree, broadcast)


#: :func:`_pipeline` of one configuration, kept: it depends on the line only, and a
#: layout evaluates the same lines again and again.
_pipeline_one = lru_cache(maxsize=1 << 12)(_pipeline)


@cache
def _pipeline_table(lmax: int, middle: bool, broadcast: bool) -> LineTiming:
    """:func:`_pipeline` of every line of up to ``lmax`` cores, at index ``length``."""
    return _pipeline(np.maximum(np.arange(lmax + 1, dtype=float), 1.0), middle, broadcast)


def _table_length(cores: np.ndarray) -> int:
    """The longest line a table holds for lines of ``cores``: a power of two >= 1024 (so
    every fabric of today needs one or two tables)."""
    return max(1024, 1 << int(cores.max() if cores.size else 1).bit_length())


@cache
def _default_tree(levels: int, length: int) -> ChainTree:
    """The default split of ``length`` cores with ``levels`` levels, as Python floats."""
    tree = ONE_CORE
    for size, a, spacing in reversed(ktree_levels(length, levels, 0)):
        tree = compose(float(size), float(a), float(length // (size * spacing)), tree)
    return tree


@cache
def _tree_table(kmax: int, lmax: int) -> tuple[np.ndarray, ChainTree]:
    """Lookup tables at index ``levels * (lmax + 1) + length`` for ``levels <= kmax`` and
    ``length <= lmax``: the default groups at level 1 (int64) and the :class:`ChainTree`
    of the default split (float arrays), built level by level as :func:`ktree_levels`
    splits: ``tree(K, n) = compose(n / G, G, tree(K - 1, G))``, ``G`` the default groups."""
    lengths = np.arange(lmax + 1)
    groups = np.array([[_default_groups(levels, n) for n in lengths] for levels in range(kmax + 1)])
    rows = [ChainTree(*np.zeros((len(ChainTree._fields), lmax + 1)))]  # no level: one core
    for level_groups in groups[1:]:
        size = np.maximum(lengths // level_groups, 1).astype(float)  # length 0: unused
        upper = ChainTree(*(column.take(level_groups) for column in rows[-1]))
        rows.append(compose(size, np.floor(size * 0.5), level_groups.astype(float), upper))
    return groups.reshape(-1), ChainTree(*(np.concatenate(column) for column in zip(*rows)))


def two_level_wait(k_tree: Any, length: Any, size: Any, groups: Any, broadcast: bool) -> LinkWait:
    """The waits of a K = 2 tree (``groups`` groups of ``size`` cores) behind level-1
    messages, from rule 4 (zero weights where ``k_tree != 2``; numbers or float arrays).

    A level-2 edge from a group root (its head leaves at ``F_1 = a (beta + alpha)``)
    crosses the next group's chain from its near end to its root, in the direction that
    chain sends: that chain's member ``i`` (``0 .. a - 1`` from the end) holds its
    outgoing link ``[i (beta + alpha), i (beta + alpha) + T)``, which the head asks for at
    ``F_1 + (size - a + i) alpha``. Each link frees ``beta + alpha`` after the one before
    while the head gains only ``alpha``, so the last one binds: the head reaches the root
    at ``max(F_1 + size alpha, (a - 1)(beta + alpha) + T + alpha)``, ``D_L = max(0, T -
    beta - size alpha)`` late. A head that left later meets no traffic (the level-1 tails
    have passed), so only a chain's first edge waits, and everything after it moves by
    ``D_L``: the root's stage (it waits for the longer, left side), hence the makespan
    and, with the broadcast, every core's end. Westward edges cross a right chain of
    ``b`` members, ``(a - b)`` stages ahead: ``D_R = max(0, D_L - (a - b)(beta + alpha))``
    (none if ``b = 0``). Without the broadcast the line's mean moves by the ``A`` cores
    (``A = groups // 2``: the level-2 root and the members of its left chain behind the
    first edge) that wait ``D_L`` and the ``B - 1`` (``B = groups - 1 - A``) right
    members that wait ``D_R``, over ``length``.
    """
    root = floor(size * 0.5)
    beyond = size - 1.0 - root
    late = (k_tree == 2) * minimum(root, 1.0) * minimum(groups - 1.0, 1.0)  # level 1 sends, level 2 exists
    if broadcast:
        return LinkWait(size, late, late, None, None)
    left = floor(groups * 0.5)
    right = maximum(groups - 2.0 - left, 0.0) * minimum(beyond, 1.0)
    return LinkWait(size, late, late * left / length, late * right / length, root - beyond)


def link_wait(spec: HardwareSpec, wait: LinkWait | None, t: Any) -> tuple[Any, Any]:
    """(makespan, mean) cycles of ``wait`` for messages of ``t`` cycles' serialization."""
    if wait is None:
        return 0.0, 0.0
    excess = t - spec.beta - spec.alpha * wait.hops
    left = maximum(excess, 0.0)
    mean = wait.mean_left * left
    if wait.lead is not None:
        mean = mean + wait.mean_right * maximum(excess - (spec.beta + spec.alpha) * wait.lead, 0.0)
    return wait.makespan * left, mean


class _KTreeTable(NamedTuple):
    """:func:`_ktree` of every line of ``g s <= lmax`` cores in ``g`` groups of ``s`` for
    ``K <= kmax``, at index ``(K - 1) pairs + offsets[g] + s``: the fields of
    :class:`LineTiming` and the weights of its :class:`LinkWait` (``makespan``,
    ``mean_left``, ``mean_right``); the default ``g`` at index ``K (lmax + 1) + length``."""

    default_groups: np.ndarray
    offsets: np.ndarray
    pairs: int
    lines: LineTiming
    weights: tuple[np.ndarray, np.ndarray, np.ndarray]


@cache
def _ktree_table(kmax: int, lmax: int, broadcast: bool) -> _KTreeTable:
    default_groups, _ = _tree_table(kmax, lmax)
    sizes = lmax // np.arange(1, lmax + 1)  # s = 1 .. lmax // g for g = 1 .. lmax
    starts = np.concatenate(([0], np.cumsum(sizes)))
    pairs = int(starts[-1])
    groups = np.repeat(np.arange(1, lmax + 1), sizes)
    size = np.arange(pairs) - np.repeat(starts[:-1], sizes) + 1
    k_tree = np.repeat(np.arange(1, kmax + 1), pairs)
    groups, size = np.tile(groups, kmax), np.tile(size, kmax)
    line = _ktree(kmax, lmax, (groups * size).astype(float), k_tree, groups, broadcast)
    wait = line.wait
    weights = np.broadcast_arrays(wait.makespan, wait.mean_left, 0.0 if broadcast else wait.mean_right)
    return _KTreeTable(default_groups, np.concatenate(([0], starts[:-1] - 1)), pairs,
                       line._replace(wait=None), tuple(weights))


def _ktree(kmax: int, lmax: int, length: np.ndarray, k_tree: np.ndarray, groups: np.ndarray,
           broadcast: bool) -> LineTiming:
    """The K-tree's closed form on lines of ``length`` cores (float arrays) in ``groups``
    groups at level 1 (int arrays; ``k_tree <= kmax``, ``length <= lmax``)."""
    _, trees = _tree_table(kmax, lmax)
    upper = ChainTree(*(column.take((k_tree - 1) * (lmax + 1) + groups) for column in trees))
    groups = groups.astype(float)
    size = length / groups  # exact: the groups divide the line
    line = line_timing(length, compose(size, floor(size * 0.5), groups, upper), broadcast)
    return line._replace(wait=two_level_wait(k_tree, length, size, groups, broadcast))


def ktree_line(cores: Any, k_tree: Any, group_num: Any, broadcast: bool) -> LineTiming:
    """The K-tree on lines of ``cores`` cores (an int or int array): level 1 of
    ``g`` groups (``group_num``, or the default for 0) composed with the default split of
    the ``g`` roots into ``k_tree - 1`` levels (which depends on ``k_tree`` and ``g``
    only), and the two-level tree's link wait. ``k_tree`` and ``group_num``: ints or int
    arrays. Arrays look the line up in a table of :func:`_ktree` over every ``(K, g,
    length)``."""
    if type(cores) is int and type(k_tree) is int and type(group_num) is int:
        return _ktree_one(cores, k_tree, group_num, broadcast)
    cores = np.asarray(cores)
    k_tree, group_num = np.asarray(k_tree), np.asarray(group_num)
    kmax = 4 * -(-int(k_tree.max() if k_tree.size else 1) // 4)  # a multiple of 4: few tables
    lmax = _table_length(cores)
    table = _ktree_table(kmax, lmax, broadcast)
    groups = np.where(group_num > 0, group_num, table.default_groups.take(k_tree * (lmax + 1) + cores))
    size = cores // groups
    index = (k_tree - 1) * table.pairs + table.offsets.take(groups) + size
    size = size.astype(float)
    if broadcast:  # line_timing and two_level_wait repeat fields: each taken once
        stages, late = table.lines.stages.take(index), table.weights[0].take(index)
        return LineTiming(
            stages, table.lines.hops.take(index), stages, table.lines.mean_alpha.take(index),
            table.lines.routes.take(index), LinkWait(size, late, late, None, None),
        )
    lead = 2.0 * floor(size * 0.5) + 1.0 - size  # a - b
    line = LineTiming(*(column.take(index) for column in table.lines[:_LINE_FIELDS]))
    return line._replace(wait=LinkWait(size, *(column.take(index) for column in table.weights), lead))


@lru_cache(maxsize=1 << 16)
def _ktree_one(length: int, k_tree: int, group_num: int, broadcast: bool) -> LineTiming:
    """:func:`ktree_line` of one configuration, in Python floats (kept, as
    :data:`_pipeline_one`)."""
    groups = group_num or _default_groups(k_tree, length)
    size = length // groups
    tree = compose(float(size), float(size // 2), float(groups), _default_tree(k_tree - 1, groups))
    line = line_timing(float(length), tree, broadcast)
    if k_tree != 2:
        return line
    return line._replace(wait=two_level_wait(2, float(length), float(size), float(groups), broadcast))


def chain_cost(spec: HardwareSpec, line: LineTiming, elements: Any, start: Any, memory: Any) -> Cost:
    """Cost of ``start`` cycles of PE work on every core (all at once), then the chain-tree
    reduce of ``elements`` timed by ``line``; ``memory`` in bytes per core."""
    beta = spec.beta
    t = serialization_cycles(spec, elements)
    fixed = spec.launch_overhead_cycles + start + t
    wait, mean_wait = link_wait(spec, line.wait, t)
    return Cost.make(
        spec,
        cycles=fixed + beta * line.stages + spec.alpha * line.hops + wait,
        compute_cycles=start + beta * line.stages,
        hops=line.hops,
        routing_stages=line.stages,
        memory_per_core_bytes=memory,
        routes_per_core=line.routes,
        mean_core_cycles=fixed + beta * line.mean_beta + spec.alpha * line.mean_alpha + mean_wait,
    )


def tasks(tree_depth: Any, broadcast: bool) -> Any:
    """Message tasks a chain-tree kernel activates: one per level, one for the broadcast."""
    return tree_depth + (1.0 if broadcast else 0.0)


# ----------------------------------------------------------------- program
def tree_edges(length: int, levels: list[tuple[int, int, int]]) -> tuple[list[tuple[int, int, int]], int]:
    """Edges ``(child, parent, color offset)`` of the chain tree on a line, and the root."""
    edges = []
    offset = 0
    for level, (size, a, spacing) in enumerate(levels):
        for first in range(offset, length, size * spacing):
            for i in range(size):
                if i == a:
                    continue
                towards_end = i < a
                parent = i + 1 if towards_end else i - 1
                color = 4 * level + (0 if towards_end else 2) + i % 2
                edges.append((first + i * spacing, first + parent * spacing, color))
        offset += a * spacing
    return edges, offset


#: What an allreduce's execution may combine: the data function and its numpy reference.
COMBINE = {"sum": (np.add, np.sum), "max": (np.maximum, np.max)}


def combiner(kernel: str, combine: str) -> tuple[Any, Any]:
    """The functions of ``combine`` (a :data:`COMBINE` key); a clear error otherwise."""
    if combine not in COMBINE:
        raise SpecError(f"{kernel}: combine = {combine!r} must be one of {', '.join(COMBINE)}")
    return COMBINE[combine]


def record_tree(
    mesh: Mesh, axis: str, length: int, lines: int, levels: list[tuple[int, int, int]],
    local: str, dst: str, color_base: int, broadcast: bool, combine: Any = np.add,
) -> None:
    """Record one chain-tree reduce (with its broadcast) on every line of the mesh."""
    edges, root = tree_edges(length, levels)
    forward, backward = _STEPS[axis]
    bcast = color_base + 4 * len(levels)
    for line in range(lines):
        tree = [
            (line_core(axis, line, child), (forward if parent > child else backward) * abs(parent - child), color_base + color)
            for child, parent, color in edges
        ]
        segments = []
        if broadcast and root > 0:
            segments.append(Segment(backward * root, bcast, deliver_all=True))
        if broadcast and root < length - 1:
            segments.append(Segment(forward * (length - 1 - root), bcast + 1, deliver_all=True))
        mesh.reduce(local, tree, line_core(axis, line, root), dst, broadcast=segments, combine=combine)


def activate(mesh: Mesh, buffer: str, cycles: float) -> None:
    """Every core's PE activates the kernel's message tasks (``cycles``) before it starts."""
    for y in range(mesh.height):
        for x in range(mesh.width):
            mesh.work((x, y), [buffer], buffer, cycles)


def load_vectors(mesh: Mesh, seed: int, n: int, name: str, operands: Any = None, kernel: str = "") -> np.ndarray:
    """An ``n``-vector on every core: ``operands`` (one ``[y, x, n]`` array) or random ones;
    returns them as ``[y, x, n]``."""
    (data,) = operands_or_random(kernel, operands, seed, (mesh.height, mesh.width, n))
    for y in range(mesh.height):
        for x in range(mesh.width):
            mesh.load((x, y), name, data[y, x])
    return data


def gather(result: Any, mesh: Mesh, name: str) -> np.ndarray:
    """Tile ``name`` of every core as ``[y, x, n]``."""
    return np.array([[result.tile((x, y), name) for x in range(mesh.width)] for y in range(mesh.height)])


# ----------------------------------------------------------------- kernels
class _ChainAllreduce(Kernel):
    """A chain-tree allreduce (``broadcast``) or reduce along one axis."""

    family = "allreduce"
    broadcast: ClassVar[bool] = True
    parameters: ClassVar[tuple[str, ...]] = ("p", "q", "n", "axis")
    defaults: ClassVar[dict[str, Any]] = {"axis": "x"}

    def _values(self, spec: HardwareSpec, params: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
        """Validated parameters (int arrays) and the axis."""
        return line_params(self, spec, params)

    @abc.abstractmethod
    def _line(self, cores: Any, v: dict[str, Any]) -> LineTiming:
        """The closed form's timing of lines of ``cores`` cores (an int or int array)."""

    @abc.abstractmethod
    def _levels(self, length: int, s: dict[str, int]) -> list[tuple[int, int, int]]:
        """The program's levels ``(s_l, a_l, d_l)`` for one configuration ``s``."""

    def _depth(self, v: dict[str, Any]) -> Any:
        """Levels of the tree (message tasks each core activates before the broadcast's)."""
        return 1.0

    def check(self, spec: HardwareSpec, **params: Any) -> None:
        self._values(spec, params)

    @blockwise
    def cost(self, spec: HardwareSpec, **params: Any) -> Cost:
        """Closed form: ``launch + tasks * message_overhead`` (all cores at once, then
        :func:`line_timing`, and :func:`two_level_wait` for K = 2). Exact for the
        pipelines and K-trees of K <= 2; for K >= 3 a lower bound (:class:`KTreeAllreduce`)."""
        v, axis = self._values(spec, params)
        n = as_float(v["n"])
        start = tasks(self._depth(v), self.broadcast) * spec.message_overhead_cycles
        line = self._line(along(v, axis)[0], v)
        return chain_cost(spec, line, n, start, (2.0 * spec.dtype_bytes) * n)

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, combine: str = "sum", **params: Any) -> KernelRun:
        """Run on ``operands`` (one ``[y, x, n]`` array of every core's vector) or random
        data; ``combine`` = ``sum`` or ``max`` (a max-allreduce, timed the same)."""
        merge, reference = combiner(self.name, combine)
        v, axis = self._values(spec, params)
        s = configuration(v)
        length, lines = along(s, axis)
        levels = self._levels(length, s)
        mesh = Mesh(spec, s["p"], s["q"], trace=trace)
        data = load_vectors(mesh, seed, s["n"], "v", operands, self.name)
        activate(mesh, "v", tasks(len(levels), self.broadcast) * spec.message_overhead_cycles)
        record_tree(mesh, axis, length, lines, levels, "v", "sum", 0, self.broadcast, merge)
        result = mesh.run()
        sums = reference(data, axis=1 if axis == "x" else 0, keepdims=True)
        if self.broadcast:
            return KernelRun(gather(result, mesh, "sum"), np.broadcast_to(sums, data.shape), result)
        _, root = tree_edges(length, levels)
        cores = [(root, line) if axis == "x" else (line, root) for line in range(lines)]
        output = np.array([result.tile(core, "sum") for core in cores])
        return KernelRun(output, sums.reshape(lines, s["n"]), result)

    def sweep(self) -> list[dict[str, Any]]:
        """Lines of 2 to 64 cores (odd and even) on both axes, n = 1 and 16."""
        return [
            line_config(axis, length, n=n)
            for length in (2, 3, 4, 5, 8, 13, 16, 31, 64)
            for n in (1, 16)
            for axis in AXES
        ]


class PipelineAllreduce(_ChainAllreduce):
    """Chain to a root at the end of the line, then multicast back."""

    name = "pipeline"
    middle: ClassVar[bool] = False

    def _line(self, cores: Any, v: dict[str, Any]) -> LineTiming:
        return pipeline_line(cores, self.middle, self.broadcast)

    def _levels(self, length: int, s: dict[str, int]) -> list[tuple[int, int, int]]:
        return pipeline_levels(length, self.middle)


class PipelineMidAllreduce(PipelineAllreduce):
    """Chains from both ends to a root in the middle, then multicast both ways."""

    name = "pipeline-mid"
    middle = True


class KTreeAllreduce(_ChainAllreduce):
    """The K-tree of MeshGEMV (``k_tree`` levels, ``group_num`` groups at level 1).

    Exact for K <= 2. For K >= 3 the edges of levels above 2 can also wait behind the
    messages of the levels below, which the closed form leaves out: it is a lower bound.
    Over the K >= 3 part of :meth:`sweep` (lines of 2 to 64 cores, K = 3 and 4, the
    default groups, on the WSE-3 preset and a fitted spec) the executor takes at most
    0.48% longer (makespan) and 0.48% (mean over cores) for n <= 16, and 24% and 25% for
    n = 64; without the broadcast (``reduce-ktree``) 0.58% and 0.16%, and 28% and 7.0%.
    """

    name = "ktree"
    parameters = ("p", "q", "n", "k_tree", "group_num", "axis")
    defaults = {"axis": "x", "k_tree": 2, "group_num": 0}

    def _values(self, spec: HardwareSpec, params: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
        v, axis = line_params(self, spec, params)
        check_ktree(self.name, along(v, axis)[0], v["k_tree"], v["group_num"])
        return v, axis

    def _line(self, cores: Any, v: dict[str, Any]) -> LineTiming:
        return ktree_line(cores, v["k_tree"], v["group_num"], self.broadcast)

    def _levels(self, length: int, s: dict[str, int]) -> list[tuple[int, int, int]]:
        return ktree_levels(length, s["k_tree"], s["group_num"])

    def _depth(self, v: dict[str, Any]) -> Any:
        return as_float(v["k_tree"])

    def sweep(self) -> list[dict[str, Any]]:
        """Lines of 2 to 64 cores: K = 2 with every group count that divides, n = 4 and 64
        (long enough for level-2 edges to wait); K = 1; K = 3 and 4, n = 1, 16 and 64."""
        configs = []
        for length in _SWEEP_LINES:
            for g in [d for d in range(1, length + 1) if length % d == 0]:
                for n in (4, 64):
                    configs.append({"p": 2, "q": length, "n": n, "k_tree": 2, "group_num": g, "axis": "y"})
            configs.append({"p": length, "q": 2, "n": 1, "k_tree": 1, "group_num": 0, "axis": "x"})
            for k in (3, 4):
                for n in (1, 16, 64):
                    configs.append({"p": length, "q": 2, "n": n, "k_tree": k, "group_num": 0, "axis": "x"})
        return configs


#: The lines (cores) of the K-tree sweeps.
_SWEEP_LINES = (2, 3, 4, 6, 9, 12, 15, 16, 25, 30, 48, 63, 64)


class ReducePipeline(PipelineAllreduce):
    """:class:`PipelineAllreduce` without the broadcast: the sum ends at the last core."""

    name = "reduce-pipeline"
    broadcast = False


class ReducePipelineMid(PipelineMidAllreduce):
    """:class:`PipelineMidAllreduce` without the broadcast: the sum ends at the middle."""

    name = "reduce-pipeline-mid"
    broadcast = False


class ReduceKTree(KTreeAllreduce):
    """:class:`KTreeAllreduce` without the broadcast: the sum ends at the global root."""

    name = "reduce-ktree"
    broadcast = False


class KTree2DAllreduce(Kernel):
    """2-D allreduce: a K-tree allreduce along ``axis``, then one along the other axis.

    ``group_num`` (0 = default per axis) must divide both ``p`` and ``q``.
    """

    name = "ktree-2d"
    family = "allreduce"
    parameters = ("p", "q", "n", "k_tree", "group_num", "axis")
    defaults = {"axis": "x", "k_tree": 2, "group_num": 0}

    def _values(self, spec: HardwareSpec, params: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
        v, axis = line_params(self, spec, params)
        other = "q" if axis == "x" else "p"
        require(self.name, v[other] >= 2, other, v[other], "must be >= 2: a 2-D allreduce runs along both axes")
        for length in (v["p"], v["q"]):
            check_ktree(self.name, length, v["k_tree"], v["group_num"])
        return v, axis

    def check(self, spec: HardwareSpec, **params: Any) -> None:
        self._values(spec, params)

    @blockwise
    def cost(self, spec: HardwareSpec, **params: Any) -> Cost:
        """Two K-tree allreduces in sequence. The second phase of every line along the
        other axis starts when its cores hold the first phase's sum; cores of one such
        line share their position along the first axis, so they start together at
        ``F_x = tasks mo + F_K + T + |x - root| alpha`` (the root's PE is free at
        ``F_K + T``): makespans add, and means add (exact)."""
        v, axis = self._values(spec, params)
        first, second = along(v, axis)
        k, groups, n = v["k_tree"], v["group_num"], as_float(v["n"])
        one, two = ktree_line(first, k, groups, True), ktree_line(second, k, groups, True)
        start = tasks(as_float(k), True) * spec.message_overhead_cycles
        t = serialization_cycles(spec, n)
        fixed = spec.launch_overhead_cycles + 2.0 * (start + t)
        (wait_one, _), (wait_two, _) = link_wait(spec, one.wait, t), link_wait(spec, two.wait, t)
        fixed = fixed + wait_one + wait_two  # with the broadcast, the mean waits as the makespan
        stages = one.stages + two.stages
        return Cost.make(
            spec,
            cycles=fixed + spec.beta * stages + spec.alpha * (one.hops + two.hops),
            compute_cycles=2.0 * start + spec.beta * stages,
            hops=one.hops + two.hops,
            routing_stages=stages,
            memory_per_core_bytes=(3.0 * spec.dtype_bytes) * n,
            routes_per_core=one.routes + two.routes,
            mean_core_cycles=fixed + spec.beta * (one.mean_beta + two.mean_beta)
            + spec.alpha * (one.mean_alpha + two.mean_alpha),
        )

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: Any) -> KernelRun:
        v, axis = self._values(spec, params)
        s = configuration(v)
        other = "y" if axis == "x" else "x"
        mesh = Mesh(spec, s["p"], s["q"], trace=trace)
        data = load_vectors(mesh, seed, s["n"], "v", operands, self.name)
        overhead = (s["k_tree"] + 1) * spec.message_overhead_cycles
        base = 0
        for ax, src, dst in ((axis, "v", "s1"), (other, "s1", "s2")):
            length, lines = along(s, ax)
            levels = ktree_levels(length, s["k_tree"], s["group_num"])
            activate(mesh, src, overhead)
            record_tree(mesh, ax, length, lines, levels, src, dst, base, True)
            base += 4 * len(levels) + 2
        result = mesh.run()
        total = np.broadcast_to(data.sum(axis=(0, 1), keepdims=True), data.shape)
        return KernelRun(gather(result, mesh, "s2"), total, result)

    def sweep(self) -> list[dict[str, Any]]:
        """Square and oblong meshes up to 16 x 16, K = 1 and 2, n = 1 to 64 (level-2
        edges wait behind level-1 messages at n = 64)."""
        return [
            {"p": p, "q": q, "n": n, "k_tree": k, "group_num": 0, "axis": axis}
            for p, q in ((2, 2), (3, 5), (4, 4), (8, 6), (16, 16))
            for k in (1, 2)
            for n, axis in ((1, "x"), (8, "y"), (64, "x"))
        ]


class RingAllreduce(Kernel):
    """Reduce-scatter + all-gather on the INTERLEAVE ring; ``n`` must split into
    ``length`` chunks."""

    name = "ring"
    family = "allreduce"
    parameters = ("p", "q", "n", "axis")
    defaults = {"axis": "x"}

    def _values(self, spec: HardwareSpec, params: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
        v, axis = line_params(self, spec, params)
        length = along(v, axis)[0]
        require(self.name, v["n"] % length == 0, "n", v["n"], "must be a multiple of the cores along the axis")
        return v, axis

    def check(self, spec: HardwareSpec, **params: Any) -> None:
        self._values(spec, params)

    @blockwise
    def cost(self, spec: HardwareSpec, **params: Any) -> Cost:
        """Closed form from rules 4-6 (exact: each physical link carries one ring edge per
        direction, and a step is longer than a chunk's ``T``).

        A core's chunk for step ``j`` is ready ``S_j + h alpha`` after its predecessor's
        for step ``j - 1``, ``h`` the edge's hops, ``S = 2 mo + T(c)`` plus the add
        ``vector_op + c / fma`` in the reduce-scatter. The last of the ``2 (L - 1)`` steps
        ends at ring position ``k`` after the ``2L - 2`` edges ending at ``k``: the whole
        ring (``2L - 2`` hops) and all but the two edges leaving ``k`` and ``k + 1``. Its
        largest value is ``2`` (L = 2), ``6`` (L = 3), ``4L - 7`` (L >= 4: the two
        one-hop edges are never consecutive), so ``4L - 7 + [L <= 3]``; its mean
        ``(2L - 2)^2 / L``.

        Colors: a core sends on one color and receives on another; on a line of ``L >= 3``
        one edge of the other direction (the ring's two directions interleave) passes
        through it, a third: ``min(L, 3)`` per core at most (2 for ``L = 2``).
        """
        v, axis = self._values(spec, params)
        length = as_float(along(v, axis)[0])
        n = as_float(v["n"])
        chunk = n / length  # exact: the line divides n
        t = serialization_cycles(spec, chunk)
        mo = spec.message_overhead_cycles
        add = compute_cycles(spec, chunk, 0.0, 1.0)
        steps = length - 1.0
        body = steps * (4.0 * mo + 2.0 * t + add)
        far = 4.0 * length - 7.0 + (length <= 3.0)
        mean_hops = (2.0 * length - 2.0) ** 2 / length
        fixed = spec.launch_overhead_cycles + body
        return Cost.make(
            spec,
            cycles=fixed + spec.alpha * far,
            compute_cycles=steps * (6.0 * mo + add),
            hops=far,
            routing_stages=2.0 * steps,
            memory_per_core_bytes=(n + minimum(2.0, steps) * chunk) * spec.dtype_bytes,
            routes_per_core=minimum(length, 3.0),
            mean_core_cycles=fixed + spec.alpha * mean_hops,
        )

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, combine: str = "sum", **params: Any) -> KernelRun:
        """Run on ``operands`` (one ``[y, x, n]`` array) or random data; ``combine`` = ``sum``
        or ``max`` (the reduce-scatter's add becomes a maximum, timed the same)."""
        merge, reference = combiner(self.name, combine)
        v, axis = self._values(spec, params)
        s = configuration(v)
        length, lines = along(s, axis)
        chunk = s["n"] // length
        mesh = Mesh(spec, s["p"], s["q"], trace=trace)
        (data,) = operands_or_random(self.name, operands, seed, (mesh.height, mesh.width, s["n"]))
        forward, backward = _STEPS[axis]
        mo = spec.message_overhead_cycles

        def at(line: int, position: int) -> tuple[int, int]:
            return line_core(axis, line, position)

        for line in range(lines):
            for position in range(length):
                x, y = at(line, position)
                for j in range(length):
                    mesh.load((x, y), f"c{j}", data[y, x, j * chunk:(j + 1) * chunk])
        for step in range(2 * (length - 1)):
            scatter = step < length - 1
            for line in range(lines):
                for k in range(length):
                    src, dst = ring_edge(length, k)
                    j = (k - step) % length if scatter else (k + length - step) % length
                    path = (forward if dst > src else backward) * abs(dst - src)
                    target = f"r{step % 2}" if scatter else f"c{j}"
                    mesh.send(
                        at(line, src), f"c{j}", path, edge_color(length, k, True, 0), target,
                        overhead=mo, receive_overhead=mo,
                    )
                    if scatter:
                        mesh.compute(at(line, dst), [f"c{j}", target], f"c{j}", merge, fmas=chunk, vector_ops=1)
        result = mesh.run()
        output = np.array([
            [np.concatenate([result.tile((x, y), f"c{j}") for j in range(length)]) for x in range(mesh.width)]
            for y in range(mesh.height)
        ])
        sums = np.broadcast_to(reference(data, axis=1 if axis == "x" else 0, keepdims=True), data.shape)
        return KernelRun(output, sums, result)

    def sweep(self) -> list[dict[str, Any]]:
        """Lines of 2 to 64 cores (odd and even), chunks of 1 and 8 elements."""
        return [
            line_config(axis, length, n=length * c)
            for length in (2, 3, 4, 5, 8, 13, 32, 64)
            for c in (1, 8)
            for axis in AXES
        ]


KERNELS: tuple[Kernel, ...] = (
    PipelineAllreduce(),
    PipelineMidAllreduce(),
    RingAllreduce(),
    KTreeAllreduce(),
    KTree2DAllreduce(),
    ReducePipeline(),
    ReducePipelineMid(),
    ReduceKTree(),
)
