"""Multicast broadcast of an ``n``-element vector along one mesh axis.

Program: on every line (row for ``axis="x"``, column for ``"y"``) of a ``p`` x ``q`` mesh
the core at position 0 (the west or north end) holds the vector; its PE activates one
message task (``message_overhead``) and sends it once on one color, configured as a
hardware multicast that delivers a copy at every core of the line (rule 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, Kernel, KernelRun, as_float, blockwise
from plummer.kernels._gemm import operands_or_random
from plummer.kernels.allreduce import AXES, along, configuration, line_config, line_params
from plummer.mesh import Mesh, serialization_cycles


class MulticastBroadcast(Kernel):
    """Broadcast from the first core of every line to the whole line (one multicast)."""

    name = "multicast"
    family = "broadcast"
    parameters = ("p", "q", "n", "axis")
    defaults = {"axis": "x"}

    def check(self, spec: HardwareSpec, **params: Any) -> None:
        line_params(self, spec, params)

    @blockwise
    def cost(self, spec: HardwareSpec, **params: Any) -> Cost:
        """Closed form (exact, rules 4 and 8): the head leaves the root at ``mo`` and
        reaches position ``y`` at ``mo + y alpha``; the copy is in memory ``T`` later
        (the root's last event is its tail leaving, ``mo + T``). So
        ``cycles = launch + mo + (L - 1) alpha + T(n)`` and the mean over the line uses
        ``mean(y) = (L - 1) / 2``."""
        v, axis = line_params(self, spec, params)
        hops = as_float(along(v, axis)[0]) - 1.0
        n = as_float(v["n"])
        fixed = spec.launch_overhead_cycles + spec.message_overhead_cycles + serialization_cycles(spec, n)
        return Cost.make(
            spec,
            cycles=fixed + spec.alpha * hops,
            compute_cycles=spec.message_overhead_cycles,
            hops=hops,
            routing_stages=0.0,
            memory_per_core_bytes=spec.dtype_bytes * n,
            routes_per_core=1.0,
            mean_core_cycles=fixed + (0.5 * spec.alpha) * hops,
        )

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: Any) -> KernelRun:
        v, axis = line_params(self, spec, params)
        s = configuration(v)
        length, lines = along(s, axis)
        mesh = Mesh(spec, s["p"], s["q"], trace=trace)
        (data,) = operands_or_random(self.name, operands, seed, (lines, s["n"]))
        step = "E" if axis == "x" else "S"
        roots = [(0, line) if axis == "x" else (line, 0) for line in range(lines)]
        for line, root in enumerate(roots):
            mesh.load(root, "v", data[line])
            mesh.send(root, "v", step * (length - 1), 0, "v", multicast=True, overhead=spec.message_overhead_cycles)
        result = mesh.run()
        output = np.array([[result.tile((x, y), "v") for x in range(s["p"])] for y in range(s["q"])])
        reference = data[:, None, :] if axis == "x" else data[None, :, :]
        return KernelRun(output, np.broadcast_to(reference, output.shape), result)

    def sweep(self) -> list[dict[str, Any]]:
        """Lines of 2 to 64 cores on both axes, n = 1 and 32."""
        return [
            line_config(axis, length, n=n)
            for length in (2, 3, 8, 17, 64)
            for n in (1, 32)
            for axis in AXES
        ]


KERNELS: tuple[Kernel, ...] = (MulticastBroadcast(),)
