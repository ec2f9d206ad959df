"""A numpy reference transformer (fp32): what the executed plans must compute.

Decoder layers of the LLaMA family: RMSNorm, Q/K/V projections (optional biases), RoPE on
interleaved pairs (pair ``(2i, 2i + 1)`` of each head rotated by ``pos * base^(-2i / d)``; a
checkpoint's rotate-half convention is the same model with its Q/K weight columns permuted),
grouped-query attention with a causal mask (query head ``h`` reads KV head
``h // (heads / kv_heads)``), output projection, residual, RMSNorm, SwiGLU FFN
(``down(silu(gate(x)) * up(x))``), residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plummer.model import ModelSpec

EPS = 1e-5
ROPE_BASE = 10000.0


@dataclass(frozen=True)
class LayerWeights:
    """One layer's weights (fp32): ``wq`` E x H d, ``wk``/``wv`` E x H_kv d, ``wo`` H d x E,
    ``w_up``/``w_gate`` E x F, ``w_down`` F x E, the two RMSNorm vectors, QKV biases (zeros
    when the model has none)."""

    wq: np.ndarray
    wk: np.ndarray
    wv: np.ndarray
    wo: np.ndarray
    w_up: np.ndarray
    w_gate: np.ndarray
    w_down: np.ndarray
    norm1: np.ndarray
    norm2: np.ndarray
    bq: np.ndarray
    bk: np.ndarray
    bv: np.ndarray


def random_weights(model: ModelSpec, seed: int = 0) -> list[LayerWeights]:
    """Random weights of every layer, scaled so activations stay of order one."""
    rng = np.random.default_rng(seed)
    e, f, q, kv = model.hidden, model.ffn, model.q_width, model.kv_width

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32)

    def bias(n: int) -> np.ndarray:
        return (0.1 * rng.standard_normal(n)).astype(np.float32) if model.qkv_bias else np.zeros(n, np.float32)

    return [LayerWeights(mat(e, q), mat(e, kv), mat(e, kv), mat(q, e), mat(e, f), mat(e, f), mat(f, e),
                         (1 + 0.1 * rng.standard_normal(e)).astype(np.float32),
                         (1 + 0.1 * rng.standard_normal(e)).astype(np.float32), bias(q), bias(kv), bias(kv))
            for _ in range(model.layers)]


def rmsnorm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``x / sqrt(mean(x^2) + eps) * weight`` along the last axis."""
    return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * weight).astype(np.float32)


def rope_angles(positions: np.ndarray, head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of every interleaved pair at ``positions``: ``(len, head_dim / 2)``."""
    freq = ROPE_BASE ** (-np.arange(0, head_dim, 2) / head_dim)
    angle = np.outer(positions, freq)
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def rope(x: np.ndarray, positions: np.ndarray, head_dim: int) -> np.ndarray:
    """RoPE on interleaved pairs of every head of ``x`` (tokens x heads * head_dim)."""
    cos, sin = rope_angles(positions, head_dim)
    heads = x.shape[-1] // head_dim
    pairs = x.reshape(x.shape[0], heads, head_dim // 2, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    c, s = cos[:, None, :], sin[:, None, :]
    out = np.stack([a * c - b * s, a * s + b * c], axis=-1)
    return out.reshape(x.shape).astype(np.float32)


def silu(x: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x)``."""
    return (x / (1.0 + np.exp(-x))).astype(np.float32)


def attention(model: ModelSpec, q: np.ndarray, k: np.ndarray, v: np.ndarray,
              query_positions: np.ndarray) -> np.ndarray:
    """Causal GQA of one sequence: ``q`` (queries x H d), ``k``, ``v`` (keys x H_kv d), key
    ``t`` visible to the query at position ``pos`` when ``t <= pos``."""
    d, share = model.head_dim, model.heads // model.kv_heads
    out = np.zeros_like(q)
    visible = np.arange(k.shape[0])[None, :] <= query_positions[:, None]
    for h in range(model.heads):
        j = h // share
        scores = q[:, h * d:(h + 1) * d] @ k[:, j * d:(j + 1) * d].T / np.sqrt(d)
        scores = np.where(visible, scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs = scores / scores.sum(axis=1, keepdims=True)
        out[:, h * d:(h + 1) * d] = probs @ v[:, j * d:(j + 1) * d]
    return out.astype(np.float32)


def layer(model: ModelSpec, w: LayerWeights, x: np.ndarray, positions: np.ndarray,
          cache: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """One layer on one sequence's tokens ``x`` (tokens x E) at ``positions``, after the
    cached keys and values (``cache``); returns the output and the cache with these tokens."""
    h = rmsnorm(x, w.norm1)
    q = rope(h @ w.wq + w.bq, positions, model.head_dim)
    k = rope(h @ w.wk + w.bk, positions, model.head_dim)
    v = (h @ w.wv + w.bv).astype(np.float32)
    if cache is not None:
        k, v = np.concatenate([cache[0], k]), np.concatenate([cache[1], v])
    x = x + attention(model, q, k, v, positions) @ w.wo
    h = rmsnorm(x, w.norm2)
    x = x + (silu(h @ w.w_gate) * (h @ w.w_up)) @ w.w_down
    return x.astype(np.float32), (k, v)


def forward(model: ModelSpec, weights: list[LayerWeights], x: np.ndarray, start: int = 0,
            caches: list[tuple[np.ndarray, np.ndarray]] | None = None
            ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Every layer on one sequence's tokens ``x`` starting at position ``start``; returns the
    hidden states and every layer's KV cache."""
    positions = np.arange(start, start + x.shape[0])
    out = []
    for i, w in enumerate(weights):
        x, kv = layer(model, w, x, positions, None if caches is None else caches[i])
        out.append(kv)
    return x, out
