"""Scenarios: what a published wafer run did, as data, predicted like any other layout.

A scenario (a TOML file) states the model *as run* (``[model]``, any :class:`ModelSpec`:
here one attention head of the full width and padded dimensions, as WaferLLM's released
kernels run LLaMA3-8B), the hardware, the layout (``[layout]``, any :class:`Layout`), how
the run was timed, and the observation with its source (``[observation]``: a metric of
:func:`plummer.layout.evaluate` and its value), or none (``[prediction]``: the metric
only). Nothing here is a special code path: a scenario's prediction is
:func:`plummer.layout._predict.predict` of its model and layout.

Timing methods: ``one-layer-times-layers``, what WaferLLM measured (one layer on one grid,
its cycles times the layers; no transfer between regions): the layout must then have one
region per phase, where the model's layers add up with no transfer.

The shipped scenarios (``plummer/scenario/data``): the six WaferLLM observations on a WSE-2
(Table 4 decode at 4K context on 420, 540 and 660; Table 3 prefill of 4,096 tokens on 480,
600 and 720), and the released decode configurations of every other grid as
prediction-only scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from plummer import _fields as f
from plummer.errors import SpecError
from plummer.hardware import HardwareSpec, load_hardware
from plummer.layout import METRICS, Layout
from plummer.layout._predict import predict
from plummer.model import ModelSpec

TIMINGS = ("one-layer-times-layers",)
_DATA = resources.files("plummer.scenario") / "data"


@dataclass(frozen=True)
class Scenario:
    """A published run (module docstring): model as run, hardware, layout, timing, and the
    observed ``value`` of ``metric`` (None for a prediction-only scenario)."""

    name: str
    description: str
    model: ModelSpec
    hardware: str
    layout: Layout
    timing: str
    metric: str
    value: float | None
    source: str

    @property
    def observed(self) -> bool:
        """Whether the scenario carries a published measurement."""
        return self.value is not None

    def predict(self, spec: HardwareSpec | None = None) -> float:
        """The scenario's metric predicted on ``spec`` (default: its own hardware)."""
        spec = spec or load_hardware(self.hardware)
        return predict(spec, self.model, self.layout).metrics[self.metric]


def _parse(data: dict[str, Any], path: Path) -> Scenario:
    owner = f"scenario '{path}'"
    keys = ("name", "description", "hardware", "timing", "model", "layout", "observation", "prediction")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise SpecError(f"{owner}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(keys)}")
    for key in ("name", "hardware", "timing", "model", "layout"):
        if key not in data:
            raise SpecError(f"{owner}: missing required key '{key}'")
    timing = data["timing"]
    if timing not in TIMINGS:
        raise SpecError(f"{owner}: 'timing' = {timing!r} must be one of {', '.join(TIMINGS)}")
    model = ModelSpec.from_dict(data["model"], owner=f"{owner} [model]")
    layout = Layout.from_dict(data["layout"], owner=f"{owner} [layout]")
    if timing == "one-layer-times-layers" and (layout.prefill.regions != 1 or layout.decode.regions != 1):
        raise SpecError(f"{owner}: timing 'one-layer-times-layers' needs one region per phase")
    if ("observation" in data) == ("prediction" in data):
        raise SpecError(f"{owner}: give exactly one of [observation] (metric, value, source) or "
                        "[prediction] (metric, source)")
    table = data.get("observation") or data.get("prediction")
    metric = table.get("metric")
    if metric not in METRICS:
        raise SpecError(f"{owner}: 'metric' = {metric!r} must be one of {', '.join(METRICS)}")
    value = None
    if "observation" in data:
        value = f.require_number(owner, "value", table.get("value"), 0.0, strict=True)
    return Scenario(name=f.require_str(owner, "name", data["name"]), description=data.get("description", ""),
                    model=model, hardware=f.require_str(owner, "hardware", data["hardware"]),
                    layout=layout, timing=timing, metric=metric, value=value,
                    source=str(table.get("source", "")))


def load_scenario(path: str | Path) -> Scenario:
    """Read one scenario file."""
    path = Path(path)
    return _parse(f.read_toml(path), path)


def shipped_scenarios() -> list[Scenario]:
    """The shipped scenarios, observed ones first, each group by name."""
    paths = sorted(Path(str(p)) for p in _DATA.iterdir() if p.name.endswith(".toml"))
    scenarios = [load_scenario(p) for p in paths]
    return sorted(scenarios, key=lambda s: (not s.observed, s.name))


# after the names above, which plummer.scenario._validate imports from this package
from plummer.scenario._validate import summary_rows, validate_paper  # noqa: E402

__all__ = ["TIMINGS", "Scenario", "load_scenario", "shipped_scenarios", "summary_rows", "validate_paper"]
