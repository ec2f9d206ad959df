"""Shift: move every core's tile ``distance`` cores along an axis (east for ``x``, south for ``y``).

The matrix (M x N) is cut into ``(M/p) x (N/q)`` tiles, tile ``(i, j)`` on core
``(x, y) = (i, j)``. Program: ``L = distance`` sequential one-hop store-and-forward steps,
as the measured kernel: in step ``k`` every core that holds a tile sends it to its
neighbour (its PE activates the message, ``message_overhead``; the tile crosses one link,
``alpha + T``; the neighbour's PE completes the receive, ``message_overhead``),
double-buffered. Edges: the last core of a line never sends, so tiles shifted past the
edge are dropped; the core at position ``x`` holds a tile only until step ``x + 1`` (the
first cores have nothing left to receive and finish early; they do not send filler).
The output is the shifted matrix: tile ``(i, j)`` moves to ``(i + L, j)``, the first
``L`` tile columns (rows) are zero. ``distance >= p`` is allowed: after ``length - 1``
steps every tile has left and the rest of the steps are empty.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, Kernel, KernelRun, require
from plummer.kernels._gemm import random_operands, scalar_params
from plummer.kernels.allreduce import along, line_core, line_params
from plummer.mesh import Mesh, serialization_cycles


class Shift(Kernel):
    """``distance`` one-hop store-and-forward steps along ``axis``."""

    name = "shift"
    family = "shift"
    parameters = ("p", "q", "m", "n", "distance", "axis")
    defaults = {"axis": "x"}

    def _values(self, spec: HardwareSpec, params: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
        v, axis = line_params(self, spec, params)
        require(self.name, v["m"] % v["p"] == 0, "m", v["m"], "must be a multiple of the mesh width p")
        require(self.name, v["n"] % v["q"] == 0, "n", v["n"], "must be a multiple of the mesh height q")
        return v, axis

    def check(self, spec: HardwareSpec, **params: Any) -> None:
        self._values(spec, params)

    def cost(self, spec: HardwareSpec, **params: Any) -> Cost:
        """Closed form from rules 4-6 (exact: each link carries one tile per step).

        A core's tile for step ``k + 1`` is ready ``S = 2 mo + alpha + T(Mt Nt)`` after its
        predecessor's for step ``k`` (activation, one hop, completion), so a core at
        position ``x`` receives step ``k <= x`` at ``k S``. With ``u = min(L, length - 1)``
        steps carrying tiles: a core at ``x < u`` ends when its last tile leaves
        (``x S + mo + T``), the others (and the last core) after their last receive,
        ``min(L, x) S``; the makespan is ``u S``.
        """
        v, axis = self._values(spec, params)
        length = along(v, axis)[0]
        mo = spec.message_overhead_cycles
        t = serialization_cycles(spec, (v["m"] // v["p"]) * (v["n"] // v["q"]))
        step = 2 * mo + spec.alpha + t
        u = np.minimum(v["distance"], length - 1)
        early = step * u * (u - 1) / 2 + u * (mo + t)
        late = (length - 1 - u) * v["distance"] * step + u * step
        fixed = spec.launch_overhead_cycles
        return Cost.make(
            spec,
            cycles=fixed + u * step,
            compute_cycles=2 * mo * u,
            hops=u,
            routing_stages=u,
            memory_per_core_bytes=2 * (v["m"] // v["p"]) * (v["n"] // v["q"]) * spec.dtype_bytes,
            routes_per_core=np.where(length >= 3, 2, 1),
            mean_core_cycles=fixed + (early + late) / length,
        )

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False, **params: Any) -> KernelRun:
        v, axis = self._values(spec, params)
        s = scalar_params(v)
        p, q, distance = s["p"], s["q"], s["distance"]
        mt, nt = s["m"] // p, s["n"] // q
        (matrix,) = random_operands(seed, (s["m"], s["n"]))
        mesh = Mesh(spec, p, q, trace=trace)
        length, lines = along(s, axis)
        step = "E" if axis == "x" else "S"
        mo = spec.message_overhead_cycles

        for x in range(p):
            for y in range(q):
                mesh.load((x, y), "t0", matrix[x * mt:(x + 1) * mt, y * nt:(y + 1) * nt])
        for k in range(1, min(distance, length - 1) + 1):
            for line in range(lines):
                for position in range(k - 1, length - 1):
                    mesh.send(
                        line_core(axis, line, position), f"t{(k - 1) % 2}", step, position % 2, f"t{k % 2}",
                        overhead=mo, receive_overhead=mo,
                    )
        result = mesh.run()
        final = f"t{distance % 2}"
        output = np.zeros_like(matrix)
        for x in range(p):
            for y in range(q):
                if (x if axis == "x" else y) >= distance:
                    output[x * mt:(x + 1) * mt, y * nt:(y + 1) * nt] = result.tile((x, y), final)
        shift_rows, shift_cols = (min(distance * mt, s["m"]), 0) if axis == "x" else (0, min(distance * nt, s["n"]))
        reference = np.zeros_like(matrix)
        reference[shift_rows:, shift_cols:] = matrix[:s["m"] - shift_rows, :s["n"] - shift_cols]
        return KernelRun(output, reference, result)

    def sweep(self) -> list[dict[str, Any]]:
        """Lines of 2 to 64 cores, distances 1 to 32 (also beyond the line), tiles 1x1 to 8x8."""
        return [
            {"p": length, "q": 2, "m": length * mt, "n": 2 * nt, "distance": d, "axis": "x"}
            for length in (2, 3, 5, 8, 16, 33, 64)
            for d in (1, 2, 3, 8, 32)
            for mt, nt in ((1, 1), (8, 8))
        ] + [
            {"p": 2, "q": length, "m": 2 * mt, "n": length * nt, "distance": d, "axis": "y"}
            for length in (3, 16)
            for d in (1, 4, 16)
            for mt, nt in ((1, 1), (4, 2))
        ]


KERNELS: tuple[Kernel, ...] = (Shift(),)
