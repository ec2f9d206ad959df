"""LLM shapes: presets, Hugging Face ``config.json`` loading, derived sizes and FLOPs."""

from __future__ import annotations

from plummer.model._hf import SUPPORTED_ARCHITECTURES, model_from_hf_config
from plummer.model._io import load_model, model_presets, save_model
from plummer.model._spec import DTYPE_BYTES, ModelSpec

__all__ = [
    "DTYPE_BYTES",
    "SUPPORTED_ARCHITECTURES",
    "ModelSpec",
    "load_model",
    "model_from_hf_config",
    "model_presets",
    "save_model",
]
