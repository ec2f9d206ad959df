"""What the GEMM family shares: a kernel base with its parameter checks, the cost of a
kernel timed by a max-plus recurrence, tiling and random operands.

Notation (DESIGN.md section 2): C[M, N] = A[M, K] . B[K, N] on a ``p`` x ``q`` mesh
(``p`` columns, ``q`` rows); tiles ``Mt = M / q``, ``Kt = K / p`` (or ``K / q``),
``Nt = N / p``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.kernels._base import Cost, Kernel, int_params, require
from plummer.kernels._maxplus import formula_or_recurrence

GEMM_PARAMETERS = ("p", "q", "m", "k", "n")


def gemm_params(
    kernel: str, spec: HardwareSpec, params: dict[str, ArrayLike], square: bool
) -> dict[str, np.ndarray]:
    """Validate GEMM parameters (mesh ``p`` x ``q``, sizes ``m, k, n``) as int arrays.

    A square-only algorithm (``square=True``) rejects ``p != q``. Every size must split
    evenly: ``m`` over ``q`` rows, ``k`` over ``p`` (and ``q``), ``n`` over ``p`` columns.
    """
    v = int_params(kernel, params, GEMM_PARAMETERS)
    p, q, m, k, n = (v[name] for name in GEMM_PARAMETERS)
    require(kernel, p >= 2, "p", p, "must be >= 2 (a mesh of at least 2x2)")
    require(kernel, q >= 2, "q", q, "must be >= 2 (a mesh of at least 2x2)")
    require(kernel, p <= spec.fabric_width, "p", p, f"exceeds the fabric width {spec.fabric_width}")
    require(kernel, q <= spec.fabric_height, "q", q, f"exceeds the fabric height {spec.fabric_height}")
    if square:
        require(kernel, p == q, "q", q, "must equal p: this algorithm needs a square mesh")
    require(kernel, m % q == 0, "m", m, "must be a multiple of the mesh height q")
    require(kernel, k % p == 0, "k", k, "must be a multiple of the mesh width p")
    if not square:
        require(kernel, k % q == 0, "k", k, "must be a multiple of the mesh height q")
    require(kernel, n % p == 0, "n", n, "must be a multiple of the mesh width p")
    return v


class GemmKernel(Kernel):
    """A GEMM kernel: parameters ``p, q, m, k, n``; ``square`` algorithms need ``p == q``."""

    family = "gemm"
    parameters = GEMM_PARAMETERS
    square: ClassVar[bool] = True

    def check(self, spec: HardwareSpec, **params: ArrayLike) -> None:
        self.params(spec, params)

    def params(self, spec: HardwareSpec, params: dict[str, ArrayLike]) -> dict[str, np.ndarray]:
        """:func:`gemm_params` for this kernel: the checked parameters as int arrays."""
        return gemm_params(self.name, spec, params, square=self.square)

    def configuration(self, spec: HardwareSpec, params: dict[str, ArrayLike]) -> dict[str, int]:
        """The one checked configuration an execution takes, as Python ints."""
        return scalar_params(self.params(spec, params))


def recurrence_cost(
    spec: HardwareSpec,
    v: dict[str, np.ndarray],
    step_cycles: ArrayLike,
    solved: Callable[..., tuple[np.ndarray, ...]],
    timing: Callable[..., tuple[np.ndarray, ...]],
    memory_elements: ArrayLike,
    routes: ArrayLike,
) -> Cost:
    """The cost of a square GEMM (``v`` from :func:`gemm_params`) whose P steps of
    ``step_cycles`` are timed by the max-plus recurrence ``timing``, with the O(1) solution
    ``solved(spec, p, Mt, Kt, Nt) -> (exact, end, mean, hops, stages)`` used where it is
    exact (:func:`~plummer.kernels._maxplus.formula_or_recurrence`). Memory in elements
    per core, routes in colors per core."""
    p = v["p"].astype(float)
    tiles = (v["m"] // v["p"], v["k"] // v["p"], v["n"] // v["p"])
    exact, *values = solved(spec, p, *tiles)
    end, mean, hops, stages = formula_or_recurrence(
        exact, tuple(values), timing, spec, (v["p"],), tiles
    )
    return Cost.make(
        spec,
        cycles=spec.launch_overhead_cycles + end,
        compute_cycles=p * step_cycles,
        hops=hops,
        routing_stages=stages,
        memory_per_core_bytes=memory_elements * spec.dtype_bytes,
        routes_per_core=routes,
        mean_core_cycles=spec.launch_overhead_cycles + mean,
    )


def scalar_params(params: dict[str, np.ndarray]) -> dict[str, int]:
    """The single configuration an executor run needs, as Python ints."""
    for name, value in params.items():
        if value.size != 1:
            raise SpecError(f"an execution takes one configuration; '{name}' has {value.size}")
    return {name: int(value.reshape(-1)[0]) for name, value in params.items()}


def random_operands(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Random fp32 arrays in [-1, 1) (reproducible by ``seed``)."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, size=shape).astype(np.float32) for shape in shapes]


def operands_or_random(kernel: str, operands: Sequence[np.ndarray] | None, seed: int,
                       *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """The operands an execution runs on: ``operands`` (checked against ``shapes``, as fp32)
    or, when None, :func:`random_operands`."""
    if operands is None:
        return random_operands(seed, *shapes)
    if len(operands) != len(shapes):
        raise SpecError(f"{kernel}: {len(operands)} operands given, it takes {len(shapes)} "
                        f"of shapes {', '.join(map(str, shapes))}")
    out = []
    for i, (array, shape) in enumerate(zip(operands, shapes, strict=True)):
        array = np.asarray(array, dtype=np.float32)
        if array.shape != tuple(shape):
            raise SpecError(f"{kernel}: operand {i} has shape {array.shape}; the configuration needs {tuple(shape)}")
        out.append(array)
    return out


def blocks(matrix: np.ndarray, rows: int, cols: int) -> list[list[np.ndarray]]:
    """Split ``matrix`` into ``rows`` x ``cols`` equal blocks, ``[i][j]``."""
    r, c = matrix.shape[0] // rows, matrix.shape[1] // cols
    return [[matrix[i * r:(i + 1) * r, j * c:(j + 1) * c] for j in range(cols)] for i in range(rows)]


def tile_product(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``c + a @ b`` in fp32."""
    return c + a @ b
