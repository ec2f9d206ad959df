"""Transformer shapes (decoder-only, GQA) and the quantities plummer derives from them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from plummer import _fields as f
from plummer.errors import SpecError

#: Bytes per element of each supported dtype name.
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1}


@dataclass(frozen=True)
class ModelSpec:
    """An immutable decoder-only transformer shape.

    Sizes are in elements: ``hidden`` (embedding width E), ``ffn`` (FFN width F),
    ``head_dim`` per attention head; ``heads`` query heads and ``kv_heads`` key/value
    heads (GQA when ``kv_heads < heads``). Weights use the gated (SwiGLU) FFN of the
    LLaMA family: up, gate and down projections.

    Example:
        >>> from plummer.model import load_model
        >>> load_model("llama3-8b").weights_per_layer
        218103808
    """

    name: str
    hidden: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool = False
    qkv_bias: bool = False
    dtype: str = "bf16"
    source: str = ""

    def __post_init__(self) -> None:
        owner = f"model '{self.name}'" if isinstance(self.name, str) else "model"
        f.require_str(owner, "name", self.name)
        for name in ("hidden", "ffn", "layers", "heads", "kv_heads", "head_dim", "vocab"):
            f.require_int(owner, name, getattr(self, name), 1)
        f.require_bool(owner, "tied_embeddings", self.tied_embeddings)
        f.require_bool(owner, "qkv_bias", self.qkv_bias)
        if not isinstance(self.dtype, str) or self.dtype not in DTYPE_BYTES:
            raise SpecError(
                f"{owner}: field 'dtype' = {self.dtype!r} must be one of "
                f"{', '.join(DTYPE_BYTES)}"
            )
        if self.hidden % self.heads:
            raise SpecError(
                f"{owner}: field 'heads' = {self.heads} must divide 'hidden' = {self.hidden}"
            )
        if self.heads % self.kv_heads:
            raise SpecError(
                f"{owner}: field 'kv_heads' = {self.kv_heads} must divide 'heads' = {self.heads}"
            )
        if not isinstance(self.source, str):
            raise SpecError(f"{owner}: field 'source' = {self.source!r} must be a string")

    # ----------------------------------------------------------------- derived
    @property
    def dtype_bytes(self) -> int:
        """Bytes per weight / activation element."""
        return DTYPE_BYTES[self.dtype]

    @property
    def q_width(self) -> int:
        """Width of the query projection, ``heads * head_dim`` (elements)."""
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the key (and of the value) projection, ``kv_heads * head_dim``."""
        return self.kv_heads * self.head_dim

    @property
    def attention_weights_per_layer(self) -> int:
        """Q, K, V and O projection weights (and QKV biases if any), elements."""
        matrices = self.hidden * (2 * self.q_width + 2 * self.kv_width)
        bias = (self.q_width + 2 * self.kv_width) if self.qkv_bias else 0
        return matrices + bias

    @property
    def ffn_weights_per_layer(self) -> int:
        """Up, gate and down projection weights, elements."""
        return 3 * self.hidden * self.ffn

    @property
    def weights_per_layer(self) -> int:
        """Matrix weights (and biases) of one layer, without the two RMSNorm vectors."""
        return self.attention_weights_per_layer + self.ffn_weights_per_layer

    @property
    def norm_weights_per_layer(self) -> int:
        """The two RMSNorm weight vectors of one layer, elements."""
        return 2 * self.hidden

    @property
    def embedding_weights(self) -> int:
        """Token embedding plus LM head (once if tied), elements."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def weights_total(self) -> int:
        """All parameters: layers with norms, embeddings, LM head and final norm."""
        per_layer = self.weights_per_layer + self.norm_weights_per_layer
        return self.layers * per_layer + self.embedding_weights + self.hidden

    @property
    def kv_bytes_per_token_per_layer(self) -> int:
        """KV-cache bytes one token adds to one layer: K and V, ``kv_heads * head_dim`` each."""
        return 2 * self.kv_width * self.dtype_bytes

    def flops_prefill(self, seq_len: int) -> int:
        """FLOPs to prefill ``seq_len`` tokens (2 per multiply-add).

        Matrix weights for every token, causal attention (token ``t`` attends to ``t``
        tokens: Q.K^T and P.V, ``2 * 2 * q_width * t`` FLOPs per layer) and the LM head
        for the last token only. Norms, softmax and activations are not counted.
        """
        seq_len = f.require_int(f"model '{self.name}'", "seq_len", seq_len, 1)
        matmul = 2 * self.weights_per_layer * self.layers * seq_len
        attended = seq_len * (seq_len + 1) // 2
        attention = 4 * self.q_width * attended * self.layers
        return matmul + attention + 2 * self.hidden * self.vocab

    def flops_per_token_prefill(self, seq_len: int) -> float:
        """:meth:`flops_prefill` divided by ``seq_len``."""
        return self.flops_prefill(seq_len) / seq_len

    def flops_per_token_decode(self, context: int) -> int:
        """FLOPs to decode one token that attends to ``context`` tokens (itself included)."""
        context = f.require_int(f"model '{self.name}'", "context", context, 1)
        matmul = 2 * self.weights_per_layer * self.layers
        attention = 4 * self.q_width * context * self.layers
        return matmul + attention + 2 * self.hidden * self.vocab

    def derived(self, context: int = 4096) -> dict[str, Any]:
        """Derived quantities, as shown by ``plummer model show`` (at ``context`` tokens)."""
        f.require_int(f"model '{self.name}'", "context", context, 1)
        return {
            "dtype_bytes": self.dtype_bytes,
            "weights_per_layer": self.weights_per_layer,
            "norm_weights_per_layer": self.norm_weights_per_layer,
            "embedding_weights": self.embedding_weights,
            "weights_total": self.weights_total,
            "weight_bytes_total": self.weights_total * self.dtype_bytes,
            "kv_bytes_per_token_per_layer": self.kv_bytes_per_token_per_layer,
            "kv_bytes_per_token": self.kv_bytes_per_token_per_layer * self.layers,
            "context": context,
            "flops_per_token_prefill": self.flops_per_token_prefill(context),
            "flops_per_token_decode": self.flops_per_token_decode(context),
        }

    # ------------------------------------------------------------- conversions
    def to_dict(self) -> dict[str, Any]:
        """Fields as plain Python values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], owner: str = "model") -> ModelSpec:
        """Build a spec from a mapping, rejecting unknown and missing keys."""
        f.check_keys(owner, data, cls)
        return cls(**data)
