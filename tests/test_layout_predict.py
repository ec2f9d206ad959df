"""``plummer predict`` and the layout batch API: review fixes (default search, layout files
with CLI overrides, column checks, messages), each pinned by a test."""

from __future__ import annotations

import numpy as np
import pytest

from plummer.hardware import load_hardware
from plummer.layout import GEMM_ALGOS
from plummer.layout._arrays import default_head_groups
from plummer.layout._evaluate import padded_gemm
from plummer.model import load_model, model_presets

WSE2 = load_hardware("wse2")
WSE3 = load_hardware("wse3")
LLAMA = load_model("llama3-8b")


@pytest.mark.parametrize("name", sorted(model_presets()))
def test_one_head_group_always_fits_two_columns(name):
    # why default_head_groups needs no error path: g = 1 is allowed whenever p >= 2
    assert default_head_groups(load_model(name), 2) == 1
    assert default_head_groups(load_model(name), 3, 5) == 1


def test_padded_gemm_knows_exactly_the_layout_gemm_algorithms():
    one = np.asarray([7])
    for algo in (*GEMM_ALGOS, "gemm-t"):
        padded_gemm(algo, np.asarray([4]), np.asarray([6]), one, one, one)
    with pytest.raises(ValueError):
        padded_gemm("meshgemm-rowwise", np.asarray([4]), np.asarray([6]), one, one, one)


def _error(run_cli, *argv: str) -> str:
    """The one-line error of a ``plummer predict`` run that must fail with exit code 2."""
    code, out, err = run_cli("predict", *argv)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("option", ["--prefill-grid", "--decode-grid"])
@pytest.mark.parametrize("value", ["0x5", "1x5", "5x1", "axb", "4x4x4"])
def test_grid_options_are_named_and_need_two_cores_per_side(run_cli, option, value):
    err = _error(run_cli, option, value)
    assert f"{option} '{value}'" in err and ">= 2" in err
    assert "--mesh" not in err and "pf_p" not in err and "dc_p" not in err
