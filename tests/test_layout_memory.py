"""A layout's memory per core, worked out by hand from the model's shapes: the KV cache grows
with the batch and with the batches in flight (one per region), the prompts' K and V stay on
the prefill regions, and the longest context that fits is the one whose cache fits."""

from __future__ import annotations

import math

import pytest

from plummer.hardware import load_hardware
from plummer.layout import Layout
from plummer.layout._predict import predict
from plummer.model import load_model

WSE2 = load_hardware("wse2")
LLAMA = load_model("llama3-8b")  # 32 layers, 8 KV heads of 128, hidden 4096


def _metrics(batch: int = 1, input_tokens: int = 4096, output_tokens: int = 256,
             pf: tuple[int, int, int] = (480, 480, 1), dc: tuple[int, int, int] = (360, 360, 1),
             kv_cache: str = "shift") -> dict[str, float]:
    layout = Layout.from_dict({
        "batch": batch, "input_tokens": input_tokens, "output_tokens": output_tokens, "kv_cache": kv_cache,
        "prefill": {"grid": list(pf[:2]), "regions": pf[2], "head_groups": 8},
        "decode": {"grid": list(dc[:2]), "regions": dc[2], "head_groups": 8}})
    return predict(WSE2, LLAMA, layout).metrics


def test_decode_kv_cache_is_the_models_k_and_v_per_core():
    """8 head groups of 45 columns on a 360 x 360 grid, one KV head each: a token's K and V
    slices are 2 x ceil(128 / 45) = 6 elements in each of its row's cores; shift spreads
    4,352 tokens over the 360 rows, 13 in the busiest; 2 bytes each, 32 layers, 2 requests."""
    m = _metrics(batch=2)
    assert m["kv_cache_bytes"] == 32 * 2 * 13 * 2 * math.ceil(128 / 45) * WSE2.dtype_bytes


def test_the_kv_cache_grows_with_the_batch():
    one, eight = _metrics(batch=1), _metrics(batch=8)
    assert eight["kv_cache_bytes"] == 8 * one["kv_cache_bytes"] > 0
    assert eight["memory_decode_bytes"] - one["memory_decode_bytes"] >= 7 * one["kv_cache_bytes"]


@pytest.mark.parametrize("regions", [2, 4, 8])
def test_each_region_holds_its_layers_kv_of_every_batch_in_flight(regions):
    """R regions of 32 / R layers, R batches in flight: each core holds the cache of 32
    layers' worth (R batches x 32 / R layers), while its weights shrink R-fold."""
    alone = _metrics(dc=(240, 240, 1))
    full = _metrics(dc=(240, 240, regions))
    assert full["kv_cache_bytes"] == alone["kv_cache_bytes"]
    weights = {r: m["memory_decode_bytes"] - m["kv_cache_bytes"] for r, m in ((1, alone), (regions, full))}
    assert weights[regions] < weights[1] / regions * 1.2


def test_the_prompts_kv_stays_on_the_prefill_regions():
    """Prefill 480 x 480, 4,096 tokens of each of 2 prompts over 480 rows (padded to 4,320:
    18 rows each core), K and V of 8 x 128 columns over 480 columns (3 each): 2 x 18 x 3
    elements per layer; 32 layers on 1 region, or 16 on each of 2 regions holding 2 batches."""
    per_layer = 2 * (2 * 4320 // 480) * math.ceil(8 * 128 / 480) * WSE2.dtype_bytes
    assert _metrics(batch=2)["prompt_kv_bytes"] == 32 * per_layer
    assert _metrics(batch=2, pf=(480, 480, 2))["prompt_kv_bytes"] == 2 * 16 * per_layer


@pytest.mark.parametrize("kv_cache", ["shift", "concat"])
def test_the_longest_context_that_fits_is_the_one_whose_cache_fits(kv_cache):
    """At the reported longest context the decode memory is within the budget; a row's
    worth of tokens more (``q`` with shift, one with concatenation) is not."""
    grid = (360, 360, 4)
    key = f"max_context_{kv_cache}"
    longest = int(_metrics(dc=grid, kv_cache=kv_cache, input_tokens=2048, output_tokens=1)[key])
    assert longest > 2048  # the prompt, and more
    more = 360 if kv_cache == "shift" else 1
    at = _metrics(dc=grid, kv_cache=kv_cache, input_tokens=2048, output_tokens=longest - 2048)
    past = _metrics(dc=grid, kv_cache=kv_cache, input_tokens=2048, output_tokens=longest - 2048 + more)
    assert at["memory_decode_bytes"] <= WSE2.memory_bytes < past["memory_decode_bytes"]


def test_no_context_fits_when_the_prompt_does_not():
    m = _metrics(dc=(24, 24, 1))
    assert m["memory_headroom_bytes"] < 0
    assert m["max_context_shift"] == m["max_context_concat"] == 0
