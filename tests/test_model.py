"""plummer.model: preset shapes, hand-computed sizes and FLOPs, TOML and config.json round trips,
and every bad-input path."""

from __future__ import annotations

import dataclasses
import json

import pytest

from plummer.errors import SpecError
from plummer.model import (
    DTYPE_BYTES,
    SUPPORTED_ARCHITECTURES,
    ModelSpec,
    load_model,
    model_from_hf_config,
    model_presets,
    save_model,
)

# Published shapes (config.json of each model on Hugging Face), written out here as literals:
# hidden, intermediate (FFN), layers, attention heads, KV heads, head dim, vocab, QKV bias.
SHAPES = {
    "llama3-8b": dict(hidden=4096, ffn=14336, layers=32, heads=32, kv_heads=8, head_dim=128,
                      vocab=128256, qkv_bias=False),
    "llama3-70b": dict(hidden=8192, ffn=28672, layers=80, heads=64, kv_heads=8, head_dim=128,
                       vocab=128256, qkv_bias=False),
    "llama2-13b": dict(hidden=5120, ffn=13824, layers=40, heads=40, kv_heads=40, head_dim=128,
                       vocab=32000, qkv_bias=False),
    "codellama-34b": dict(hidden=8192, ffn=22016, layers=48, heads=64, kv_heads=8, head_dim=128,
                          vocab=32000, qkv_bias=False),
    "mistral-7b": dict(hidden=4096, ffn=14336, layers=32, heads=32, kv_heads=8, head_dim=128,
                       vocab=32000, qkv_bias=False),
    "qwen2-7b": dict(hidden=3584, ffn=18944, layers=28, heads=28, kv_heads=4, head_dim=128,
                     vocab=152064, qkv_bias=True),
    "qwen2-72b": dict(hidden=8192, ffn=29568, layers=80, heads=64, kv_heads=8, head_dim=128,
                      vocab=152064, qkv_bias=True),
}

# Worked out by hand from SHAPES (see hand_* below); every weights_total equals the parameter
# count the model's publisher reports (e.g. 8,030,261,248 for Meta-Llama-3-8B).
EXPECTED = {
    "llama3-8b": dict(weights_per_layer=218_103_808, weights_total=8_030_261_248, kv=4_096,
                      decode_4096=17_156_800_512, prefill_3=42_929_750_016),
    "llama3-70b": dict(weights_per_layer=855_638_016, weights_total=70_553_706_496, kv=4_096,
                       decode_4096=149_740_847_104, prefill_3=412_823_322_624),
    "llama2-13b": dict(weights_per_layer=317_194_240, weights_total=13_015_864_320, kv=20_480,
                       decode_4096=29_058_662_400, prefill_3=76_459_212_800),
    "codellama-34b": dict(weights_per_layer=692_060_160, weights_total=33_743_970_304, kv=4_096,
                          decode_4096=73_404_514_304, prefill_3=199_847_051_264),
    "mistral-7b": dict(weights_per_layer=218_103_808, weights_total=7_241_732_096, kv=4_096,
                       decode_4096=16_368_271_360, prefill_3=42_141_220_864),
    "qwen2-7b": dict(weights_per_layer=233_050_624, weights_total=7_615_616_512, kv=2_048,
                     decode_4096=15_784_996_864, prefill_3=40_244_908_032),
    "qwen2-72b": dict(weights_per_layer=877_668_352, weights_total=72_706_203_648, kv=4_096,
                      decode_4096=153_655_771_136, prefill_3=423_787_954_176),
}

PRESETS = sorted(SHAPES)
BF16 = 2  # bytes


def hand_weights_per_layer(s: dict) -> int:
    """Matrix elements of one layer written out matrix by matrix (no norms)."""
    e, f = s["hidden"], s["ffn"]
    q_out = s["heads"] * s["head_dim"]
    kv_out = s["kv_heads"] * s["head_dim"]
    w_q, w_k, w_v, w_o = e * q_out, e * kv_out, e * kv_out, q_out * e
    biases = (q_out + kv_out + kv_out) if s["qkv_bias"] else 0
    w_gate, w_up, w_down = e * f, e * f, f * e
    return w_q + w_k + w_v + w_o + biases + w_gate + w_up + w_down


def hand_weights_total(s: dict) -> int:
    e = s["hidden"]
    two_rmsnorms = e + e
    embedding, lm_head, final_norm = s["vocab"] * e, e * s["vocab"], e
    layers = s["layers"] * (hand_weights_per_layer(s) + two_rmsnorms)
    return layers + embedding + lm_head + final_norm


def hand_kv_bytes(s: dict, bytes_per_element: int = BF16) -> int:
    k_elements = s["kv_heads"] * s["head_dim"]
    v_elements = s["kv_heads"] * s["head_dim"]
    return (k_elements + v_elements) * bytes_per_element


def hand_decode_flops(s: dict, context: int) -> int:
    """One new token: 2 FLOPs per weight, Q.K^T and P.V over ``context`` keys, LM head."""
    q_out = s["heads"] * s["head_dim"]
    per_layer = 2 * hand_weights_per_layer(s) + 2 * q_out * context + 2 * q_out * context
    return s["layers"] * per_layer + 2 * s["hidden"] * s["vocab"]


def hand_prefill_flops(s: dict, seq_len: int) -> int:
    """Token t (1-based) attends to t keys; LM head for the last token only."""
    q_out = s["heads"] * s["head_dim"]
    total = 0
    for t in range(1, seq_len + 1):
        total += s["layers"] * (2 * hand_weights_per_layer(s) + 4 * q_out * t)
    return total + 2 * s["hidden"] * s["vocab"]


def spec_dict(**changes) -> dict:
    data = dict(name="toy", hidden=64, ffn=176, layers=2, heads=8, kv_heads=2, head_dim=8,
                vocab=100, tied_embeddings=False, qkv_bias=False, dtype="bf16", source="")
    data.update(changes)
    return data


# ------------------------------------------------------------ hand arithmetic
@pytest.mark.parametrize("name", PRESETS)
def test_hand_formulas_reproduce_worked_numbers(name):
    s, e = SHAPES[name], EXPECTED[name]
    assert hand_weights_per_layer(s) == e["weights_per_layer"]
    assert hand_weights_total(s) == e["weights_total"]
    assert hand_kv_bytes(s) == e["kv"]
    assert hand_decode_flops(s, 4096) == e["decode_4096"]
    assert hand_prefill_flops(s, 3) == e["prefill_3"]


def test_llama3_8b_by_hand():
    # Q 4096x4096, K and V 4096x1024 each, O 4096x4096, gate/up/down 4096x14336
    per_layer = 4096 * 4096 + 2 * 4096 * 1024 + 4096 * 4096 + 3 * 4096 * 14336
    assert per_layer == 218_103_808
    total = 32 * (per_layer + 2 * 4096) + 2 * 128256 * 4096 + 4096
    assert total == 8_030_261_248
    assert 2 * 8 * 128 * 2 == 4_096  # K and V, 8 KV heads x 128, 2 bytes


# ------------------------------------------------------------------- presets
def test_presets_listed():
    assert set(PRESETS) <= set(model_presets())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_shape_is_published_shape(name):
    spec = load_model(name)
    assert spec.name == name
    for field, value in SHAPES[name].items():
        assert getattr(spec, field) == value, field
    assert spec.tied_embeddings is False
    assert spec.dtype == "bf16"
    assert spec.source  # each preset says where its numbers come from


@pytest.mark.parametrize("name", PRESETS)
def test_preset_weights(name):
    spec = load_model(name)
    assert spec.weights_per_layer == EXPECTED[name]["weights_per_layer"]
    assert spec.weights_total == EXPECTED[name]["weights_total"]
    assert spec.norm_weights_per_layer == 2 * SHAPES[name]["hidden"]
    assert spec.embedding_weights == 2 * SHAPES[name]["vocab"] * SHAPES[name]["hidden"]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_kv_bytes(name):
    spec = load_model(name)
    assert spec.dtype_bytes == 2
    assert spec.kv_bytes_per_token_per_layer == EXPECTED[name]["kv"]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_decode_flops(name):
    spec = load_model(name)
    assert spec.flops_per_token_decode(4096) == EXPECTED[name]["decode_4096"]
    for context in (1, 77, 32768):
        assert spec.flops_per_token_decode(context) == hand_decode_flops(SHAPES[name], context)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_prefill_flops(name):
    spec = load_model(name)
    assert spec.flops_prefill(3) == EXPECTED[name]["prefill_3"]
    for seq_len in (1, 2, 5):
        assert spec.flops_prefill(seq_len) == hand_prefill_flops(SHAPES[name], seq_len)
    assert spec.flops_per_token_prefill(3) == pytest.approx(EXPECTED[name]["prefill_3"] / 3)


def test_decode_attention_grows_linearly_with_context():
    spec = load_model("llama3-8b")
    # one more key costs Q.K^T + P.V: 4 FLOPs x 4096 query width x 32 layers
    assert spec.flops_per_token_decode(101) - spec.flops_per_token_decode(100) == 4 * 4096 * 32


def test_prefill_of_one_token_is_decode_at_context_one():
    spec = load_model("qwen2-7b")
    assert spec.flops_prefill(1) == spec.flops_per_token_decode(1)


def test_qkv_bias_adds_q_plus_two_kv_widths():
    with_bias = ModelSpec(**spec_dict(qkv_bias=True))
    without = ModelSpec(**spec_dict(qkv_bias=False))
    assert with_bias.weights_per_layer - without.weights_per_layer == 8 * 8 + 2 * 2 * 8


def test_tied_embeddings_count_once():
    tied = ModelSpec(**spec_dict(tied_embeddings=True))
    untied = ModelSpec(**spec_dict(tied_embeddings=False))
    assert untied.weights_total - tied.weights_total == 100 * 64
    assert tied.embedding_weights == 100 * 64


def test_toy_model_by_hand():
    spec = ModelSpec(**spec_dict())
    # q 64, kv 16: Q 64*64 + K,V 2*64*16 + O 64*64 + FFN 3*64*176
    assert spec.weights_per_layer == 4096 + 2048 + 4096 + 33792
    assert spec.weights_total == 2 * (44032 + 128) + 2 * 6400 + 64
    assert spec.kv_bytes_per_token_per_layer == 2 * 16 * 2


@pytest.mark.parametrize("dtype, expected", [("fp32", 8192), ("fp16", 4096), ("bf16", 4096),
                                             ("fp8", 2048)])
def test_kv_bytes_follow_dtype(dtype, expected):
    spec = dataclasses.replace(load_model("llama3-8b"), dtype=dtype)
    assert spec.kv_bytes_per_token_per_layer == expected
    assert spec.dtype_bytes == DTYPE_BYTES[dtype]


def test_derived_dict():
    spec = load_model("llama3-8b")
    d = spec.derived(context=4096)
    assert d["weights_per_layer"] == 218_103_808
    assert d["weights_total"] == 8_030_261_248
    assert d["weight_bytes_total"] == 2 * 8_030_261_248
    assert d["kv_bytes_per_token_per_layer"] == 4096
    assert d["kv_bytes_per_token"] == 4096 * 32
    assert d["context"] == 4096
    assert d["flops_per_token_decode"] == 17_156_800_512
    assert spec.derived(context=8)["flops_per_token_decode"] == hand_decode_flops(
        SHAPES["llama3-8b"], 8
    )
    assert spec.derived() == d  # default context is 4096


def test_spec_is_immutable():
    spec = load_model("llama3-8b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.hidden = 1  # type: ignore[misc]


@pytest.mark.parametrize("method, field", [("flops_prefill", "seq_len"),
                                           ("flops_per_token_decode", "context")])
@pytest.mark.parametrize("value, shown", [(0, "0"), (-5, "-5"), (1.5, "1.5"), (True, "True")])
def test_flops_arguments_validated(method, field, value, shown):
    spec = load_model("llama3-8b")
    with pytest.raises(SpecError, match=rf"'{field}' = {shown} must be an integer >= 1"):
        getattr(spec, method)(value)


# ----------------------------------------------------------------- TOML round trip
@pytest.mark.parametrize("name", PRESETS)
def test_toml_round_trip_presets(name, tmp_path):
    spec = load_model(name)
    path = tmp_path / f"{name}.toml"
    save_model(spec, path)
    assert path.read_text().startswith(f"# plummer model '{name}'\n")
    again = load_model(path)
    assert again == spec
    assert again.weights_total == EXPECTED[name]["weights_total"]


def test_toml_round_trip_non_defaults(tmp_path):
    spec = ModelSpec(**spec_dict(tied_embeddings=True, qkv_bias=True, dtype="fp8",
                                 source='my "own" model'))
    save_model(spec, tmp_path / "toy.toml", header="hand made")
    again = load_model(str(tmp_path / "toy.toml"))
    assert again == spec
    assert (again.tied_embeddings, again.qkv_bias, again.dtype) == (True, True, "fp8")


def test_toml_defaults_may_be_omitted(tmp_path):
    (tmp_path / "m.toml").write_text(
        'name = "mini"\nhidden = 64\nffn = 128\nlayers = 2\nheads = 4\nkv_heads = 4\n'
        "head_dim = 16\nvocab = 50\n"
    )
    spec = load_model(tmp_path / "m.toml")
    assert (spec.tied_embeddings, spec.qkv_bias, spec.dtype, spec.source) == (False, False,
                                                                             "bf16", "")


# ------------------------------------------------------------ Hugging Face config.json
def llama3_8b_config() -> dict:
    """config.json of meta-llama/Meta-Llama-3.1-8B as published (with the keys plummer ignores)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 14336,
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0",
        "use_cache": True,
        "vocab_size": 128256,
    }


def mistral_7b_config() -> dict:
    """config.json of mistralai/Mistral-7B-v0.1 (no head_dim key)."""
    return {
        "architectures": ["MistralForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "model_type": "mistral",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.34.0.dev0",
        "use_cache": True,
        "vocab_size": 32000,
    }


def qwen2_7b_config() -> dict:
    """config.json of Qwen/Qwen2-7B (no attention_bias key: Qwen2 always has QKV biases)."""
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": 3584,
        "initializer_range": 0.02,
        "intermediate_size": 18944,
        "max_position_embeddings": 131072,
        "max_window_layers": 28,
        "model_type": "qwen2",
        "num_attention_heads": 28,
        "num_hidden_layers": 28,
        "num_key_value_heads": 4,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.37.2",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 152064,
    }


def llama2_13b_config() -> dict:
    """config.json of meta-llama/Llama-2-13b-hf: no num_key_value_heads, no head_dim."""
    return {
        "_name_or_path": "meta-llama/Llama-2-13b-hf",
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 5120,
        "initializer_range": 0.02,
        "intermediate_size": 13824,
        "max_position_embeddings": 4096,
        "model_type": "llama",
        "num_attention_heads": 40,
        "num_hidden_layers": 40,
        "pad_token_id": 0,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.32.0.dev0",
        "use_cache": True,
        "vocab_size": 32000,
    }


def write_config(tmp_path, config: dict, folder: str = "model") -> str:
    directory = tmp_path / folder
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


SHAPE_FIELDS = ["hidden", "ffn", "layers", "heads", "kv_heads", "head_dim", "vocab",
                "tied_embeddings", "qkv_bias", "dtype"]


@pytest.mark.parametrize(
    "config, preset",
    [(llama3_8b_config, "llama3-8b"), (mistral_7b_config, "mistral-7b"),
     (qwen2_7b_config, "qwen2-7b")],
)
def test_hf_config_matches_preset(config, preset, tmp_path):
    path = write_config(tmp_path, config(), folder=preset)
    spec = model_from_hf_config(path)
    reference = load_model(preset)
    for field in SHAPE_FIELDS:
        assert getattr(spec, field) == getattr(reference, field), field
    assert spec.weights_total == EXPECTED[preset]["weights_total"]
    assert spec.name == preset  # the folder holding config.json
    assert str(path) in spec.source
    # load_model dispatches a .json path to the same loader
    assert load_model(path) == spec


def test_qwen2_has_qkv_bias_by_default_llama_does_not(tmp_path):
    qwen = model_from_hf_config(write_config(tmp_path, qwen2_7b_config(), "q"))
    llama_cfg = llama3_8b_config()
    del llama_cfg["attention_bias"]
    llama = model_from_hf_config(write_config(tmp_path, llama_cfg, "l"))
    assert qwen.qkv_bias is True
    assert llama.qkv_bias is False
    assert SUPPORTED_ARCHITECTURES == {
        "LlamaForCausalLM": False, "MistralForCausalLM": False, "Qwen2ForCausalLM": True
    }


def test_attention_bias_key_is_honoured(tmp_path):
    config = llama3_8b_config() | {"attention_bias": True}
    spec = model_from_hf_config(write_config(tmp_path, config))
    assert spec.qkv_bias is True
    assert spec.weights_per_layer == 218_103_808 + 4096 + 2 * 1024


def test_kv_heads_and_head_dim_default(tmp_path):
    spec = model_from_hf_config(write_config(tmp_path, llama2_13b_config()))
    assert spec.kv_heads == 40  # num_key_value_heads defaults to num_attention_heads
    assert spec.head_dim == 128  # head_dim defaults to hidden_size // num_attention_heads
    assert spec.dtype == "fp16"  # torch_dtype float16
    assert spec.name == "meta-llama/Llama-2-13b-hf"  # _name_or_path wins over the folder
    assert spec.weights_total == 13_015_864_320


def test_explicit_head_dim_is_used(tmp_path):
    # head_dim need not be hidden / heads (e.g. Mistral-Nemo: 5120 hidden, 32 heads, 128 dim)
    config = mistral_7b_config() | {"hidden_size": 5120, "head_dim": 128, "vocab_size": 131072}
    spec = model_from_hf_config(write_config(tmp_path, config))
    assert spec.head_dim == 128
    assert spec.weights_per_layer == 5120 * 4096 * 2 + 2 * 5120 * 1024 + 3 * 5120 * 14336
    null_head_dim = model_from_hf_config(
        write_config(tmp_path, mistral_7b_config() | {"head_dim": None}, "n")
    )
    assert null_head_dim.head_dim == 128


@pytest.mark.parametrize("torch_dtype, dtype", [("bfloat16", "bf16"), ("float16", "fp16"),
                                                ("float32", "fp32")])
def test_hf_dtype(torch_dtype, dtype, tmp_path):
    spec = model_from_hf_config(write_config(tmp_path, mistral_7b_config()
                                             | {"torch_dtype": torch_dtype}))
    assert spec.dtype == dtype


def test_hf_dtype_defaults_to_bf16_and_reads_new_dtype_key(tmp_path):
    config = mistral_7b_config()
    del config["torch_dtype"]
    assert model_from_hf_config(write_config(tmp_path, config, "a")).dtype == "bf16"
    config["dtype"] = "float32"  # newer transformers write "dtype"
    assert model_from_hf_config(write_config(tmp_path, config, "b")).dtype == "fp32"


def test_hf_tied_embeddings_and_explicit_name(tmp_path):
    config = qwen2_7b_config() | {"tie_word_embeddings": True}
    spec = model_from_hf_config(write_config(tmp_path, config), name="mine")
    assert spec.name == "mine"
    assert spec.tied_embeddings is True
    assert spec.weights_total == 7_615_616_512 - 152064 * 3584


def test_hf_config_round_trips_through_toml(tmp_path):
    spec = model_from_hf_config(write_config(tmp_path, llama3_8b_config(), "llama3.1-8b"))
    save_model(spec, tmp_path / "m.toml")
    assert load_model(tmp_path / "m.toml") == spec


# -------------------------------------------------------- bad config.json input
@pytest.mark.parametrize("key", ["hidden_size", "num_attention_heads", "intermediate_size",
                                 "num_hidden_layers", "vocab_size"])
def test_hf_missing_required_key(key, tmp_path):
    config = llama3_8b_config()
    del config[key]
    with pytest.raises(SpecError, match=rf"config '.*config\.json': missing required key '{key}'"):
        model_from_hf_config(write_config(tmp_path, config))


@pytest.mark.parametrize("value, shown", [(4096.0, "4096.0"), ("4096", "'4096'"), (True, "True"),
                                          (None, "None")])
def test_hf_non_integer_value(value, shown, tmp_path):
    config = llama3_8b_config() | {"hidden_size": value}
    with pytest.raises(SpecError, match=rf"key 'hidden_size' = {shown} must be an integer"):
        model_from_hf_config(write_config(tmp_path, config))


def test_hf_bad_kv_heads(tmp_path):
    config = llama3_8b_config() | {"num_key_value_heads": 5}
    with pytest.raises(SpecError, match=r"'kv_heads' = 5 must divide 'heads' = 32"):
        model_from_hf_config(write_config(tmp_path, config))


def test_hf_heads_not_dividing_hidden(tmp_path):
    config = llama3_8b_config() | {"num_attention_heads": 30, "num_key_value_heads": 10}
    with pytest.raises(SpecError, match=r"'heads' = 30 must divide 'hidden' = 4096"):
        model_from_hf_config(write_config(tmp_path, config))


@pytest.mark.parametrize("arch", ["GPT2LMHeadModel", "MixtralForCausalLM", "LlamaModel"])
def test_hf_unsupported_architecture(arch, tmp_path):
    config = llama3_8b_config() | {"architectures": [arch]}
    with pytest.raises(SpecError, match=rf"architecture '{arch}' is not supported; allowed: "
                                        r"LlamaForCausalLM"):
        model_from_hf_config(write_config(tmp_path, config))


@pytest.mark.parametrize("value", ["missing", [], "LlamaForCausalLM", None])
def test_hf_architectures_must_be_a_list(value, tmp_path):
    config = llama3_8b_config()
    if value == "missing":
        del config["architectures"]
    else:
        config["architectures"] = value
    with pytest.raises(SpecError, match=r"key 'architectures' must list one of LlamaForCausalLM"):
        model_from_hf_config(write_config(tmp_path, config))


def test_hf_invalid_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"architectures": ["LlamaForCausalLM"], "hidden_size": 4096,')
    with pytest.raises(SpecError, match=r"config '.*config\.json' is not valid JSON"):
        model_from_hf_config(path)
    with pytest.raises(SpecError, match=r"is not valid JSON"):
        load_model(path)


def test_hf_not_utf8(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match=r"is not valid JSON"):
        model_from_hf_config(path)


def test_hf_json_not_an_object(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(SpecError, match=r"must hold a JSON object"):
        model_from_hf_config(path)


def test_hf_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"config '.*nowhere\.json' does not exist"):
        model_from_hf_config(tmp_path / "nowhere.json")
    with pytest.raises(SpecError, match=r"model '.*nowhere\.json' is neither a preset"):
        load_model(tmp_path / "nowhere.json")


# ---------------------------------------------------------- bad model fields
INT_FIELDS = ["hidden", "ffn", "layers", "heads", "kv_heads", "head_dim", "vocab"]


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("value", [0, -8])
def test_int_field_must_be_positive(field, value):
    with pytest.raises(SpecError, match=rf"model 'toy': field '{field}' = {value} must be an "
                                        r"integer >= 1"):
        ModelSpec(**spec_dict(**{field: value}))


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("value, shown", [(4.5, "4.5"), (8.0, "8.0"), ("8", "'8'"),
                                          (True, "True"), (None, "None")])
def test_int_field_must_be_integer(field, value, shown):
    with pytest.raises(SpecError, match=rf"'{field}' = {shown} must be an integer >= 1"):
        ModelSpec(**spec_dict(**{field: value}))


@pytest.mark.parametrize("field", ["tied_embeddings", "qkv_bias"])
@pytest.mark.parametrize("value, shown", [(1, "1"), ("true", "'true'"), (None, "None")])
def test_bool_fields(field, value, shown):
    with pytest.raises(SpecError, match=rf"'{field}' = {shown} must be true or false"):
        ModelSpec(**spec_dict(**{field: value}))


@pytest.mark.parametrize("value, shown", [("int4", "'int4'"), ("BF16", "'BF16'"), (2, "2"),
                                          ("", "''")])
def test_bad_dtype(value, shown):
    with pytest.raises(SpecError, match=rf"'dtype' = {shown} must be one of fp32, fp16, bf16, fp8"):
        ModelSpec(**spec_dict(dtype=value))


@pytest.mark.parametrize("heads, hidden", [(30, 4096), (7, 64), (128, 64)])
def test_heads_must_divide_hidden(heads, hidden):
    with pytest.raises(SpecError, match=rf"'heads' = {heads} must divide 'hidden' = {hidden}"):
        ModelSpec(**spec_dict(hidden=hidden, heads=heads, kv_heads=1))


@pytest.mark.parametrize("kv_heads", [3, 5, 16])
def test_kv_heads_must_divide_heads(kv_heads):
    with pytest.raises(SpecError, match=rf"'kv_heads' = {kv_heads} must divide 'heads' = 8"):
        ModelSpec(**spec_dict(kv_heads=kv_heads))


def test_name_and_source_types():
    with pytest.raises(SpecError, match=r"'name' = '' must be a non-empty string"):
        ModelSpec(**spec_dict(name=""))
    with pytest.raises(SpecError, match=r"'source' = 5 must be a string"):
        ModelSpec(**spec_dict(source=5))


def test_unknown_key_in_toml(tmp_path):
    path = tmp_path / "m.toml"
    save_model(load_model("llama3-8b"), path)
    path.write_text(path.read_text() + "rope_theta = 500000.0\n")
    message = r"m\.toml': unknown field\(s\) 'rope_theta'; allowed: name, hidden"
    with pytest.raises(SpecError, match=message):
        load_model(path)


@pytest.mark.parametrize("missing", ["hidden", "kv_heads", "vocab"])
def test_missing_key_in_toml(missing, tmp_path):
    path = tmp_path / "m.toml"
    save_model(load_model("llama3-8b"), path)
    kept = [line for line in path.read_text().splitlines() if not line.startswith(f"{missing} =")]
    path.write_text("\n".join(kept) + "\n")
    with pytest.raises(SpecError, match=rf"missing required field\(s\) '{missing}'"):
        load_model(path)


@pytest.mark.parametrize(
    "line, message",
    [("kv_heads = 8", r"'kv_heads' = 12 must divide 'heads' = 32"),
     ("heads = 32", r"'heads' = 4\.5 must be an integer"),
     ('dtype = "bf16"', r"'dtype' = 'q4' must be one of")],
)
def test_bad_values_in_toml(line, message, tmp_path):
    replacement = {"kv_heads = 8": "kv_heads = 12", "heads = 32": "heads = 4.5",
                   'dtype = "bf16"': 'dtype = "q4"'}[line]
    path = tmp_path / "m.toml"
    save_model(load_model("llama3-8b"), path)
    text = path.read_text()
    assert f"\n{line}\n" in text
    path.write_text(text.replace(f"\n{line}\n", f"\n{replacement}\n"))
    with pytest.raises(SpecError, match=message):
        load_model(path)


def test_invalid_toml(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('name = "x"\nhidden = = 3\n')
    with pytest.raises(SpecError, match=r"m\.toml' is not valid TOML"):
        load_model(path)


def test_unknown_preset():
    with pytest.raises(SpecError, match=r"model 'llama9-1t' is neither a preset \(.*llama3-8b.*\) "
                                        r"nor an existing file"):
        load_model("llama9-1t")


# ------------------------------------------------------------ bugs found by review (fixed)
def test_dtype_list_in_toml_is_a_spec_error(tmp_path):
    path = tmp_path / "m.toml"
    save_model(load_model("llama3-8b"), path)
    path.write_text(path.read_text().replace('dtype = "bf16"', 'dtype = ["bf16"]'))
    with pytest.raises(SpecError, match=r"'dtype'"):
        load_model(path)


def test_hf_config_that_is_a_directory_is_a_spec_error(tmp_path):
    (tmp_path / "config.json").mkdir()
    with pytest.raises(SpecError, match=r"config\.json"):
        model_from_hf_config(tmp_path / "config.json")


def test_hf_architecture_entry_not_a_string(tmp_path):
    config = llama3_8b_config() | {"architectures": [{"name": "LlamaForCausalLM"}]}
    with pytest.raises(SpecError, match=r"architecture"):
        model_from_hf_config(write_config(tmp_path, config))
