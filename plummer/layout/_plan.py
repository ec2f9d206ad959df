"""The prefill and decode plans of one transformer layer: explicit lists of operations.

Notation: ``P`` x ``Q`` the region's grid (``P`` columns along x, ``Q`` rows along y),
``B`` batch, ``L`` input tokens, ``E`` hidden, ``H`` query heads, ``H_kv`` KV heads, ``d``
head dim, ``F`` FFN width. Sizes are elements; every per-core figure is on padded tiles.

Head groups (both phases). The ``P`` columns are cut into ``G`` groups of ``P_g = floor(P /
G)`` columns (``G`` divides ``H``, and divides or is a multiple of ``H_kv``); group ``g``
holds the ``eta = H / G`` query heads ``[g eta, (g + 1) eta)`` and the ``kappa = max(1,
H_kv / G)`` KV heads they use. The Q/K/V weight columns are permuted offline so that each
core of a group holds the same ``d / P_g`` slice of every head of its group: the
projection outputs then *are* the operands attention needs, with no data movement. When
``G > H_kv`` (fewer query heads per group than share a KV head) each KV head is computed
and stored in ``rho = G / H_kv`` groups: K/V projection FLOPs, K/V memory and the KV cache
grow by ``rho`` (useful FLOPs do not). Columns beyond ``G P_g`` idle in attention. The
default, ``G = H_kv``, stores every KV head once; its query heads (``H / H_kv`` of them)
are stacked along M so one GEMM-T (prefill) or one pass over the cache (decode) serves them.

Prefill (activations ``(B L)_y E_x``: each row of cores holds ``L / Q`` tokens of every
sequence, each column ``E / P`` features):

- RMSNorm: local sum of squares, an allreduce along x of one value per token, local scale;
- Q, K, V projections (GEMM ``gemm`` algorithm, weights pre-skewed at load, so only the
  activation is aligned on the device, as in the measured MeshGEMM); RoPE (local,
  interleaved pairs, so a pair never straddles two cores);
- per group, per sequence and per KV head of the group (in sequence; the groups in
  parallel on their columns): Q.K^T by GEMM-T on the group's ``P_g`` x ``Q`` mesh with
  ``m = (H / max(G, H_kv)) L`` stacked query rows, ``k = d``, ``n = L`` keys (the causal
  mask is applied after: the full product is computed, half of it is useful); causal
  softmax (local max, allreduce of the row maxima along x within the group, local exp and
  sums, allreduce of the sums, local scale); P.V by the ``gemm`` algorithm on the group's
  mesh (``m`` as above, ``k = L``, ``n = d``). V is an activation here, where the GEMMs
  expect B pre-skewed (the weights are, at load): MeshGEMM and Cannon first skew it along the
  columns on the device, costed as the shift kernel's ``floor(Q / 2)`` one-row
  store-and-forward steps (Cannon: ``Q - 1``) of a core's V tile. That is an approximation
  of their ring alignment, which moves ``floor(Q / 2)`` steps over edges of up to 2 hops: it
  counts one ``alpha`` per step, not two (SUMMA-relay broadcasts and needs no skew);
- O projection, residual add; RMSNorm; up and gate projections, SiLU(gate) * up (local),
  down projection, residual add.

Decode (one token per request; the vector ``E_y`` replicated along x): GEMVs as a local
product then an allreduce; the weight layouts alternate, so the reduce axis alternates and
no transpose is needed: Q/K/V (fused, ``E`` over y, outputs over x, allreduce along y),
attention (the cache has the sequence over y, the head slices over x: local scores, an
allreduce along x within the group, softmax with scalar allreduces along y, local P.V, an
allreduce along y), O (stored transposed: input over x, allreduce along x back to
``E_y``), up+gate (along y), down (transposed, along x). Ten allreduces per layer: six
vector (QKV, scores, P.V, O, up+gate, down) and four scalar (two RMSNorms, softmax max
and sum). With the shift KV scheme each step also moves one token's K/V one row on
(:data:`~plummer.layout._layout.KV_SCHEMES`), an upper bound of the amortised cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plummer.hardware import HardwareSpec
from plummer.layout._arrays import PhaseArrays, pad
from plummer.layout._layout import GEMM_ALGOS
from plummer.layout._ops import Op, dot_work, local_work
from plummer.model import ModelSpec

#: Codes of the GEMM algorithms the plans treat apart (see GEMM_ALGOS).
_CANNON, _SUMMA_RELAY = GEMM_ALGOS.index("cannon"), GEMM_ALGOS.index("summa-relay")


def ceil_div(a: Any, b: Any) -> Any:
    """``ceil(a / b)`` for int arrays."""
    return -(-np.asarray(a) // b)


def groups(model: ModelSpec, ph: PhaseArrays) -> dict[str, np.ndarray]:
    """Head-group figures of a phase (module docstring): columns per group ``pg``, query heads
    ``eta`` and KV heads ``kappa`` per group, KV replication ``rho``, query heads per GEMM-T
    ``nq``."""
    g = ph.head_groups
    kappa = np.maximum(1, model.kv_heads // g)
    return {"pg": ph.p // g, "eta": model.heads // g, "kappa": kappa,
            "rho": np.maximum(1, g // model.kv_heads), "nq": model.heads // np.maximum(g, model.kv_heads)}


def prefill_plan(model: ModelSpec, spec: HardwareSpec, ph: PhaseArrays, batch: np.ndarray,
                 length: np.ndarray) -> list[Op]:
    """The ops of one prefill layer (module docstring) for every layout of the batch."""
    p, q = ph.p, ph.q
    e, h, hkv, d, ffn = model.hidden, model.heads, model.kv_heads, model.head_dim, model.ffn
    gr = groups(model, ph)
    bias = 1 if model.qkv_bias else 0
    lp = pad(length, q)  # every sequence split evenly over the rows
    tp = batch * lp
    tokens = batch * length  # true, for useful FLOPs
    rows = tp // q
    cols = ceil_div(e, p)
    db = spec.dtype_bytes
    resid = rows * cols * db  # the residual stream, live throughout
    seqs = batch * gr["kappa"]  # attention products per group, in sequence
    m_att = gr["nq"] * lp
    causal = h * batch * d * length * (length + 1)  # 2 FLOPs x d x L(L+1)/2 x heads x batch
    gemm_codes = ph.gemm
    ar = {"codes": ph.allreduce, "axis": "x"}
    norm = [
        Op("norm.sumsq", "local", local_work("sumsq", rows, cols), 1, live_bytes=resid),
        Op("norm.allreduce", "allreduce",
           {"p": p, "q": q, "n": rows, "k_tree": ph.k_tree, "group_num": ph.group_num_x}, 1,
           live_bytes=resid, **ar),
        Op("norm.scale", "local", local_work("scale", rows, cols), 1, live_bytes=resid),
    ]
    qkv_cols = ceil_div((h + gr["rho"] * hkv) * d, p)
    v_bytes = prompt_kv_bytes(model, spec, ph, batch, length) // 2
    att_group = {"p": gr["pg"], "q": q}
    s_rows = m_att // q
    s_cols = ceil_div(q, gr["pg"]) * (lp // q)  # the score blocks a core owns, at most
    s_ar = {"p": gr["pg"], "q": q, "n": s_rows, "k_tree": ph.k_tree, "group_num": 0}
    v_tile = (lp // q) * ceil_div(d, gr["pg"])  # a core's V tile in P.V (keys x head slice)
    live_att = resid + v_bytes
    return [
        *[_renamed(op, "norm1") for op in norm],
        Op("q_proj", "gemm", {"p": p, "q": q, "m": tp, "k": e, "n": h * d}, 1,
           flops=2.0 * tokens * (e + bias) * h * d, codes=gemm_codes, weights=True, live_bytes=resid),
        Op("kv_proj", "gemm", {"p": p, "q": q, "m": tp, "k": e, "n": gr["rho"] * hkv * d}, 2,
           flops=4.0 * tokens * (e + bias) * hkv * d, codes=gemm_codes, weights=True, live_bytes=resid),
        Op("qkv.bias", "local", local_work("add", rows, ceil_div((h + 2 * gr["rho"] * hkv) * d, p)), bias,
           live_bytes=resid + v_bytes),
        Op("rope", "local", local_work("rope", rows, qkv_cols), 1, live_bytes=resid + v_bytes),
        Op("scores", "gemm-t", {**att_group, "m": m_att, "k": d, "n": lp}, seqs,
           flops=causal, live_bytes=live_att),
        Op("softmax.max", "local", local_work("max", s_rows, s_cols), seqs, live_bytes=live_att),
        Op("softmax.allreduce_max", "allreduce", s_ar, seqs, live_bytes=live_att, **ar),
        Op("softmax.exp_sum", "local", local_work("exp_sum", s_rows, s_cols), seqs, live_bytes=live_att),
        Op("softmax.allreduce_sum", "allreduce", s_ar, seqs, live_bytes=live_att, **ar),
        Op("softmax.divide", "local", local_work("divide", s_rows, s_cols), seqs, live_bytes=live_att),
        Op("pv.skew_v", "shift", {"p": gr["pg"], "q": q, "m": gr["pg"] * v_tile, "n": q,
                                  "distance": np.where(gemm_codes == _CANNON, q - 1, q // 2)},
           seqs * (gemm_codes != _SUMMA_RELAY), axis="y", live_bytes=live_att),
        Op("pv", "gemm", {**att_group, "m": m_att, "k": lp, "n": d}, seqs,
           flops=causal, codes=gemm_codes, live_bytes=resid),
        Op("o_proj", "gemm", {"p": p, "q": q, "m": tp, "k": h * d, "n": e}, 1,
           flops=2.0 * tokens * h * d * e, codes=gemm_codes, weights=True, live_bytes=resid),
        Op("residual1", "local", local_work("add", rows, cols), 1, live_bytes=resid),
        *[_renamed(op, "norm2") for op in norm],
        Op("up_gate", "gemm", {"p": p, "q": q, "m": tp, "k": e, "n": ffn}, 2,
           flops=4.0 * tokens * e * ffn, codes=gemm_codes, weights=True, live_bytes=resid),
        Op("silu_mul", "local", local_work("silu_mul", rows, ceil_div(ffn, p)), 1, live_bytes=resid),
        Op("down", "gemm", {"p": p, "q": q, "m": tp, "k": ffn, "n": e}, 1,
           flops=2.0 * tokens * ffn * e, codes=gemm_codes, weights=True, live_bytes=resid),
        Op("residual2", "local", local_work("add", rows, cols), 1, live_bytes=resid),
    ]


def decode_plan(model: ModelSpec, spec: HardwareSpec, ph: PhaseArrays, batch: np.ndarray,
                context: np.ndarray, row_tokens: np.ndarray, shift_kv: np.ndarray) -> list[Op]:
    """The ops of one decode layer for one token per request (module docstring) at
    ``context`` tokens (the new one included), with ``row_tokens`` cached tokens in the
    busiest row of cores; ``shift_kv`` where the shift KV scheme runs."""
    p, q = ph.p, ph.q
    e, h, hkv, d, ffn = model.hidden, model.heads, model.kv_heads, model.head_dim, model.ffn
    gr = groups(model, ph)
    bias = 1 if model.qkv_bias else 0
    db = spec.dtype_bytes
    eta, kappa = gr["eta"], gr["kappa"]
    hw = ceil_div(d, gr["pg"])  # a head's slice per core
    eq, fx = ceil_div(e, q), ceil_div(ffn, p)
    b = batch
    resid = b * eq * db
    y = {"p": p, "q": q, "k_tree": ph.k_tree, "group_num": ph.group_num_y}
    x = {"p": p, "q": q, "k_tree": ph.k_tree, "group_num": ph.group_num_x}
    ar_y = {"codes": ph.allreduce, "axis": "y", "live_bytes": resid}
    ar_x = {"codes": ph.allreduce, "axis": "x", "live_bytes": resid}
    attn_flops = 2.0 * b * h * d * context  # scores, and again for P.V
    c = row_tokens
    norm = [
        Op("norm.sumsq", "local", local_work("sumsq", b, eq), 1, live_bytes=resid),
        Op("norm.allreduce", "allreduce", {**y, "n": b}, 1, **ar_y),
        Op("norm.scale", "local", local_work("scale", b, eq), 1, live_bytes=resid),
    ]
    qkv_n = (eta + 2 * kappa) * hw
    softmax_ar = {**y, "n": b * eta}  # the max and the sum: one shape
    return [
        *[_renamed(op, "norm1") for op in norm],
        Op("qkv.local", "local", dot_work(b * eq, qkv_n), 1,
           flops=2.0 * b * (e + bias) * (h + 2 * hkv) * d, live_bytes=resid,
           extra={"resident": eq * qkv_n * db}),
        Op("qkv.allreduce", "allreduce", {**y, "n": b * qkv_n}, 1, **ar_y),
        Op("qkv.bias", "local", local_work("add", b, qkv_n), bias, live_bytes=resid),
        Op("rope", "local", local_work("rope", b, (eta + kappa) * hw), 1, live_bytes=resid),
        Op("kv.store", "local", local_work("store", b, 2 * kappa * hw), 1, live_bytes=resid),
        Op("kv.shift", "shift", {"p": p, "q": q, "m": p * b * 2 * kappa * hw, "n": q,
                                 "distance": 1}, np.asarray(shift_kv, dtype=np.int64),
           axis="y", live_bytes=resid),
        Op("scores.local", "local", dot_work(b * c * eta, hw), 1, flops=attn_flops,
           live_bytes=resid, context=True),
        Op("scores.allreduce", "allreduce",
           {"p": gr["pg"], "q": q, "n": b * eta * c, "k_tree": ph.k_tree, "group_num": 0}, 1,
           context=True, **ar_x),
        Op("softmax.max", "local", local_work("max", b * eta, c), 1, live_bytes=resid, context=True),
        Op("softmax.allreduce_max", "allreduce", softmax_ar, 1, **ar_y),
        Op("softmax.exp_sum", "local", local_work("exp_sum", b * eta, c), 1, live_bytes=resid,
           context=True),
        Op("softmax.allreduce_sum", "allreduce", softmax_ar, 1, **ar_y),
        Op("softmax.divide", "local", local_work("divide", b * eta, c), 1, live_bytes=resid,
           context=True),
        Op("pv.local", "local", dot_work(b * c * eta, hw), 1, flops=attn_flops,
           live_bytes=resid, context=True),
        Op("pv.allreduce", "allreduce", {**y, "n": b * eta * hw}, 1, **ar_y),
        Op("o.local", "local", dot_work(b * eta * hw, eq), 1, flops=2.0 * b * h * d * e,
           live_bytes=resid, extra={"resident": eta * hw * eq * db}),
        Op("o.allreduce", "allreduce", {**x, "n": b * eq}, 1, **ar_x),
        Op("residual1", "local", local_work("add", b, eq), 1, live_bytes=resid),
        *[_renamed(op, "norm2") for op in norm],
        Op("up_gate.local", "local", dot_work(b * eq, 2 * fx), 1, flops=4.0 * b * e * ffn,
           live_bytes=resid, extra={"resident": eq * 2 * fx * db}),
        Op("up_gate.allreduce", "allreduce", {**y, "n": b * 2 * fx}, 1, **ar_y),
        Op("silu_mul", "local", local_work("silu_mul", b, fx), 1, live_bytes=resid),
        Op("down.local", "local", dot_work(b * fx, eq), 1, flops=2.0 * b * ffn * e,
           live_bytes=resid, extra={"resident": fx * eq * db}),
        Op("down.allreduce", "allreduce", {**x, "n": b * eq}, 1, **ar_x),
        Op("residual2", "local", local_work("add", b, eq), 1, live_bytes=resid),
    ]


def kv_bytes_per_token(model: ModelSpec, spec: HardwareSpec, ph: PhaseArrays) -> np.ndarray:
    """Decode: KV-cache bytes one cached token of one request takes in one core of its row,
    per layer: K and V slices of the group's KV heads (``2 kappa ceil(d / P_g)`` elements)."""
    gr = groups(model, ph)
    return 2 * gr["kappa"] * ceil_div(model.head_dim, gr["pg"]) * spec.dtype_bytes


def prompt_kv_bytes(model: ModelSpec, spec: HardwareSpec, ph: PhaseArrays, batch: np.ndarray,
                    length: np.ndarray) -> np.ndarray:
    """Prefill: bytes per core of one layer's K and V of the batch's prompts, as the K/V
    projection leaves them (``(B L)_y`` rows, ``rho H_kv d`` columns over the ``P`` columns)."""
    rows = batch * pad(length, ph.q) // ph.q
    return 2 * rows * ceil_div(groups(model, ph)["rho"] * model.kv_heads * model.head_dim, ph.p) * spec.dtype_bytes


def _renamed(op: Op, prefix: str) -> Op:
    """``op`` named ``prefix.<its name after 'norm.'>``."""
    from dataclasses import replace

    return replace(op, name=prefix + op.name[len("norm"):])
