"""The timing rules of the abstract machine, shared by the executor and the closed forms.

Keeping them in one place is what lets a closed form be derived from the executor: both
call these functions, vectorised with numpy. Units: cycles, elements, bytes.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from plummer.hardware import HardwareSpec


def serialization_cycles(spec: HardwareSpec, elements: ArrayLike) -> np.ndarray | float:
    """Cycles a message of ``elements`` (a number or a numpy array) occupies each link:
    ``ceil(n * wire_bytes_per_element / link_bytes_per_cycle)``; a Python float for a
    Python number."""
    cycles = elements * (spec.wire_bytes_per_element / spec.link_bytes_per_cycle)
    if type(cycles) is float:  # one plain number: numpy's scalar arithmetic is slower
        return float(math.ceil(cycles))
    return np.ceil(cycles)


def compute_cycles(
    spec: HardwareSpec, fmas: ArrayLike, loops: ArrayLike = 0, vector_ops: ArrayLike = 0
) -> np.ndarray:
    """Cycles a local product occupies a core's processor (without fixed overheads);
    numbers or numpy arrays.

    ``loops * loop_overhead + vector_ops * vector_op_overhead + fmas / fma_per_cycle``:
    a cost per outer-loop iteration, per vector instruction issued, and the FMAs at the
    spec's rate. Fixed per-call costs (step overheads) are added by the kernel.
    """
    return (
        loops * spec.loop_overhead_cycles
        + vector_ops * spec.vector_op_overhead_cycles
        + fmas * (1.0 / spec.fma_per_cycle)
    )
