"""A batch of layouts held in numpy arrays: what the closed form evaluates in one call.

:class:`LayoutArrays` has one array per layout field (every array of the batch's shape),
categorical fields as integer codes into :data:`GEMM_ALGOS`, :data:`ALLREDUCE_ALGOS` and
:data:`KV_SCHEMES`. A search builds it directly from its sampled columns
(:meth:`LayoutArrays.from_columns`); :func:`layout_arrays` converts :class:`Layout` objects,
resolving their defaults and explicit placements.

Placement (:class:`PhaseArrays`): with no explicit ``origins``, the regions of a phase are
laid out as a snake over a grid of ``floor(W / P)`` regions per row of the fabric
(``W`` x ``H`` cores): left to right on even rows, right to left on odd ones, so consecutive
regions always touch (``P`` hops apart along x, or ``Q`` along y at a turn). Layers are
spread as evenly as possible (the first regions take one more).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

import numpy as np

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.layout._layout import ALLREDUCE_ALGOS, GEMM_ALGOS, KV_SCHEMES, Layout, PhaseLayout
from plummer.model import ModelSpec


def head_groups_ok(model: ModelSpec, groups: Any, p: Any) -> np.ndarray:
    """Where ``groups`` column groups of the attention heads are allowed on ``p`` columns:
    it divides the query heads, divides or is a multiple of the KV heads, and leaves at
    least 2 columns per group."""
    g = np.asarray(groups)
    safe = np.maximum(g, 1)
    return ((g >= 1) & (model.heads % safe == 0)
            & ((model.kv_heads % safe == 0) | (safe % model.kv_heads == 0))
            & (np.asarray(p) // safe >= 2))


@cache
def default_head_groups(model: ModelSpec, p: int, q: int | None = None) -> int:
    """The head grouping a layout gets unless it says otherwise: among the groupings that fit
    ``p`` columns (:func:`head_groups_ok`), those whose group width divides the ``q`` rows
    (the P.V GEMM then runs on a virtual grid of ``q``, not ``lcm(P_g, q)``: no padding blow-up),
    and among them the one nearest to one group per KV head (query heads that share a KV head
    attend together, with no copy of K and V), the smaller on a tie. One group always fits
    (``p >= 2``, as every layout grid has)."""
    allowed = [g for g in range(1, model.heads + 1) if bool(head_groups_ok(model, g, p))]
    if q is not None:
        allowed = [g for g in allowed if q % (p // g) == 0] or allowed
    return min(allowed, key=lambda g: (abs(math.log(g / model.kv_heads)), g))


@dataclass(frozen=True)
class PhaseArrays:
    """One phase of a batch of layouts (arrays of one shape; cores, hops, counts).

    ``tr_*`` describe the activations' transfers between consecutive regions: in total
    and at the worst boundary, the number of shift operations (one per axis a transfer
    moves along) and the hops moved. ``extent_x`` / ``extent_y``: the bounding box of the
    phase's regions from the fabric's corner; ``fits_fabric``: the regions lie inside the
    fabric without overlapping.
    """

    p: np.ndarray
    q: np.ndarray
    regions: np.ndarray
    max_layers: np.ndarray
    gemm: np.ndarray
    allreduce: np.ndarray
    k_tree: np.ndarray
    group_num_x: np.ndarray
    group_num_y: np.ndarray
    head_groups: np.ndarray
    tr_shifts: np.ndarray
    tr_hops: np.ndarray
    tr_max_shifts: np.ndarray
    tr_max_hops: np.ndarray
    extent_x: np.ndarray
    extent_y: np.ndarray
    fits_fabric: np.ndarray
    invalid: np.ndarray = 0


#: Bits of :attr:`PhaseArrays.invalid`: choices the kernels cannot run as given (the
#: evaluation then times the phase with the default in their place and flags the layout).
BAD_HEAD_GROUPS, BAD_GROUP_NUM = 1, 2


@dataclass(frozen=True)
class LayoutArrays:
    """A batch of layouts: both phases and the request, arrays of one shape."""

    prefill: PhaseArrays
    decode: PhaseArrays
    batch: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    kv_cache: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """The batch's shape: the broadcast shape of every field (a field keeps its own
        shape, so a batch built as an outer product evaluates each op only over the fields
        it depends on)."""
        parts = [np.shape(getattr(self, n)) for n in ("batch", "input_tokens", "output_tokens", "kv_cache")]
        for phase in (self.prefill, self.decode):
            parts += [np.shape(getattr(phase, f.name)) for f in fields(phase)]
        return np.broadcast_shapes(*parts)

    @classmethod
    def from_columns(cls, spec: HardwareSpec, model: ModelSpec, **columns: Any) -> LayoutArrays:
        """A batch from one array (or number) per field, with automatic placement.

        Fields: ``batch, input_tokens, output_tokens`` (tokens), ``kv_cache`` (code or
        name), and per phase ``pf_`` / ``dc_`` + ``p, q, regions, gemm, allreduce, k_tree,
        group_num_x, group_num_y, head_groups`` (algorithm codes or names; head_groups 0 =
        the default per grid; ``pf_group_num_y`` must be 0, see :class:`PhaseLayout`).
        Missing fields take the :class:`PhaseLayout` defaults. Numbers broadcast; every
        array is broadcast to one shape. Bad values (not integers, below their least value,
        shapes that do not broadcast) are errors naming the column.
        """
        known = {"batch", "input_tokens", "output_tokens", "kv_cache"} | {
            f"{prefix}_{name}" for prefix in ("pf", "dc")
            for name in ("p", "q", "regions", "gemm", "allreduce", "k_tree", "group_num_x",
                         "group_num_y", "head_groups")
        }
        unknown = sorted(set(columns) - known)
        if unknown:
            raise SpecError(f"layout columns {', '.join(unknown)} are unknown; allowed: "
                            f"{', '.join(sorted(known))}")
        for need in ("pf_p", "pf_q", "dc_p", "dc_q"):
            if need not in columns:
                raise SpecError(f"layout columns: '{need}' is required")
        defaults = {"batch": 1, "input_tokens": 4096, "output_tokens": 256, "kv_cache": 0,
                    **{f"{x}_{k}": v for x in ("pf", "dc") for k, v in
                       (("regions", 1), ("gemm", 0), ("allreduce", 0), ("k_tree", 2),
                        ("group_num_x", 0), ("group_num_y", 0), ("head_groups", 0))}}
        values = {k: _integers(k, _codes(k, columns.get(k, defaults.get(k)))) for k in sorted(known)}
        try:
            np.broadcast_shapes(*(v.shape for v in values.values()))
        except ValueError:
            shapes = ", ".join(f"'{k}' {v.shape}" for k, v in values.items() if v.ndim)
            raise SpecError(f"layout columns {shapes} do not broadcast to one shape; allowed: "
                            "numbers and arrays whose shapes broadcast (numpy's rules)") from None
        for name, minimum in _MINIMA.items():
            _at_least(name, values[name], minimum)
        if values["pf_group_num_y"].any():
            raise SpecError(f"layout column 'pf_group_num_y' = {int(values['pf_group_num_y'].max())}: "
                            "group_num_y is decode-only (prefill's allreduces run along x); "
                            "allowed: 0")
        phases = {}
        for prefix, phase in (("pf", "prefill"), ("dc", "decode")):
            v = {name: values[f"{prefix}_{name}"] for name in
                 ("p", "q", "regions", "gemm", "allreduce", "k_tree", "group_num_x",
                  "group_num_y", "head_groups")}
            phases[phase] = _auto_phase(spec, model, phase, **v)
        return cls(phases["prefill"], phases["decode"], values["batch"],
                   values["input_tokens"], values["output_tokens"], values["kv_cache"])

    def take(self, index: Any) -> LayoutArrays:
        """The layouts at ``index`` (an index into the flattened batch) as a flat batch."""
        shape = self.shape

        def pick(value: Any) -> np.ndarray:
            return np.broadcast_to(value, shape).reshape(-1)[index]

        def phase(part: PhaseArrays) -> PhaseArrays:
            return PhaseArrays(**{f.name: pick(getattr(part, f.name)) for f in fields(part)})
        return LayoutArrays(phase(self.prefill), phase(self.decode), *(
            pick(getattr(self, name)) for name in ("batch", "input_tokens", "output_tokens", "kv_cache")))


_CODE_TABLES = {"gemm": GEMM_ALGOS, "allreduce": ALLREDUCE_ALGOS, "kv_cache": KV_SCHEMES}
#: The least value of each numeric column (cores, counts, tokens; 0 = the default).
_MINIMA = {"batch": 1, "input_tokens": 1, "output_tokens": 1} | {
    f"{prefix}_{name}": minimum for prefix in ("pf", "dc")
    for name, minimum in (("p", 2), ("q", 2), ("regions", 1), ("k_tree", 1), ("group_num_x", 0),
                          ("group_num_y", 0), ("head_groups", 0))}


def _codes(name: str, value: Any) -> Any:
    """Names of a categorical field as codes (numbers pass through, range-checked)."""
    table = next((t for key, t in _CODE_TABLES.items() if name.endswith(key)), None)
    if table is None:
        return value
    array = np.asarray(value)
    if array.dtype.kind in "US":
        bad = [v for v in np.unique(array) if str(v) not in table]
        if bad:
            raise SpecError(f"layout column '{name}' = {str(bad[0])!r} must be one of {', '.join(table)}")
        lookup = {n: i for i, n in enumerate(table)}
        return np.vectorize(lambda s: lookup[str(s)], otypes=[np.int64])(array)
    if array.dtype.kind in "iuf" and array.size and (array.min() < 0 or array.max() >= len(table)):
        raise SpecError(f"layout column '{name}' codes must be 0..{len(table) - 1} ({', '.join(table)})")
    return array


def _integers(name: str, value: Any) -> np.ndarray:
    """A column as int64 (integral floats pass; anything else is an error naming it)."""
    array = np.asarray(value)
    flat = array.reshape(-1)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f":
        bad = flat[~(np.isfinite(flat) & (flat == np.round(flat)))]
    else:
        bad = [v for v in flat.tolist() if isinstance(v, bool) or not isinstance(v, int)]
    if len(bad) == 0:
        return array.astype(np.int64)
    table = next((t for key, t in _CODE_TABLES.items() if name.endswith(key)), None)
    allowed = f"codes or names ({', '.join(table)})" if table else "integers"
    first = bad[0].item() if isinstance(bad[0], np.generic) else bad[0]
    raise SpecError(f"layout column '{name}' = {first!r} must be {allowed}")


def _at_least(name: str, value: np.ndarray, minimum: int) -> None:
    if value.size and value.min() < minimum:
        raise SpecError(f"layout column '{name}' = {int(value.min())} must be >= {minimum}")


def _auto_phase(spec: HardwareSpec, model: ModelSpec, phase: str, p: np.ndarray, q: np.ndarray,
                regions: np.ndarray, head_groups: np.ndarray, **rest: np.ndarray) -> PhaseArrays:
    """A phase with snake placement and balanced layers (module docstring)."""
    width, height = spec.fabric_width, spec.fabric_height
    if p.size and (p.max() > width or q.max() > height):
        bad = p.max() if p.max() > width else q.max()
        axis = "width" if p.max() > width else "height"
        raise SpecError(f"layout [{phase}]: a grid of {int(bad)} cores exceeds the fabric {axis} "
                        f"of '{spec.name}' ({width} x {height})")
    per_row = np.maximum(width // p, 1)
    rows = -(-regions // per_row)
    turns = rows - 1  # boundaries where the snake steps down a row
    along = regions - 1 - turns
    default = _default_groups_array(model, p, q)
    groups = np.where(head_groups == 0, default, head_groups)
    groups_ok = head_groups_ok(model, groups, p)
    k_tree = rest.pop("k_tree")
    gx, gy = rest.pop("group_num_x"), rest.pop("group_num_y")
    ok_x, ok_y = _group_num_ok(gx, p, k_tree), _group_num_ok(gy, q, k_tree)
    return PhaseArrays(
        p=p, q=q, regions=regions, max_layers=-(-model.layers // regions),
        head_groups=np.where(groups_ok, groups, default), k_tree=k_tree,
        group_num_x=np.where(ok_x, gx, 0), group_num_y=np.where(ok_y, gy, 0),
        invalid=np.where(groups_ok, 0, BAD_HEAD_GROUPS)
        | np.where(ok_x & ok_y, 0, BAD_GROUP_NUM),
        tr_shifts=regions - 1, tr_hops=along * p + turns * q,
        tr_max_shifts=np.minimum(regions - 1, 1),
        tr_max_hops=np.maximum(np.where(along > 0, p, 0), np.where(turns > 0, q, 0)),
        extent_x=np.minimum(regions, per_row) * p, extent_y=rows * q,
        fits_fabric=(rows * q <= height) & (regions <= model.layers),
        **rest,
    )


def _group_num_ok(group: np.ndarray, length: np.ndarray, k_tree: np.ndarray) -> np.ndarray:
    """Where a K-tree's first-level group count suits a line of ``length`` cores: 0 (the
    default), or a divisor of the line (1 when the tree has one level)."""
    divides = (group == 0) | (length % np.maximum(group, 1) == 0)
    return divides & ((k_tree > 1) | (group <= 1))


def _default_groups_array(model: ModelSpec, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """:func:`default_head_groups` per distinct ``(p, q)``."""
    shape = np.broadcast_shapes(p.shape, q.shape)
    p_flat = np.broadcast_to(p, shape).reshape(-1).astype(np.int64)
    q_flat = np.broadcast_to(q, shape).reshape(-1).astype(np.int64)
    span = int(q_flat.max()) + 1 if q_flat.size else 1
    # one int64 key per pair: a 1-D unique sorts numbers, not rows (10x faster on 10^5 layouts)
    keys, inverse = np.unique(p_flat * span + q_flat, return_inverse=True)
    table = [default_head_groups(model, int(key // span), int(key % span)) for key in keys.tolist()]
    return np.asarray(table, dtype=np.int64)[inverse.reshape(-1)].reshape(shape)


def region_layer_counts(model: ModelSpec, lay: PhaseLayout) -> tuple[int, ...]:
    """Layers of each region: ``layers_per_region``, else as even as possible (the first
    regions take one more)."""
    if lay.layers_per_region is not None:
        return tuple(lay.layers_per_region)
    base, extra = divmod(model.layers, lay.regions)
    return tuple(base + (i < extra) for i in range(lay.regions))


def region_origins(spec: HardwareSpec, lay: PhaseLayout) -> list[tuple[int, int]]:
    """North-west cores ``(x, y)`` of a phase's regions: its ``origins``, else the snake of
    the module docstring (``floor(W / P)`` regions per row of the fabric, left to right on
    even rows, right to left on odd ones)."""
    if lay.origins is not None:
        return [tuple(o) for o in lay.origins]
    p, q = lay.grid
    per_row = max(spec.fabric_width // p, 1)
    origins = []
    for i in range(lay.regions):
        row, col = divmod(i, per_row)
        origins.append(((col if row % 2 == 0 else per_row - 1 - col) * p, row * q))
    return origins


def _explicit_phase(spec: HardwareSpec, model: ModelSpec, phase: str, lay: PhaseLayout) -> dict[str, Any]:
    """Placement figures of one phase of a :class:`Layout` with explicit origins or layer
    counts (errors name the field)."""
    owner = f"layout [{phase}]"
    p, q = lay.grid
    if p > spec.fabric_width or q > spec.fabric_height:
        raise SpecError(f"{owner}: field 'grid' = [{p}, {q}] exceeds the fabric of '{spec.name}' "
                        f"({spec.fabric_width} x {spec.fabric_height})")
    if lay.regions > model.layers:
        raise SpecError(f"{owner}: field 'regions' = {lay.regions} exceeds the model's "
                        f"{model.layers} layers; allowed 1..{model.layers}")
    counts = region_layer_counts(model, lay)
    if len(counts) != lay.regions or sum(counts) != model.layers:
        raise SpecError(f"{owner}: field 'layers_per_region' = {list(counts)} must list "
                        f"{lay.regions} counts (one per region) adding up to the model's "
                        f"{model.layers} layers")
    origins = region_origins(spec, lay)
    if lay.origins is None:
        per_row = max(spec.fabric_width // p, 1)
        if (lay.regions + per_row - 1) // per_row * q > spec.fabric_height:
            capacity = per_row * (spec.fabric_height // q)
            raise SpecError(f"{owner}: field 'regions' = {lay.regions} regions of {p} x {q} do "
                            f"not fit the fabric of '{spec.name}' ({spec.fabric_width} x "
                            f"{spec.fabric_height}); allowed 1..{capacity}")
    else:
        if len(origins) != lay.regions:
            raise SpecError(f"{owner}: field 'origins' lists {len(origins)} regions, "
                            f"'regions' = {lay.regions}")
        for x, y in origins:
            if x + p > spec.fabric_width or y + q > spec.fabric_height:
                raise SpecError(f"{owner}: field 'origins': region at [{x}, {y}] of {p} x {q} "
                                f"leaves the fabric ({spec.fabric_width} x {spec.fabric_height})")
        for (i, a), (j, b) in ((ia, jb) for ia in enumerate(origins) for jb in enumerate(origins)):
            if i < j and abs(a[0] - b[0]) < p and abs(a[1] - b[1]) < q:
                raise SpecError(f"{owner}: field 'origins': regions {i} at {list(a)} and {j} at "
                                f"{list(b)} overlap ({p} x {q} cores each)")
    pairs = list(itertools.pairwise(origins))
    shifts = [int(b[0] != a[0]) + int(b[1] != a[1]) for a, b in pairs]
    hops = [abs(b[0] - a[0]) + abs(b[1] - a[1]) for a, b in pairs]
    worst = max(range(len(hops)), key=lambda i: (hops[i], shifts[i])) if hops else None
    return {
        "max_layers": max(counts),
        "tr_shifts": sum(shifts), "tr_hops": sum(hops),
        "tr_max_shifts": shifts[worst] if worst is not None else 0,
        "tr_max_hops": hops[worst] if worst is not None else 0,
        "extent_x": max(x for x, _ in origins) + p, "extent_y": max(y for _, y in origins) + q,
        "fits_fabric": True,
    }


def layout_arrays(spec: HardwareSpec, model: ModelSpec, layouts: Sequence[Layout]) -> LayoutArrays:
    """Layouts as one batch (explicit placements and layer counts honoured; errors name the
    field: a grid larger than the fabric, more regions than fit or than layers, counts that do
    not add up, overlapping regions, a head grouping that does not divide the heads)."""
    if not layouts:
        raise SpecError("no layouts given")
    phases = {}
    for phase in ("prefill", "decode"):
        columns: dict[str, list[Any]] = {}
        for layout in layouts:
            lay: PhaseLayout = getattr(layout, phase)
            p, q = lay.grid
            groups = lay.head_groups or default_head_groups(model, p, q)
            if not bool(head_groups_ok(model, groups, p)):
                raise SpecError(
                    f"layout [{phase}]: field 'head_groups' = {groups} must divide the model's "
                    f"{model.heads} query heads, divide or be a multiple of its {model.kv_heads} "
                    f"KV heads, and leave >= 2 of the {p} columns per group")
            if phase == "prefill" and lay.group_num_y:
                raise SpecError(f"layout [prefill]: field 'group_num_y' = {lay.group_num_y}: "
                                "group_num_y is decode-only (prefill's allreduces run along x); "
                                "allowed: 0")
            for axis, group, length in (("x", lay.group_num_x, p), ("y", lay.group_num_y, q)):
                if not bool(_group_num_ok(np.asarray(group), length, np.asarray(lay.k_tree))):
                    raise SpecError(
                        f"layout [{phase}]: field 'group_num_{axis}' = {group} must be 0 (the "
                        f"default) or divide the {length} cores along {axis}"
                        + (" (and be 1 when k_tree = 1)" if lay.k_tree == 1 else ""))
            row = {"p": p, "q": q, "regions": lay.regions, "gemm": GEMM_ALGOS.index(lay.gemm),
                   "allreduce": ALLREDUCE_ALGOS.index(lay.allreduce), "k_tree": lay.k_tree,
                   "group_num_x": lay.group_num_x, "group_num_y": lay.group_num_y,
                   "head_groups": groups, **_explicit_phase(spec, model, phase, lay)}
            for key, value in row.items():
                columns.setdefault(key, []).append(value)
        phases[phase] = PhaseArrays(**{k: np.asarray(v) for k, v in columns.items()})
    return LayoutArrays(
        phases["prefill"], phases["decode"],
        batch=np.asarray([x.batch for x in layouts]),
        input_tokens=np.asarray([x.input_tokens for x in layouts]),
        output_tokens=np.asarray([x.output_tokens for x in layouts]),
        kv_cache=np.asarray([KV_SCHEMES.index(x.kv_cache) for x in layouts]),
    )


def pad(value: Any, multiple: Any) -> Any:
    """``value`` rounded up to a multiple of ``multiple`` (int arrays)."""
    return -(-np.asarray(value) // multiple) * multiple


__all__ = ["BAD_GROUP_NUM", "BAD_HEAD_GROUPS", "LayoutArrays", "PhaseArrays", "default_head_groups",
           "head_groups_ok", "layout_arrays", "pad", "region_layer_counts", "region_origins"]
