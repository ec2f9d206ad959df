"""Hardware co-design: search chip parameters next to (or around) the layout.

A study with a ``[hardware_space]`` table searches hardware fields around its base preset
(``hardware``): each trial is one chip. ``[codesign]`` says how the layout is chosen for it:

- ``mode = "nested"``: the best layout of the study's ``[space]`` for that chip, by
  exhaustive enumeration of the space (exact; keep the layout space to a few 10^4 points),
  best by ``metric`` / ``direction`` among the layouts that fit;
- ``mode = "fixed"``: the ``[space]`` is one layout (every column fixed), timed on each chip.

Objectives may then name the best layout's metrics, the regions it needs
(``regions_prefill``, ``regions_decode``), and a cost proxy of the chip:
``sram_per_core_bytes`` (bytes of SRAM per core), ``sram_total_bytes`` (bytes of SRAM on the
fabric: per core x fabric width x height) and ``fabric_cores`` (cores). These proxies are
the chip's own figures, not prices: SRAM area (hence cost) grows with its bytes, and a
fabric's with its cores, at a rate no public source gives for these chips.

``fabric_width`` / ``fabric_height`` also shrink the default kernel region to fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from search._space import SearchSpace

#: Hardware fields a ``[hardware_space]`` may search.
HARDWARE_FIELDS = ("memory_bytes", "alpha", "beta", "fma_per_cycle", "link_bytes_per_cycle",
                   "fabric_width", "fabric_height", "colors", "max_routes_per_core", "clock_ghz",
                   "message_overhead_cycles", "step_overhead_cycles")
_INTEGER = {"memory_bytes", "fabric_width", "fabric_height", "colors", "max_routes_per_core"}

#: Metrics a co-design objective may name besides the layout's.
CHIP_METRICS = ("sram_per_core_bytes", "sram_total_bytes", "fabric_cores", "regions_prefill",
                "regions_decode")
MODES = ("nested", "fixed")


@dataclass(frozen=True)
class CoDesign:
    """The hardware dimensions of a study and how its layout is chosen per chip."""

    space: SearchSpace
    mode: str = "nested"
    metric: str = "decode_tokens_per_s"
    direction: str = "maximize"


def parse_codesign(hardware: dict[str, Any], options: dict[str, Any], owner: str,
                   layout_metrics: tuple[str, ...]) -> CoDesign:
    """A :class:`CoDesign` from the ``[hardware_space]`` and ``[codesign]`` tables."""
    space = SearchSpace.from_dict(hardware, f"{owner} [hardware_space]", HARDWARE_FIELDS, "hardware field",
                                  integers=_INTEGER)
    unknown = sorted(set(options) - {"mode", "metric", "direction"})
    if unknown:
        raise SpecError(f"{owner} [codesign]: unknown key(s) {', '.join(unknown)}; allowed: mode, metric, direction")
    mode = options.get("mode", "nested")
    if mode not in MODES:
        raise SpecError(f"{owner} [codesign]: 'mode' = {mode!r} must be nested or fixed")
    metric = options.get("metric", "decode_tokens_per_s")
    if metric not in layout_metrics:
        raise SpecError(f"{owner} [codesign]: 'metric' = {metric!r} must be one of {', '.join(layout_metrics)}")
    direction = options.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise SpecError(f"{owner} [codesign]: 'direction' = {direction!r} must be maximize or minimize")
    return CoDesign(space, mode, metric, direction)


def chip(base: HardwareSpec, point: dict[str, Any]) -> HardwareSpec:
    """The base chip with a hardware point's fields (errors name the field)."""
    changes = {k: (round(v) if k in _INTEGER else float(v)) for k, v in point.items()}
    width = changes.get("fabric_width", base.fabric_width)
    height = changes.get("fabric_height", base.fabric_height)
    changes |= {"mesh_width": min(base.mesh_width, width), "mesh_height": min(base.mesh_height, height)}
    described = ", ".join(f"{k} {v:g}" for k, v in sorted(point.items()))
    return base.replace(**changes, calibration=f"{base.name} with {described} (co-design point)")


def check_chips(design: CoDesign, base: HardwareSpec, where: str) -> HardwareSpec:
    """Refuse, before any trial, a hardware value no chip takes (each value on the base
    chip: a count below 1, a fabric smaller than a field needs, ...); returns the chip with
    the largest fabric of the space (what the layout space is checked against)."""
    space = design.space
    for name in [d.name for d in space.dimensions] + list(space.fixed):
        for value in space.values(name):
            try:
                chip(base, {name: value})
            except (SpecError, TypeError, ValueError) as exc:
                raise SpecError(f"{where}: key '{name}' = {value!r}: {exc}") from None
    largest = {k: max(space.values(k)) for k in ("fabric_width", "fabric_height")
               if k in {d.name for d in space.dimensions} | set(space.fixed)}
    return chip(base, largest) if largest else base


def chip_metrics(spec: HardwareSpec) -> dict[str, float]:
    """The cost proxies of a chip (module docstring)."""
    cores = spec.fabric_width * spec.fabric_height
    return {"sram_per_core_bytes": float(spec.memory_bytes), "sram_total_bytes": float(spec.memory_bytes * cores),
            "fabric_cores": float(cores)}


def best_layout(study: Any, spec: HardwareSpec) -> dict[str, Any]:
    """The layout the study uses on chip ``spec``: its point, metrics and whether it fits
    (``point`` is None when no layout of the space fits). The space is the chip's own: grids
    larger than its fabric are dropped, and ``"fit"`` regions count what its fabric holds."""
    from search._exhaustive import exhaustive
    from search._objective import constraint_values, evaluate_columns
    from search._study_file import Objective, region_capacity

    design: CoDesign = study.codesign
    space = study.space.within_fabric(spec.fabric_width, spec.fabric_height)
    if space is None:  # every grid of some phase is larger than this chip's fabric
        return {"point": None, "metrics": {}, "feasible": False}
    inner = replace(study, hardware=spec, codesign=None, space=space.fit_regions(region_capacity(study.model, spec)),
                    objectives=(Objective(design.metric, design.direction),))
    if design.mode == "fixed":
        point = inner.space.point_at(0)
    else:
        found = exhaustive(inner)["optimum"]
        if found is None:
            return {"point": None, "metrics": {}, "feasible": False}
        point = found["point"]
    ev = evaluate_columns(inner, inner.space.columns([point]))
    feasible = bool(np.all(constraint_values(inner, ev) <= 0))
    metrics = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in ev.metrics.items() if k != "reasons"}
    metrics |= {"regions_prefill": float(point.get("pf_regions", 1)),
                "regions_decode": float(point.get("dc_regions", 1))}
    return {"point": point, "metrics": metrics | chip_metrics(spec), "feasible": feasible}


def trial_values(study: Any, hardware_point: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
    """A co-design trial: the chip, its layout, the objective values (NaN-free: a chip with
    no fitting layout gets its cost proxies and the worst value of the layout metrics) and
    the record to store."""
    spec = chip(study.hardware, hardware_point)
    found = best_layout(study, spec)
    metrics = found["metrics"] or chip_metrics(spec)
    values = []
    for o in study.objectives:
        if o.metric in metrics:
            values.append(metrics[o.metric])
        else:  # no layout fits: the worst possible value of a layout metric
            values.append(-np.inf if o.direction == "maximize" else np.inf)
    record = {"hardware": hardware_point, "layout_point": found["point"], "metrics": metrics,
              "feasible": found["feasible"], "constraints": {"a_layout_fits": -1.0 if found["feasible"] else 1.0},
              "reasons": [] if found["feasible"] else ["no layout of the space fits this chip"],
              "breakdown": {}}
    return values, record
