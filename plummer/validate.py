"""Closed forms against the executor: the table ``plummer validate`` prints.

For every kernel of the chosen families, each configuration of its
:meth:`~plummer.kernels.Kernel.sweep` runs on the executor and through the closed form;
a row holds both cycle counts (makespan and mean over cores) and their relative error.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.kernels import KERNELS, families

#: Families ``plummer validate all`` covers, in order.
VALIDATION_FAMILIES = ("gemm", "allreduce", "broadcast", "gemv", "shift")


def _config_text(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def validate_kernels(
    spec: HardwareSpec, which: Iterable[str], progress: bool = False
) -> pd.DataFrame:
    """Run every sweep configuration of the kernels of families ``which``.

    Returns one row per configuration: ``family, algo, config, predicted, executed,
    rel_error, predicted_mean, executed_mean, rel_error_mean, link_waits, correct``
    (cycles; relative errors as fractions of the executed value).
    """
    chosen = list(which)
    for family in chosen:
        if family not in families():
            raise SpecError(f"kernel family '{family}' is unknown; allowed: {', '.join(families())}")
    jobs = [
        (family, kernel, config)
        for (family, _), kernel in KERNELS.items()
        if family in chosen
        for config in kernel.sweep()
    ]
    if progress:
        from tqdm import tqdm

        jobs = tqdm(jobs, desc="validate", unit="run", leave=False)
    rows = []
    for family, kernel, config in jobs:
        run = kernel.execute(spec, **config)
        cost = kernel.cost(spec, **config)
        executed, predicted = run.execution.cycles, float(cost.cycles)
        executed_mean, predicted_mean = run.execution.mean_core_cycles, float(cost.mean_core_cycles)
        rows.append(
            {
                "family": family,
                "algo": kernel.name,
                "config": _config_text(config),
                "predicted": predicted,
                "executed": executed,
                "rel_error": abs(predicted - executed) / executed,
                "predicted_mean": predicted_mean,
                "executed_mean": executed_mean,
                "rel_error_mean": abs(predicted_mean - executed_mean) / executed_mean,
                "link_waits": run.execution.link_waits,
                "correct": run.correct,
            }
        )
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and max relative error per (family, algo); ``max_error_uncontended`` over the
    runs where no link was shared by two messages at once."""
    table = table.assign(uncontended=table["rel_error"].where(table["link_waits"] == 0))
    return table.groupby(["family", "algo"], sort=False).agg(
        runs=("rel_error", "size"),
        mean_error=("rel_error", "mean"),
        max_error=("rel_error", "max"),
        max_error_uncontended=("uncontended", "max"),
        max_error_mean=("rel_error_mean", "max"),
        all_correct=("correct", "all"),
    ).reset_index()


__all__ = ["VALIDATION_FAMILIES", "summarize", "validate_kernels"]
