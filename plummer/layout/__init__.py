"""LLM layouts on the wafer: prefill and decode plans, placement, memory fit, predictions."""

from __future__ import annotations

from plummer.layout._arrays import LayoutArrays, PhaseArrays, layout_arrays
from plummer.layout._layout import (
    ALLREDUCE_ALGOS,
    GEMM_ALGOS,
    KV_SCHEMES,
    Layout,
    PhaseLayout,
    load_layout,
    save_layout,
)
from plummer.layout._metrics import METRICS, REASONS, Evaluation, evaluate, reason_texts

__all__ = ["ALLREDUCE_ALGOS", "GEMM_ALGOS", "KV_SCHEMES", "METRICS", "REASONS", "Evaluation", "Layout",
           "LayoutArrays", "PhaseArrays", "PhaseLayout", "evaluate", "layout_arrays",
           "load_layout", "reason_texts", "save_layout"]
