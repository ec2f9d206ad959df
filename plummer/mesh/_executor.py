"""The exact mesh executor: real numpy tiles, real memory and route budgets, timed hop by hop.

The abstract machine
====================

These rules define the machine; every closed form in :mod:`plummer.kernels` is derived
from them. Time is in cycles (floats), sizes in elements of ``spec.dtype_bytes`` bytes.

1. **Cores.** A ``width`` x ``height`` mesh; core ``(x, y)``, ``x`` grows east, ``y``
   grows south. Each core has a processor (PE), a router and ``spec.memory_bytes`` of
   memory holding named numpy tiles. An allocation past the budget raises
   :class:`~plummer.errors.CoreMemoryError`.
2. **Links.** Neighbouring routers are joined by one directed link each way. A message of
   ``n`` elements occupies every link it crosses for ``T(n) = ceil(n *
   wire_bytes_per_element / link_bytes_per_cycle)`` cycles
   (:func:`~plummer.mesh.serialization_cycles`).
3. **Routes.** A message travels on a color. At every core it touches, the color is
   configured from one input port (a direction or the core's own ramp) to a set of output
   ports (directions and/or the ramp; several = hardware multicast). A core may hold
   ``spec.route_budget`` distinct colors; a second, different configuration of a color at
   a core, or one color too many, raises :class:`~plummer.errors.RoutingError`.
4. **Transport (cut-through).** A message injected at time ``t`` asks for its first link
   at ``t``. At each hop the head enters the link at ``s = max(request, link free)``, the
   link is busy ``[s, s + T)``, and the head reaches the next router at ``s + alpha``.
   Links serve requests in the order of their request times (ties: first queued first,
   and work ready at the start is queued in program order), so contention is exact.
   Routers buffer a waiting head without holding upstream links.
   A core that receives the message has it in memory at ``head + T``. (Tiles are never
   changed in place, so a delivery shares the sender's array.) So an uncontended
   unicast over ``h`` hops takes ``h * alpha + T``; a multicast delivers at every core on
   its path, each at its own ``head + T``.
5. **Processor stages.** Where a message must be handled by a core's PE (relay, or
   add-and-forward of a reduction), the PE starts at ``max(heads of all incoming
   messages, PE free, local operands ready)``, the outgoing head leaves at ``start +
   beta``, and the PE is busy ``[start, start + beta + T)`` because it streams the data
   at link rate. A final add into memory (the root of a reduction) completes at
   ``start + beta + T``; a root that broadcasts streams the sum straight into the
   multicast from ``start + beta``, so a reduce-then-broadcast pays ``T`` once.
6. **Compute.** A local compute call occupies the PE for its fixed ``overhead`` plus
   :func:`~plummer.mesh.compute_cycles` ``= loops * loop_overhead + vector_ops *
   vector_op_overhead + fmas / fma_per_cycle``, starting at ``max(PE free, inputs
   ready)``. Sends and receives between memory and the router do not occupy the PE
   (except a send's optional activation ``overhead``), so communication overlaps compute.
   The PE serves its work in the order it becomes ready (ties as for links).
7. **Buffers.** An operation that reads a tile waits for its last writer; one that writes a
   tile also waits for every read of the previous contents (write-after-read), which is
   why kernels double-buffer explicitly. A message streamed from memory (a send, a
   relay's first leg, a reduction leaf's leg) reads its tile until its tail leaves the
   source (``start + T``). A stage (rule 5) reads its tile, and writes a relayed copy or
   a broadcast root's sum, until its stream ends (``start + beta + T``), although its
   head moves on at ``start + beta``.
8. **Results.** Every core starts at 0. A core's elapsed time is its last event (a compute
   or stage end, a delivery into its memory, the tail of its own send leaving) plus the
   spec's fixed ``launch_overhead_cycles``. The
   makespan is the latest end minus the earliest start; ``mean_core_cycles`` is the mean
   elapsed time over the cores that did anything (what the measured kernels report).

A kernel program calls :meth:`Mesh.load`, :meth:`Mesh.compute`, :meth:`Mesh.work`,
:meth:`Mesh.send` (and :meth:`Mesh.send_tiles`, several tiles in one message),
:meth:`Mesh.relay` and :meth:`Mesh.reduce` in program order (and
:meth:`Mesh.compute_all` and :meth:`Mesh.send_all` for a step of every core at once); the
data move at once (so the program's result is exact), and :meth:`Mesh.run` then times the
recorded operations with an event queue.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from plummer.errors import CoreMemoryError, RoutingError, SpecError
from plummer.hardware import HardwareSpec
from plummer.mesh._result import ExecutionResult, TraceEvent
from plummer.mesh._rules import compute_cycles, serialization_cycles

Core = tuple[int, int]

#: Directions of the four links out of a router, and the ramp to the core itself.
DIRECTIONS = {"E": (1, 0), "W": (-1, 0), "S": (0, 1), "N": (0, -1)}
_DIR_INDEX = {"E": 0, "W": 1, "S": 2, "N": 3}
_OPPOSITE = {"E": "W", "W": "E", "S": "N", "N": "S"}
RAMP = "R"

# node kinds of the timing graph: a join (a point with no duration); a delivery (a join
# that also waits for its message: the copy at a core on its path, or the release of the
# source tile when the tail leaves); a tail (done its cycles after what it waits for: a
# streaming stage's last element); a compute on a PE; a send injected from memory (done
# when its tail leaves the source); a leg into a PE stage (done when its head arrives
# there); a PE stage (rule 5) whose head streams on (done at start + beta); a final stage
# that adds into memory (done at its end). Joins, deliveries and tails hold no resource.
_JOIN, _DELIVERY, _TAIL, _COMPUTE, _SEND, _LEG, _STAGE, _FINAL_STAGE = range(8)
_FLOAT32 = np.dtype(np.float32)
_CHUNK_NODES = 1 << 15  # nodes recorded in a Python list before they move into numpy


@dataclass(frozen=True)
class Segment:
    """One leg of a :meth:`Mesh.relay` or a broadcast of :meth:`Mesh.reduce`: pass-through
    ``path`` on ``color``.

    ``path`` is a string of directions (``"EE"`` = two hops east). In a relay, the last
    core of a leg hands the message to its PE (a stage, rule 5), and with ``deliver_all``
    every core before it on the leg also receives a copy (multicast). A broadcast of
    :meth:`Mesh.reduce` is a multicast whatever ``deliver_all`` says: every core on the
    leg, the last included, receives a copy into memory.
    """

    path: str
    color: int
    deliver_all: bool = False


class Mesh:
    """A simulated PLMR mesh that runs kernel programs on real data.

    Example:
        >>> import numpy as np
        >>> from plummer.hardware import load_hardware
        >>> spec = load_hardware("wse3")
        >>> mesh = Mesh(spec, 2, 1)
        >>> mesh.load((0, 0), "x", np.ones(8, dtype=np.float32))
        >>> mesh.send((0, 0), "x", "E", color=0, dst_buffer="y")
        >>> result = mesh.run()
        >>> # one hop (alpha), T = ceil(8 elements * 4 wire bytes / 4 bytes per cycle) = 8,
        >>> # and the launch overhead
        >>> result.cycles == spec.alpha + 8 + spec.launch_overhead_cycles
        True
    """

    def __init__(
        self, spec: HardwareSpec, width: int, height: int, *, trace: bool = False
    ) -> None:
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"mesh {name} = {value!r} must be an integer >= 1")
        if width > spec.fabric_width or height > spec.fabric_height:
            raise SpecError(
                f"mesh {width}x{height} does not fit the fabric of '{spec.name}' "
                f"({spec.fabric_width}x{spec.fabric_height})"
            )
        self.spec = spec
        self.width = width
        self.height = height
        self._trace_enabled = trace
        cores = width * height
        # memory: tiles, bytes in use and peak per core
        self._tiles: list[dict[str, np.ndarray]] = [{} for _ in range(cores)]
        self._used = [0] * cores
        self._peak = [0] * cores
        # routes: per core, color -> (input port, output ports)
        self._routes: list[dict[int, tuple[str, frozenset[str]]]] = [{} for _ in range(cores)]
        # buffer dependencies per core: name -> [last writer node or -1, readers since then...]
        self._buffers: list[dict[str, list[int]]] = [{} for _ in range(cores)]
        # The timing graph, one record per node: kind, core, cycles (a compute's duration
        # or a message's T), plan (a message's index into _plans, else -1) and the number
        # of nodes it waits for, which are listed in _deps in node order. Both grow
        # as flat lists and move into numpy chunks every _CHUNK_NODES nodes: a program has
        # millions of nodes, and every full pass of the cycle collector walks a list.
        self._records: list[float] = []
        self._deps: list[int] = []
        self._record_chunks: list[np.ndarray] = []
        self._dep_chunks: list[np.ndarray] = []
        self._nodes = 0
        # per distinct message plan: the links of its route, per hop the offset from the
        # message's node to the delivery at the core that hop reaches (0: none), and the
        # offset to the release of its source tile when the tail leaves (0: none)
        self._plans: list[tuple[tuple[int, ...], tuple[int, ...], int]] = []
        self._label: dict[int, tuple[str, str]] = {}  # (what, tile) of each node, when tracing
        self._executed = False
        # a route already configured and checked -> (plan index, cores on its path)
        self._configured: dict[tuple, tuple[int, tuple[int, ...]]] = {}
        # (source, path, color) of a unicast -> (plan index, destination core)
        self._unicast: dict[tuple[int, str, int], tuple[int, int]] = {}
        # the message whose deliveries are being recorded, and its offsets per hop
        self._open_message: tuple[int, tuple[int, ...]] = (-1, ())
        # the rules of _rules.py, cached per argument: a program repeats a few sizes
        self._serialization = lru_cache(maxsize=None)(
            lambda n: float(serialization_cycles(spec, n))
        )
        self._compute_cycles = lru_cache(maxsize=None)(
            lambda fmas, loops, ops: float(compute_cycles(spec, fmas, loops, ops))
        )

    # ----------------------------------------------------------------- geometry
    def index(self, core: Core) -> int:
        """Linear index ``y * width + x`` of ``core``; raises for a core off the mesh."""
        x, y = core
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise SpecError(f"core {core} is outside the {self.width}x{self.height} mesh")
        return y * self.width + x

    def _walk(self, src: Core, path: str) -> list[Core]:
        """The cores a path from ``src`` visits, ``src`` first (all must be on the mesh)."""
        cores = [src]
        x, y = src
        for step in path:
            if step not in DIRECTIONS:
                raise SpecError(f"path {path!r}: direction {step!r} is not one of E, W, S, N")
            dx, dy = DIRECTIONS[step]
            x, y = x + dx, y + dy
            self.index((x, y))
            cores.append((x, y))
        return cores

    # ------------------------------------------------------------------ memory
    def _store(self, idx: int, name: str, array: np.ndarray) -> None:
        tiles = self._tiles[idx]
        old = tiles.get(name)
        if old is not None and old.size == array.size:  # same footprint: nothing to count
            tiles[name] = array
            return
        need = array.size * self.spec.dtype_bytes
        have = old.size * self.spec.dtype_bytes if old is not None else 0
        if self._used[idx] - have + need > self.spec.memory_bytes:
            x, y = idx % self.width, idx // self.width
            raise CoreMemoryError(
                f"core ({x}, {y}): tile '{name}' needs {need} bytes, {self._used[idx] - have} "
                f"in use, budget {self.spec.memory_bytes} bytes"
            )
        tiles[name] = array
        self._used[idx] += need - have
        self._peak[idx] = max(self._peak[idx], self._used[idx])

    def load(self, core: Core, name: str, array: np.ndarray) -> None:
        """Place ``array`` in ``core``'s memory before the kernel starts (not timed)."""
        self._store(self.index(core), name, np.array(array, dtype=np.float32))

    def free(self, core: Core, name: str) -> None:
        """Release tile ``name`` of ``core``."""
        idx = self.index(core)
        array = self._tiles[idx].pop(name, None)
        if array is None:
            raise SpecError(f"core {core} holds no tile '{name}' to free")
        self._used[idx] -= array.size * self.spec.dtype_bytes
        self._buffers[idx].pop(name, None)

    def data(self, core: Core, name: str) -> np.ndarray:
        """The current contents of tile ``name`` of ``core``."""
        try:
            return self._tiles[self.index(core)][name]
        except KeyError:
            raise SpecError(f"core {core} holds no tile '{name}'") from None

    def memory_in_use(self, core: Core) -> int:
        """Bytes of tiles ``core`` holds now."""
        return self._used[self.index(core)]

    # ------------------------------------------------------------------ routes
    def _configure(self, idx: int, color: int, port_in: str, ports_out: frozenset[str]) -> None:
        routes = self._routes[idx]
        current = routes.get(color)
        if current == (port_in, ports_out):
            return
        x, y = idx % self.width, idx // self.width
        if current is not None:
            raise RoutingError(
                f"core ({x}, {y}): color {color} already routes {current[0]}->"
                f"{''.join(sorted(current[1]))}; a second route {port_in}->"
                f"{''.join(sorted(ports_out))} on the same color conflicts"
            )
        if len(routes) >= self.spec.route_budget:
            raise RoutingError(
                f"core ({x}, {y}): needs color {color} beyond the route budget of "
                f"{self.spec.route_budget} (colors in use: {sorted(routes)})"
            )
        routes[color] = (port_in, ports_out)

    # ------------------------------------------------------------- graph nodes
    def _node(
        self, kind: int, idx: int, cycles: float, deps: list[int], label: tuple[str, str],
        plan: int = -1,
    ) -> int:
        """A node of the timing graph that waits for the nodes ``deps`` (a delivery also
        waits for its message's hop, counted when the graph runs). A message (``_SEND`` or
        ``_LEG``) names its ``plan``."""
        if self._executed:
            raise RuntimeError("this mesh has already run; build a new Mesh for a new program")
        node = self._nodes
        self._nodes = node + 1
        self._records += (kind, idx, cycles, plan, len(deps))
        self._deps += deps
        if len(self._records) >= 5 * _CHUNK_NODES:
            self._flush()
        if self._trace_enabled:
            self._label[node] = label
        return node

    def _flush(self) -> None:
        """Move the records and dependencies gathered so far into numpy chunks."""
        self._record_chunks.append(np.array(self._records, dtype=np.float64))
        self._dep_chunks.append(np.array(self._deps, dtype=np.int64))
        self._records, self._deps = [], []

    def _state(self, idx: int, name: str) -> list[int]:
        """The dependency state of tile ``name`` of core ``idx``: its last writer (a node,
        or -1 for a loaded tile), then the nodes that read it since (rule 7)."""
        state = self._buffers[idx].get(name)
        if state is None:
            if name not in self._tiles[idx]:
                raise SpecError(
                    f"core ({idx % self.width}, {idx // self.width}) holds no tile '{name}'"
                )
            state = self._buffers[idx][name] = [-1]
        return state

    def _read_deps(self, idx: int, name: str) -> list[int]:
        writer = self._state(idx, name)[0]
        return [writer] if writer >= 0 else []

    def _write_deps(self, idx: int, name: str) -> list[int]:
        """The readers of the tile's current contents, else its writer: every reader
        already waited for the writer, so the readers alone order the new write."""
        state = self._buffers[idx].get(name)
        if state is None:
            return []
        if len(state) > 1:
            return state[1:]
        return [state[0]] if state[0] >= 0 else []

    def _did_read(self, idx: int, name: str, node: int) -> None:
        self._state(idx, name).append(node)

    def _did_write(self, idx: int, name: str, node: int) -> None:
        self._buffers[idx][name] = [node]

    def _transmit(
        self, src: Core, src_idx: int, path: str, color: int, n: int,
        deps: list[int], delivered: tuple[int, ...], to_pe: bool, label: tuple[str, str],
        stride: int = 1, from_memory: bool = False,
    ) -> tuple[int, tuple[int, ...], int]:
        """Record a pass-through message; returns its node (done = head at the last core
        for a leg into a PE, ``to_pe``, else when its tail leaves the source), the linear
        indices of the cores on its path (``src`` first) and, for a leg ``from_memory``,
        the node that releases its source tile when the tail leaves (else -1).

        ``delivered`` lists the hop numbers (1-based positions on the path) whose core
        receives a copy into memory; the caller records the deliveries next, in hop order,
        ``stride`` nodes apart.
        """
        release = to_pe and from_memory
        plan, cores = self._plan(src, src_idx, path, color, delivered, to_pe, stride, release)
        kind = _LEG if to_pe else _SEND
        node = self._node(kind, src_idx, self._serialization(n), deps, label, plan)
        released = -1
        if release:
            released = self._node(_DELIVERY, src_idx, 0.0, [], ("release", label[1]))
        if delivered:
            self._open_message = (node, self._plans[plan][1])
        return node, cores, released

    def _plan(
        self, src: Core, src_idx: int, path: str, color: int, delivered: tuple[int, ...],
        to_pe: bool, stride: int, release: bool = False,
    ) -> tuple[int, tuple[int, ...]]:
        """The index in ``_plans`` of a message's route, release and deliveries (the
        release is the node after the message; the ``k``-th delivered hop's delivery comes
        ``k * stride`` nodes after that, or after the message), and the cores on its path;
        the route is configured and checked (:meth:`_route`) the first time it is seen."""
        key = (src_idx, path, color, delivered, to_pe, stride, release)
        plan = self._configured.get(key)
        if plan is None:
            links, cores = self._route(src, path, color, delivered, to_pe)
            offsets = [0] * len(path)
            for k, hop in enumerate(sorted(delivered)):
                offsets[hop - 1] = 1 + release + k * stride
            plan = self._configured[key] = (len(self._plans), cores)
            self._plans.append((links, tuple(offsets), int(release)))
        return plan

    def _route(
        self, src: Core, path: str, color: int, delivered: tuple[int, ...], to_pe: bool
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Configure (and check, rule 3) the colors of a path; its link ids and core indices."""
        hops = len(path)
        if not 0 < hops < 4096:  # the event queue keeps a hop number in 12 bits
            raise SpecError(f"a message path has {hops} hops; allowed 1..4095")
        cores = [self.index(core) for core in self._walk(src, path)]
        links = []
        for hop, step in enumerate(path):
            idx = cores[hop]
            links.append(idx * 4 + _DIR_INDEX[step])
            port_in = RAMP if hop == 0 else _OPPOSITE[path[hop - 1]]
            outs = {step, RAMP} if hop > 0 and hop in delivered else {step}
            self._configure(idx, color, port_in, frozenset(outs))
        if not (to_pe or hops in delivered):
            raise SpecError("a message must end at a core that receives it")
        self._configure(cores[-1], color, _OPPOSITE[path[-1]], frozenset({RAMP}))
        return tuple(links), tuple(cores)

    def _core_at(self, idx: int) -> Core:
        return idx % self.width, idx // self.width

    def _delivery(self, transmit: int, hop: int, idx: int, buffer: str, value: np.ndarray) -> int:
        """Store ``value`` in ``buffer`` at ``idx``: the copy that hop ``hop`` of message
        ``transmit`` delivers there; returns the delivery's node."""
        node = self._node(_DELIVERY, idx, 0.0, self._write_deps(idx, buffer), ("recv", buffer))
        message, offsets = self._open_message
        if message != transmit or node != transmit + offsets[hop - 1]:
            raise RuntimeError(
                f"delivery of hop {hop} of message node {transmit} recorded as node {node}, "
                "not where the message's plan puts it"
            )
        self._buffers[idx][buffer] = [node]  # _did_write
        self._store(idx, buffer, value)
        return node

    # ------------------------------------------------------------ kernel API
    def compute(
        self,
        core: Core,
        inputs: Sequence[str],
        output: str,
        fn: Callable[..., np.ndarray],
        fmas: float,
        loops: float = 0,
        vector_ops: float = 0,
        overhead: float = 0.0,
    ) -> None:
        """Run ``output = fn(*inputs)`` on ``core``'s PE (rule 6).

        The PE is busy ``overhead + compute_cycles(fmas, loops, vector_ops)`` cycles.
        ``output`` may be one of ``inputs`` (accumulate in place).
        """
        self.compute_all((core,), inputs, output, fn, fmas, loops, vector_ops, overhead)

    def compute_all(
        self,
        cores: Iterable[Core],
        inputs: Sequence[str],
        output: str,
        fn: Callable[..., np.ndarray],
        fmas: float,
        loops: float = 0,
        vector_ops: float = 0,
        overhead: float = 0.0,
    ) -> None:
        """:meth:`compute` on each of ``cores`` in turn (one step of an SPMD kernel)."""
        cycles = overhead + self._compute_cycles(fmas, loops, vector_ops)
        for core in cores:
            idx = self.index(core)
            node = self._pe_node(idx, inputs, output, cycles, ("compute", output))
            tiles = self._tiles[idx]
            result = fn(*[tiles[name] for name in inputs])
            if type(result) is not np.ndarray or result.dtype is not _FLOAT32:
                result = np.asarray(result, dtype=np.float32)
            self._store(idx, output, result)
            self._buffers[idx][output] = [node]  # _did_write

    def work(self, core: Core, inputs: Sequence[str], marks: str, cycles: float) -> None:
        """Occupy ``core``'s PE for ``cycles`` once ``inputs`` are ready, changing no data.

        For software work that is not a product: activating message tasks, or a program
        point (``cycles = 0``) that later sends must wait for. Tile ``marks`` (one of the
        core's tiles) counts as written by it, so whatever reads ``marks`` next waits.
        """
        idx = self.index(core)
        self._read_deps(idx, marks)  # a clear error if the core lacks the tile
        node = self._pe_node(idx, inputs, marks, cycles, ("work", marks))
        self._did_write(idx, marks, node)

    def _pe_node(
        self, idx: int, inputs: Sequence[str], output: str, cycles: float, label: tuple[str, str]
    ) -> int:
        """A PE node reading ``inputs`` and about to write ``output`` (rules 6 and 7)."""
        buffers = self._buffers[idx]
        deps: list[int] = []
        states = []
        for name in inputs:  # runs for every compute: _state only for a tile's first use
            state = buffers.get(name) or self._state(idx, name)
            if state[0] >= 0:
                deps.append(state[0])
            states.append(state)
        if output in self._tiles[idx]:
            deps += self._write_deps(idx, output)
        node = self._node(_COMPUTE, idx, cycles, deps, label)
        for state in states:
            state.append(node)
        return node

    def send(
        self,
        src: Core,
        buffer: str,
        path: str,
        color: int,
        dst_buffer: str,
        *,
        multicast: bool = False,
        overhead: float = 0.0,
        receive_overhead: float = 0.0,
    ) -> None:
        """Send tile ``buffer`` of ``src`` along ``path`` into ``dst_buffer``.

        Unicast delivers at the end of the path; ``multicast`` delivers at every core on
        it (rule 4). With ``overhead`` the sender's PE first spends that many cycles
        activating the message; with ``receive_overhead`` each receiver's PE spends that
        many cycles on the arrived message (its completion task) before the tile counts
        as ready: the two halves of a store-and-forward step.
        """
        if not (multicast or overhead or receive_overhead):
            self.send_all(((src, buffer, path, color, dst_buffer),))
            return
        src_idx = self.index(src)
        state = self._buffers[src_idx].get(buffer) or self._state(src_idx, buffer)
        deps = [state[0]] if state[0] >= 0 else []
        array = self._tiles[src_idx][buffer]
        if overhead:
            start = self._node(_COMPUTE, src_idx, overhead, deps, ("activate send", buffer))
            state.append(start)
            deps = [start]
        hops = tuple(range(1, len(path) + 1)) if multicast else (len(path),)
        node, cores, _ = self._transmit(
            src, src_idx, path, color, array.size, deps, hops, False, ("send", buffer),
            stride=2 if receive_overhead else 1,
        )
        state.append(node)
        for hop in hops:
            idx = cores[hop]
            delivery = self._delivery(node, hop, idx, dst_buffer, array)
            if receive_overhead:
                task = self._node(
                    _COMPUTE, idx, receive_overhead, [delivery], ("complete recv", dst_buffer)
                )
                self._did_write(idx, dst_buffer, task)

    def send_tiles(
        self,
        src: Core,
        buffers: Sequence[str],
        path: str,
        color: int,
        dst_buffers: Sequence[str],
        *,
        overhead: float = 0.0,
        receive_overhead: float = 0.0,
        after: Sequence[str] = (),
    ) -> None:
        """Send tiles ``buffers`` of ``src`` as one unicast message into ``dst_buffers``.

        A gather-scatter :meth:`send`: the payload is the tiles streamed back to back (a
        strided region of the core's memory), so it is one message of their total size
        (rule 4, one ``T``). It waits for the last write of every source tile and reads them
        all until its tail leaves (rule 7); its delivery waits for the reads of every
        destination tile's previous contents and writes them all, the ``k``-th source tile
        into ``dst_buffers[k]``. ``overhead`` and ``receive_overhead`` as for :meth:`send`.
        With ``after``, the message (and its activation) also waits for the last write of
        those tiles of ``src`` without reading or sending them: a send the program issues
        once they have arrived.
        """
        if not buffers or len(buffers) != len(dst_buffers):
            raise SpecError(
                f"send_tiles: {len(buffers)} source tiles for {len(dst_buffers)} destinations; "
                "give one destination per source tile (at least one)"
            )
        if len(buffers) == 1 and not after:
            self.send(src, buffers[0], path, color, dst_buffers[0], overhead=overhead,
                      receive_overhead=receive_overhead)
            return
        src_idx = self.index(src)
        states = [self._buffers[src_idx].get(name) or self._state(src_idx, name) for name in buffers]
        waits_for = [self._state(src_idx, name)[0] for name in after]
        deps = sorted({state[0] for state in states if state[0] >= 0} | {n for n in waits_for if n >= 0})
        arrays = [self._tiles[src_idx][name] for name in buffers]
        if overhead:
            start = self._node(_COMPUTE, src_idx, overhead, deps, ("activate send", buffers[0]))
            for state in states:
                state.append(start)
            deps = [start]
        hop = len(path)
        node, cores, _ = self._transmit(
            src, src_idx, path, color, sum(array.size for array in arrays), deps, (hop,), False,
            ("send", buffers[0]), stride=2 if receive_overhead else 1,
        )
        for state in states:
            state.append(node)
        idx = cores[hop]
        waits = sorted({dep for name in dst_buffers for dep in self._write_deps(idx, name)})
        delivery = self._node(_DELIVERY, idx, 0.0, waits, ("recv", dst_buffers[0]))
        if delivery != node + self._open_message[1][hop - 1]:
            raise RuntimeError(f"delivery of message node {node} is not where its plan puts it")
        for name, array in zip(dst_buffers, arrays):
            self._did_write(idx, name, delivery)
            self._store(idx, name, array)
        if receive_overhead:
            task = self._node(
                _COMPUTE, idx, receive_overhead, [delivery], ("complete recv", dst_buffers[0])
            )
            for name in dst_buffers:
                self._did_write(idx, name, task)

    def send_all(self, sends: Iterable[tuple[Core, str, str, int, str]]) -> None:
        """Unicast sends ``(src, buffer, path, color, dst_buffer)`` in order.

        Exactly :meth:`send` for each, recorded with less Python work per send (a step of
        an SPMD kernel sends from every core): the message reads the source tile's last
        write (rule 7); its delivery waits for the reads of the destination tile's
        previous contents (else its last write).
        """
        if self._executed:
            raise RuntimeError("this mesh has already run; build a new Mesh for a new program")
        width, height = self.width, self.height
        buffers_of, tiles_of, unicast = self._buffers, self._tiles, self._unicast
        serialization = self._serialization
        labels = self._label if self._trace_enabled else None
        for src, buffer, path, color, dst_buffer in sends:
            x, y = src
            if not (0 <= x < width and 0 <= y < height):
                self.index(src)  # raises the error that names the core
            src_idx = y * width + x
            state = buffers_of[src_idx].get(buffer) or self._state(src_idx, buffer)
            array = tiles_of[src_idx][buffer]
            route = unicast.get((src_idx, path, color))
            if route is None:
                plan, cores = self._plan(src, src_idx, path, color, (len(path),), False, 1)
                route = unicast[src_idx, path, color] = (plan, cores[-1])
            plan, idx = route
            # two nodes, recorded as _node records them: the message, then its delivery
            node = self._nodes
            self._nodes = node + 2
            reads = [state[0]] if state[0] >= 0 else []
            state.append(node)
            waits = self._write_deps(idx, dst_buffer)
            self._records += (
                _SEND, src_idx, serialization(array.size), plan, len(reads),
                _DELIVERY, idx, 0.0, -1, len(waits),
            )
            self._deps += reads
            self._deps += waits
            buffers_of[idx][dst_buffer] = [node + 1]  # _did_write
            self._store(idx, dst_buffer, array)
            if labels is not None:
                labels[node] = ("send", buffer)
                labels[node + 1] = ("recv", dst_buffer)
            if len(self._records) >= 5 * _CHUNK_NODES:
                self._flush()

    def relay(self, src: Core, buffer: str, segments: Sequence[Segment], dst_buffer: str) -> None:
        """Broadcast tile ``buffer`` of ``src`` through a chain of PE relays (rule 5).

        Routers pass each segment through; the PE at the end of a segment keeps a copy in
        ``dst_buffer`` and re-sends it on the next segment (paying ``beta``). Cores inside
        a ``deliver_all`` segment receive a copy as it passes.
        """
        src_idx = self.index(src)
        deps = self._read_deps(src_idx, buffer)
        value = self._tiles[src_idx][buffer]
        t_cycles = self._serialization(value.size)
        here = src
        for number, segment in enumerate(segments):
            hops = tuple(range(1, len(segment.path))) if segment.deliver_all else ()
            node, cores, released = self._transmit(
                here, self.index(here), segment.path, segment.color, value.size, deps, hops,
                True, ("relay leg", buffer), from_memory=number == 0,
            )
            if number == 0:  # the source streams its tile from memory
                self._did_read(src_idx, buffer, released)
            for hop in hops:
                self._delivery(node, hop, cores[hop], dst_buffer, value)
            idx = cores[-1]
            here = self._core_at(idx)
            last = number == len(segments) - 1
            stage = self._node(
                _FINAL_STAGE if last else _STAGE,
                idx, t_cycles, [node] + self._write_deps(idx, dst_buffer), ("relay", buffer),
            )
            self._store(idx, dst_buffer, value)
            # the copy is whole when the stage's stream ends (a final stage ends there)
            copy = stage
            if not last:
                copy = self._node(_TAIL, idx, t_cycles, [stage], ("copied", buffer))
            self._did_write(idx, dst_buffer, copy)
            deps = [stage]

    def reduce(
        self,
        local: str,
        tree: Sequence[tuple[Core, str, int]],
        root: Core,
        dst_buffer: str,
        *,
        broadcast: Sequence[Segment] = (),
        combine: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.add,
    ) -> None:
        """Sum tile ``local`` over a reduction tree into ``dst_buffer`` at ``root`` (rule 5).

        ``tree`` lists edges ``(child, path, color)``: the child's partial sum travels
        ``path`` (passed through by routers) to its parent, the core at the path's end.
        A core with children adds them to its own ``local`` tile in one PE stage
        (``start = max(heads of all children, PE free, local ready)``) and streams the sum
        on; a leaf injects its tile directly. Without ``broadcast`` the root stores the sum
        when its stage ends (``start + beta + T``). With ``broadcast`` the root streams the
        sum straight into these multicast segments (``deliver_all``) from its stage's
        outgoing head, and every core on them receives it into ``dst_buffer``. ``combine``
        merges a child's data into its parent's (the sum by default; ``np.maximum`` for a
        max-reduction, which the machine times the same: one stage per core).
        """
        root_idx = self.index(root)
        children: dict[int, list[tuple[int, str, int]]] = {}
        parent_of: dict[int, int] = {}
        for child, path, color in tree:
            child_idx = self.index(child)
            parent = self.index(self._walk(child, path)[-1])
            if child_idx in parent_of:
                raise SpecError(f"reduction tree: core {child} has two parents")
            parent_of[child_idx] = parent
            children.setdefault(parent, []).append((child_idx, path, color))
        self._read_deps(root_idx, local)  # a clear error if the root lacks the tile
        n = self._tiles[root_idx][local].size
        t_cycles = self._serialization(n)

        def visit(idx: int) -> tuple[int | None, int | None, np.ndarray]:
            """The node whose completion is the head of ``idx``'s outgoing sum, the node
            done when its stream ends, and the sum (None, None for a leaf)."""
            deps = self._read_deps(idx, local)
            value = self._tiles[idx][local]
            for child_idx, path, color in children.get(idx, []):
                head, _, child_value = visit(child_idx)
                leaf = head is None
                leg, _, released = self._transmit(
                    self._core_at(child_idx), child_idx, path, color, n,
                    self._read_deps(child_idx, local) if leaf else [head],
                    (), True, ("reduce", local), from_memory=leaf,
                )
                if leaf:  # a leaf streams its tile from memory
                    self._did_read(child_idx, local, released)
                deps.append(leg)
                value = combine(value, child_value)
            if not children.get(idx):
                return None, None, value
            final = idx == root_idx and not broadcast
            if idx == root_idx:
                deps += self._write_deps(idx, dst_buffer)
            stage = self._node(
                _FINAL_STAGE if final else _STAGE, idx, t_cycles, deps, ("reduce", local)
            )
            # the stage reads its tile as it streams the sum on (a final stage ends there)
            end = stage
            if not final:
                end = self._node(_TAIL, idx, t_cycles, [stage], ("summed", local))
            self._did_read(idx, local, end)
            return stage, end, value

        head, end, total = visit(root_idx)
        if head is None:  # a tree of one core: the root's own tile is the sum
            head = end = self._node(
                _JOIN, root_idx, 0.0,
                self._read_deps(root_idx, local) + self._write_deps(root_idx, dst_buffer),
                ("reduce", local),
            )
        self._store(root_idx, dst_buffer, total)
        self._did_write(root_idx, dst_buffer, end)
        for segment in broadcast:
            hops = tuple(range(1, len(segment.path) + 1))
            node, cores, _ = self._transmit(
                root, root_idx, segment.path, segment.color, n, [head], hops, False,
                ("broadcast", dst_buffer),
            )
            for hop in hops:
                self._delivery(node, hop, cores[hop], dst_buffer, total)

    # --------------------------------------------------------------- timing
    def run(self) -> ExecutionResult:
        """Time the recorded program with an event queue and return the results."""
        if self._executed:
            raise RuntimeError("this mesh has already run")
        self._executed = True
        # timing allocates millions of short-lived objects and makes no reference cycles:
        # the cycle collector would only rescan the graph, so it pauses until the end
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._time_graph()
        finally:
            if collecting:
                gc.enable()

    def _time_graph(self) -> ExecutionResult:
        """The event loop of :meth:`run`: rules 4-8 applied to the recorded nodes."""
        spec = self.spec
        alpha, beta = spec.alpha, spec.beta
        count = self._nodes
        records = np.concatenate(
            self._record_chunks + [np.array(self._records, dtype=np.float64)]
        ).reshape(count, 5)
        kind_of = records[:, 0].astype(np.int64).tolist()
        core_of = records[:, 1].astype(np.int64).tolist()
        length_of = records[:, 2].tolist()
        plan_of = records[:, 3].astype(np.int64).tolist()
        plans = self._plans
        # dependency edges edge_from[i] -> edge_to[i]
        waits_for = records[:, 4].astype(np.int64)
        edge_from = np.concatenate(self._dep_chunks + [np.array(self._deps, dtype=np.int64)])
        edge_to = np.repeat(np.arange(count), waits_for)
        # dependencies not yet met: the nodes waited for, and a delivery's message hop
        pending = (waits_for + (records[:, 0] == _DELIVERY)).tolist()
        # children of each node, in the order the edges were made: first[n]:first[n + 1]
        order = np.argsort(edge_from, kind="stable")
        child_of = edge_to[order].tolist()
        first = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(np.bincount(edge_from, minlength=count), out=first[1:])
        first = first.tolist()
        cores = self.width * self.height
        tracing = self._trace_enabled
        ready = [0.0] * count
        pe_free = [0.0] * cores
        busy = [0.0] * cores
        last = [-math.inf] * cores
        link_free = [0.0] * (cores * 4)  # when each directed link is free again
        link_busy = [0.0] * (cores * 4)  # cycles each directed link carried data
        trace: list[TraceEvent] = []
        waits = 0  # hops whose head found its link busy (contention)
        push, pop = heapq.heappush, heapq.heappop
        # nodes completed but not yet released, last in first out; once a node has
        # started, ready[node] holds its completion time instead of its ready time
        resolved: list[int] = []

        # The event queue: a heap of distinct times, and per time the events due then in
        # the order they were queued, each (node << 12) + hop. Lock-step kernels queue
        # thousands of events at one time, and a heap of floats compares far faster than
        # a heap of (time, sequence, ...) tuples.
        first_events = [node << 12 for node in range(count) if pending[node] == 0]
        due: dict[float, list[int]] = {0.0: first_events} if first_events else {}
        times = list(due)

        while times:
            t_due = pop(times)
            events = due[t_due]
            for event in events:  # events queued for t_due while it runs are appended
                t = t_due
                node = event >> 12
                kind = kind_of[node]
                if kind == _SEND or kind == _LEG:
                    hop = event & 4095
                    length = length_of[node]
                    links, offsets, release = plans[plan_of[node]]
                    link = links[hop]
                    free = link_free[link]
                    if free > t:
                        waits += 1
                        t = free
                    link_free[link] = t + length
                    link_busy[link] += length
                    head = t + alpha
                    if hop == 0:
                        idx = core_of[node]
                        if t + length > last[idx]:
                            last[idx] = t + length
                        if kind == _SEND:  # its buffer is free once the tail leaves
                            ready[node] = t + length
                            resolved.append(node)
                        elif release:  # so is the tile a leg streams from memory
                            released = node + release
                            ready[released] = t + length
                            pending[released] -= 1
                            if pending[released] == 0:
                                resolved.append(released)
                    if tracing:
                        trace.append(TraceEvent("hop", link // 4, t, t + length, link % 4))
                    if offsets[hop]:  # the core this hop reaches keeps a copy
                        delivery = node + offsets[hop]
                        at = head + length
                        where = core_of[delivery]
                        if at > last[where]:
                            last[where] = at
                        if at > ready[delivery]:
                            ready[delivery] = at
                        pending[delivery] -= 1
                        if pending[delivery] == 0:  # a join holds no resource: resolve it
                            resolved.append(delivery)
                    if hop + 1 < len(links):
                        queue = due.get(head)
                        if queue is None:
                            due[head] = [event + 1]
                            push(times, head)
                        else:
                            queue.append(event + 1)
                    elif kind == _LEG:  # done when its head reaches the stage's PE
                        ready[node] = head
                        resolved.append(node)
                elif kind == _JOIN:  # only a join with no dependency at all is queued
                    resolved.append(node)
                else:  # the PE: a compute, or a stage (rule 5)
                    idx = core_of[node]
                    free = pe_free[idx]
                    start = t if t > free else free
                    work = length_of[node] if kind == _COMPUTE else beta + length_of[node]
                    end = start + work
                    pe_free[idx] = end
                    busy[idx] += work
                    if end > last[idx]:
                        last[idx] = end
                    if tracing:
                        trace.append(TraceEvent(" ".join(self._label[node]), idx, start, end))
                    ready[node] = start + beta if kind == _STAGE else end
                    resolved.append(node)
                # completed nodes release their children; joins complete once free
                while resolved:
                    done_node = resolved.pop()
                    done = ready[done_node]
                    for child in child_of[first[done_node]:first[done_node + 1]]:
                        if done > ready[child]:
                            ready[child] = done
                        left = pending[child] - 1
                        pending[child] = left
                        if not left:
                            if kind_of[child] <= _TAIL:  # holds no resource: done now
                                if kind_of[child] == _TAIL:
                                    ready[child] += length_of[child]
                                resolved.append(child)
                            else:
                                at = ready[child]
                                queue = due.get(at)
                                if queue is None:
                                    due[at] = [child << 12]
                                    push(times, at)
                                else:
                                    queue.append(child << 12)
            del due[t_due]

        if any(pending):
            raise RuntimeError("the program's dependencies form a cycle")
        link_bytes = np.array(link_busy) * spec.link_bytes_per_cycle
        last_event = np.array(last) + spec.launch_overhead_cycles
        last_event[np.isinf(last_event)] = np.nan  # a core that did nothing
        return ExecutionResult.build(
            width=self.width,
            height=self.height,
            last_event=last_event,
            busy=np.array(busy),
            link_bytes=link_bytes.reshape(self.height, self.width, 4),
            peak_memory=np.array(self._peak),
            routes=np.array([len(r) for r in self._routes]),
            link_waits=waits,
            tiles=self._tiles,
            trace=trace if self._trace_enabled else None,
        )
