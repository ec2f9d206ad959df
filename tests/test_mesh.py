"""Direct tests of the exact mesh executor (:mod:`plummer.mesh._executor`).

Every expected number is derived by hand, in a comment, from the numbered rules of the
executor's module docstring (cut-through transport, link contention, PE stages, compute,
buffers, results), on a small spec where the arithmetic is easy:

    alpha = 3, beta = 7, T(n) = ceil(n * 4 / 4) = n, fma_per_cycle = 2,
    loop_overhead = 10, vector_op_overhead = 3, launch_overhead = 0 (unless stated).

It checks transport (rule 4), contention, compute (rule 6), buffers (rule 7), relay and
reduction stages (rule 5), the errors a program can cause, the equivalence of the code
paths that must time a program identically (``send_all`` vs ``send``, a one-hop multicast
vs a unicast, ``compute_all`` vs ``compute``) on a random program, and the result fields
(rule 8).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from plummer.errors import CoreMemoryError, RoutingError, SpecError
from plummer.hardware import load_hardware
from plummer.mesh import ExecutionResult, Mesh, Segment, TraceEvent

ALPHA, BETA = 3.0, 7.0


def make_spec(**changes):
    """The WSE-3 preset with small, hand-checkable timing constants (``T(n) = n``)."""
    params = {
        "alpha": ALPHA,
        "beta": BETA,
        "link_bytes_per_cycle": 4.0,
        "wire_bytes_per_element": 4,
        "dtype_bytes": 2,
        "fma_per_cycle": 2.0,
        "loop_overhead_cycles": 10.0,
        "vector_op_overhead_cycles": 3.0,
        "step_overhead_cycles": 0.0,
        "message_overhead_cycles": 0.0,
        "launch_overhead_cycles": 0.0,
    }
    params.update(changes)
    return dataclasses.replace(load_hardware("wse3"), **params)


def tile(n: int, value: float = 1.0) -> np.ndarray:
    return np.full(n, value, dtype=np.float32)


def at(result: ExecutionResult, core: tuple[int, int]) -> float:
    """Elapsed cycles of ``core`` = (x, y) (its last event, plus the launch overhead)."""
    x, y = core
    return float(result.core_cycles[y, x])


def double(a):
    return a * 2


# --------------------------------------------------------------------- rule 4: transport
@pytest.mark.parametrize(
    "src, path, dst, expected",
    [
        # h * alpha + T + launch = h * 3 + 8 + 5
        ((0, 0), "E", (1, 0), 1 * 3 + 8 + 5),  # 16
        ((1, 1), "NW", (0, 0), 2 * 3 + 8 + 5),  # 19
        ((0, 0), "EESSW", (1, 2), 5 * 3 + 8 + 5),  # 28
        ((0, 3), "NEENN", (2, 0), 5 * 3 + 8 + 5),  # 28
    ],
)
def test_unicast_takes_h_alpha_plus_T(src, path, dst, expected):
    mesh = Mesh(make_spec(launch_overhead_cycles=5.0), 4, 4)
    mesh.load(src, "x", np.arange(8))
    mesh.send(src, "x", path, color=0, dst_buffer="y")
    result = mesh.run()
    assert result.cycles == expected
    assert at(result, dst) == expected
    # the source's last event is its tail leaving at T = 8, plus launch 5
    assert at(result, src) == 8 + 5
    # cores the message only passes through did nothing (rule 8)
    assert np.isnan(result.core_cycles).sum() == 16 - 2
    assert result.mean_core_cycles == (13 + expected) / 2
    np.testing.assert_array_equal(result.tile(dst, "y"), np.arange(8))
    assert result.link_waits == 0


def test_serialization_rounds_up_to_whole_cycles():
    # wire 4 B per element, link 8 B per cycle: T(5) = ceil(20 / 8) = 3; 2 hops: 2 * 3 + 3
    mesh = Mesh(make_spec(link_bytes_per_cycle=8.0), 3, 1)
    mesh.load((0, 0), "x", tile(5))
    mesh.send((0, 0), "x", "EE", color=0, dst_buffer="y")
    result = mesh.run()
    assert result.cycles == 9.0
    assert at(result, (0, 0)) == 3.0
    # each crossed link busy 3 cycles x 8 B = 24 B on the wire (not 5 * 4 = 20)
    assert result.link_bytes[0, 0, 0] == 24.0
    assert result.link_bytes[0, 1, 0] == 24.0


def test_multicast_delivers_at_every_core_at_its_own_head_plus_T():
    mesh = Mesh(make_spec(), 5, 1)
    mesh.load((0, 0), "x", np.arange(8))
    mesh.send((0, 0), "x", "EEEE", color=0, dst_buffer="y", multicast=True)
    result = mesh.run()
    # core k receives at k * alpha + T = 3k + 8; the source's tail leaves at 8
    assert [at(result, (k, 0)) for k in range(5)] == [8, 11, 14, 17, 20]
    assert result.cycles == 20
    assert result.mean_core_cycles == (8 + 11 + 14 + 17 + 20) / 5
    for k in range(1, 5):
        np.testing.assert_array_equal(result.tile((k, 0), "y"), np.arange(8))
    # one link per hop, each busy T = 8 cycles (32 B)
    np.testing.assert_array_equal(result.link_bytes[0, :4, 0], [32, 32, 32, 32])
    assert result.link_bytes[0, 4, 0] == 0


# ------------------------------------------------------------------- contention (rule 4)
def test_second_message_on_a_shared_link_waits_for_the_first():
    mesh = Mesh(make_spec(), 3, 1)
    mesh.load((0, 0), "a", tile(8, 1))
    mesh.load((0, 0), "b", tile(4, 2))
    mesh.send((0, 0), "a", "E", color=0, dst_buffer="ya")
    mesh.send((0, 0), "b", "EE", color=1, dst_buffer="yb")
    result = mesh.run()
    # a: link (0,0)E [0, 8), head at (1,0) at 3, delivered 3 + 8 = 11
    # b: asks (0,0)E at 0, waits until 8: [8, 12); head (1,0) at 11, (1,0)E [11, 15),
    #    head (2,0) at 14, delivered 14 + 4 = 18
    assert at(result, (1, 0)) == 11
    assert at(result, (2, 0)) == 18
    assert at(result, (0, 0)) == 12  # b's tail leaves at 12
    assert result.link_waits == 1
    assert result.link_bytes[0, 0, 0] == (8 + 4) * 4


def test_program_order_breaks_ties_at_time_zero():
    mesh = Mesh(make_spec(), 3, 1)
    mesh.load((0, 0), "a", tile(8, 1))
    mesh.load((0, 0), "b", tile(4, 2))
    mesh.send((0, 0), "b", "EE", color=1, dst_buffer="yb")
    mesh.send((0, 0), "a", "E", color=0, dst_buffer="ya")
    result = mesh.run()
    # b first: (0,0)E [0, 4), head (1,0) at 3, (1,0)E [3, 7), head (2,0) at 6, delivered 10
    # a: (0,0)E free at 4: [4, 12), head (1,0) at 7, delivered 15
    assert at(result, (2, 0)) == 10
    assert at(result, (1, 0)) == 15
    assert result.link_waits == 1


def test_a_waiting_head_does_not_hold_its_upstream_link():
    mesh = Mesh(make_spec(), 3, 1)
    mesh.load((0, 0), "a", tile(4))
    mesh.load((1, 0), "b", tile(20))
    mesh.load((0, 0), "c", tile(2))
    mesh.send((0, 0), "a", "EE", color=0, dst_buffer="ya")
    mesh.send((1, 0), "b", "E", color=1, dst_buffer="yb")
    mesh.send((0, 0), "c", "E", color=2, dst_buffer="yc")
    result = mesh.run()
    # a: (0,0)E [0, 4); head at (1,0) at 3 asks (1,0)E
    # b: (1,0)E [0, 20); delivered at (2,0) at 3 + 20 = 23
    # c: (0,0)E free at 4 (a's tail, not a's wait downstream): [4, 6), delivered 4 + 3 + 2 = 9
    # a: (1,0)E free at 20: [20, 24), head (2,0) at 23, delivered 27
    assert at(result, (2, 0)) == 27
    assert at(result, (1, 0)) == 20  # b's tail leaves (1,0) at 20; c arrived at 9
    assert at(result, (0, 0)) == 6  # c's tail
    assert result.link_waits == 2  # c at (0,0)E, a at (1,0)E


@pytest.mark.parametrize(
    "second",
    [((1, 0), "E", (2, 0)), ((1, 0), "W", (0, 0)), ((0, 1), "E", (1, 1))],
    ids=["next-link", "opposite-direction", "other-row"],
)
def test_messages_on_different_links_do_not_wait(second):
    src, path, dst = second
    mesh = Mesh(make_spec(), 3, 2)
    mesh.load((0, 0), "a", tile(8))
    mesh.load(src, "b", tile(8))
    mesh.send((0, 0), "a", "E", color=0, dst_buffer="ya")
    mesh.send(src, "b", path, color=1, dst_buffer="yb")
    result = mesh.run()
    # both uncontended: alpha + T = 3 + 8 = 11
    assert at(result, (1, 0)) == 11
    assert at(result, dst) == 11
    assert result.link_waits == 0


# ---------------------------------------------------------------------- rule 6: compute
def test_compute_cycles_formula():
    mesh = Mesh(make_spec(), 1, 1)
    mesh.load((0, 0), "a", np.arange(4))
    mesh.compute((0, 0), ["a"], "b", double, fmas=8, loops=2, vector_ops=3, overhead=5)
    mesh.compute((0, 0), ["b"], "c", double, fmas=3)
    result = mesh.run()
    # first: 5 + 2 * 10 + 3 * 3 + 8 / 2 = 38; second: 3 / 2 = 1.5, after it: 39.5
    assert result.cycles == 39.5
    assert result.busy_cycles[0, 0] == 39.5
    np.testing.assert_array_equal(result.tile((0, 0), "b"), np.arange(4) * 2)
    np.testing.assert_array_equal(result.tile((0, 0), "c"), np.arange(4) * 4)


def test_compute_overlaps_communication():
    mesh = Mesh(make_spec(), 2, 1)
    mesh.load((0, 0), "w", tile(4))
    mesh.load((0, 0), "a", tile(8, 3))
    mesh.compute((0, 0), ["w"], "w2", double, fmas=200)  # 100 cycles on the PE
    mesh.send((0, 0), "a", "E", color=0, dst_buffer="y")
    result = mesh.run()
    # the send does not need the PE: delivered at alpha + T = 11, not 100 + 11
    assert at(result, (1, 0)) == 11
    assert at(result, (0, 0)) == 100
    assert result.busy_cycles[0, 0] == 100
    assert result.busy_cycles[0, 1] == 0


def test_computes_on_one_pe_serialize_in_ready_order():
    mesh = Mesh(make_spec(), 2, 1, trace=True)
    mesh.load((1, 0), "r", tile(8))
    mesh.load((0, 0), "a", tile(4))
    mesh.send((1, 0), "r", "W", color=0, dst_buffer="r")
    mesh.compute((0, 0), ["r"], "c1", double, fmas=80)  # 40 cycles, ready at 3 + 8 = 11
    mesh.compute((0, 0), ["a"], "c2", double, fmas=60)  # 30 cycles, ready at 0
    result = mesh.run()
    # the PE serves c2 first (ready at 0): [0, 30); then c1 (ready at 11): [30, 70)
    computes = {e.kind: (e.start, e.end) for e in result.trace if e.kind.startswith("compute")}
    assert computes == {"compute c2": (0.0, 30.0), "compute c1": (30.0, 70.0)}
    assert result.cycles == 70
    assert result.busy_cycles[0, 0] == 70


def test_pe_work_ready_at_the_start_runs_in_program_order():
    mesh = Mesh(make_spec(), 1, 1, trace=True)
    mesh.load((0, 0), "a", tile(4))
    mesh.compute((0, 0), ["a"], "c1", double, fmas=80)  # 40 cycles
    mesh.compute((0, 0), ["a"], "c2", double, fmas=60)  # 30 cycles
    result = mesh.run()
    # both ready at 0: c1 [0, 40), then c2 [40, 70)
    computes = {e.kind: (e.start, e.end) for e in result.trace}
    assert computes == {"compute c1": (0.0, 40.0), "compute c2": (40.0, 70.0)}


def test_work_and_send_overheads_occupy_the_pe():
    mesh = Mesh(make_spec(), 3, 1)
    mesh.load((0, 0), "a", tile(8, 2))
    mesh.work((0, 0), [], "a", 12)  # [0, 12), marks a as written
    mesh.send((0, 0), "a", "E", 0, "y", overhead=4, receive_overhead=6)
    mesh.send((1, 0), "y", "E", 1, "z")
    result = mesh.run()
    # activation [12, 16); hop [16, 24); arrives at (1,0) at 16 + 3 + 8 = 27; completion task
    # [27, 33); y ready at 33; onward send: 33 + 3 + 8 = 44
    np.testing.assert_array_equal(result.busy_cycles, [[12 + 4, 6, 0]])
    assert at(result, (0, 0)) == 24
    assert at(result, (1, 0)) == 41  # the onward send's tail leaves at 33 + 8
    assert at(result, (2, 0)) == 44
    np.testing.assert_array_equal(result.tile((2, 0), "z"), tile(8, 2))


# ---------------------------------------------------------------------- rule 7: buffers
def test_send_waits_for_the_compute_that_writes_its_tile():
    mesh = Mesh(make_spec(), 2, 1)
    mesh.load((0, 0), "a", np.arange(8))
    mesh.compute((0, 0), ["a"], "x", double, fmas=100)  # [0, 50)
    mesh.send((0, 0), "x", "E", color=0, dst_buffer="y")
    result = mesh.run()
    # the send starts at 50: delivered 50 + 3 + 8 = 61
    assert at(result, (1, 0)) == 61
    np.testing.assert_array_equal(result.tile((1, 0), "y"), np.arange(8) * 2)


def _delivery_into_a_tile_being_read(dst_buffer: str) -> ExecutionResult:
    mesh = Mesh(make_spec(), 3, 1)
    mesh.load((1, 0), "buf", tile(8, 1))
    mesh.load((0, 0), "a", tile(8, 5))
    mesh.compute((1, 0), ["buf"], "out", double, fmas=200)  # reads buf over [0, 100)
    mesh.send((0, 0), "a", "E", color=0, dst_buffer=dst_buffer)  # arrives at 11
    mesh.send((1, 0), dst_buffer, "E", color=1, dst_buffer="got")
    return mesh.run()


def test_delivery_waits_for_the_reader_of_the_previous_contents():
    result = _delivery_into_a_tile_being_read("buf")
    # the message reaches (1,0) at 11, but its delivery into buf waits for the compute that
    # reads buf (ends at 100); the onward send of buf starts at 100: 100 + 3 + 8 = 111
    assert at(result, (2, 0)) == 111
    np.testing.assert_array_equal(result.tile((1, 0), "out"), tile(8, 2))  # old contents
    np.testing.assert_array_equal(result.tile((2, 0), "got"), tile(8, 5))  # new contents


def test_double_buffering_removes_the_write_after_read_wait():
    result = _delivery_into_a_tile_being_read("buf2")
    # buf2 is ready at 11; the onward send: 11 + 3 + 8 = 22
    assert at(result, (2, 0)) == 22
    assert result.cycles == 100  # the compute on (1,0)
    np.testing.assert_array_equal(result.tile((2, 0), "got"), tile(8, 5))


def test_a_send_reads_its_tile_until_its_tail_leaves():
    mesh = Mesh(make_spec(), 2, 2)
    # (1,0) sends buf (T = 20) south: it reads buf over [0, 20)
    mesh.load((1, 0), "buf", tile(20, 1))
    mesh.load((0, 0), "a", tile(4, 5))
    mesh.send((1, 0), "buf", "S", color=0, dst_buffer="old")
    mesh.send((0, 0), "a", "E", color=1, dst_buffer="buf")  # arrives 3 + 4 = 7, stored at 20
    mesh.send((1, 0), "buf", "W", color=2, dst_buffer="new")  # starts 20: 20 + 3 + 4 = 27
    # a compute overwriting the source tile of a send waits for that send's tail too
    mesh.compute((0, 0), [], "a", lambda: tile(4, 9), fmas=10)  # [4, 9): a's tail leaves at 4
    result = mesh.run()
    assert at(result, (1, 1)) == 3 + 20  # 23
    # (0,0): max(compute end 9, delivery of new 27) = 27
    assert at(result, (0, 0)) == 27
    assert result.busy_cycles[0, 0] == 5
    np.testing.assert_array_equal(result.tile((1, 1), "old"), tile(20, 1))
    np.testing.assert_array_equal(result.tile((0, 0), "new"), tile(4, 5))
    np.testing.assert_array_equal(result.tile((0, 0), "a"), tile(4, 9))


def test_a_compute_overwriting_a_sent_tile_starts_when_the_tail_leaves():
    mesh = Mesh(make_spec(), 2, 1)
    mesh.load((0, 0), "x", tile(10, 1))
    mesh.send((0, 0), "x", "E", color=0, dst_buffer="y")  # tail leaves (0,0) at 10
    mesh.compute((0, 0), [], "x", lambda: tile(10, 4), fmas=10)  # 5 cycles: [10, 15)
    result = mesh.run()
    assert at(result, (0, 0)) == 15  # without write-after-read it would be max(10, 5) = 10
    np.testing.assert_array_equal(result.tile((1, 0), "y"), tile(10, 1))


def test_send_tiles_is_one_message_of_the_tiles_total_size():
    mesh = Mesh(make_spec(), 3, 1)
    mesh.load((0, 0), "a", np.arange(3))
    mesh.load((0, 0), "b", np.arange(5) + 10)
    mesh.compute((0, 0), ["b"], "b", double, fmas=40)  # [0, 20): the message waits for it
    mesh.send_tiles((0, 0), ["a", "b"], "EE", 0, ["x", "y"])
    mesh.compute((0, 0), [], "a", lambda: tile(3, 7), fmas=2)  # overwrites a after the tail
    result = mesh.run()
    # one message of T = 3 + 5 = 8 from 20 over two hops: 20 + 2 * 3 + 8 = 34
    assert at(result, (2, 0)) == 34
    np.testing.assert_array_equal(result.tile((2, 0), "x"), np.arange(3))
    np.testing.assert_array_equal(result.tile((2, 0), "y"), (np.arange(5) + 10) * 2)
    # the second compute waits for the tail (20 + 8) to overwrite a: [28, 29)
    assert at(result, (0, 0)) == 29
    assert result.peak_memory_bytes[0, 2] == 8 * 2


def test_send_tiles_delivery_waits_for_every_destinations_reader():
    mesh = Mesh(make_spec(message_overhead_cycles=4.0), 2, 1)
    mesh.load((0, 0), "a", tile(2, 1))
    mesh.load((0, 0), "b", tile(2, 2))
    mesh.load((1, 0), "x", tile(2, 0))
    mesh.load((1, 0), "y", tile(2, 0))
    mesh.compute((1, 0), ["y"], "out", double, fmas=60)  # reads y over [0, 30)
    mesh.send_tiles((0, 0), ["a", "b"], "E", 0, ["x", "y"], overhead=4.0, receive_overhead=4.0)
    mesh.send((1, 0), "x", "W", color=1, dst_buffer="back")
    result = mesh.run()
    # activation [0, 4), head at 4 + 3, whole at 4 + 3 + 4 = 11, but the delivery into y
    # waits for the reader of y (30); completion task [30, 34); the send of x then leaves at
    # 34: 34 + 3 + 2 = 39 at (0, 0)
    assert at(result, (0, 0)) == 39
    np.testing.assert_array_equal(result.tile((1, 0), "y"), tile(2, 2))
    np.testing.assert_array_equal(result.tile((0, 0), "back"), tile(2, 1))


def test_send_tiles_after_waits_for_a_tile_it_does_not_send():
    mesh = Mesh(make_spec(), 2, 1)
    mesh.load((0, 0), "a", tile(4, 1))
    mesh.load((0, 0), "flag", tile(1, 0))
    mesh.compute((0, 0), ["flag"], "flag", double, fmas=30)  # writes flag over [0, 15)
    mesh.send_tiles((0, 0), ["a"], "E", 0, ["b"], after=["flag"])
    mesh.compute((0, 0), [], "flag", lambda: tile(1, 5), fmas=2)  # flag is not read by it
    result = mesh.run()
    # the message leaves at 15 (after flag's write): 15 + 3 + 4 = 22; the second compute
    # overwrites flag at once after the first, [15, 16): the message did not read flag
    assert at(result, (1, 0)) == 22
    assert at(result, (0, 0)) == 19  # the tail of the send leaves at 15 + 4
    np.testing.assert_array_equal(result.tile((1, 0), "b"), tile(4, 1))


def test_send_tiles_of_one_tile_is_send():
    results = []
    for gather in (False, True):
        mesh = Mesh(make_spec(message_overhead_cycles=2.0), 2, 1)
        mesh.load((0, 0), "a", tile(6, 1))
        if gather:
            mesh.send_tiles((0, 0), ["a"], "E", 0, ["b"], overhead=2.0, receive_overhead=2.0)
        else:
            mesh.send((0, 0), "a", "E", 0, "b", overhead=2.0, receive_overhead=2.0)
        results.append(mesh.run())
    assert results[0].cycles == results[1].cycles == 2 + 3 + 6 + 2
    with pytest.raises(SpecError, match="one destination per source tile"):
        Mesh(make_spec(), 2, 1).send_tiles((0, 0), ["a", "b"], "E", 0, ["x"])


# ------------------------------------------------------------ rule 5: relay and reduce
def test_relay_over_two_segments():
    mesh = Mesh(make_spec(), 5, 1)
    mesh.load((0, 0), "x", np.arange(8))
    mesh.relay((0, 0), "x", [Segment("EE", 0, deliver_all=True), Segment("EE", 1)], "got")
    result = mesh.run()
    # leg 1: head at (2,0) at 2 alpha = 6; (1,0) gets a copy at alpha + T = 11
    # stage at (2,0): [6, 6 + beta + T = 21), its head leaves at 6 + beta = 13
    # leg 2: head at (4,0) at 13 + 2 alpha = 19; the last core's PE stage: [19, 19 + 7 + 8)
    # total: 2 legs (4 alpha) + 2 beta (one stage per PE, the last included) + T = 34
    assert at(result, (1, 0)) == 11
    assert at(result, (2, 0)) == 21
    assert np.isnan(at(result, (3, 0)))
    assert at(result, (4, 0)) == 4 * ALPHA + 2 * BETA + 8 == 34
    assert at(result, (0, 0)) == 8  # leg 1's tail leaves the source
    assert result.cycles == 34
    np.testing.assert_array_equal(result.busy_cycles[0], [0, 0, 15, 0, 15])
    for x in (1, 2, 4):
        np.testing.assert_array_equal(result.tile((x, 0), "got"), np.arange(8))
    assert "got" not in result.tiles[3]


def test_reduce_star_of_three_cores():
    mesh = Mesh(make_spec(), 3, 1)
    values = {(0, 0): np.arange(8), (1, 0): tile(8, 10), (2, 0): np.arange(8) * 100}
    for core, value in values.items():
        mesh.load(core, "p", value)
    mesh.reduce("p", [((0, 0), "E", 0), ((2, 0), "W", 1)], (1, 0), "sum")
    result = mesh.run()
    # both heads reach (1,0) at alpha = 3; root stage [3, 3 + beta + T = 18), final
    assert result.cycles == 18
    assert [at(result, (x, 0)) for x in range(3)] == [8, 18, 8]
    assert result.busy_cycles[0, 1] == BETA + 8
    np.testing.assert_array_equal(result.tile((1, 0), "sum"), np.arange(8) * 101 + 10)


def test_reduce_chain_of_three_cores():
    mesh = Mesh(make_spec(), 3, 1)
    for x in range(3):
        mesh.load((x, 0), "p", tile(8, 10**x))
    mesh.reduce("p", [((0, 0), "E", 0), ((1, 0), "E", 1)], (2, 0), "sum")
    result = mesh.run()
    # (1,0) stage [3, 18), its head leaves at 3 + 7 = 10; (1,0)E [10, 18), head (2,0) at 13
    # root final stage [13, 13 + 7 + 8 = 28): 2 alpha + 2 beta + T
    assert [at(result, (x, 0)) for x in range(3)] == [8, 18, 28]
    assert result.cycles == 2 * ALPHA + 2 * BETA + 8 == 28
    np.testing.assert_array_equal(result.tile((2, 0), "sum"), tile(8, 111))


def test_a_reduction_leaf_holds_its_tile_until_the_tail_leaves():
    mesh = Mesh(make_spec(), 2, 1)
    mesh.load((0, 0), "x", tile(20))
    mesh.load((1, 0), "x", tile(20))
    mesh.load((1, 0), "y", tile(2))
    mesh.reduce("x", [((0, 0), "E", 0)], (1, 0), "sum")
    mesh.send((1, 0), "y", "W", 1, "x")  # overwrites the leaf's tile
    mesh.compute((0, 0), ["x"], "z", double, fmas=20)  # 10 cycles
    result = mesh.run()
    # the leaf streams x over [0, 20) (its head is at the root at 3); y arrives at
    # 3 + 2 = 5 but lands when the tail has left, at 20 (rule 7); the compute runs [20, 30)
    assert at(result, (0, 0)) == 30
    # the root: final stage [3, 3 + 7 + 20 = 30)
    assert at(result, (1, 0)) == 30


def test_a_streaming_stage_holds_its_tile_until_the_stream_ends():
    mesh = Mesh(make_spec(), 3, 2)
    for x in range(3):
        mesh.load((x, 0), "x", tile(8))
    mesh.load((1, 1), "y", tile(2))
    mesh.reduce("x", [((0, 0), "E", 0), ((1, 0), "E", 1)], (2, 0), "sum")
    mesh.send((1, 1), "y", "N", 2, "x")  # overwrites the inner core's tile
    mesh.send((1, 0), "x", "S", 3, "z")  # sends what landed
    result = mesh.run()
    # (1,0)'s stage starts at 3, its head leaves at 10, its stream ends at 3 + 7 + 8 = 18;
    # y arrives at 5 and lands at 18; sent on at 18, it reaches (1,1) at 18 + 3 + 2 = 23
    assert at(result, (1, 1)) == 23
    assert at(result, (2, 0)) == 28  # the root's final stage [13, 28), as without the sends


def test_a_relayed_copy_is_whole_when_the_stream_ends():
    mesh = Mesh(make_spec(), 3, 2)
    mesh.load((0, 0), "x", tile(8))
    mesh.load((0, 1), "y", tile(2))
    mesh.relay((0, 0), "x", [Segment("E", 0), Segment("E", 1)], "copy")
    mesh.send((1, 0), "copy", "S", 2, "z")  # from the intermediate core's copy
    mesh.send((0, 1), "y", "N", 3, "x")  # overwrites the source tile
    mesh.send((0, 0), "x", "S", 4, "w")  # sends what landed
    result = mesh.run()
    # (1,0)'s stage [3, 18) streams the copy on from 10 and holds it whole at 18: the send
    # from it reaches (1,1) at 18 + 3 + 8 = 29
    assert at(result, (1, 1)) == 29
    # the source streams x over [0, 8); y arrives at 5 and lands at 8; sent on at 8, it
    # reaches (0,1) at 8 + 3 + 2 = 13
    assert at(result, (0, 1)) == 13
    # the last core: leg 2's head at 10 + 3 = 13, final stage [13, 28)
    assert at(result, (2, 0)) == 28


def test_reduce_then_broadcast_pays_T_once():
    mesh = Mesh(make_spec(), 5, 1)
    for x in range(5):
        mesh.load((x, 0), "p", tile(8, 10**x))
    mesh.reduce(
        "p", [((1, 0), "E", 0), ((3, 0), "W", 1)], (2, 0), "sum",
        broadcast=[Segment("WW", 2, deliver_all=True), Segment("EE", 3, deliver_all=True)],
    )
    result = mesh.run()
    # heads at the root at 3; stage [3, 18), the sum's head leaves at 3 + 7 = 10 straight
    # into the multicast: (1,0), (3,0) at 10 + 3 + 8 = 21; (0,0), (4,0) at 10 + 6 + 8 = 24
    # (storing first, then sending, would give 18 + 6 + 8 = 32)
    assert [at(result, (x, 0)) for x in range(5)] == [24, 21, 18, 21, 24]
    assert result.cycles == ALPHA + BETA + 2 * ALPHA + 8 == 24
    for x in range(5):  # 10 + 100 + 1000 from the tree's cores, at every core
        np.testing.assert_array_equal(result.tile((x, 0), "sum"), tile(8, 1110))
    # the root holds colors 0 (W->R), 1 (E->R), 2 (R->W), 3 (R->E)
    assert result.routes_per_core[0, 2] == 4
    assert result.link_waits == 0


# ------------------------------------------------------------------------------ errors
def test_memory_error_names_core_bytes_in_use_and_budget():
    mesh = Mesh(make_spec(memory_bytes=64), 3, 3)
    mesh.load((2, 1), "a", tile(20))  # 40 B
    with pytest.raises(
        CoreMemoryError,
        match=r"core \(2, 1\): tile 'b' needs 32 bytes, 40 in use, budget 64 bytes",
    ):
        mesh.load((2, 1), "b", tile(16))
    # a delivery that does not fit fails at the receiver
    mesh.load((1, 1), "c", tile(32))
    with pytest.raises(CoreMemoryError, match=r"core \(2, 1\): tile 'y' needs 64 bytes, 40 in use"):
        mesh.send((1, 1), "c", "E", color=0, dst_buffer="y")


def test_routing_error_on_a_color_conflict():
    mesh = Mesh(make_spec(), 3, 1)
    mesh.load((0, 0), "a", tile(4))
    mesh.load((1, 0), "b", tile(4))
    mesh.send((0, 0), "a", "E", color=0, dst_buffer="y")  # (1,0): color 0 W->R
    with pytest.raises(
        RoutingError,
        match=r"core \(1, 0\): color 0 already routes W->R; a second route R->E on the same "
        r"color conflicts",
    ):
        mesh.send((1, 0), "b", "E", color=0, dst_buffer="y")


def test_routing_error_beyond_the_route_budget():
    spec = make_spec(colors=4, reserved_colors=1)  # route budget 3
    assert spec.route_budget == 3
    mesh = Mesh(spec, 2, 1)
    mesh.load((0, 0), "a", tile(4))
    for color in (0, 1, 2):
        mesh.send((0, 0), "a", "E", color=color, dst_buffer=f"y{color}")
    with pytest.raises(
        RoutingError,
        match=r"core \(0, 0\): needs color 7 beyond the route budget of 3 "
        r"\(colors in use: \[0, 1, 2\]\)",
    ):
        mesh.send((0, 0), "a", "E", color=7, dst_buffer="y7")


def test_program_errors():
    mesh = Mesh(make_spec(), 2, 2)
    with pytest.raises(SpecError, match=r"core \(5, 0\) is outside the 2x2 mesh"):
        mesh.load((5, 0), "a", tile(4))
    mesh.load((1, 0), "a", tile(4))
    with pytest.raises(SpecError, match=r"core \(2, 0\) is outside the 2x2 mesh"):
        mesh.send((1, 0), "a", "E", color=0, dst_buffer="y")
    with pytest.raises(SpecError, match=r"core \(1, -1\) is outside the 2x2 mesh"):
        mesh.send((1, 0), "a", "N", color=0, dst_buffer="y", multicast=True)
    with pytest.raises(SpecError, match=r"path 'SX': direction 'X' is not one of E, W, S, N"):
        mesh.send((1, 0), "a", "SX", color=0, dst_buffer="y")
    with pytest.raises(SpecError, match=r"a message path has 0 hops"):
        mesh.send((1, 0), "a", "", color=0, dst_buffer="y")
    with pytest.raises(SpecError, match=r"core \(0, 1\) holds no tile 'nope'"):
        mesh.send((0, 1), "nope", "E", color=0, dst_buffer="y")
    with pytest.raises(SpecError, match=r"core \(1, 0\) holds no tile 'nope'"):
        mesh.compute((1, 0), ["a", "nope"], "z", np.add, fmas=1)
    with pytest.raises(SpecError, match=r"core \(0, 0\) holds no tile 'a'"):
        mesh.data((0, 0), "a")
    with pytest.raises(SpecError, match=r"core \(0, 0\) holds no tile 'a' to free"):
        mesh.free((0, 0), "a")
    mesh.load((0, 0), "p", tile(4))
    with pytest.raises(SpecError, match=r"reduction tree: core \(0, 0\) has two parents"):
        mesh.reduce("p", [((0, 0), "E", 0), ((0, 0), "S", 1)], (1, 0), "sum")
    with pytest.raises(SpecError, match=r"mesh width = 0 must be an integer >= 1"):
        Mesh(make_spec(), 0, 2)
    with pytest.raises(SpecError, match=r"mesh 800x2 does not fit the fabric of 'wse3'"):
        Mesh(make_spec(), 800, 2)


def test_a_mesh_runs_once_and_takes_no_work_after_running():
    mesh = Mesh(make_spec(), 2, 1)
    mesh.load((0, 0), "a", tile(4))
    mesh.send((0, 0), "a", "E", color=0, dst_buffer="y")
    mesh.run()
    with pytest.raises(RuntimeError, match="already run"):
        mesh.run()
    with pytest.raises(RuntimeError, match="already run"):
        mesh.send((0, 0), "a", "E", color=0, dst_buffer="y")
    with pytest.raises(RuntimeError, match="already run"):
        mesh.send_all([((0, 0), "a", "E", 0, "y")])
    with pytest.raises(RuntimeError, match="already run"):
        mesh.compute((0, 0), ["a"], "b", double, fmas=1)
    with pytest.raises(RuntimeError, match="already run"):
        mesh.work((0, 0), ["a"], "a", 5)
    with pytest.raises(RuntimeError, match="already run"):
        mesh.relay((0, 0), "a", [Segment("E", 0)], "z")


# ------------------------------------------------------- equivalence of the code paths
SIZES = {"t0": 3, "t1": 8, "t2": 13, "t3": 5}
WIDTH = HEIGHT = 4


def _fill(size: int):
    """A compute body whose output has ``size`` elements and depends on every input."""

    def fn(*inputs):
        total = sum(float(x.sum()) for x in inputs)
        return np.full(size, total % 97, dtype=np.float32)

    return fn


def _random_path(rng, src, hops):
    """A self-avoiding path of up to ``hops`` steps from ``src`` inside the mesh."""
    seen, (x, y), path = {src}, src, ""
    for _ in range(hops):
        options = []
        for step, (dx, dy) in (("E", (1, 0)), ("W", (-1, 0)), ("S", (0, 1)), ("N", (0, -1))):
            nxt = (x + dx, y + dy)
            if 0 <= nxt[0] < WIDTH and 0 <= nxt[1] < HEIGHT and nxt not in seen:
                options.append((step, nxt))
        if not options:
            break
        step, (x, y) = options[rng.integers(len(options))]
        seen.add((x, y))
        path += step
    return path, (x, y)


def _random_program(seed: int):
    """Initial tiles and a list of steps mixing sends, batches of sends, computes and SPMD
    computes; every route has its own color, so routes never conflict."""
    rng = np.random.default_rng(seed)
    cores = [(x, y) for y in range(HEIGHT) for x in range(WIDTH)]
    names = list(SIZES)
    initial = {
        (core, name): rng.integers(0, 10, size).astype(np.float32)
        for core in cores for name, size in SIZES.items()
    }
    routes = []
    for color in range(20):
        src = cores[rng.integers(len(cores))]
        path, dst = _random_path(rng, src, 1 if color < 8 else int(rng.integers(1, 4)))
        routes.append((src, path, color, dst))

    def random_send():
        src, path, color, _ = routes[rng.integers(len(routes))]
        return (src, names[rng.integers(4)], path, color, names[rng.integers(4)])

    def random_compute():
        inputs = [str(n) for n in rng.choice(names, size=int(rng.integers(0, 3)), replace=False)]
        output = names[rng.integers(4)]
        return inputs, output, int(rng.integers(0, 40)), int(rng.integers(0, 3)), \
            int(rng.integers(0, 4)), float(rng.integers(0, 6))

    steps = []
    for _ in range(120):
        kind = rng.choice(["send", "batch", "compute", "spmd"], p=[0.35, 0.2, 0.3, 0.15])
        if kind == "send":
            steps.append(("batch", [random_send()]))
        elif kind == "batch":
            steps.append(("batch", [random_send() for _ in range(int(rng.integers(2, 6)))]))
        elif kind == "spmd":
            steps.append(("compute", [c for c in cores if rng.random() < 0.6], *random_compute()))
        else:
            steps.append(("compute", [cores[rng.integers(len(cores))]], *random_compute()))
    return initial, routes, steps


def _play(initial, routes, steps, *, batched: bool, multicast_one_hop: bool) -> ExecutionResult:
    mesh = Mesh(make_spec(), WIDTH, HEIGHT, trace=True)
    for (core, name), value in initial.items():
        mesh.load(core, name, value)
    for step in steps:
        if step[0] == "batch":
            if batched:
                mesh.send_all(step[1])
                continue
            for src, buffer, path, color, dst_buffer in step[1]:
                if multicast_one_hop and len(path) == 1:
                    mesh.send(src, buffer, path, color, dst_buffer, multicast=True)
                else:
                    mesh.send(src, buffer, path, color, dst_buffer)
        else:
            _, chosen, inputs, output, fmas, loops, ops, overhead = step
            fn = _fill(SIZES[output])
            if batched:
                mesh.compute_all(chosen, inputs, output, fn, fmas, loops, ops, overhead)
            else:
                for core in chosen:
                    mesh.compute(core, inputs, output, fn, fmas, loops, ops, overhead)
    return mesh.run()


def _covers_write_after_read(steps) -> bool:
    """Whether some delivery overwrites a tile that was read since its last write."""
    read_since_write = set()
    for step in steps:
        if step[0] == "batch":
            for src, buffer, path, color, dst_buffer in step[1]:
                read_since_write.add((src, buffer))
                dst = _random_path_end(src, path)
                if (dst, dst_buffer) in read_since_write:
                    return True
                read_since_write.discard((dst, dst_buffer))
        else:
            _, chosen, inputs, output, *_ = step
            for core in chosen:
                read_since_write.update((core, name) for name in inputs)
                read_since_write.discard((core, output))
    return False


def _random_path_end(src, path):
    x, y = src
    for step in path:
        dx, dy = {"E": (1, 0), "W": (-1, 0), "S": (0, 1), "N": (0, -1)}[step]
        x, y = x + dx, y + dy
    return x, y


def assert_same_result(a: ExecutionResult, b: ExecutionResult) -> None:
    assert a.cycles == b.cycles
    assert a.mean_core_cycles == b.mean_core_cycles
    np.testing.assert_array_equal(a.core_cycles, b.core_cycles)  # NaN == NaN here
    np.testing.assert_array_equal(a.busy_cycles, b.busy_cycles)
    np.testing.assert_array_equal(a.idle_cycles, b.idle_cycles)
    np.testing.assert_array_equal(a.link_bytes, b.link_bytes)
    assert a.link_waits == b.link_waits
    np.testing.assert_array_equal(a.peak_memory_bytes, b.peak_memory_bytes)
    np.testing.assert_array_equal(a.routes_per_core, b.routes_per_core)
    assert a.trace == b.trace
    for tiles_a, tiles_b in zip(a.tiles, b.tiles, strict=True):
        assert tiles_a.keys() == tiles_b.keys()
        for name in tiles_a:
            np.testing.assert_array_equal(tiles_a[name], tiles_b[name])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_code_paths_time_a_random_program_identically(seed):
    initial, routes, steps = _random_program(seed)
    assert _covers_write_after_read(steps)
    assert any(len(path) == 1 for _, path, _, _ in routes)
    batched = _play(initial, routes, steps, batched=True, multicast_one_hop=False)
    one_by_one = _play(initial, routes, steps, batched=False, multicast_one_hop=False)
    multicast = _play(initial, routes, steps, batched=False, multicast_one_hop=True)
    assert batched.link_waits > 0  # the program has contention
    assert batched.cycles > 0
    assert_same_result(batched, one_by_one)  # send_all == send, compute_all == compute
    assert_same_result(one_by_one, multicast)  # 1-hop multicast == unicast


def test_one_hop_multicast_equals_unicast_under_contention():
    def run(multicast: bool) -> ExecutionResult:
        mesh = Mesh(make_spec(), 2, 1)
        mesh.load((0, 0), "a", tile(8, 1))
        mesh.load((0, 0), "b", tile(4, 2))
        mesh.load((1, 0), "y", tile(4))
        mesh.compute((1, 0), ["y"], "z", double, fmas=60)  # reads y over [0, 30)
        mesh.send((0, 0), "a", "E", 0, "x", multicast=multicast)
        mesh.send((0, 0), "b", "E", 0, "y", multicast=multicast)  # waits for a, then for z
        mesh.send((1, 0), "y", "W", 1, "back")
        return mesh.run()

    unicast, multicast = run(False), run(True)
    # a: [0, 8) -> x at 11; b: [8, 12) -> arrives 15, stored in y at 30 (after the read);
    # y goes back: 30 + 3 + 4 = 37
    assert at(unicast, (0, 0)) == 37
    assert unicast.link_waits == 1
    assert_same_result(unicast, multicast)


# -------------------------------------------------------------------- rule 8: results
def test_peak_memory_per_core():
    mesh = Mesh(make_spec(), 2, 1)
    mesh.load((0, 0), "a", tile(8))  # 16 B
    mesh.load((0, 0), "b", tile(4))  # 24 B
    mesh.free((0, 0), "b")  # 16 B
    mesh.load((0, 0), "c", tile(2))  # 20 B
    mesh.send((0, 0), "a", "E", 0, "y")  # (1,0): 16 B
    mesh.compute((1, 0), ["y"], "z", lambda y: y[:3], fmas=1)  # (1,0): 22 B
    assert mesh.memory_in_use((0, 0)) == 20
    result = mesh.run()
    np.testing.assert_array_equal(result.peak_memory_bytes, [[24, 22]])


def test_routes_and_link_bytes():
    mesh = Mesh(make_spec(), 3, 2)
    mesh.load((0, 0), "a", tile(8))
    mesh.load((1, 0), "b", tile(8))
    mesh.send((0, 0), "a", "EE", 5, "y")  # colors 5 at (0,0), (1,0), (2,0)
    mesh.send((1, 0), "b", "E", 6, "y2")  # color 6 at (1,0), (2,0)
    mesh.send((0, 0), "a", "EE", 5, "y3")  # the same route again: no new color
    mesh.send((1, 0), "b", "S", 7, "y4")  # color 7 at (1,0), (1,1)
    result = mesh.run()
    np.testing.assert_array_equal(result.routes_per_core, [[1, 3, 2], [0, 1, 0]])
    # wire bytes = busy cycles x 4 B: each message T = 8 cycles = 32 B per link crossed
    expected = np.zeros((2, 3, 4))
    expected[0, 0, 0] = 2 * 32  # (0,0)E: two messages
    expected[0, 1, 0] = 3 * 32  # (1,0)E: three messages
    expected[0, 1, 2] = 32  # (1,0)S
    np.testing.assert_array_equal(result.link_bytes, expected)
    assert result.max_link_bytes == 96


def test_busy_and_idle_cycles():
    mesh = Mesh(make_spec(launch_overhead_cycles=5.0), 2, 1)
    mesh.load((0, 0), "a", tile(8))
    mesh.compute((0, 0), ["a"], "b", double, fmas=76)  # 38 cycles
    mesh.send((0, 0), "b", "E", 0, "y")  # [38, 46) -> (1,0) at 38 + 3 + 8 = 49
    result = mesh.run()
    assert result.cycles == 49 + 5
    np.testing.assert_array_equal(result.busy_cycles, [[38, 0]])
    np.testing.assert_array_equal(result.idle_cycles, [[54 - 38, 54]])


def test_trace_lists_hops_and_pe_work_in_causal_order():
    mesh = Mesh(make_spec(), 3, 1, trace=True)
    mesh.load((0, 0), "a", tile(8))
    mesh.send((0, 0), "a", "EE", 0, "y")
    mesh.compute((2, 0), ["y"], "z", double, fmas=20)
    result = mesh.run()
    # hops: (0,0)E [0, 8), (1,0)E [3, 11) (port 0 = E); delivered at 6 + 8 = 14;
    # compute on core 2: [14, 24)
    assert result.trace == [
        TraceEvent("hop", 0, 0.0, 8.0, 0),
        TraceEvent("hop", 1, 3.0, 11.0, 0),
        TraceEvent("compute z", 2, 14.0, 24.0),
    ]
    starts = [event.start for event in result.trace]
    assert starts == sorted(starts)
    assert all(event.end >= event.start for event in result.trace)

    untraced = Mesh(make_spec(), 2, 1)
    untraced.load((0, 0), "a", tile(8))
    untraced.send((0, 0), "a", "E", 0, "y")
    assert untraced.run().trace is None


def test_mean_core_cycles_counts_only_active_cores():
    mesh = Mesh(make_spec(launch_overhead_cycles=5.0), 3, 3)
    mesh.load((0, 0), "a", tile(8))
    mesh.load((2, 2), "b", tile(8))
    mesh.send((0, 0), "a", "E", 0, "y")  # (0,0): 8, (1,0): 11
    mesh.compute((2, 2), ["b"], "c", double, fmas=100)  # (2,2): 50
    result = mesh.run()
    # active cores (plus launch 5): 13, 16, 55; the six others did nothing
    assert result.mean_core_cycles == (13 + 16 + 55) / 3
    assert result.cycles == 55
    assert np.isnan(result.core_cycles).sum() == 6
    assert not math.isnan(result.core_cycles[2, 2])


def test_an_empty_program_takes_no_time():
    result = Mesh(make_spec(), 2, 2).run()
    assert result.cycles == 0.0
    assert result.mean_core_cycles == 0.0
    assert result.link_waits == 0

