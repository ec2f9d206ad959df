"""LLM layouts on the wafer: prefill and decode plans, placement, memory fit, predictions."""

from __future__ import annotations

from plummer.layout._arrays import LayoutArrays, PhaseArrays, layout_arrays
from plummer.layout._benchmark import layout_benchmark
from plummer.layout._execute import TINY, LayoutRun, execute_layout, validate_layouts
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
from plummer.layout._predict import HEADLINE, SUBSET_NOTE, Prediction, default_layout, predict

__all__ = ["ALLREDUCE_ALGOS", "GEMM_ALGOS", "HEADLINE", "KV_SCHEMES", "METRICS", "REASONS", "SUBSET_NOTE",
           "TINY", "Evaluation", "Layout", "LayoutArrays", "LayoutRun", "PhaseArrays", "PhaseLayout",
           "Prediction", "default_layout", "evaluate", "execute_layout", "layout_arrays", "layout_benchmark", "load_layout",
           "predict", "reason_texts", "save_layout", "validate_layouts"]
