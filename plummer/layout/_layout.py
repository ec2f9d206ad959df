"""A layout: how one LLM runs on a wafer, as data (a TOML file ``plummer predict`` reads).

A :class:`Layout` says, for each phase (prefill, decode), the grid of each region
(``p`` columns x ``q`` rows), how many regions the layers are pipelined over and where they
sit, the algorithm per operation family, the K-tree's levels and group counts and the head
grouping; and, for the request, the batch and the input and output lengths. Every field a
shipped layout or study uses is an ordinary field a user's file may set.

Example:
    >>> from plummer.layout import Layout
    >>> layout = Layout.from_dict({"prefill": {"grid": [64, 64]}, "decode": {"grid": [32, 32]}})
    >>> layout.decode.allreduce, layout.kv_cache
    ('ktree', 'shift')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plummer import _fields as f
from plummer.errors import SpecError

#: Algorithms of the prefill GEMMs (projections and P.V); Q.K^T always runs GEMM-T.
GEMM_ALGOS = ("meshgemm", "cannon", "summa-relay")
#: Allreduce algorithms (decode GEMVs, attention, norms; prefill norms and softmax).
ALLREDUCE_ALGOS = ("ktree", "pipeline", "pipeline-mid", "ring")
#: KV-cache schemes of decode: shift (spread over every row) or concatenation (new tokens
#: land in the last row of cores).
KV_SCHEMES = ("shift", "concat")
PHASES = ("prefill", "decode")


def _grid(owner: str, value: Any) -> tuple[int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 2 for v in value)):
        raise SpecError(f"{owner}: field 'grid' = {value!r} must be [P, Q]: two integers >= 2 "
                        "(P columns, Q rows)")
    return int(value[0]), int(value[1])


def _choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(f"{owner}: field '{name}' = {value!r} must be one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class PhaseLayout:
    """The layout of one phase.

    ``grid`` = (P columns, Q rows) of every region (cores). ``regions`` regions hold
    contiguous ranges of layers; ``layers_per_region`` (optional) gives the counts (their
    sum must be the model's layers; default: as even as possible, the first regions taking
    one more). ``origins`` (optional) places the regions' north-west cores on the fabric
    (default: a snake over a grid of regions from (0, 0), so consecutive regions are
    neighbours). ``gemm``: algorithm of the prefill GEMMs (ignored in decode).
    ``allreduce``, ``k_tree``, ``group_num_x`` / ``group_num_y`` (groups of the K-tree's
    first level along each axis; 0 = the default of about ``length^(1/K)`` cores per group):
    the allreduces. ``group_num_y`` is decode-only: prefill's allreduces all run along x,
    so a prefill layout with ``group_num_y`` other than 0 is an error (a file cannot claim a
    setting that changes nothing). ``head_groups``: column groups the attention heads are spread over
    (it must divide the query heads, and divide or be a multiple of the KV heads).
    """

    grid: tuple[int, int]
    regions: int = 1
    layers_per_region: tuple[int, ...] | None = None
    origins: tuple[tuple[int, int], ...] | None = None
    gemm: str = "meshgemm"
    allreduce: str = "ktree"
    k_tree: int = 2
    group_num_x: int = 0
    group_num_y: int = 0
    head_groups: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any], owner: str) -> PhaseLayout:
        """Build a phase layout from a TOML table, naming any bad field."""
        if not isinstance(data, dict):
            raise SpecError(f"{owner}: must be a table of fields")
        f.check_keys(owner, data, cls)
        values = dict(data)
        values["grid"] = _grid(owner, data["grid"])
        f.require_int(owner, "regions", values.get("regions", 1), 1)
        for name in ("k_tree",):
            f.require_int(owner, name, values.get(name, 2), 1)
        for name in ("group_num_x", "group_num_y", "head_groups"):
            f.require_int(owner, name, values.get(name, 0), 0)
        _choice(owner, "gemm", values.get("gemm", "meshgemm"), GEMM_ALGOS)
        _choice(owner, "allreduce", values.get("allreduce", "ktree"), ALLREDUCE_ALGOS)
        if (counts := values.get("layers_per_region")) is not None:
            if not isinstance(counts, (list, tuple)) or not counts:
                raise SpecError(f"{owner}: field 'layers_per_region' = {counts!r} must be a list "
                                "of positive integers, one per region")
            for count in counts:
                f.require_int(owner, "layers_per_region", count, 1)
            values["layers_per_region"] = tuple(counts)
        if (origins := values.get("origins")) is not None:
            if not isinstance(origins, (list, tuple)) or not all(
                isinstance(o, (list, tuple)) and len(o) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in o)
                for o in origins
            ):
                raise SpecError(f"{owner}: field 'origins' = {origins!r} must be a list of "
                                "[x, y] core coordinates (integers >= 0), one per region")
            values["origins"] = tuple((int(x), int(y)) for x, y in origins)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Fields as TOML-ready values (lists for tuples; unset options omitted)."""
        data = dataclasses.asdict(self)
        data["grid"] = list(self.grid)
        if self.layers_per_region is not None:
            data["layers_per_region"] = list(self.layers_per_region)
        if self.origins is not None:
            data["origins"] = [list(o) for o in self.origins]
        return data


@dataclass(frozen=True)
class Layout:
    """A whole layout: both phases, the request, and (optionally) the model and hardware
    it was made for (preset names or file paths; ``plummer predict`` options override them).

    ``batch`` requests of ``input_tokens`` prompt tokens each are prefilled together, then
    ``output_tokens`` tokens are decoded for each (one per request per step).
    """

    prefill: PhaseLayout
    decode: PhaseLayout
    batch: int = 1
    input_tokens: int = 4096
    output_tokens: int = 256
    kv_cache: str = "shift"
    model: str | None = None
    hardware: str | None = None
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], owner: str = "layout") -> Layout:
        """Build a layout from a mapping (a parsed TOML file), naming any bad field."""
        if not isinstance(data, dict):
            raise SpecError(f"{owner}: must be a table of fields")
        f.check_keys(owner, data, cls)
        values = dict(data)
        for phase in PHASES:
            values[phase] = PhaseLayout.from_dict(data[phase], f"{owner} [{phase}]")
        for name, default in (("batch", 1), ("input_tokens", 4096), ("output_tokens", 256)):
            f.require_int(owner, name, values.get(name, default), 1)
        _choice(owner, "kv_cache", values.get("kv_cache", "shift"), KV_SCHEMES)
        for name in ("model", "hardware"):
            if values.get(name) is not None:
                f.require_str(owner, name, values[name])
        if not isinstance(values.get("description", ""), str):
            raise SpecError(f"{owner}: field 'description' must be a string")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Fields as TOML-ready values; phases as tables."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if k not in PHASES}
        return data | {phase: getattr(self, phase).to_dict() for phase in PHASES}

    def replace(self, **changes: Any) -> Layout:
        """A copy with ``changes`` (phase tables as :class:`PhaseLayout` or their fields)."""
        for phase in PHASES:
            if isinstance(changes.get(phase), dict):
                changes[phase] = dataclasses.replace(getattr(self, phase), **changes[phase])
        return dataclasses.replace(self, **changes)


def load_layout(path: str | Path) -> Layout:
    """Read a layout TOML file (unknown keys are an error naming them)."""
    path = Path(path)
    return Layout.from_dict(f.read_toml(path), owner=f"layout file '{path}'")


def save_layout(layout: Layout, path: str | Path, header: str = "") -> None:
    """Write ``layout`` as a TOML file that :func:`load_layout` reads back unchanged."""
    f.write_toml(Path(path), layout.to_dict(), header=header or "plummer layout")


__all__ = ["ALLREDUCE_ALGOS", "GEMM_ALGOS", "KV_SCHEMES", "PHASES", "Layout", "PhaseLayout",
           "load_layout", "save_layout"]
