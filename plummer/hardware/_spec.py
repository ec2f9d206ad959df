"""The PLMR hardware spec: everything the cost models and the executor know of a chip."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from plummer import _fields as f
from plummer.errors import SpecError

#: Parameters that no public source gives; a preset lists those it has not calibrated.
CALIBRATABLE = (
    "alpha",
    "beta",
    "fma_per_cycle",
    "vector_op_overhead_cycles",
    "loop_overhead_cycles",
    "step_overhead_cycles",
    "message_overhead_cycles",
    "launch_overhead_cycles",
)


@dataclass(frozen=True)
class HardwareSpec:
    """An immutable PLMR description of a 2-D mesh accelerator.

    Units: sizes in cores, memory in bytes, time in cycles, link width in bytes per
    cycle per direction, ``wire_bytes_per_element`` the bytes one element takes on a link
    (4 when each fp16 travels in its own 32-bit wavelet). ``mesh_width`` x ``mesh_height`` is the region kernels use by
    default; it must fit in the ``fabric_width`` x ``fabric_height`` of the chip.

    The time parameters (cycles) are those of the abstract machine in
    :mod:`plummer.mesh`: ``alpha`` per pass-through hop; ``beta`` per stage a core's
    processor handles (relay, add-and-forward); ``fma_per_cycle`` FMAs per core per cycle;
    ``vector_op_overhead_cycles`` per vector instruction issued; ``loop_overhead_cycles``
    per outer-loop iteration of a local product; ``step_overhead_cycles`` per
    compute-and-shift step of the GEMM kernels (task activations of its sends, receives and
    compute); ``message_overhead_cycles`` per message task a core's program activates and
    waits on (a store-and-forward step, a reduction phase); ``launch_overhead_cycles``
    fixed per kernel run (timestamps, start-up). ``power_watts`` (optional) is the chip's
    power draw in watts, for energy per token. ``uncalibrated`` lists the time parameters no
    measurement of this chip fixed; ``fitted_on`` names the whole-layer observations
    (scenarios) the others were fitted on, when they were.

    Example:
        >>> from plummer.hardware import load_hardware
        >>> spec = load_hardware("wse2")
        >>> spec.route_budget
        21
    """

    name: str
    fabric_width: int
    fabric_height: int
    mesh_width: int
    mesh_height: int
    memory_bytes: int
    dtype_bytes: int
    colors: int
    reserved_colors: int
    max_routes_per_core: int
    alpha: float
    beta: float
    link_bytes_per_cycle: float
    wire_bytes_per_element: int
    fma_per_cycle: float
    vector_op_overhead_cycles: float
    loop_overhead_cycles: float
    step_overhead_cycles: float
    message_overhead_cycles: float
    launch_overhead_cycles: float
    clock_ghz: float
    input_queues: int | None = None
    power_watts: float | None = None
    uncalibrated: tuple[str, ...] = field(default=CALIBRATABLE)
    calibration: str = "uncalibrated defaults (guesses)"
    fitted_on: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        owner = f"hardware '{self.name}'" if isinstance(self.name, str) else "hardware"
        f.require_str(owner, "name", self.name)
        for name in (
            "fabric_width",
            "fabric_height",
            "mesh_width",
            "mesh_height",
            "memory_bytes",
            "dtype_bytes",
            "wire_bytes_per_element",
            "colors",
            "max_routes_per_core",
        ):
            f.require_int(owner, name, getattr(self, name), 1)
        f.require_int(owner, "reserved_colors", self.reserved_colors, 0)
        if self.input_queues is not None:
            f.require_int(owner, "input_queues", self.input_queues, 1)
        if self.power_watts is not None:
            f.require_number(owner, "power_watts", self.power_watts, 0.0, strict=True)
        if self.reserved_colors >= self.colors:
            raise SpecError(
                f"{owner}: field 'reserved_colors' = {self.reserved_colors} must be smaller "
                f"than 'colors' = {self.colors}"
            )
        if self.mesh_width > self.fabric_width:
            raise SpecError(
                f"{owner}: field 'mesh_width' = {self.mesh_width} exceeds the fabric width "
                f"{self.fabric_width}; allowed 1..{self.fabric_width}"
            )
        if self.mesh_height > self.fabric_height:
            raise SpecError(
                f"{owner}: field 'mesh_height' = {self.mesh_height} exceeds the fabric height "
                f"{self.fabric_height}; allowed 1..{self.fabric_height}"
            )
        for name in ("alpha", "link_bytes_per_cycle", "fma_per_cycle", "clock_ghz"):
            f.require_number(owner, name, getattr(self, name), 0.0, strict=True)
        for name in (
            "beta",
            "vector_op_overhead_cycles",
            "loop_overhead_cycles",
            "step_overhead_cycles",
            "message_overhead_cycles",
            "launch_overhead_cycles",
        ):
            f.require_number(owner, name, getattr(self, name), 0.0)
        if not isinstance(self.uncalibrated, (tuple, list)) or any(
            p not in CALIBRATABLE for p in self.uncalibrated
        ):
            raise SpecError(
                f"{owner}: field 'uncalibrated' = {self.uncalibrated!r} must list names among "
                f"{', '.join(CALIBRATABLE)}"
            )
        object.__setattr__(self, "uncalibrated", tuple(self.uncalibrated))
        if not isinstance(self.fitted_on, (tuple, list)) or not all(isinstance(x, str) for x in self.fitted_on):
            raise SpecError(f"{owner}: field 'fitted_on' = {self.fitted_on!r} must list observation names")
        object.__setattr__(self, "fitted_on", tuple(self.fitted_on))
        f.require_str(owner, "calibration", self.calibration)
        if not isinstance(self.description, str):
            raise SpecError(f"{owner}: field 'description' = {self.description!r} must be a string")

    # ----------------------------------------------------------------- derived
    @property
    def route_budget(self) -> int:
        """Distinct routes (colors) a user kernel may configure at one core."""
        return min(self.colors - self.reserved_colors, self.max_routes_per_core)

    @property
    def cores(self) -> int:
        """Cores in the default kernel region ``mesh_width * mesh_height``."""
        return self.mesh_width * self.mesh_height

    @property
    def memory_total_bytes(self) -> int:
        """SRAM of the default kernel region (bytes)."""
        return self.cores * self.memory_bytes

    @property
    def link_elements_per_cycle(self) -> float:
        """Elements a link carries per cycle per direction."""
        return self.link_bytes_per_cycle / self.wire_bytes_per_element

    @property
    def peak_flops(self) -> float:
        """Peak FLOP/s of the default region (2 FLOPs per FMA)."""
        return 2.0 * self.fma_per_cycle * self.cores * self.clock_ghz * 1e9

    def derived(self) -> dict[str, Any]:
        """Derived quantities, as shown by ``plummer hardware show``."""
        return {
            "cores": self.cores,
            "route_budget": self.route_budget,
            "memory_total_bytes": self.memory_total_bytes,
            "link_elements_per_cycle": self.link_elements_per_cycle,
            "peak_flops": self.peak_flops,
        }

    # ------------------------------------------------------------- conversions
    def to_dict(self) -> dict[str, Any]:
        """Fields as plain Python values (``uncalibrated`` as a list)."""
        data = dataclasses.asdict(self)
        data["uncalibrated"] = list(self.uncalibrated)
        data["fitted_on"] = list(self.fitted_on)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], owner: str = "hardware") -> HardwareSpec:
        """Build a spec from a mapping, rejecting unknown and missing keys."""
        f.check_keys(owner, data, cls)
        return cls(**data)

    def replace(self, **changes: Any) -> HardwareSpec:
        """A validated copy with ``changes`` applied (unknown names are an error)."""
        names = {fl.name for fl in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise SpecError(f"hardware '{self.name}': unknown field(s) {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def with_mesh(self, width: int, height: int) -> HardwareSpec:
        """The same chip with a ``width`` x ``height`` kernel region (must fit the fabric)."""
        return self.replace(mesh_width=width, mesh_height=height)
