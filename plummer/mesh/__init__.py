"""The exact mesh executor and the timing rules it shares with the closed forms.

Read :mod:`plummer.mesh._executor`'s docstring for the rules of the abstract machine.
"""

from __future__ import annotations

from plummer.mesh._executor import DIRECTIONS, Mesh, Segment
from plummer.mesh._result import ExecutionResult, TraceEvent
from plummer.mesh._rules import compute_cycles, serialization_cycles

__all__ = [
    "DIRECTIONS",
    "ExecutionResult",
    "Mesh",
    "Segment",
    "TraceEvent",
    "compute_cycles",
    "serialization_cycles",
]
