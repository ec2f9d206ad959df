"""Search spaces over layouts: one dimension per layout column, as data.

A space maps names of :meth:`plummer.layout.LayoutArrays.from_columns` (``pf_p``,
``dc_regions``, ``dc_allreduce``, ``batch``, ...) to one of:

- a list of choices (``[360, 480, 600]``, ``["ktree", "pipeline"]``): categorical;
- a table ``{low = 1, high = 8, step = 1}``: integers ``low, low + step, ..., <= high``
  (numbers ``low + k step`` when any of them is a float: a hardware space's ``alpha``);
- for ``pf_regions`` / ``dc_regions``, ``{low = 1, high = "fit"}``: up to the regions
  ``"fit"`` gives the point's grid. The sampler draws from one fixed range, up to the most
  any grid of the space allows, and a count beyond what the point's grid allows means
  ``"fit"``: the sampler keeps one distribution to learn from, and never proposes regions
  that cannot be placed. The exhaustive enumeration takes every count up to the most any
  grid allows; ``"fit"`` alone: the fewest regions that hold the model's layers with the
  fewest per region that the regions of the grid fitting the fabric allow (the most
  throughput a grid can pipeline; more regions would only add batches in flight and their
  KV cache; fewer layers per region, about the same memory per core);
- for ``pf_p`` / ``dc_p`` of a square grid (``pf_q = "pf_p"``) whose regions are ``"fit"``,
  ``{low = 240, high = 744, step = 48, per_regions = "largest"}``: of the range's sides, only
  the largest for each region count ``"fit"`` gives them (a smaller side with as many regions
  leaves cores of the fabric idle), sampled as categories. Utilization jumps with the side
  where the regions that fit change (``floor(W / p) floor(H / p)``); over the kept sides the
  sampler sees one side per pipeline depth instead of that staircase. The optimum of a
  space can differ from the full range's (padding or a shorter allreduce can favour a smaller
  side): ``tests/test_study.py`` checks that it does not for the shipped studies;
- the name of another dimension (``dc_q = "dc_p"``): the same value (square grids);
- a single value: fixed, not searched.

A point of the space is a dict of columns; a batch of points is a dict of arrays, which
:func:`search._objective.evaluate_points` turns into one vectorised evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from plummer.errors import SpecError

#: Layout columns a space may search (see LayoutArrays.from_columns).
COLUMNS = ("batch", "input_tokens", "output_tokens", "kv_cache") + tuple(
    f"{prefix}_{name}" for prefix in ("pf", "dc")
    for name in ("p", "q", "regions", "gemm", "allreduce", "k_tree", "group_num_x",
                 "group_num_y", "head_groups")
)


@dataclass(frozen=True)
class Dimension:
    """One searched column: ``choices`` (the values it may take, in order) and whether they
    are a range (``step``: integers, or floats when ``step`` or a bound is a float) or
    categories."""

    name: str
    choices: tuple[Any, ...]
    step: int | float | None = None
    fit: bool = False
    #: ``per_regions = "largest"``: the range's sides (cores) before :meth:`SearchSpace.fit_regions`
    #: keeps the largest side per region count (``choices``).
    per_regions: tuple[int, ...] | None = None

    @property
    def is_range(self) -> bool:
        """Whether the dimension is a numeric range (Optuna's ``suggest_int``/``suggest_float``)."""
        return self.step is not None

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this dimension (Optuna's own distributions)."""
        if self.is_range and isinstance(self.step, float):
            return trial.suggest_float(self.name, self.choices[0], self.choices[-1], step=self.step)
        if self.is_range:
            return trial.suggest_int(self.name, self.choices[0], self.choices[-1], step=self.step)
        return trial.suggest_categorical(self.name, list(self.choices))


@dataclass(frozen=True)
class SearchSpace:
    """Searched dimensions, ties (``name -> the dimension it copies``) and fixed columns."""

    dimensions: tuple[Dimension, ...]
    ties: dict[str, str]
    fixed: dict[str, Any]
    capacity: Any = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], owner: str = "space",
                  columns: tuple[str, ...] = COLUMNS, kind: str = "layout column",
                  integers: Collection[str] = COLUMNS) -> SearchSpace:
        """Parse a ``[space]`` table whose keys are among ``columns``; the numbers of the
        columns in ``integers`` must be integers (every layout column: its other values are
        names). Errors name the key, the value and what is allowed."""
        if not isinstance(data, dict) or not data:
            raise SpecError(f"{owner}: must be a table of {kind}s, e.g. {columns[0]} = [..., ...]")
        dims, ties, fixed = [], {}, {}
        numbers = (int, float)
        for name, value in data.items():
            if name not in columns:
                raise SpecError(f"{owner}: key '{name}' is not a {kind}; allowed: {', '.join(columns)}")
            where = f"{owner}: key '{name}' = {value!r}"
            if isinstance(value, str) and value in columns:
                ties[name] = value
            elif isinstance(value, dict) and value.get("high") == "fit":
                if name not in ("pf_regions", "dc_regions") or set(value) - {"low", "high"}:
                    raise SpecError(f"{where}: high = \"fit\" is for pf_regions and dc_regions, with an "
                                    "integer low and no step")
                low = value.get("low", 1)
                if not isinstance(low, int) or isinstance(low, bool) or low < 1:
                    raise SpecError(f"{where}: 'low' must be an integer >= 1")
                dims.append(Dimension(name, (low,), 1, fit=True))  # the range is set by fit_regions
            elif isinstance(value, dict):
                unknown = sorted(set(value) - {"low", "high", "step", "per_regions"})
                if unknown or not {"low", "high"} <= set(value):
                    raise SpecError(f"{where} must be {{low = ..., high = ..., step = ...}} "
                                    "(step optional, default 1; per_regions = \"largest\" for "
                                    "pf_p and dc_p)")
                if "per_regions" in value and (name not in ("pf_p", "dc_p") or value["per_regions"] != "largest"):
                    raise SpecError(f"{where}: per_regions is for pf_p and dc_p, and takes \"largest\"")
                low, high, step = value["low"], value["high"], value.get("step", 1)
                if not all(isinstance(v, numbers) and not isinstance(v, bool) for v in (low, high, step)) \
                        or step <= 0 or high < low:
                    raise SpecError(f"{where} must have numbers low <= high and step > 0")
                if name in integers and not all(isinstance(v, int) for v in (low, high, step)):
                    raise SpecError(f"{where}: '{name}' takes integers; allowed: integer low, high "
                                    "and step")
                if "per_regions" in value:  # categories: the sides kept are set by fit_regions
                    sides = tuple(range(low, high + 1, step))
                    dims.append(Dimension(name, sides, per_regions=sides))
                elif all(isinstance(v, int) for v in (low, high, step)):
                    dims.append(Dimension(name, tuple(range(low, high + 1, step)), step))
                else:
                    count = int(np.floor((high - low) / step + 1e-9)) + 1
                    values = tuple(float(round(low + i * step, 12)) for i in range(count))
                    dims.append(Dimension(name, values, float(step)))
            elif isinstance(value, list):
                if not value or not all(isinstance(v, (int, float, str)) and not isinstance(v, bool)
                                        for v in value):
                    raise SpecError(f"{where} must be a non-empty list of distinct numbers or names")
                seen = [v for i, v in enumerate(value) if v in value[:i]]  # 2 == 2.0: by value
                if seen:
                    raise SpecError(f"{where}: {seen[0]!r} is given twice; allowed: distinct values")
                _require_integers(where, name, value, integers)
                if len(value) == 1:
                    fixed[name] = value[0]
                else:
                    dims.append(Dimension(name, tuple(value)))
            elif value == "fit" and name in ("pf_regions", "dc_regions"):
                fixed[name] = "fit"
            elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
                _require_integers(where, name, [value], integers)
                fixed[name] = value
            else:
                raise SpecError(f"{where} must be a list of choices, a {{low, high, step}} range, "
                                "the name of another column, or one value")
        names = {d.name for d in dims} | set(fixed)
        for name, target in ties.items():
            if target not in names:
                raise SpecError(f"{owner}: key '{name}' = {target!r} names a column the space does "
                                f"not set; allowed: {', '.join(sorted(names))}")
        for d in dims:
            prefix = d.name[:2]
            if d.per_regions is not None and (ties.get(f"{prefix}_q") != d.name
                                              or fixed.get(f"{prefix}_regions") != "fit"):
                raise SpecError(f"{owner}: key '{d.name}' has per_regions = \"largest\", which needs a "
                                f"square grid ({prefix}_q = \"{d.name}\") and {prefix}_regions = \"fit\"")
        return cls(tuple(dims), ties, fixed)

    def fit_regions(self, capacity: Any) -> SearchSpace:
        """The space with every ``high = "fit"`` range set to ``low .. max capacity(p, q)`` over
        the grids the space holds, ``per_regions`` sides chosen from their range, and ``"fit"``
        counts resolved by ``capacity(p, q)``: how many regions of a grid fit (numbers or
        numpy arrays)."""
        dims = []
        for d in self.dimensions:
            if d.per_regions is not None:  # square grids: capacity(p, p)
                largest: dict[int, int] = {}
                for side in d.per_regions:
                    regions = int(capacity(side, side))
                    if regions > 0:
                        largest[regions] = max(largest.get(regions, 0), side)
                if not largest:
                    raise SpecError(f"key '{d.name}' (per_regions = \"largest\"): every side from "
                                    f"{d.per_regions[0]} to {d.per_regions[-1]} is larger than the fabric; "
                                    "allowed: sides that hold at least one region")
                d = Dimension(d.name, tuple(sorted(largest.values())), per_regions=d.per_regions)
            elif d.fit:  # (a phase with per_regions sides has its regions fixed to "fit")
                prefix = d.name[:2]
                ps, qs = self.values(f"{prefix}_p"), self.values(f"{prefix}_q")
                top = max(capacity(p, q) for p in ps for q in qs)
                d = Dimension(d.name, tuple(range(d.choices[0], max(top, d.choices[0]) + 1)), 1, fit=True)
            dims.append(d)
        return SearchSpace(tuple(dims), self.ties, self.fixed, capacity)

    def within_fabric(self, width: int, height: int) -> SearchSpace | None:
        """The space without the grids wider than ``width`` or taller than ``height`` cores
        (a tied column's limit applies to the column it copies), ``"fit"`` ranges left to
        :meth:`fit_regions`; None where no grid of some phase is left."""
        limits: dict[str, int] = {}
        for prefix in ("pf", "dc"):
            for axis, most in (("p", width), ("q", height)):
                name = f"{prefix}_{axis}"
                target = self.ties.get(name, name)
                limits[target] = min(limits.get(target, most), most)
        if any(name in self.fixed and isinstance(self.fixed[name], (int, float))
               and self.fixed[name] > most for name, most in limits.items()):
            return None
        dims = []
        for d in self.dimensions:
            if d.name in limits:
                kept = tuple(v for v in d.choices if v <= limits[d.name])
                if not kept:
                    return None
                sides = None if d.per_regions is None else tuple(v for v in d.per_regions if v <= limits[d.name])
                d = Dimension(d.name, kept, d.step, d.fit, sides)
            dims.append(d)
        return SearchSpace(tuple(dims), self.ties, self.fixed, self.capacity)

    def _fits(self, point: dict[str, Any]) -> dict[str, Any]:
        """``point`` with its ``"fit"`` region counts resolved for its grids."""
        for name, value in self.fixed.items():
            if isinstance(value, str) and value == "fit":
                prefix = name[:2]
                value = self.capacity(point[f"{prefix}_p"], point[f"{prefix}_q"])
                point[name] = value if np.ndim(value) else int(value)
        return point

    def values(self, name: str) -> tuple[Any, ...]:
        """Every value column ``name`` takes in the space."""
        name = self.ties.get(name, name)
        if name in self.fixed:
            return (self.fixed[name],)
        return next(d.choices for d in self.dimensions if d.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The space as a ``[space]`` table (what :meth:`from_dict` reads)."""
        out: dict[str, Any] = {}
        for d in self.dimensions:
            sides = d.per_regions
            out[d.name] = ({"low": d.choices[0], "high": "fit"} if d.fit else
                           {"low": d.choices[0], "high": d.choices[-1], "step": d.step}
                           if d.is_range else list(d.choices) if sides is None else
                           {"low": sides[0], "high": sides[-1], "step": sides[1] - sides[0] if len(sides) > 1 else 1,
                            "per_regions": "largest"})
        return out | dict(self.fixed) | dict(self.ties)

    @property
    def size(self) -> int:
        """Points in the space (the product of the dimensions' sizes)."""
        return math.prod(len(d.choices) for d in self.dimensions)

    def suggest(self, trial: optuna.Trial, capacity: Any = None) -> dict[str, Any]:
        """A point sampled by ``trial`` (every column, ties and fixed ones included); a
        ``high = "fit"`` count is capped at ``capacity(p, q)`` of the point's grid."""
        point = {d.name: d.suggest(trial) for d in self.dimensions} | dict(self.fixed)
        point |= {name: point[target] for name, target in self.ties.items()}
        for d in self.dimensions:
            if d.fit:  # beyond what this grid allows: all that fit
                prefix = d.name[:2]
                point[d.name] = max(d.choices[0], min(point[d.name], int(capacity(point[f"{prefix}_p"], point[f"{prefix}_q"]))))
        return self._fits(point)

    def columns(self, points: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Points as one array per column."""
        names = points[0].keys()
        return {name: np.asarray([point[name] for point in points]) for name in names}

    def grid_chunks(self, chunk: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """Every point of the space as column arrays shaped for broadcasting (one axis per
        dimension), in chunks of at most ``chunk`` points (one point at the least): the
        trailing dimensions whole, the one before them in slices, the leading ones one value
        at a time; yields ``(columns, flat offset of the chunk)``. A chunk is a contiguous
        run of the row-major enumeration (:meth:`point_at`)."""
        dims = list(self.dimensions)
        sizes = [len(d.choices) for d in dims]
        chunk = max(int(chunk), 1)
        split = len(dims)  # dims[split:] go whole into every chunk
        while split > 0 and math.prod(sizes[split - 1:]) <= chunk:
            split -= 1
        block = math.prod(sizes[split:])
        sliced = split - 1  # the dimension cut into slices of `step` values (none: -1)
        step = max(chunk // block, 1) if sliced >= 0 else 1
        outer = sizes[:sliced] if sliced >= 0 else []
        for index in np.ndindex(*outer):
            starts = range(0, sizes[sliced], step) if sliced >= 0 else [0]
            for start in starts:
                columns: dict[str, np.ndarray] = {}
                axes = dims[sliced:] if sliced >= 0 else dims
                for axis, d in enumerate(axes):
                    values = d.choices[start:start + step] if axis == 0 and sliced >= 0 else d.choices
                    shape = [1] * len(axes)
                    shape[axis] = len(values)
                    columns[d.name] = np.asarray(values).reshape(shape)
                for i, d in zip(index, dims[:max(sliced, 0)], strict=True):
                    columns[d.name] = np.asarray(d.choices[i])
                columns |= {k: np.asarray(v) for k, v in self.fixed.items() if not (isinstance(v, str) and v == "fit")}
                columns |= {name: columns[target] for name, target in self.ties.items()}
                columns = self._fits(columns)
                flat = int(np.ravel_multi_index(index, outer)) if outer else 0
                yield columns, (flat * sizes[sliced] + start) * block if sliced >= 0 else 0

    def point_at(self, flat: int) -> dict[str, Any]:
        """The point at index ``flat`` of the space's row-major enumeration."""
        sizes = [len(d.choices) for d in self.dimensions]
        index = np.unravel_index(flat, sizes) if sizes else ()
        point = {d.name: _plain(d.choices[i]) for d, i in zip(self.dimensions, index, strict=True)}
        point |= dict(self.fixed)
        point |= {name: point[target] for name, target in self.ties.items()}
        return {k: _plain(v) for k, v in self._fits(point).items()}


def _require_integers(where: str, name: str, values: list[Any], integers: Collection[str]) -> None:
    """Refuse a float among the values of a column that takes integers (names pass: the
    layout checks them)."""
    bad = [v for v in values if isinstance(v, float)] if name in integers else []
    if bad:
        raise SpecError(f"{where}: {bad[0]!r} is not an integer; '{name}' takes integers")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
