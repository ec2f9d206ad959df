"""GEMV y = x . W: local tile products, then an allreduce along the axis that splits M.

Program, on a ``p`` x ``q`` mesh with the reduction along ``axis``: x (1 x M) is split
along the axis and replicated along the other; W (M x N) is cut into tiles of
``Mt = M / (cores along the axis)`` by ``Nt = N / (cores across it)``. Every core (one
PE call, no step overhead) computes its partial ``x_tile . W_tile``: ``Mt`` vector ops of
length ``Nt`` (``fmas = Mt Nt``) and activates the allreduce's message tasks; then the
partials are allreduced along the axis (:mod:`plummer.kernels.allreduce`) so every core
holds its ``Nt`` slice of y.

- ``pipeline``: the baseline "Cerebras GEMV" (chain to the end, multicast back);
- ``ktree``: MeshGEMV (K-tree; the measured kernel is K = 2 with ``group_num`` groups,
  ``p = q = P`` and the reduction along the columns, ``axis="y"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, Kernel, KernelRun, as_float, blockwise, require
from plummer.kernels._gemm import operands_or_random
from plummer.kernels.allreduce import (
    LineTiming,
    along,
    chain_cost,
    check_ktree,
    configuration,
    ktree_levels,
    ktree_line,
    line_params,
    pipeline_levels,
    pipeline_line,
    record_tree,
    tasks,
)
from plummer.mesh import Mesh, compute_cycles

#: What ``m`` and ``n`` must be multiples of, per reduction axis.
_SPLITS = {
    axis: (
        f"must be a multiple of the mesh size '{along_name}' (M is split along axis '{axis}')",
        f"must be a multiple of the mesh size '{across_name}'",
    )
    for axis, along_name, across_name in (("x", "p", "q"), ("y", "q", "p"))
}


def _product(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w


class _GEMV(Kernel):
    family = "gemv"
    parameters: ClassVar[tuple[str, ...]] = ("p", "q", "m", "n", "axis")
    defaults: ClassVar[dict[str, Any]] = {"axis": "x"}

    def _line(self, cores: Any, v: dict[str, Any]) -> LineTiming:
        """The allreduce's timing on lines of ``cores`` cores (an int or int array)."""
        return pipeline_line(cores, middle=False, broadcast=True)

    def _levels(self, length: int, s: dict[str, int]) -> list[tuple[int, int, int]]:
        """The program's levels ``(s_l, a_l, d_l)`` for one configuration ``s``."""
        return pipeline_levels(length, middle=False)

    def _depth(self, v: dict[str, Any]) -> Any:
        """Levels of the allreduce's tree."""
        return 1.0

    def _values(self, spec: HardwareSpec, params: dict[str, Any]) -> tuple[dict[str, Any], str, Any, Any]:
        """Validated parameters, the axis, the cores along it and across it."""
        v, axis = line_params(self, spec, params)
        length, across = along(v, axis)
        m_rule, n_rule = _SPLITS[axis]
        require(self.name, v["m"] % length == 0, "m", v["m"], m_rule)
        require(self.name, v["n"] % across == 0, "n", v["n"], n_rule)
        return v, axis, length, across

    def check(self, spec: HardwareSpec, **params: Any) -> None:
        self._values(spec, params)

    @blockwise
    def cost(self, spec: HardwareSpec, **params: Any) -> Cost:
        """``launch + local + tasks mo + allreduce(Nt)``, every core starting the allreduce
        at the same time; ``local = Mt vector_op + Mt Nt / fma``. As exact as the
        allreduce's closed form: for K <= 2, and a lower bound for K >= 3
        (:class:`~plummer.kernels.allreduce.KTreeAllreduce`)."""
        v, _, length_int, across = self._values(spec, params)
        length = as_float(length_int)
        mt, nt = as_float(v["m"]) / length, as_float(v["n"]) / as_float(across)  # exact: they divide
        local = compute_cycles(spec, mt * nt, 0.0, mt) + tasks(self._depth(v), True) * spec.message_overhead_cycles
        return chain_cost(spec, self._line(length_int, v), nt, local, (mt * nt + mt + 2.0 * nt) * spec.dtype_bytes)

    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: Any) -> KernelRun:
        v, axis, length_a, across_a = self._values(spec, params)
        s = configuration(v)
        length, across = int(length_a), int(across_a)
        mt, nt = s["m"] // length, s["n"] // across
        x, w = operands_or_random(self.name, operands, seed, (1, s["m"]), (s["m"], s["n"]))
        mesh = Mesh(spec, s["p"], s["q"], trace=trace)
        levels = self._levels(length, s)
        overhead = tasks(len(levels), True) * spec.message_overhead_cycles
        for i in range(length):
            for j in range(across):
                core = (i, j) if axis == "x" else (j, i)
                mesh.load(core, "x", x[:, i * mt:(i + 1) * mt])
                mesh.load(core, "w", w[i * mt:(i + 1) * mt, j * nt:(j + 1) * nt])
                mesh.compute(core, ["x", "w"], "part", _product, fmas=mt * nt, vector_ops=mt, overhead=overhead)
        record_tree(mesh, axis, length, across, levels, "part", "y", 0, True)
        result = mesh.run()
        # output[i, j]: core i along the axis, slice j across it
        output = np.array([
            [result.tile((i, j) if axis == "x" else (j, i), "y").reshape(nt) for j in range(across)]
            for i in range(length)
        ]).reshape(length, s["n"])
        return KernelRun(output, np.broadcast_to(x @ w, output.shape), result)


class PipelineGEMV(_GEMV):
    """The baseline GEMV: pipeline allreduce (root at the end of the line)."""

    name = "pipeline"

    def sweep(self) -> list[dict[str, Any]]:
        """Square meshes 2..16 and 64, lines up to 64, tiles 1x1 to 8x8 (and 1x64 on 64 x 64)."""
        return _sweep(k_tree=False)


class KTreeGEMV(_GEMV):
    """MeshGEMV: K-tree allreduce (``k_tree`` levels, ``group_num`` groups at level 1)."""

    name = "ktree"
    parameters = ("p", "q", "m", "n", "k_tree", "group_num", "axis")
    defaults = {"axis": "x", "k_tree": 2, "group_num": 0}

    def _line(self, cores: Any, v: dict[str, Any]) -> LineTiming:
        return ktree_line(cores, v["k_tree"], v["group_num"], broadcast=True)

    def _levels(self, length: int, s: dict[str, int]) -> list[tuple[int, int, int]]:
        return ktree_levels(length, s["k_tree"], s["group_num"])

    def _depth(self, v: dict[str, Any]) -> Any:
        return as_float(v["k_tree"])

    def _values(self, spec: HardwareSpec, params: dict[str, Any]) -> tuple[dict[str, np.ndarray], str, np.ndarray, np.ndarray]:
        v, axis, length, across = super()._values(spec, params)
        check_ktree(self.name, length, v["k_tree"], v["group_num"])
        return v, axis, length, across

    def sweep(self) -> list[dict[str, Any]]:
        """As :class:`PipelineGEMV`, K = 2 with every group count that divides (on 64 x 64:
        some), and K = 3."""
        return _sweep(k_tree=True)


def _sweep(k_tree: bool) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = []
    for p, q, axis in ((2, 2, "y"), (3, 3, "y"), (4, 4, "y"), (5, 5, "x"), (8, 8, "y"), (16, 16, "y"),
                       (2, 31, "y"), (2, 64, "y"), (48, 2, "x")):
        length, across = along({"p": p, "q": q}, axis)
        for mt, nt in ((1, 1), (8, 1), (2, 8)):
            base = {"p": p, "q": q, "m": mt * length, "n": nt * across, "axis": axis}
            if not k_tree:
                configs.append(base)
                continue
            configs += [dict(base, k_tree=2, group_num=g) for g in range(1, length + 1) if length % g == 0]
            configs.append(dict(base, k_tree=3, group_num=0))
    # as measured (P x P, K = 2, M split along y) at P = 64; Nt = 64 makes level-2 edges wait
    for mt, nt, groups in ((1, 1, (8,)), (2, 8, (0,)), (1, 64, (0, 8, 32))):
        base = {"p": 64, "q": 64, "m": 64 * mt, "n": 64 * nt, "axis": "y"}
        configs += [dict(base, k_tree=2, group_num=g) for g in groups] if k_tree else [base]
    return configs


KERNELS: tuple[Kernel, ...] = (PipelineGEMV(), KTreeGEMV())
