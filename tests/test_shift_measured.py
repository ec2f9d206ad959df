"""The shift kernel against the measured WSE-3 shift records, in the joint calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plummer.calibrate import calibrate, load_measurements
from plummer.hardware import load_hardware

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wse3"


def test_joint_fit_with_shift_records():
    records = load_measurements(sorted(DATA.glob("*.json")))
    result = calibrate(records, load_hardware("wse3"), holdout_min_p=464)
    errors = result.errors.set_index("kernel")
    for kernel in ("meshgemm", "meshgemv"):
        assert errors.loc[kernel, "mape_holdout"] <= 0.03, kernel
        assert errors.loc[kernel, "max_err_holdout"] <= 0.10, kernel
    # shift: every core steps L times, so L >= P is no longer off by up to 66%
    assert errors.loc["shift", "mape_fit"] <= 0.04
    assert errors.loc["shift", "max_err_fit"] <= 0.10
    table = result.records[result.records["kernel"] == "shift"]
    beyond = table[table["L"] >= table["P"]]
    assert len(beyond) >= 8 and np.all(beyond["rel_error"].abs() <= 0.10)
    # the shift step 2 mo + alpha + T and the GEMV fixed cost 3 mo + launch share mo, launch
    mo = result.parameters["message_overhead_cycles"][0]
    assert 25.0 <= mo <= 40.0
