"""The published WaferLLM runs (WSE-2, LLaMA3-8B) reproduced: scenarios as data, the wse2
preset fitted on them, leave-one-out, and the joint question with the WSE-3 kernels."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from plummer.calibrate import calibrate, load_measurements
from plummer.errors import SpecError
from plummer.hardware import load_hardware
from plummer.scenario import _DATA, load_scenario, shipped_scenarios
from plummer.scenario._validate import validate_paper

WSE3_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wse3"
OBSERVED = ["waferllm-decode-420", "waferllm-decode-540", "waferllm-decode-660",
            "waferllm-prefill-480", "waferllm-prefill-600", "waferllm-prefill-720"]


def _paths(names):
    return [str(_DATA / f"{name}.toml") for name in names]


def test_shipped_scenarios_are_the_six_observations_and_every_released_grid():
    scenarios = shipped_scenarios()
    observed = [s for s in scenarios if s.observed]
    assert sorted(s.name for s in observed) == sorted(OBSERVED)
    values = {s.name: s.value for s in observed}
    published = json.loads((WSE3_DATA.parent / "waferllm-wse2" / "observations.json").read_text())
    for o in published["observations"]:
        assert values[f"waferllm-{o['phase']}-{o['grid'][0]}"] == o["value"]
    released = json.loads((WSE3_DATA.parent / "waferllm-wse2" / "decode_configs.json").read_text())["configs"]
    decode = {s.layout.decode.grid[0]: s for s in scenarios if s.metric == "decode_tokens_per_s"}
    assert sorted(decode) == sorted(c["P"] for c in released)
    for c in released:  # the model as run: one head of the full width, padded dims
        s = decode[c["P"]]
        assert (s.model.hidden, s.model.ffn, s.model.heads, s.model.kv_heads, s.model.head_dim) == (
            c["dim"], c["ffn_dim"], 1, 1, c["head_dim"])
        assert s.layout.decode.group_num_y == c["group_num"]
        assert s.layout.input_tokens + s.layout.output_tokens == c["seq_len"]
        assert "decode_configs" in s.model.source or "MeshInfra" in s.model.source


def test_validate_paper_within_the_bounds():
    result = validate_paper()
    assert result["fitted"]["n"] == 6 and result["fitted"]["max"] <= 0.05
    assert result["leave_one_out"]["n"] == 6 and result["leave_one_out"]["max"] <= 0.10
    assert set(result["fitted_parameters"]) == {"beta", "fma_per_cycle"}


def test_the_wse2_preset_is_what_the_fit_gives():
    spec = load_hardware("wse2")
    fit = calibrate(load_measurements(_paths(OBSERVED)), spec, parameters=["beta", "fma_per_cycle"])
    for name, (value, _) in fit.parameters.items():
        assert getattr(spec, name) == pytest.approx(value, rel=2e-3), name
    assert spec.alpha == 1.0 and "alpha" in spec.uncalibrated
    assert spec.fitted_on == tuple(OBSERVED)


def test_one_fabric_for_both_chips_costs_the_kernels_their_accuracy():
    """The physical question: fitted jointly (alpha, beta shared) on the WSE-3 kernels and the
    WSE-2 layers, MeshGEMV's error grows from under 2% to over 5% on average: the evidence does
    not support one (alpha, beta) for both under plummer's model."""
    kernels = load_measurements(sorted(WSE3_DATA.glob("*.json")))
    both = pd.concat([kernels, load_measurements(_paths(OBSERVED))], ignore_index=True)
    joint = calibrate(both, load_hardware("wse3"), parameters=["alpha", "beta"]).errors.set_index("kind")
    alone = calibrate(kernels, load_hardware("wse3"), parameters=["alpha", "beta"]).errors.set_index("kind")
    assert alone.loc["meshgemv", "mape_fit"] < 0.02
    assert joint.loc["meshgemv", "mape_fit"] > 0.05


def test_prediction_only_scenarios_cannot_be_fitted_and_bad_scenarios_name_the_key(tmp_path):
    from plummer.errors import DataError

    with pytest.raises(DataError, match="prediction-only"):
        load_measurements(_paths(["waferllm-decode-240"]))
    text = (_DATA / "waferllm-decode-420.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('timing = "one-layer-times-layers"', 'timing = "wall-clock"'))
    with pytest.raises(SpecError, match="timing"):
        load_scenario(bad)
    bad.write_text(text.replace("[layout.decode]", "[layout.decode]\nregions = 2"))
    with pytest.raises(SpecError, match="one region"):
        load_scenario(bad)


def test_validate_paper_command(run_cli):
    code, out, err = run_cli("validate", "paper", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert len(payload["rows"]) == len(shipped_scenarios())
    assert payload["fitted"]["max"] <= 0.05 and payload["leave_one_out"]["max"] <= 0.10
