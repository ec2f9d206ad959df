"""Shift: move every core's tile ``distance`` cores along an axis (east for ``x``, south for ``y``).

The matrix (M x N) is cut into ``(M/p) x (N/q)`` tiles, tile ``(i, j)`` on core
``(x, y) = (i, j)``. The output is the shifted matrix: tile ``(i, j)`` moves to
``(i + L, j)`` and the first ``L`` tile columns (rows) hold filler (zeros); ``L >= p`` is
allowed and leaves only filler.

Program (as the measured kernel): **every core performs all ``L = distance`` steps,
whatever ``L`` is**, one-hop store-and-forward, double-buffered. In step ``k`` a core:

- activates the send of the tile it received in step ``k - 1`` (its own tile in step 1)
  to its neighbour (PE, ``message_overhead``; the tile crosses one link, ``alpha + T``);
  the last core of a line has no neighbour: tiles pushed past it are dropped, it only
  receives;
- receives the neighbour's tile into its other buffer and runs the receive completion
  (PE, ``message_overhead``), which ends its step; the next send forwards that tile.

The first core of a line has no neighbour to receive from: it sends filler. Its step is
paced like everyone else's: once its send's tail has left its buffer (rule 7), it waits
for its neighbour's flow-control credit, one hop back (``alpha``), and runs its completion
task (``message_overhead``), refilling the buffer with filler: PE ``alpha +
message_overhead``, so its step also lasts ``mo + T + alpha + mo``.
Why this choice (the executor has no fabric back-pressure, so the pacing has to be in the
program): in the measured kernel the first core cannot run ahead -- its sends drain only
as fast as its neighbour posts receives -- and every step costs one ``T`` per core even
for ``L >= p`` (+0.97 cycles per element per step at p = 16, L = 32), and at ``L = 1``
all cores of a line take the same time (the mean moves by 0.07 cycles from p = 16 to
96). A first core that runs ahead in the executor would let its neighbours work off
queued tiles at ``2 message_overhead`` per step without ``alpha + T`` (neither is
measured), and its PE's ready order would make the edge cores' timing depend on ties.
With the refill, every core of every line is in lock step, ``S`` cycles per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, Kernel, KernelRun, as_float, blockwise, minimum, require
from plummer.kernels._gemm import operands_or_random
from plummer.kernels.allreduce import along, configuration, line_core, line_params
from plummer.mesh import Mesh, serialization_cycles


class Shift(Kernel):
    """``distance`` lock-step one-hop store-and-forward steps along ``axis``, on every core."""

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

    @blockwise
    def cost(self, spec: HardwareSpec, **params: Any) -> Cost:
        """Closed form from rules 4-8: ``launch + L * S``, ``S = 2 mo + alpha + T(Mt Nt)``.

        Claim: every core starts step ``k`` at ``(k - 1) S``. Step 1 starts at 0. If it
        holds for step ``k`` (start ``s``): a core's send activation runs ``[s, s + mo]``;
        its link is free (the previous tile took it ``[s - S + mo, s - S + mo + T)``), so
        the head reaches the neighbour at ``s + mo + alpha`` and the tile is in its memory
        at ``s + mo + alpha + T`` (rule 4). The neighbour's buffer is free by then (its
        step-``k - 1`` send's tail left at ``s - S + mo + T``, rule 7) and its PE is
        idle after its own activation, so its receive completion runs
        ``[s + mo + alpha + T, s + S]``. The first core's refill starts when its own tail
        has left, ``s + mo + T``, and runs ``alpha + mo``: also until ``s + S``. So step ``k + 1``
        starts at ``k S`` everywhere, with no contention and no PE tie. Each core's last
        event is the end of its step ``L`` (its last send's tail, ``(L - 1) S + mo + T``,
        is earlier), so every core takes ``launch + L S``: mean = makespan.
        """
        v, axis = self._values(spec, params)
        length = as_float(along(v, axis)[0])
        tile = (as_float(v["m"]) / as_float(v["p"])) * (as_float(v["n"]) / as_float(v["q"]))  # exact: they divide
        mo = spec.message_overhead_cycles
        step = 2.0 * mo + spec.alpha + serialization_cycles(spec, tile)
        steps = as_float(v["distance"])
        cycles = spec.launch_overhead_cycles + steps * step
        return Cost.make(
            spec,
            cycles=cycles,
            compute_cycles=(2.0 * mo) * steps,
            hops=steps,
            routing_stages=steps,
            memory_per_core_bytes=(2.0 * spec.dtype_bytes) * tile,
            routes_per_core=minimum(length - 1.0, 2.0),  # 2 colors alternate; 1 on a 2-core line
            mean_core_cycles=cycles,
        )

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: Any) -> KernelRun:
        v, axis = self._values(spec, params)
        s = configuration(v)
        p, q, distance = s["p"], s["q"], s["distance"]
        mt, nt = s["m"] // p, s["n"] // q
        (matrix,) = operands_or_random(self.name, operands, seed, (s["m"], s["n"]))
        mesh = Mesh(spec, p, q, trace=trace)
        length, lines = along(s, axis)
        step = "E" if axis == "x" else "S"
        mo = spec.message_overhead_cycles
        refill = spec.alpha + mo
        filler = np.zeros((mt, nt), dtype=np.float32)

        for x in range(p):
            for y in range(q):
                mesh.load((x, y), "t0", matrix[x * mt:(x + 1) * mt, y * nt:(y + 1) * nt])
        for k in range(1, distance + 1):
            send, recv = f"t{(k - 1) % 2}", f"t{k % 2}"
            for line in range(lines):
                first = line_core(axis, line, 0)
                # the first core sends its buffer, then refills that same buffer with filler
                mesh.send(first, "t0", step, 0, recv, overhead=mo, receive_overhead=mo)
                mesh.compute(first, [], "t0", lambda: filler, fmas=0, overhead=refill)
                for position in range(1, length - 1):
                    mesh.send(
                        line_core(axis, line, position), send, step, position % 2, recv,
                        overhead=mo, receive_overhead=mo,
                    )
        result = mesh.run()
        output = np.zeros_like(matrix)
        for x in range(p):
            for y in range(q):
                position = x if axis == "x" else y
                final = "t0" if position == 0 else f"t{distance % 2}"
                output[x * mt:(x + 1) * mt, y * nt:(y + 1) * nt] = result.tile((x, y), final)
        shift_rows, shift_cols = (min(distance * mt, s["m"]), 0) if axis == "x" else (0, min(distance * nt, s["n"]))
        reference = np.zeros_like(matrix)
        reference[shift_rows:, shift_cols:] = matrix[:s["m"] - shift_rows, :s["n"] - shift_cols]
        return KernelRun(output, reference, result)

    def sweep(self) -> list[dict[str, Any]]:
        """Lines of 2 to 64 cores, distances 1 to 40 (also at and beyond the line), tiles 1x1 to
        8x8, and 48 x 48 and 64 x 64 meshes (every line in lock step)."""
        return [
            {"p": length, "q": 2, "m": length * mt, "n": 2 * nt, "distance": d, "axis": "x"}
            for length in (2, 3, 5, 8, 16, 33, 64)
            for d in (1, 2, 3, 8, 16, 40)
            for mt, nt in ((1, 1), (8, 8))
        ] + [
            {"p": 2, "q": length, "m": 2 * mt, "n": length * nt, "distance": d, "axis": "y"}
            for length in (3, 16)
            for d in (1, 4, 16, 20)
            for mt, nt in ((1, 1), (4, 2))
        ] + [
            {"p": size, "q": size, "m": size * mt, "n": size * nt, "distance": d, "axis": axis}
            for size, d, axis, (mt, nt) in ((48, 1, "x", (2, 2)), (48, 3, "y", (1, 4)), (64, 2, "x", (1, 1)))
        ]


KERNELS: tuple[Kernel, ...] = (Shift(),)
