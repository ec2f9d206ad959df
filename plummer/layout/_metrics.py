"""End-to-end figures of a batch of layouts: time, throughput, utilization, memory, fit.

Definitions (DESIGN.md section 3; cycles inside, seconds at the edge):

- ``ttft_s``: the prefill of the batch's prompts through every layer and region (layers x
  the prefill layer, plus the activations' transfers between consecutive regions);
  ``prefill_tokens_per_s = batch x input_tokens / ttft_s``.
- Decode step at context ``S`` (the new token included): layers x the decode layer at ``S``
  plus the transfers. ``decode_tokens_per_s`` (per request) is one over the step at the
  context the request reaches, ``input_tokens + output_tokens``. The sum over the
  ``output_tokens`` steps is exact where the decode layer is affine in the busiest row's
  cached tokens ``c`` (every local op is; an allreduce is where its messages' serialization
  ``ceil(n wire / link)`` is, as on the WSE presets, except the ring, whose chunks round up):
  the layer is evaluated at the first and the last step and summed over the steps' ``c``.
- ``e2e_tokens_per_s = output_tokens / (ttft + all decode steps)`` per request.
- Pipelining: with ``R`` regions a phase holds ``R`` batches in flight, one per region; one
  batch leaves every *stage* (the most layers on one region, plus the worst transfer out of
  it). ``*_throughput_tokens_per_s`` count that; a request's latency does not improve.
- ``utilization``: useful model FLOPs per second (true sizes, no padding, causal attention
  counted once; norms, softmax and activations not counted, nor the embedding and LM head,
  which no plan places) over the peak FLOP/s of the whole fabric, with the pipeline full;
  ``_prefill`` and ``_decode`` per phase (decode at the final context), ``_single`` for one
  batch alone (latency-bound).
- Transfers between regions (:mod:`plummer.kernels.shift`): every core's tile of the
  activations moves to the same core of the next region, a whole grid's width (or height)
  away, as the shift kernel moves tiles: ``launch + hops (2 mo + alpha + T(tile))`` per
  axis moved. It assumes consecutive regions share the grid's shape and orientation
  (every phase's regions do) and that no other traffic shares the links.
- ``replacement_s``: the one-off move from the prefill placement to the decode one, reported
  apart (not in ``ttft`` or ``e2e``): every core's data (its decode weights and prompt KV, or
  its prefill weights, whichever is more) shifted by the two placements' joint extent, as
  the shift kernel moves it: an upper bound of any core's path.
- Memory per core (bytes), with the pipeline full (``R`` batches in flight, each region
  holding its layers' KV of every one of them): prefill, the weights of the most layers on
  a region, the prompts' K and V of those layers for ``R`` batches (kept for the decode;
  ``prompt_kv_bytes``), and the largest working set of an op; decode, the weights, the KV cache of ``R`` batches
  of ``B`` requests at the final context in the busiest row (``kv_cache_bytes``), and the
  largest working set. The layer being computed has its K/V in both the cache and its ops'
  operands: an upper bound by one layer's K/V of one batch. ``max_context_shift`` /
  ``_concat``: the longest context whose cache fits beside the weights and the working set,
  which grows with the context too (score vectors; each op's is affine in the busiest
  row's cached tokens, measured one row past the final context); 0 where not even the
  prompt fits.
- Energy per output token (``power_watts`` of the spec, when given): the power over the
  end-to-end throughput with the pipeline full.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from plummer.hardware import HardwareSpec
from plummer.kernels import get_kernel
from plummer.layout._arrays import BAD_GROUP_NUM, BAD_HEAD_GROUPS, LayoutArrays, PhaseArrays
from plummer.layout._evaluate import OpCost, evaluate_ops, layer_cycles
from plummer.layout._ops import Op
from plummer.layout._plan import (
    ceil_div,
    decode_plan,
    kv_bytes_per_token,
    prefill_plan,
    prompt_kv_bytes,
)
from plummer.model import ModelSpec

#: The figures a study may optimise or bound, and a scenario observe (keys of
#: :attr:`Evaluation.metrics`; times in seconds, memory in bytes).
METRICS = (
    "utilization", "utilization_prefill", "utilization_decode", "utilization_single",
    "ttft_s", "prefill_tokens_per_s", "prefill_throughput_tokens_per_s",
    "decode_tokens_per_s", "decode_s_per_token", "decode_throughput_tokens_per_s",
    "e2e_tokens_per_s", "e2e_throughput_tokens_per_s", "energy_per_token_j", "replacement_s",
    "memory_per_core_bytes", "memory_prefill_bytes", "memory_decode_bytes",
    "memory_headroom_bytes", "kv_cache_bytes", "prompt_kv_bytes", "routes_per_core", "max_context_shift",
    "max_context_concat",
)

#: Why a layout cannot run (bits of ``reasons``), and what each bit means.
REASONS = {
    1: "prefill: memory per core exceeds the budget (weights, the prompts' KV of every batch in flight, buffers)",
    2: "decode: memory per core exceeds the budget (weights, KV cache of every batch in flight at the "
       "final context, buffers)",
    4: "prefill: a kernel needs more routes per core than the budget",
    8: "decode: a kernel needs more routes per core than the budget",
    16: "prefill: the regions do not fit the fabric (or outnumber the layers)",
    32: "decode: the regions do not fit the fabric (or outnumber the layers)",
    64: "prefill: the head grouping does not divide the heads or leaves < 2 columns per group",
    128: "decode: the head grouping does not divide the heads or leaves < 2 columns per group",
    256: "prefill: a K-tree group count does not divide its line of cores",
    512: "decode: a K-tree group count does not divide its line of cores",
}


@dataclass(frozen=True)
class PhaseCost:
    """A phase's plan and its figures per layout (cycles, bytes)."""

    ops: list[Op]
    costs: dict[str, OpCost]
    layer_cycles: np.ndarray
    weights_bytes: np.ndarray
    working_bytes: np.ndarray
    routes: np.ndarray
    op_working_bytes: dict[str, np.ndarray]


@dataclass(frozen=True)
class Evaluation:
    """Every figure of a batch of layouts (arrays of the batch's shape), and the phases'
    plans and op costs for breakdowns. Times in seconds unless named ``*_cycles``."""

    metrics: dict[str, np.ndarray]
    prefill: PhaseCost
    decode: PhaseCost
    decode_first: PhaseCost

    @property
    def feasible(self) -> np.ndarray:
        """Layouts that can run (no bit of ``reasons`` set)."""
        return self.metrics["reasons"] == 0


def _phase(spec: HardwareSpec, ops: list[Op], like: PhaseCost | None = None) -> PhaseCost:
    """Evaluate a phase's plan: its layer, resident weights, largest working set and routes
    per core (arrays broadcast over what the ops vary with). With ``like`` (the same plan at
    another context), only the ops that depend on the context are evaluated again."""
    known = None if like is None else {op.name: like.costs[op.name] for op in ops if not op.context}
    costs = evaluate_ops(spec, ops, known)
    layer = layer_cycles(ops, costs, spec.launch_overhead_cycles)
    weights = sum(np.asarray(op.repeats) * costs[op.name].resident_bytes for op in ops)
    op_working = {op.name: np.where(np.asarray(op.repeats) > 0, costs[op.name].memory_bytes
                                    - costs[op.name].resident_bytes + op.live_bytes, 0.0) for op in ops}
    working = reduce(np.maximum, op_working.values())
    routes = reduce(np.maximum, (np.where(np.asarray(op.repeats) > 0, costs[op.name].routes, 0.0)
                                 for op in ops))
    return PhaseCost(ops, costs, layer, weights, working, routes, op_working)


def _longest_context_rows(budget: float, fixed: np.ndarray, kv_row_token: np.ndarray, at: PhaseCost,
                          past: PhaseCost, rows: np.ndarray) -> np.ndarray:
    """Cached tokens the busiest row can hold: the most ``c`` with ``fixed + kv_row_token c +
    max_op (a_op + b_op c) <= budget`` (bytes), each op's working set affine in ``c`` as
    measured at ``rows`` (``at``) and ``rows + 1`` (``past``); 0 where none fits."""
    most = None
    for name, here in at.op_working_bytes.items():
        slope = past.op_working_bytes[name] - here
        room = budget - fixed - (here - slope * rows)
        c = np.floor(room / np.maximum(kv_row_token + slope, 1e-300))
        most = c if most is None else np.minimum(most, c)
    return np.maximum(most, 0)


def _transfer(spec: HardwareSpec, ph: PhaseArrays, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cycles of all the transfers of a phase and of its worst boundary (module docstring)."""
    shift = get_kernel("shift", "shift")
    one = shift.cost(spec, p=2, q=2, m=2 * np.maximum(tile, 1), n=2, distance=1, axis="x").cycles
    launch = spec.launch_overhead_cycles
    step = one - launch
    return (ph.tr_shifts * launch + ph.tr_hops * step,
            ph.tr_max_shifts * launch + ph.tr_max_hops * step)


def _row_tokens(arrays: LayoutArrays, context: np.ndarray) -> np.ndarray:
    """Cached tokens in the busiest row of cores at ``context`` (shift: spread evenly;
    concatenation: the prompt spread by prefill, every new token in the last row)."""
    q = arrays.decode.q
    prompt = arrays.input_tokens
    spread = ceil_div(context, q)
    return np.where(arrays.kv_cache == 0, spread, ceil_div(prompt, q) + (context - prompt))


def _row_token_sum(arrays: LayoutArrays) -> np.ndarray:
    """Sum over the decode steps of :func:`_row_tokens` (exact, O(1))."""
    q, n_in, n_out = arrays.decode.q, arrays.input_tokens, arrays.output_tokens

    def upto(n: np.ndarray) -> np.ndarray:  # sum of ceil(s / q) for s = 1..n
        k, r = n // q, n % q
        return q * k * (k + 1) // 2 + r * (k + 1)

    shift = upto(n_in + n_out) - upto(n_in)
    concat = n_out * ceil_div(n_in, q) + n_out * (n_out + 1) // 2
    return np.where(arrays.kv_cache == 0, shift, concat)


def evaluate(spec: HardwareSpec, model: ModelSpec, arrays: LayoutArrays) -> Evaluation:
    """The closed-form figures of every layout of ``arrays`` (module docstring)."""
    shape = arrays.shape
    clock = spec.clock_ghz * 1e9
    pf, dc = arrays.prefill, arrays.decode
    b, n_in, n_out = arrays.batch, arrays.input_tokens, arrays.output_tokens
    layers = model.layers
    shift_kv = arrays.kv_cache == 0

    prefill = _phase(spec, prefill_plan(model, spec, pf, b, n_in))
    rows_pf = b * (-(-n_in // pf.q) * pf.q) // pf.q
    tr_pf, tr_pf_max = _transfer(spec, pf, rows_pf * ceil_div(model.hidden, pf.p))
    ttft = layers * prefill.layer_cycles + tr_pf
    stage_pf = pf.max_layers * prefill.layer_cycles + tr_pf_max

    first, last = n_in + 1, n_in + n_out
    c_first, c_last = _row_tokens(arrays, first), _row_tokens(arrays, last)
    decode = _phase(spec, decode_plan(model, spec, dc, b, last, c_last, shift_kv))
    start = _phase(spec, decode_plan(model, spec, dc, b, first, c_first, shift_kv), like=decode)
    slope = np.where(c_last != c_first,
                     (decode.layer_cycles - start.layer_cycles) / np.maximum(c_last - c_first, 1), 0.0)
    layer_sum = n_out * (start.layer_cycles - slope * c_first) + slope * _row_token_sum(arrays)
    tr_dc, tr_dc_max = _transfer(spec, dc, b * ceil_div(model.hidden, dc.q))
    step_last = layers * decode.layer_cycles + tr_dc
    decode_total = layers * layer_sum + n_out * tr_dc
    stage_dc_last = dc.max_layers * decode.layer_cycles + tr_dc_max
    stage_dc_total = dc.max_layers * layer_sum + n_out * tr_dc_max

    flops_pf = layers * sum(np.asarray(op.flops) for op in prefill.ops)
    flops_dc_last = layers * sum(np.asarray(op.flops) for op in decode.ops)
    flops_dc_first = layers * sum(np.asarray(op.flops) for op in start.ops)
    flops_dc = n_out * (flops_dc_first + flops_dc_last) / 2  # linear in the context: exact
    peak = 2.0 * spec.fma_per_cycle * spec.fabric_width * spec.fabric_height * clock

    # memory per core and the KV capacity, with the pipeline full (a batch per region)
    budget = spec.memory_bytes
    kv_pf = pf.regions * pf.max_layers * prompt_kv_bytes(model, spec, pf, b, n_in)
    mem_pf = pf.max_layers * prefill.weights_bytes + kv_pf + prefill.working_bytes
    kv_row_token = dc.regions * dc.max_layers * b * kv_bytes_per_token(model, spec, dc)
    weights_dc = dc.max_layers * decode.weights_bytes
    kv_dc = kv_row_token * c_last
    mem_dc = weights_dc + kv_dc + decode.working_bytes
    probe = _phase(spec, decode_plan(model, spec, dc, b, last + dc.q, c_last + 1, shift_kv), like=decode)
    per_row = _longest_context_rows(budget, weights_dc, kv_row_token, decode, probe, c_last)
    max_shift = dc.q * per_row
    prompt_row = ceil_div(n_in, dc.q)
    max_concat = np.where(per_row >= prompt_row, n_in + per_row - prompt_row, 0)

    reasons = np.zeros(shape, dtype=np.int64)
    for bit, bad in ((1, mem_pf > budget), (2, mem_dc > budget),
                     (4, prefill.routes > spec.route_budget), (8, decode.routes > spec.route_budget),
                     (16, ~pf.fits_fabric), (32, ~dc.fits_fabric),
                     (64, (pf.invalid & BAD_HEAD_GROUPS) > 0), (128, (dc.invalid & BAD_HEAD_GROUPS) > 0),
                     (256, (pf.invalid & BAD_GROUP_NUM) > 0), (512, (dc.invalid & BAD_GROUP_NUM) > 0)):
        reasons |= np.where(bad, bit, 0)

    # the one-off re-placement between the phases
    move = np.maximum(pf.max_layers * prefill.weights_bytes + kv_pf, weights_dc + kv_row_token * prompt_row)
    hops = np.maximum(pf.extent_x, dc.extent_x) + np.maximum(pf.extent_y, dc.extent_y)
    shift = get_kernel("shift", "shift")
    elements = np.maximum(np.ceil(move / spec.dtype_bytes), 1).astype(np.int64)
    replace = shift.cost(spec, p=2, q=2, m=2 * elements, n=2, distance=np.maximum(hops, 1), axis="x").cycles

    seconds = 1.0 / clock
    wall_pipelined = (stage_pf + stage_dc_total) * seconds
    metrics: dict[str, Any] = {
        "ttft_s": ttft * seconds,
        "prefill_tokens_per_s": b * n_in / (ttft * seconds),
        "prefill_throughput_tokens_per_s": b * n_in / (stage_pf * seconds),
        "decode_s_per_token": step_last * seconds,
        "decode_tokens_per_s": 1.0 / (step_last * seconds),
        "decode_throughput_tokens_per_s": b / (stage_dc_last * seconds),
        "e2e_tokens_per_s": n_out / ((ttft + decode_total) * seconds),
        "e2e_throughput_tokens_per_s": b * n_out / wall_pipelined,
        "utilization": (flops_pf + flops_dc) / wall_pipelined / peak,
        "utilization_prefill": flops_pf / (stage_pf * seconds) / peak,
        "utilization_decode": flops_dc_last / (stage_dc_last * seconds) / peak,
        "utilization_single": (flops_pf + flops_dc) / ((ttft + decode_total) * seconds) / peak,
        "energy_per_token_j": (spec.power_watts * wall_pipelined / (b * n_out)
                               if spec.power_watts else np.full(shape, np.nan)),
        "replacement_s": replace * seconds,
        "memory_per_core_bytes": np.maximum(mem_pf, mem_dc),
        "memory_headroom_bytes": budget - np.maximum(mem_pf, mem_dc),
        "memory_prefill_bytes": mem_pf,
        "memory_decode_bytes": mem_dc,
        "kv_cache_bytes": kv_dc,
        "prompt_kv_bytes": kv_pf,
        "routes_per_core": np.maximum(prefill.routes, decode.routes),
        "max_context_shift": max_shift,
        "max_context_concat": max_concat,
        "prefill_layer_cycles": prefill.layer_cycles,
        "decode_layer_cycles": decode.layer_cycles,
        "ttft_cycles": ttft,
        "decode_cycles_per_token": step_last,
        "decode_cycles_total": decode_total,
        "flops_prefill": flops_pf,
        "flops_decode": flops_dc,
        "reasons": reasons,
    }
    metrics = {k: np.broadcast_to(np.asarray(v, dtype=float if k != "reasons" else np.int64), shape)
               for k, v in metrics.items()}
    return Evaluation(metrics, prefill, decode, start)


def reason_texts(code: int) -> list[str]:
    """The reasons of a ``reasons`` bitmask, as sentences."""
    return [text for bit, text in REASONS.items() if code & bit]
