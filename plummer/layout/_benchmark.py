"""Speed of the layouts' closed form (``plummer benchmark --part layouts``).

Three figures, medians of ``repeats`` runs on the process's CPU clock:

- one prediction of Qwen2-72B on a WSE-3 (both phases, all 80 layers, the breakdown
  included), microseconds;
- a flat batch of random layouts (every column drawn at random: grids, regions, algorithms,
  K-tree depth, batch, lengths, KV scheme), layouts per second;
- an outer-product batch (each column on its own array axis, as the exhaustive enumeration
  builds it), layouts per second: each op is evaluated only over the columns it depends on.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from plummer.hardware import load_hardware
from plummer.layout._arrays import LayoutArrays
from plummer.layout._layout import Layout
from plummer.layout._metrics import evaluate
from plummer.layout._predict import predict
from plummer.model import load_model


def _median(fn: Any, repeats: int, number: int = 1) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(number):
            fn()
        times.append((time.process_time() - start) / number)
    return statistics.median(times)


def random_columns(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """``size`` random WSE-3 layouts of a large model, every column varying."""
    pf = rng.choice(np.arange(240, 745, 24), size)
    dc = rng.choice(np.arange(96, 745, 24), size)
    return {"pf_p": pf, "pf_q": pf, "dc_p": dc, "dc_q": dc, "pf_regions": rng.integers(1, 3, size),
            "dc_regions": rng.integers(1, 4, size), "pf_gemm": rng.integers(0, 3, size),
            "dc_allreduce": rng.integers(0, 3, size), "dc_k_tree": rng.integers(1, 4, size),
            "batch": rng.integers(1, 9, size), "input_tokens": rng.choice([1024, 2048, 4096], size),
            "output_tokens": rng.choice([128, 256, 512], size), "kv_cache": rng.integers(0, 2, size)}


def layout_benchmark(repeats: int = 5, size: int = 100_000) -> dict[str, Any]:
    """The three figures of the module docstring (and what they were measured on)."""
    spec, model = load_hardware("wse3"), load_model("qwen2-72b")
    layout = Layout.from_dict({"prefill": {"grid": [744, 744]}, "decode": {"grid": [360, 360], "regions": 6}})
    predict(spec, model, layout)
    scalar = _median(lambda: predict(spec, model, layout), repeats, number=20)
    columns = random_columns(np.random.default_rng(0), size)
    flat = _median(lambda: evaluate(spec, model, LayoutArrays.from_columns(spec, model, **columns)), repeats)
    axes = {"pf_p": np.arange(240, 745, 24), "dc_p": np.arange(96, 745, 24), "dc_regions": np.arange(1, 7),
            "pf_gemm": np.arange(3), "dc_allreduce": np.arange(3), "batch": np.array([1, 2, 4, 8]),
            "kv_cache": np.arange(2)}
    grid = {}
    for i, (name, values) in enumerate(axes.items()):
        shape = [1] * len(axes)
        shape[i] = values.size
        grid[name] = values.reshape(shape)
    grid |= {"pf_q": grid["pf_p"], "dc_q": grid["dc_p"]}
    points = int(np.prod([v.size for v in axes.values()]))
    outer = _median(lambda: evaluate(spec, model, LayoutArrays.from_columns(spec, model, **grid)), repeats)
    return {"predict_qwen2_72b_us": scalar * 1e6, "flat_batch_layouts": size,
            "flat_batch_layouts_per_s": size / flat, "outer_batch_layouts": points,
            "outer_batch_layouts_per_s": points / outer}
