"""The ``plummer`` CLI: --version, hardware/model show, --help everywhere, and bad input."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from conftest import strict_json

from plummer.cli import build_parser
from plummer.hardware import HardwareSpec, hardware_presets, load_hardware, save_hardware
from plummer.model import ModelSpec, load_model, model_presets, save_model

HARDWARE_FIELDS = {f.name for f in dataclasses.fields(HardwareSpec)}
MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}


def one_line_error(code: int, out: str, err: str) -> str:
    """Assert the CLI failed as a user should see it and return the message."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert "error:" in err
    return err


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every command and subcommand of ``parser`` as argv prefixes (the top level included)."""
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, prefix + (name,))


def config_json(tmp_path, **changes):
    config = {
        "architectures": ["MistralForCausalLM"],
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "rope_scaling": {"type": "linear", "factor": 2.0},
        "torch_dtype": "bfloat16",
        "rms_norm_eps": 1e-05,
        "bos_token_id": 1,
        "use_cache": True,
        "transformers_version": "4.34.0",
    }
    config.update(changes)
    path = tmp_path / "mistral-7b-v0.1" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(config))
    return path


# -------------------------------------------------------------------- version
def test_version(run_cli):
    code, out, err = run_cli("--version")
    assert code == 0
    assert out == f"plummer {version('plummer')}\n"
    assert version("plummer") != "0.0.0+unknown"


# ------------------------------------------------------------------ hardware
def test_hardware_show_json(run_cli):
    code, out, err = run_cli("hardware", "show", "wse3", "--json")
    assert code == 0 and err == ""
    payload = json.loads(out)  # the whole stdout is exactly one JSON value
    assert isinstance(payload, dict)
    assert HARDWARE_FIELDS | {"cores", "route_budget"} <= set(payload)
    assert payload["name"] == "wse3"
    assert payload["cores"] == 762 * 1172
    assert payload["route_budget"] == 21
    assert payload["input_queues"] == 8
    assert payload["memory_bytes"] == 49152
    assert payload["uncalibrated"] == []  # the preset carries fitted values
    assert "fitted" in payload["calibration"]


def test_hardware_show_text(run_cli):
    code, out, err = run_cli("hardware", "show", "wse2")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "hardware wse2"
    assert any(line.split() == ["route_budget", "21"] for line in lines)
    assert any(line.split() == ["cores", "753,972"] for line in lines)


def test_hardware_show_file_and_output(run_cli, tmp_path):
    source = tmp_path / "small.toml"
    save_hardware(load_hardware("wse2").with_mesh(16, 8), source)
    copy = tmp_path / "copy.toml"
    code, out, err = run_cli("hardware", "show", source, "--json", "-o", copy)
    assert code == 0 and err == ""
    payload = json.loads(out)
    assert (payload["mesh_width"], payload["mesh_height"], payload["cores"]) == (16, 8, 128)
    assert load_hardware(copy) == load_hardware(source)


def test_hardware_list(run_cli):
    code, out, err = run_cli("hardware", "list")
    assert code == 0
    assert {"wse2", "wse3", "generic-mesh"} <= set(out.split())


def test_hardware_list_json(run_cli):
    code, out, err = run_cli("hardware", "list", "--json")
    assert code == 0 and err == ""
    rows = strict_json(out)["hardware"]
    assert [row["name"] for row in rows] == sorted(hardware_presets())
    wse3 = next(row for row in rows if row["name"] == "wse3")
    spec = load_hardware("wse3")
    assert (wse3["mesh_width"], wse3["mesh_height"]) == (spec.mesh_width, spec.mesh_height)
    assert wse3["cores"] == spec.mesh_width * spec.mesh_height
    assert wse3["memory_bytes"] == spec.memory_bytes and wse3["description"] == spec.description
    assert wse3["peak_flops"] == pytest.approx(spec.derived()["peak_flops"])


# --------------------------------------------------------------------- model
def test_model_show_json(run_cli):
    code, out, err = run_cli("model", "show", "llama3-8b", "--json")
    assert code == 0 and err == ""
    payload = json.loads(out)
    assert MODEL_FIELDS <= set(payload)
    assert payload["weights_per_layer"] == 218_103_808
    assert payload["weights_total"] == 8_030_261_248
    assert payload["kv_bytes_per_token_per_layer"] == 4_096
    assert payload["context"] == 4096
    # 2 x 218,103,808 x 32 + 4 x 4096 x 4096 x 32 + 2 x 4096 x 128,256
    assert payload["flops_per_token_decode"] == 17_156_800_512


def test_model_show_context(run_cli):
    code, out, _ = run_cli("model", "show", "llama3-8b", "--json", "--context", "1")
    assert code == 0
    payload = json.loads(out)
    assert payload["context"] == 1
    expected = 2 * 218_103_808 * 32 + 4 * 4096 * 1 * 32 + 2 * 4096 * 128256
    assert payload["flops_per_token_decode"] == expected


def test_model_show_text(run_cli):
    code, out, err = run_cli("model", "show", "qwen2-7b")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "model qwen2-7b"
    assert any(line.split() == ["weights_total", "7,615,616,512"] for line in lines)
    assert any(line.split() == ["qkv_bias", "True"] for line in lines)


def test_model_show_config_json(run_cli, tmp_path):
    path = config_json(tmp_path)
    code, out, err = run_cli("model", "show", path, "--json")
    assert code == 0 and err == ""
    payload = json.loads(out)
    assert payload["name"] == "mistral-7b-v0.1"
    assert payload["kv_heads"] == 8 and payload["head_dim"] == 128
    assert payload["weights_total"] == 7_241_732_096
    assert payload["kv_bytes_per_token_per_layer"] == 4096


def test_model_show_output_round_trip(run_cli, tmp_path):
    out_path = tmp_path / "m.toml"
    code, _, err = run_cli("model", "show", config_json(tmp_path), "-o", out_path)
    assert code == 0 and err == ""
    spec = load_model(out_path)
    assert (spec.hidden, spec.kv_heads, spec.vocab) == (4096, 8, 32000)


def test_model_show_toml_file(run_cli, tmp_path):
    path = tmp_path / "toy.toml"
    save_model(ModelSpec(name="toy", hidden=64, ffn=128, layers=2, heads=4, kv_heads=2,
                         head_dim=16, vocab=10), path)
    code, out, _ = run_cli("model", "show", path, "--json")
    assert code == 0
    assert json.loads(out)["weights_per_layer"] == 64 * 64 * 2 + 2 * 64 * 32 + 3 * 64 * 128


def test_model_list(run_cli):
    code, out, _ = run_cli("model", "list")
    assert code == 0
    assert {"llama3-8b", "llama3-70b", "llama2-13b", "codellama-34b", "mistral-7b", "qwen2-7b",
            "qwen2-72b"} <= set(out.split())


def test_model_list_json(run_cli):
    code, out, err = run_cli("model", "list", "--json")
    assert code == 0 and err == ""
    rows = strict_json(out)["models"]
    assert [row["name"] for row in rows] == sorted(model_presets())
    llama = next(row for row in rows if row["name"] == "llama3-8b")
    assert (llama["hidden"], llama["layers"], llama["heads"], llama["kv_heads"]) == (4096, 32, 32, 8)
    assert llama["weights_total"] == 8_030_261_248


# ---------------------------------------------------------------------- help
ALL_COMMANDS = sorted(set(command_paths(build_parser())))


def test_command_tree_has_the_issue_commands():
    assert {(), ("hardware",), ("hardware", "show"), ("model",), ("model", "show")} <= set(
        ALL_COMMANDS
    )


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "plummer")
def test_help_everywhere(path, run_cli):
    code, out, err = run_cli(*path, "--help")
    assert code == 0
    assert out.startswith("usage: plummer" + "".join(f" {p}" for p in path))
    assert err == ""


def _help(run_cli, monkeypatch, *path: str) -> str:
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping (argparse breaks lines at hyphens)
    code, out, _ = run_cli(*path, "--help")
    assert code == 0
    return out


def test_help_says_what_calibrate_reads(run_cli, monkeypatch):
    out = _help(run_cli, monkeypatch, "calibrate")
    for words in (".json", ".csv", "scenario .toml", "not a directory", "meshgemm P,M,K,N"):
        assert words in out, words


def test_help_names_every_algorithm_and_its_default(run_cli, monkeypatch):
    from plummer.cli._kernels import DEFAULT_ALGO
    from plummer.kernels import KERNELS, algorithms, families

    out = _help(run_cli, monkeypatch, "cost")
    for family in families():
        assert f"{family}: {', '.join(algorithms(family))} (default {DEFAULT_ALGO[family]})" in out
    assert {algo for _, algo in KERNELS} <= set(out.replace(",", " ").replace(";", " ").split())


def test_help_describes_validate_and_benchmark_parts(run_cli, monkeypatch):
    out = _help(run_cli, monkeypatch, "validate")
    description = out.split("\n\n")[1]
    assert "layout:" in description and "paper:" in description and "executor" in description
    out = _help(run_cli, monkeypatch, "benchmark")
    for part in ("kernels:", "layouts:", "studies:"):
        assert part in out.split("\n\n")[1], part


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "argv, names",
    [
        (("hardware", "show", "wse9"), ["'wse9'", "neither a preset"]),
        (("model", "show", "llama9-1t"), ["'llama9-1t'", "neither a preset"]),
        (("model", "show", "llama3-8b", "--context", "0"), ["= 0", "must be an integer >= 1"]),
    ],
)
def test_bad_names_exit_2(argv, names, run_cli):
    err = one_line_error(*run_cli(*argv))
    for name in names:
        assert name in err


def test_bad_toml_file_exits_2(run_cli, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("mesh_width = = 3\n[[\n")
    err = one_line_error(*run_cli("hardware", "show", path))
    assert err.startswith("plummer hardware: error: ")
    assert "not valid TOML" in err


@pytest.mark.parametrize(
    "replace, names",
    [
        (("mesh_width = 757", "mesh_width = 800"), ["'mesh_width' = 800", "757"]),
        (("colors = 24", "colors = 4.5"), ["'colors' = 4.5", "integer"]),
        (("reserved_colors = 3", "reserved_colors = 24"), ["'reserved_colors' = 24", "'colors'"]),
        (("memory_bytes = 49152", "memory_bytes = 0"), ["'memory_bytes' = 0", ">= 1"]),
        (("clock_ghz = 1.1", "clock_ghz = 1.1\nturbo = true"), ["'turbo'", "unknown"]),
        ((f"alpha = {load_hardware('wse2').alpha!r}", ""), ["'alpha'", "missing"]),
    ],
)
def test_bad_hardware_file_exits_2(replace, names, run_cli, tmp_path):
    path = tmp_path / "hw.toml"
    save_hardware(load_hardware("wse2"), path)
    text = path.read_text()
    assert replace[0] in text
    path.write_text(text.replace(replace[0], replace[1]))
    err = one_line_error(*run_cli("hardware", "show", path, "--json"))
    for name in names:
        assert name in err


@pytest.mark.parametrize(
    "replace, names",
    [
        (("kv_heads = 8", "kv_heads = 3"), ["'kv_heads' = 3", "'heads' = 32"]),
        (("heads = 32", "heads = 30"), ["'heads' = 30", "'hidden' = 4096"]),
        (('dtype = "bf16"', 'dtype = "int3"'), ["'dtype' = 'int3'", "fp32"]),
        (("layers = 32", 'layers = "32"'), ["'layers' = '32'", "integer"]),
    ],
)
def test_bad_model_file_exits_2(replace, names, run_cli, tmp_path):
    path = tmp_path / "m.toml"
    save_model(load_model("llama3-8b"), path)
    text = path.read_text()
    assert f"\n{replace[0]}\n" in text
    path.write_text(text.replace(f"\n{replace[0]}\n", f"\n{replace[1]}\n"))
    err = one_line_error(*run_cli("model", "show", path))
    assert err.startswith("plummer model: error: ")
    for name in names:
        assert name in err


@pytest.mark.parametrize(
    "changes, names",
    [
        ({"architectures": ["GPT2LMHeadModel"]}, ["'GPT2LMHeadModel'", "not supported"]),
        ({"hidden_size": None}, ["'hidden_size'"]),
        ({"num_key_value_heads": 6}, ["'kv_heads' = 6"]),
    ],
)
def test_bad_config_json_exits_2(changes, names, run_cli, tmp_path):
    err = one_line_error(*run_cli("model", "show", config_json(tmp_path, **changes)))
    for name in names:
        assert name in err


def test_invalid_json_exits_2(run_cli, tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    err = one_line_error(*run_cli("model", "show", path, "--json"))
    assert "not valid JSON" in err


@pytest.mark.parametrize(
    "argv",
    [
        ("--bogus",),
        (),
        ("frobnicate",),
        ("hardware",),
        ("hardware", "show"),
        ("hardware", "show", "wse2", "--bogus"),
        ("model", "show", "llama3-8b", "--context", "many"),
        ("model", "explode"),
    ],
    ids=lambda a: " ".join(a) or "no-args",
)
def test_bad_options_exit_2(argv, run_cli):
    code, out, err = run_cli(*argv)
    one_line_error(code, out, err)
    assert err.startswith("plummer")
    assert out == ""


# ------------------------------------------------------------- console script
def test_console_script_entry_point():
    exe = shutil.which("plummer")
    assert exe is not None, "the 'plummer' console script is not on PATH"
    proc = subprocess.run([exe, "model", "show", "llama3-8b", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["weights_total"] == 8_030_261_248
    assert payload["kv_bytes_per_token_per_layer"] == 4096


def test_console_script_bad_input():
    exe = shutil.which("plummer")
    assert exe is not None
    proc = subprocess.run([exe, "hardware", "show", "no-such-chip"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "'no-such-chip'" in proc.stderr


# ------------------------------------------------------------ bugs found by review (fixed)
def test_output_to_missing_directory_exits_2(run_cli, tmp_path):
    err = one_line_error(*run_cli("hardware", "show", "wse2", "-o", tmp_path / "no" / "x.toml"))
    assert "x.toml" in err


def test_bad_context_names_context(run_cli):
    err = one_line_error(*run_cli("model", "show", "llama3-8b", "--context", "0"))
    assert "context" in err


# ------------------------------------------------------------------ strict JSON
def test_jsonable_turns_nan_and_infinities_into_null():
    from plummer.cli._base import _jsonable

    value = {"a": float("nan"), "b": [np.float64("inf"), -math.inf, 1.5], "c": np.array([np.nan, 2.0]),
             "d": np.int64(3), "e": (np.float32("-inf"),)}
    assert _jsonable(value) == {"a": None, "b": [None, None, 1.5], "c": [None, 2.0], "d": 3, "e": [None]}


def test_print_json_is_strict(capsys):
    from plummer.cli._base import print_json

    print_json({"mean": float("nan"), "max": np.float64("inf"), "rows": [{"x": -math.inf}]})
    payload = strict_json(capsys.readouterr().out)
    assert payload == {"mean": None, "max": None, "rows": [{"x": None}]}


def test_strict_json_rejects_what_python_alone_accepts():
    for text in ('{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}'):
        with pytest.raises(ValueError, match="not strict JSON"):
            strict_json(text)


def test_a_nan_result_prints_strict_json(run_cli):
    # on wse3 none of the published WSE-2 runs was fitted: the fitted errors' mean is NaN
    code, out, err = run_cli("validate", "paper", "--hardware", "wse3", "--json")
    assert code == 0, err
    payload = strict_json(out)
    assert payload["fitted"] == {"n": 0, "mean": None, "max": None}
    assert payload["not_fitted"]["n"] == 6 and payload["not_fitted"]["mean"] > 0


# ---------------------------------------------------------- Ctrl-C and closed pipes
def _raises(exc: BaseException):
    def command(args):
        print("partial output")
        raise exc
    return command


def test_ctrl_c_exits_130_with_one_line(run_cli, monkeypatch):
    monkeypatch.setattr("plummer.cli._specs._model_list", _raises(KeyboardInterrupt()))
    try:
        code, out, err = run_cli("model", "list")
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")
    assert code == 130
    assert err == "plummer: interrupted\n"


def test_broken_pipe_exits_141_quietly(run_cli, monkeypatch):
    monkeypatch.setattr("plummer.cli._specs._model_list", _raises(BrokenPipeError(32, "Broken pipe")))
    code, out, err = run_cli("model", "list")
    assert code == 141
    assert err == ""


#: ``python -m plummer.cli`` run from this checkout (the console script may be another's).
CLI = [sys.executable, "-m", "plummer.cli"]
CHECKOUT = Path(__file__).resolve().parent.parent


def test_cli_into_a_closed_pipe_exits_141_quietly():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: every write fails
    try:
        proc = subprocess.run([*CLI, "model", "list"], cwd=CHECKOUT, stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    finally:
        os.close(write)
    assert proc.returncode == 141
    assert proc.stderr == ""  # no traceback, nor "Exception ignored ... BrokenPipeError" at exit


def test_cli_interrupted_exits_130_with_one_line():
    proc = subprocess.Popen([*CLI, "validate", "gemm"], cwd=CHECKOUT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        while not seen.endswith("validate:"):  # the sweep's progress: main() is running
            char = proc.stderr.read(1)
            assert char, f"the command ended before its progress: {seen!r}"
            seen += char
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert err.endswith("plummer: interrupted\n")
    assert re.split(r"[\r\n]", err.rstrip("\n"))[-1] == "plummer: interrupted"
