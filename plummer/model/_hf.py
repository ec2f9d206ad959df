"""Reading a Hugging Face ``config.json`` into a :class:`ModelSpec`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plummer.errors import SpecError
from plummer.model._spec import ModelSpec

#: Architectures whose config keys and layer structure plummer models (SwiGLU, RMSNorm, GQA).
SUPPORTED_ARCHITECTURES = {
    "LlamaForCausalLM": False,  # value: QKV bias unless the config says otherwise
    "MistralForCausalLM": False,
    "Qwen2ForCausalLM": True,
}

_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def _get_int(path: Path, config: dict[str, Any], key: str) -> int:
    if key not in config:
        raise SpecError(f"config '{path}': missing required key '{key}'")
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"config '{path}': key '{key}' = {value!r} must be an integer")
    return value


def model_from_hf_config(path: str | Path, name: str | None = None) -> ModelSpec:
    """Build a :class:`ModelSpec` from a Hugging Face ``config.json``.

    Keys plummer does not use (``rope_scaling``, ``sliding_window``, ...) are ignored.
    ``num_key_value_heads`` defaults to ``num_attention_heads`` and ``head_dim`` to
    ``hidden_size // num_attention_heads``, as in ``transformers``.
    """
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"config '{path}' does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"config '{path}' is not valid JSON: {exc}") from None
    except OSError as exc:
        raise SpecError(f"config '{path}' cannot be read: {exc.strerror}") from None
    if not isinstance(config, dict):
        raise SpecError(f"config '{path}' must hold a JSON object")
    architectures = config.get("architectures")
    if not isinstance(architectures, list) or not architectures:
        raise SpecError(
            f"config '{path}': key 'architectures' must list one of "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    arch = architectures[0]
    if not isinstance(arch, str) or arch not in SUPPORTED_ARCHITECTURES:
        raise SpecError(
            f"config '{path}': architecture {arch!r} is not supported; allowed: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    hidden = _get_int(path, config, "hidden_size")
    heads = _get_int(path, config, "num_attention_heads")
    kv_heads = _get_int(path, config, "num_key_value_heads") if "num_key_value_heads" in config else heads
    head_dim = config.get("head_dim") or (hidden // heads if heads else 0)
    qkv_bias = config.get("attention_bias", SUPPORTED_ARCHITECTURES[arch])
    if not isinstance(qkv_bias, bool):
        raise SpecError(f"config '{path}': key 'attention_bias' = {qkv_bias!r} must be true or false")
    torch_dtype = config.get("torch_dtype", config.get("dtype", "bfloat16"))
    if torch_dtype not in _DTYPES:
        raise SpecError(
            f"config '{path}': key 'torch_dtype' = {torch_dtype!r} is not supported; allowed: "
            f"{', '.join(_DTYPES)}"
        )
    dtype = _DTYPES[torch_dtype]
    return ModelSpec(
        name=name or str(config.get("_name_or_path") or path.parent.name or path.stem),
        hidden=hidden,
        ffn=_get_int(path, config, "intermediate_size"),
        layers=_get_int(path, config, "num_hidden_layers"),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=_get_int(path, config, "vocab_size"),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        qkv_bias=qkv_bias,
        dtype=dtype,
        source=f"Hugging Face config {path}",
    )
