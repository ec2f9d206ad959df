"""The protocol every kernel follows: a vectorised closed form and an executor program.

A kernel module holds both side by side, so whoever changes one sees the other. The
closed form's docstring derives it from the executor's rules (:mod:`plummer.mesh`).
"""

from __future__ import annotations

import abc
import ctypes
import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.mesh import ExecutionResult

#: Breakdown keys every cost carries (all numpy arrays of one broadcast shape).
COST_KEYS = (
    "cycles",
    "compute_cycles",
    "comm_cycles",
    "hops",
    "routing_stages",
    "memory_per_core_bytes",
    "routes_per_core",
)


@dataclass(frozen=True)
class Cost:
    """A closed-form cost and its breakdown, vectorised over configurations.

    All fields are float arrays of one shape. ``cycles`` is the makespan;
    ``compute_cycles`` the processor time on the critical path and ``comm_cycles =
    cycles - compute_cycles`` the exposed communication; ``hops`` and
    ``routing_stages`` count pass-through hops and PE stages on the critical path;
    memory in bytes per core; routes = distinct colors per core. ``mean_core_cycles`` is
    the mean over cores of each core's elapsed time (what measured kernels report).
    ``route_budget`` and ``memory_budget`` are the spec's limits, so ``fits`` tells
    whether a configuration can run at all.
    """

    cycles: np.ndarray
    compute_cycles: np.ndarray
    comm_cycles: np.ndarray
    hops: np.ndarray
    routing_stages: np.ndarray
    memory_per_core_bytes: np.ndarray
    routes_per_core: np.ndarray
    mean_core_cycles: np.ndarray
    route_budget: int
    memory_budget: int
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def make(
        cls,
        spec: HardwareSpec,
        *,
        cycles: ArrayLike,
        compute_cycles: ArrayLike,
        hops: ArrayLike,
        routing_stages: ArrayLike,
        memory_per_core_bytes: ArrayLike,
        routes_per_core: ArrayLike,
        mean_core_cycles: ArrayLike | None = None,
        **extra: ArrayLike,
    ) -> Cost:
        """Broadcast the parts to one shape and derive ``comm_cycles``."""
        if mean_core_cycles is None:
            mean_core_cycles = cycles
        values = (cycles, compute_cycles, hops, routing_stages, memory_per_core_bytes,
                  routes_per_core, mean_core_cycles)
        if not extra and (
            np.ndarray not in map(type, values)  # fast test for numbers
            or not any(type(v) is np.ndarray and v.ndim for v in values)
        ):
            # one configuration: numpy float scalars. The frozen dataclass's __init__ sets
            # each field through object.__setattr__ (2.5 us for 11); fill the instance directly
            f64 = np.float64
            total, compute = f64(cycles), f64(compute_cycles)
            cost = object.__new__(cls)
            cost.__dict__.update(
                cycles=total, compute_cycles=compute, comm_cycles=total - compute,
                hops=f64(hops), routing_stages=f64(routing_stages),
                memory_per_core_bytes=f64(memory_per_core_bytes), routes_per_core=f64(routes_per_core),
                mean_core_cycles=f64(mean_core_cycles), route_budget=spec.route_budget,
                memory_budget=spec.memory_bytes, extra={},
            )
            return cost
        parts = np.broadcast_arrays(
            *(
                np.asarray(v, dtype=float)
                for v in (
                    cycles,
                    compute_cycles,
                    hops,
                    routing_stages,
                    memory_per_core_bytes,
                    routes_per_core,
                    mean_core_cycles,
                )
            )
        )
        total, compute, hop, stages, memory, routes, mean = parts
        return cls(
            cycles=total,
            compute_cycles=compute,
            comm_cycles=total - compute,
            hops=hop,
            routing_stages=stages,
            memory_per_core_bytes=memory,
            routes_per_core=routes,
            mean_core_cycles=mean,
            route_budget=spec.route_budget,
            memory_budget=spec.memory_bytes,
            extra={k: np.broadcast_to(np.asarray(v, dtype=float), total.shape) for k, v in extra.items()},
        )

    @property
    def fits_routes(self) -> np.ndarray:
        """True where the routes per core stay within the spec's route budget."""
        return self.routes_per_core <= self.route_budget

    @property
    def fits_memory(self) -> np.ndarray:
        """True where the memory per core stays within the spec's budget."""
        return self.memory_per_core_bytes <= self.memory_budget

    @property
    def fits(self) -> np.ndarray:
        """True where the configuration can run (routes and memory)."""
        return self.fits_routes & self.fits_memory

    def __add__(self, other: Cost) -> Cost:
        """Run ``self`` then ``other``: times, hops and stages add; memory and routes max."""
        return dataclasses.replace(
            self,
            cycles=self.cycles + other.cycles,
            compute_cycles=self.compute_cycles + other.compute_cycles,
            comm_cycles=self.comm_cycles + other.comm_cycles,
            hops=self.hops + other.hops,
            routing_stages=self.routing_stages + other.routing_stages,
            memory_per_core_bytes=np.maximum(self.memory_per_core_bytes, other.memory_per_core_bytes),
            routes_per_core=np.maximum(self.routes_per_core, other.routes_per_core),
            mean_core_cycles=self.mean_core_cycles + other.mean_core_cycles,
            extra={},
        )

    def scaled(self, times: ArrayLike) -> Cost:
        """``times`` sequential repetitions (memory and routes unchanged)."""
        k = np.asarray(times, dtype=float)
        return dataclasses.replace(
            self,
            cycles=self.cycles * k,
            compute_cycles=self.compute_cycles * k,
            comm_cycles=self.comm_cycles * k,
            hops=self.hops * k,
            routing_stages=self.routing_stages * k,
            mean_core_cycles=self.mean_core_cycles * k,
            extra={},
        )

    def as_dict(self) -> dict[str, Any]:
        """Scalars (for a single configuration) or lists, keyed by :data:`COST_KEYS` and more."""
        out: dict[str, Any] = {}
        for key in COST_KEYS + ("mean_core_cycles",):
            out[key] = _plain(getattr(self, key))
        out["fits_routes"] = _plain(self.fits_routes)
        out["fits_memory"] = _plain(self.fits_memory)
        for key, value in self.extra.items():
            out[key] = _plain(value)
        return out


def _plain(value: np.ndarray) -> Any:
    return value.item() if value.ndim == 0 else value.tolist()


@dataclass(frozen=True)
class KernelRun:
    """A kernel executed on the mesh: its real output, the reference and the timing."""

    output: np.ndarray
    reference: np.ndarray
    execution: ExecutionResult

    @property
    def max_abs_error(self) -> float:
        """Largest absolute difference between the mesh's output and the numpy reference."""
        return float(np.max(np.abs(self.output - self.reference))) if self.output.size else 0.0

    @property
    def correct(self) -> bool:
        """Whether the output equals the reference to fp32 tolerance."""
        return bool(np.allclose(self.output, self.reference, rtol=1e-4, atol=1e-4))

    def as_dict(self) -> dict[str, Any]:
        """The executor's figures under the same keys as :meth:`Cost.as_dict`."""
        ex = self.execution
        return {
            "cycles": ex.cycles,
            "mean_core_cycles": ex.mean_core_cycles,
            "busy_cycles_max": float(ex.busy_cycles.max()),
            "memory_per_core_bytes": int(ex.peak_memory_bytes.max()),
            "routes_per_core": int(ex.routes_per_core.max()),
            "max_link_bytes": ex.max_link_bytes,
            "link_waits": ex.link_waits,
            "max_abs_error": self.max_abs_error,
            "correct": self.correct,
        }


class Kernel(abc.ABC):
    """A kernel: parameters, a vectorised closed form and a program for the executor.

    Subclasses set :attr:`name` (the CLI's ``--algo`` or kernel name), :attr:`family`,
    :attr:`parameters` (names of the parameters of :meth:`cost`: integers, and ``axis``
    for kernels along one mesh axis) and :attr:`defaults` (the parameters that may be
    omitted, with the value used then), and implement :meth:`check`, :meth:`cost`,
    :meth:`execute` and :meth:`sweep`.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    parameters: ClassVar[tuple[str, ...]]
    defaults: ClassVar[dict[str, Any]] = {}

    @abc.abstractmethod
    def check(self, spec: HardwareSpec, **params: np.ndarray) -> None:
        """Raise :class:`SpecError` naming the first parameter no configuration allows."""

    @abc.abstractmethod
    def cost(self, spec: HardwareSpec, **params: ArrayLike) -> Cost:
        """The closed-form cost, vectorised over numpy arrays of the parameters."""

    @abc.abstractmethod
    def execute(self, spec: HardwareSpec, seed: int = 0, trace: bool = False,
                operands: Any = None, **params: int) -> KernelRun:
        """Run the kernel on the executor and return output and timing: on ``operands``
        (the kernel's inputs as whole arrays, e.g. ``(A, B)`` of a GEMM) or, by default, on
        random data from ``seed``."""

    @abc.abstractmethod
    def sweep(self) -> list[dict[str, Any]]:
        """Configurations ``plummer validate`` runs on the executor and the closed form.

        They span small and large meshes (odd and even) and tile sizes, and each runs in
        well under a second on the executor.
        """


#: Configurations per block of :func:`blockwise`: a closed form's few dozen temporaries
#: of this length (64 KB each) stay in the CPU cache.
BLOCK_SIZE = 8_192


def _keep_freed_memory() -> None:
    """Let glibc's malloc keep freed memory for reuse (a no-op on other C libraries).

    By default glibc maps every allocation over 128 KB afresh and returns a freed heap top
    over 128 KB to the system, so a block's few dozen numpy temporaries (together well over
    128 KB) page-fault on every use: about 10 ns an element and operation instead of 1 on
    this machine, for every closed form. Both thresholds at 64 MB keep the pages.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD
    mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD


_keep_freed_memory()

#: Parameter values that are one value, not an array of configurations.
_NUMBERS = (int, float, str, np.generic)

#: The fields of :class:`Cost` that are arrays of configurations.
_COST_ARRAYS = COST_KEYS + ("mean_core_cycles",)


def blockwise(cost: Callable[..., Cost]) -> Callable[..., Cost]:
    """Decorate an elementwise ``Kernel.cost`` (each configuration's cost depends only on
    its own parameters) to evaluate it over blocks of :data:`BLOCK_SIZE` configurations.

    Over 10^6 configurations each numpy pass of a formula streams 8 MB arrays through
    memory; over blocks its temporaries stay in the cache, about twice as fast. The results
    are the same, element by element, in the broadcast shape of the array parameters;
    numbers, strings and small inputs go to ``cost`` unchanged. If a block is rejected, the
    whole input is checked again, so the error names the same parameter and value as
    without blocks.
    """

    @functools.wraps(cost)
    def blocked(self: Kernel, spec: HardwareSpec, **params: Any) -> Cost:
        arrays = {
            name: value for name, value in params.items() if not isinstance(value, _NUMBERS)
        }
        if not arrays:  # one configuration
            return cost(self, spec, **params)
        arrays = {name: np.asarray(value) for name, value in arrays.items()}
        try:
            shape = np.broadcast_shapes(*(array.shape for array in arrays.values()))
        except ValueError:  # shapes that do not broadcast: the formula's own error
            return cost(self, spec, **params)
        size = math.prod(shape)
        if size <= BLOCK_SIZE:
            return cost(self, spec, **params)
        flat = {name: np.broadcast_to(a, shape).reshape(-1) for name, a in arrays.items()}
        out: dict[str, np.ndarray] = {}
        try:
            for start in range(0, size, BLOCK_SIZE):
                end = min(start + BLOCK_SIZE, size)
                part = cost(self, spec, **(params | {name: a[start:end] for name, a in flat.items()}))
                if not out:
                    first = part
                    out = {key: np.empty(size, getattr(part, key).dtype) for key in _COST_ARRAYS}
                    out |= {f"extra.{key}": np.empty(size, v.dtype) for key, v in part.extra.items()}
                for key in _COST_ARRAYS:
                    out[key][start:end] = getattr(part, key)
                for key, value in part.extra.items():
                    out[f"extra.{key}"][start:end] = value
        except SpecError:
            cost(self, spec, **params)  # the whole input: the first parameter at fault
            raise
        return Cost(
            **{key: out[key].reshape(shape) for key in _COST_ARRAYS},
            route_budget=first.route_budget,
            memory_budget=first.memory_budget,
            extra={key: out[f"extra.{key}"].reshape(shape) for key in first.extra},
        )

    return blocked


def int_params(kernel: str, params: dict[str, ArrayLike], names: tuple[str, ...]) -> dict[str, Any]:
    """Check that ``params`` are exactly ``names`` with positive integer values; as int64
    arrays (a Python ``int`` becomes a numpy int64 scalar: cheaper than a 0-d array)."""
    _check_names(kernel, params, names)
    return {name: int_array(kernel, name, params[name]) for name in names}


def int_values(kernel: str, params: dict[str, ArrayLike], names: tuple[str, ...]) -> dict[str, Any]:
    """:func:`int_params`, but a Python ``int`` stays a Python ``int`` (for closed forms
    that evaluate one configuration in plain Python arithmetic)."""
    _check_names(kernel, params, names)
    values = {}
    for name in names:
        value = params[name]  # a valid Python int passes without a call (one per parameter)
        values[name] = value if type(value) is int and value >= 1 else int_value(kernel, name, value)
    return values


def _check_names(kernel: str, params: dict[str, ArrayLike], names: tuple[str, ...]) -> None:
    if params.keys() != _name_set(names):
        unknown = sorted(set(params) - set(names))
        missing = [n for n in names if n not in params]
        raise SpecError(
            f"{kernel}: parameters {', '.join(unknown + missing)} not understood or missing; "
            f"expected {', '.join(names)}"
        )


@functools.cache
def _name_set(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names)


def int_value(kernel: str, name: str, value: ArrayLike, minimum: int = 1) -> Any:
    """:func:`int_array`, but a Python ``int`` stays a Python ``int``."""
    if type(value) is int:
        if value < minimum:
            raise SpecError(f"{kernel}: parameter '{name}' = {value} must be >= {minimum}")
        return value
    return int_array(kernel, name, value, minimum)


def int_array(kernel: str, name: str, value: ArrayLike, minimum: int = 1) -> Any:
    """``value`` as an int64 array (a Python ``int`` as an int64 scalar) if every element
    is an integer >= ``minimum``."""
    if type(value) is int:
        return np.int64(int_value(kernel, name, value, minimum))
    array = np.asarray(value)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer)
        or (np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0))
    ):
        raise SpecError(f"{kernel}: parameter '{name}' = {_first(array)!r} must be an integer")
    array = array.astype(np.int64, copy=False)
    if array.size and array.min() < minimum:  # min(): no temporary array
        raise SpecError(
            f"{kernel}: parameter '{name}' = {_first(array[array < minimum])} must be >= {minimum}"
        )
    return array


def require(kernel: str, ok: np.ndarray | bool, field_name: str, value: np.ndarray, allowed: str) -> None:
    """Raise :class:`SpecError` for the first configuration where ``ok`` is False."""
    if ok is True or ok is np.True_:  # one configuration, allowed
        return
    ok = np.asarray(ok)
    if not np.all(ok):
        bad = np.broadcast_to(np.asarray(value), ok.shape)[~ok]
        raise SpecError(f"{kernel}: parameter '{field_name}' = {_first(bad)} {allowed}")


def _first(value: np.ndarray) -> Any:
    flat = np.asarray(value).ravel()
    return flat[0].item() if flat.size else value


# numpy's elementwise functions, in plain Python for plain numbers: a closed form written
# once serves arrays of configurations and single ones, and numpy's scalar arithmetic
# costs about five times Python's
def as_float(value: Any) -> Any:
    """``value`` as float64: a Python float for a number, else a float array."""
    kind = type(value)
    if kind is float or kind is int or kind is np.int64 or kind is np.float64:  # the usual, fast
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return np.asarray(value, dtype=np.float64)


def maximum(a: Any, b: Any) -> Any:
    """``np.maximum``; ``max`` for two Python floats."""
    return max(a, b) if type(a) is float and type(b) is float else np.maximum(a, b)


def minimum(a: Any, b: Any) -> Any:
    """``np.minimum``; ``min`` for two Python floats."""
    return min(a, b) if type(a) is float and type(b) is float else np.minimum(a, b)


def floor(a: Any) -> Any:
    """``np.floor``; ``math.floor`` (as a float) for a Python float."""
    return float(math.floor(a)) if type(a) is float else np.floor(a)
