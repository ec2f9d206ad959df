"""What an execution on the mesh returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TraceEvent:
    """One timed event: ``kind`` on core ``core`` (linear index) over [start, end) cycles.

    For link hops ``kind`` is ``"hop"`` and ``port`` the direction index (0 E, 1 W, 2 S, 3 N).
    """

    kind: str
    core: int
    start: float
    end: float
    port: int | None = None


@dataclass(frozen=True)
class ExecutionResult:
    """Timing, traffic and resources of one program run on a ``width`` x ``height`` mesh.

    Arrays are indexed ``[y, x]``. Times in cycles, memory and traffic in bytes.
    """

    width: int
    height: int
    cycles: float
    """Makespan: latest end minus earliest start (every core starts at 0)."""
    mean_core_cycles: float
    """Mean elapsed cycles over the cores that did anything (the measured kernels' metric)."""
    core_cycles: np.ndarray
    """Elapsed cycles per core (its last event); NaN for a core that did nothing."""
    busy_cycles: np.ndarray
    """Cycles each core's processor was busy (compute and stages)."""
    idle_cycles: np.ndarray
    """``cycles - busy_cycles`` per core."""
    link_bytes: np.ndarray
    """Bytes each directed link carried on the wire (its busy cycles x the link width),
    ``[y, x, direction]`` (0 E, 1 W, 2 S, 3 N)."""
    peak_memory_bytes: np.ndarray
    """Peak bytes of tiles per core."""
    routes_per_core: np.ndarray
    """Distinct colors configured at each core."""
    tiles: list[dict[str, np.ndarray]]
    """Final tiles of each core (linear index ``y * width + x``)."""
    link_waits: int
    """Hops whose head found its link busy: 0 means no link was shared at once."""
    trace: list[TraceEvent] | None = None

    @classmethod
    def build(
        cls,
        width: int,
        height: int,
        last_event: np.ndarray,
        busy: np.ndarray,
        link_bytes: np.ndarray,
        peak_memory: np.ndarray,
        routes: np.ndarray,
        tiles: list[dict[str, np.ndarray]],
        link_waits: int,
        trace: list[TraceEvent] | None,
    ) -> ExecutionResult:
        """Assemble a result from the executor's per-core lists."""
        active = ~np.isnan(last_event)
        makespan = float(np.max(last_event[active])) if active.any() else 0.0
        mean = float(np.mean(last_event[active])) if active.any() else 0.0
        shape = (height, width)
        return cls(
            width=width,
            height=height,
            cycles=makespan,
            mean_core_cycles=mean,
            core_cycles=last_event.reshape(shape),
            busy_cycles=busy.reshape(shape),
            idle_cycles=(makespan - busy).reshape(shape),
            link_bytes=link_bytes,
            peak_memory_bytes=peak_memory.reshape(shape),
            routes_per_core=routes.reshape(shape),
            tiles=tiles,
            link_waits=link_waits,
            trace=trace,
        )

    def tile(self, core: tuple[int, int], name: str) -> np.ndarray:
        """Final tile ``name`` of ``core`` = (x, y)."""
        x, y = core
        return self.tiles[y * self.width + x][name]

    @property
    def max_link_bytes(self) -> float:
        """Bytes on the busiest link."""
        return float(self.link_bytes.max()) if self.link_bytes.size else 0.0
