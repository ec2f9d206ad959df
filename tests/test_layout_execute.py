"""Whole layers on the executor: the plans' data flow equals a numpy transformer, and every op,
layer, transfer and phase takes the cycles the layouts' closed form predicts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plummer.errors import SpecError
from plummer.hardware import load_hardware
from plummer.layout import Layout
from plummer.layout._execute import TINY, execute_layout, validation_layouts
from plummer.layout._predict import predict

SPECS = [load_hardware("wse3"), load_hardware("wse2").replace(alpha=0.9, beta=30.0)]


@pytest.mark.parametrize("name, layout", validation_layouts(), ids=[n for n, _ in validation_layouts()])
def test_plans_run_on_the_executor_as_the_closed_form_says(name, layout):
    spec = SPECS[0]
    run = execute_layout(spec, TINY, layout)
    assert run.prefill_error < 1e-4 and run.decode_error < 1e-4  # fp32 against the reference
    assert run.max_op_error < 1e-9 and run.max_layer_error < 1e-9 and run.max_phase_error < 1e-9
    assert {r["phase"] for r in run.phases} == {"prefill", "decode"}
    boundaries = layout.prefill.regions - 1 + layout.decode.regions - 1
    assert len(run.transfers) >= boundaries  # the activations moved between the regions
    # the phase totals are what `plummer predict` reports
    m = predict(spec, TINY, layout).metrics
    prefill = next(r for r in run.phases if r["phase"] == "prefill")
    assert prefill["executed"] == pytest.approx(m["ttft_cycles"], rel=1e-9)


def test_another_spec_is_exact_too():
    _, layout = validation_layouts()[1]
    run = execute_layout(SPECS[1], TINY, layout)
    assert run.max_op_error < 1e-9 and run.max_phase_error < 1e-9 and run.decode_error < 1e-4


def test_a_closed_form_off_by_a_few_cycles_is_caught(monkeypatch):
    """A deliberate break: GEMM-T's closed form 5 cycles long; the comparison sees it."""
    from plummer.kernels import get_kernel

    kernel = get_kernel("gemm", "gemm-t")
    honest = type(kernel).cost

    def off(self, spec, **params):
        cost = honest(self, spec, **params)
        return type(cost)(**(cost.__dict__ | {"cycles": cost.cycles + 5.0}))

    monkeypatch.setattr(type(kernel), "cost", off)
    run = execute_layout(SPECS[0], TINY, validation_layouts()[0][1])
    bad = [r for r in run.runs if r.rel_error > 1e-9]
    assert bad and {r.op for r in bad} == {"scores"}
    assert run.max_layer_error > 1e-9


def test_grids_beyond_the_executor_are_refused():
    layout = Layout.from_dict({"prefill": {"grid": [32, 32]}, "decode": {"grid": [4, 4]}, "input_tokens": 8})
    with pytest.raises(SpecError, match="up to 16x16"):
        execute_layout(SPECS[0], TINY, layout)


def test_validate_layout_command(run_cli):
    code, out, err = run_cli("validate", "layout", "--json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert len(rows) == len(validation_layouts())
    assert all(r["max_phase_error"] < 1e-9 and max(r["prefill_error"], r["decode_error"]) < 1e-4 for r in rows)
    assert len({round(r["prefill_cycles"]) for r in rows}) == len(rows)  # the variants differ
    assert np.all([r["op_runs"] > 100 for r in rows])
