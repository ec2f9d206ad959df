"""Study files (``studies/*.toml``): what to search, for which model and chip, and how.

::

    name = "llama3-8b-wse2"              # the study's name in its storage (default: the file's stem)
    description = "..."
    model = "llama3-8b"                  # preset, model TOML or Hugging Face config.json
    hardware = "wse2"                    # preset or hardware TOML
    memory = "enforce"                   # or "ignore": time layouts as if the weights fit

    [space]                              # layout columns (search/_space.py)
    dc_p = {low = 120, high = 720, step = 60}
    dc_q = "dc_p"
    input_tokens = 4096

    [[objectives]]                       # one, or several (multi-objective)
    metric = "utilization"               # a key of plummer.layout.evaluate's metrics
    direction = "maximize"

    [[constraints]]                      # optional, besides the layout's own fit
    metric = "ttft_s"
    max = 1.0

    [sampler]
    name = "tpe"                         # tpe (default), nsgaii (default for several objectives),
    seed = 0                             # gp, cmaes (one objective, integer ranges), random
    options = {n_startup_trials = 20}    # passed to the Optuna sampler

    [hardware_space]                     # optional: co-design (search/_codesign.py)
    memory_bytes = [49152, 98304]

    [codesign]
    mode = "nested"                      # the best layout of [space] per chip, or "fixed"
    metric = "decode_tokens_per_s"

    [run]
    trials = 300                         # trials per `plummer study run`
    batch = 16                           # trials asked and evaluated at once
    storage = "..."                      # optional: an Optuna RDB URL or a journal file path

Paths in ``model`` and ``hardware`` are relative to the study file. ``memory = "ignore"``
drops the memory constraints: for a model whose weights exceed the wafer's SRAM no layout
fits, and the study then ranks layouts by their timing alone, as published wafer results
for such models do (they run a subset of the layers and scale the time up).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plummer import _fields as f
from plummer.errors import SpecError
from plummer.hardware import HardwareSpec, load_hardware
from plummer.layout import METRICS as LAYOUT_METRICS
from plummer.layout import LayoutArrays
from plummer.model import ModelSpec, load_model
from search._codesign import CHIP_METRICS, CoDesign, check_chips, parse_codesign
from search._space import SearchSpace

SAMPLERS = ("tpe", "nsgaii", "gp", "cmaes", "random")
DIRECTIONS = ("maximize", "minimize")

#: Metrics an objective or a constraint may name (keys of the layout evaluation).
METRICS = LAYOUT_METRICS


@dataclass(frozen=True)
class Objective:
    """A metric to optimise and its direction."""

    metric: str
    direction: str


@dataclass(frozen=True)
class Constraint:
    """A metric bound: feasible where ``min <= metric <= max`` (either may be absent)."""

    metric: str
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class StudyFile:
    """A parsed study file (module docstring)."""

    name: str
    path: Path | None
    model: ModelSpec
    hardware: HardwareSpec
    model_ref: str
    hardware_ref: str
    space: SearchSpace
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    sampler: str = "tpe"
    seed: int | None = 0
    sampler_options: dict[str, Any] = field(default_factory=dict)
    trials: int = 300
    batch: int = 16
    storage: str | None = None
    description: str = ""
    memory: str = "enforce"
    codesign: CoDesign | None = None

    def capacity(self, p: Any, q: Any) -> Any:
        """Regions of a ``p`` x ``q`` grid that fit the fabric (at most the model's layers);
        numbers or arrays."""
        return self.space.capacity(p, q)

    @property
    def multi_objective(self) -> bool:
        """Whether the study has several objectives."""
        return len(self.objectives) > 1

    def _compared(self) -> dict[str, Any]:
        """What makes two studies of one name the same search (:meth:`fingerprint`)."""
        data = {"model": self.model.to_dict(), "hardware": self.hardware.to_dict(),
                "space": self.space.to_dict(), "memory": self.memory,
                "codesign": None if self.codesign is None else (
                    self.codesign.space.to_dict(), self.codesign.mode, self.codesign.metric,
                    self.codesign.direction),
                "objectives": [(o.metric, o.direction) for o in self.objectives]}
        if self.constraints:  # absent, the digest is what studies without constraints always had
            data["constraints"] = [(c.metric, c.min, c.max) for c in self.constraints]
        return data

    def fingerprint(self) -> str:
        """A digest of what makes two studies comparable: model, hardware, space, memory,
        co-design, objectives and constraints (a storage refuses to mix studies of one name
        with different ones: a trial feasible under one set of constraints is not under
        another)."""
        return _digest(self._compared())

    def fingerprint_parts(self) -> dict[str, str]:
        """One digest per part of :meth:`fingerprint` (``model``, ``space``, ``constraints``,
        ...), stored with a study so that a refusal can name the parts that differ."""
        return {key: _digest(value) for key, value in self._compared().items()}


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def region_capacity(model: ModelSpec, hardware: HardwareSpec) -> Callable[[Any, Any], Any]:
    """``capacity(p, q)``: the regions of a ``p x q`` grid that ``"fit"`` takes on
    ``hardware``'s fabric: the fewest that hold the layers with the fewest per region the
    fabric allows (more would add batches in flight, and their KV cache, without shortening
    a stage); 0 where no region fits. Numbers or numpy arrays."""

    def capacity(p: Any, q: Any) -> Any:
        most = np.minimum(model.layers, (hardware.fabric_width // p) * (hardware.fabric_height // q))
        per_region = -(-model.layers // np.maximum(most, 1))
        return np.where(most > 0, -(-model.layers // per_region), 0)

    return capacity


_TOP_KEYS = ("name", "description", "model", "hardware", "memory", "space", "objectives",
             "constraints", "sampler", "run", "hardware_space", "codesign")


def _table(owner: str, data: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError(f"{owner}: must be a table")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise SpecError(f"{owner}: unknown key(s) {', '.join(repr(k) for k in unknown)}; "
                        f"allowed: {', '.join(keys)}")
    return data


def _resolve(reference: str, base: Path | None) -> str:
    """A preset name as is; a relative file path from the study file's directory."""
    if base is not None and ("/" in reference or reference.endswith((".toml", ".json"))):
        candidate = (base / reference)
        if candidate.exists():
            return str(candidate)
    return reference


def parse_study(data: dict[str, Any], name: str, path: Path | None = None) -> StudyFile:
    """A :class:`StudyFile` from a parsed TOML mapping (errors name the key and value)."""
    owner = f"study file '{path}'" if path else "study"
    _table(owner, data, _TOP_KEYS)
    for key in ("model", "hardware", "space", "objectives"):
        if key not in data:
            raise SpecError(f"{owner}: missing required key '{key}'")
    base = path.parent if path else None
    model_ref = _resolve(f.require_str(owner, "model", data["model"]), base)
    hardware_ref = _resolve(f.require_str(owner, "hardware", data["hardware"]), base)
    space = SearchSpace.from_dict(data["space"], f"{owner} [space]")
    codesign = None
    if "hardware_space" in data:
        codesign = parse_codesign(data["hardware_space"], data.get("codesign", {}), owner, METRICS)
        if codesign.mode == "fixed" and space.dimensions:
            raise SpecError(f"{owner} [codesign]: mode 'fixed' needs one layout: every [space] key a "
                            f"single value (searched: {', '.join(d.name for d in space.dimensions)})")
    elif "codesign" in data:
        raise SpecError(f"{owner}: [codesign] needs a [hardware_space] table of hardware fields to search")
    allowed = METRICS + (CHIP_METRICS if codesign else ())
    raw_objectives = data["objectives"]
    if not isinstance(raw_objectives, list) or not raw_objectives:
        raise SpecError(f"{owner}: 'objectives' must be a list of tables "
                        "([[objectives]] metric = ..., direction = ...)")
    objectives = []
    for i, item in enumerate(raw_objectives):
        where = f"{owner} objectives[{i}]"
        item = _table(where, item, ("metric", "direction"))
        metric = item.get("metric")
        if metric not in allowed:
            raise SpecError(f"{where}: 'metric' = {metric!r} must be one of {', '.join(allowed)}")
        direction = item.get("direction", "maximize")
        if direction not in DIRECTIONS:
            raise SpecError(f"{where}: 'direction' = {direction!r} must be maximize or minimize")
        twice = next((j for j, o in enumerate(objectives) if o.metric == metric), None)
        if twice is not None:
            raise SpecError(f"{where}: 'metric' = {metric!r} is objectives[{twice}] already; "
                            "allowed: each metric once")
        objectives.append(Objective(metric, direction))
    constraints = []
    for i, item in enumerate(data.get("constraints", [])):
        where = f"{owner} constraints[{i}]"
        item = _table(where, item, ("metric", "min", "max"))
        if item.get("metric") not in METRICS:
            raise SpecError(f"{where}: 'metric' = {item.get('metric')!r} must be one of {', '.join(METRICS)}")
        if "min" not in item and "max" not in item:
            raise SpecError(f"{where}: give 'min', 'max' or both")
        bounds = {k: f.require_number(where, k, item[k], -float("inf")) for k in ("min", "max") if k in item}
        if bounds.get("min", -np.inf) > bounds.get("max", np.inf):
            raise SpecError(f"{where}: 'min' = {bounds['min']:g} exceeds 'max' = {bounds['max']:g}; "
                            "allowed: min <= max (no layout could be feasible)")
        constraints.append(Constraint(item["metric"], **bounds))
    sampler = _table(f"{owner} [sampler]", data.get("sampler", {}), ("name", "seed", "options"))
    default = "nsgaii" if len(objectives) > 1 else "tpe"
    sampler_name = sampler.get("name", default)
    if sampler_name not in SAMPLERS:
        raise SpecError(f"{owner} [sampler]: 'name' = {sampler_name!r} must be one of {', '.join(SAMPLERS)}")
    if sampler_name == "cmaes" and len(objectives) > 1:
        raise SpecError(f"{owner} [sampler]: 'name' = 'cmaes' handles one objective only; "
                        "use nsgaii, tpe or random for several")
    seed = sampler.get("seed", 0)
    if seed is not None:
        f.require_int(f"{owner} [sampler]", "seed", seed, 0)
    options = sampler.get("options", {})
    if not isinstance(options, dict):
        raise SpecError(f"{owner} [sampler]: 'options' must be a table of sampler arguments")
    _check_sampler_options(f"{owner} [sampler]", sampler_name, options)
    run = _table(f"{owner} [run]", data.get("run", {}), ("trials", "batch", "storage"))
    trials = f.require_int(f"{owner} [run]", "trials", run.get("trials", 300), 1)
    batch = f.require_int(f"{owner} [run]", "batch", run.get("batch", 16), 1)
    storage = run.get("storage")
    if storage is not None:
        f.require_str(f"{owner} [run]", "storage", storage)
    study_name = data.get("name", name)
    f.require_str(owner, "name", study_name)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SpecError(f"{owner}: 'description' must be a string")
    memory = data.get("memory", "enforce")
    if memory not in ("enforce", "ignore"):
        raise SpecError(f"{owner}: 'memory' = {memory!r} must be 'enforce' or 'ignore'")
    hardware = load_hardware(hardware_ref)
    energy = [f"objective '{o.metric}'" for o in objectives if o.metric == "energy_per_token_j"]
    energy += [f"constraint '{c.metric}'" for c in constraints if c.metric == "energy_per_token_j"]
    energy += [f"[codesign] 'metric' = '{codesign.metric}'"] if codesign and codesign.metric == "energy_per_token_j" else []
    if energy and hardware.power_watts is None:
        raise SpecError(f"{owner}: {energy[0]} needs a hardware spec with 'power_watts'; "
                        f"'{hardware.name}' has none (give one in a hardware TOML, or drop the metric)")
    model = load_model(model_ref)
    try:
        space = space.fit_regions(region_capacity(model, hardware))
    except SpecError as exc:
        raise SpecError(f"{owner} [space]: {exc}") from None
    largest = hardware
    if codesign is not None:
        largest = check_chips(codesign, hardware, f"{owner} [hardware_space]")
    _check_layouts(f"{owner} [space]", space, largest, model)
    return StudyFile(
        name=study_name, path=path, model=model, hardware=hardware, memory=memory,
        codesign=codesign,
        model_ref=model_ref, hardware_ref=hardware_ref, space=space, objectives=tuple(objectives),
        constraints=tuple(constraints), sampler=sampler_name, seed=seed, sampler_options=options,
        trials=trials, batch=batch, storage=storage, description=description,
    )


def _check_layouts(where: str, space: SearchSpace, hardware: HardwareSpec, model: ModelSpec) -> None:
    """Refuse, before any trial, a space holding a value no layout takes: a grid larger than
    the fabric (of the largest chip of a co-design space), ``"fit"`` regions from more than
    any grid holds, and whatever :meth:`LayoutArrays.from_columns` refuses (names that are
    no algorithm, counts below their least value, ...), checked over the whole space at
    once as exhaustive enumeration lays it out (one axis per dimension)."""
    names = {d.name for d in space.dimensions} | set(space.fixed) | set(space.ties)
    for prefix, phase in (("pf", "prefill"), ("dc", "decode")):
        for axis, most, side in (("p", hardware.fabric_width, "width"), ("q", hardware.fabric_height, "height")):
            name = f"{prefix}_{axis}"
            if name not in names:
                raise SpecError(f"{where}: missing key '{name}' (the {phase} grid's "
                                f"{'columns' if axis == 'p' else 'rows'}); allowed: integers 2..{most}")
            too = [v for v in space.values(name) if isinstance(v, int) and v > most]
            if too:
                raise SpecError(f"{where}: key '{name}' = {max(too)} exceeds the fabric {side} of "
                                f"'{hardware.name}' ({most} cores); allowed: up to {most}")
    capacity = region_capacity(model, hardware)
    for d in space.dimensions:
        if d.fit:
            prefix = d.name[:2]
            top = max(int(capacity(p, q)) for p in space.values(f"{prefix}_p") for q in space.values(f"{prefix}_q"))
            if d.choices[0] > top:
                raise SpecError(f"{where}: key '{d.name}' = {{low = {d.choices[0]}, high = \"fit\"}}: no grid "
                                f"of the space holds more than {top} regions on '{hardware.name}'; "
                                f"allowed: low <= {top}")
    columns, _ = next(space.fit_regions(capacity).grid_chunks(max(space.size, 1)))
    try:
        LayoutArrays.from_columns(hardware, model, **columns)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None


#: Optuna's sampler class of each name of ``[sampler] name``.
SAMPLER_CLASSES = {"tpe": "TPESampler", "nsgaii": "NSGAIISampler", "gp": "GPSampler",
                   "cmaes": "CmaEsSampler", "random": "RandomSampler"}


def _check_sampler_options(where: str, name: str, options: dict[str, Any]) -> None:
    """Refuse options the sampler has no argument for, and numbers or flags of the wrong
    kind for an argument whose default is a number or a flag (Optuna would fail at the
    first trial it asks)."""
    import inspect

    import optuna

    parameters = inspect.signature(getattr(optuna.samplers, SAMPLER_CLASSES[name])).parameters
    for key, value in options.items():
        if key == "seed":
            raise SpecError(f"{where}: options key 'seed' = {value!r}: give the seed as [sampler] seed")
        if key not in parameters:
            allowed = ", ".join(k for k in parameters if k not in ("seed", "self"))
            raise SpecError(f"{where}: options key {key!r} is no argument of the {name} sampler; "
                            f"allowed: {allowed}")
        default = parameters[key].default
        if isinstance(default, bool):
            kinds, what = (bool,), "true or false"
        elif isinstance(default, int):
            kinds, what = (int,), "an integer"
        elif isinstance(default, float):
            kinds, what = (int, float), "a number"
        else:
            continue
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise SpecError(f"{where}: options key {key!r} = {value!r} must be {what} "
                            f"(the {name} sampler's default is {default!r})")


def load_study_file(path: str | Path) -> StudyFile:
    """Read and check a study file."""
    path = Path(path)
    return parse_study(f.read_toml(path), name=path.stem, path=path)
