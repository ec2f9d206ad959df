"""What the kernel test files share: specs and small helpers (imported as ``_support``)."""

from __future__ import annotations

import numpy as np

from plummer.hardware import load_hardware

PRESET = load_hardware("wse3")
#: A fitted-looking spec distinct from the preset, so tests do not depend on the preset's values.
CALIBRATED = PRESET.replace(
    alpha=2.85, beta=9.2, fma_per_cycle=4.9, vector_op_overhead_cycles=2.1,
    loop_overhead_cycles=39.0, step_overhead_cycles=121.0, message_overhead_cycles=33.5,
    launch_overhead_cycles=51.0,
)
SPECS = [PRESET, CALIBRATED]
#: No software overheads and one FMA per cycle: hops weigh the most against products.
BARE = PRESET.replace(
    fma_per_cycle=1.0, vector_op_overhead_cycles=0.0, loop_overhead_cycles=0.0,
    step_overhead_cycles=0.0, message_overhead_cycles=0.0, launch_overhead_cycles=0.0,
)


def square_config(p: int, mt: int, kt: int, nt: int) -> dict[str, int]:
    """A GEMM on a ``p`` x ``p`` mesh with tiles ``mt x kt x nt``."""
    return {"p": p, "q": p, "m": p * mt, "k": p * kt, "n": p * nt}


def slope(kernel, spec, config, field):
    """The executor's d cycles / d ``field`` (``alpha``: hops, ``beta``: stages on the
    critical path), by perturbation."""
    delta = 1e-3
    base = kernel.execute(spec, **config).execution.cycles
    moved = kernel.execute(spec.replace(**{field: getattr(spec, field) + delta}), **config).execution.cycles
    return (moved - base) / delta


def random_spec(rng: np.random.Generator, stress: bool):
    """A spec with random timing parameters; ``stress`` makes hops dear against products."""
    return PRESET.replace(
        alpha=rng.uniform(0.1, 25.0 if stress else 5.0), beta=rng.uniform(0.0, 20.0),
        fma_per_cycle=rng.uniform(1.0, 8.0), vector_op_overhead_cycles=rng.uniform(0.0, 3.0),
        loop_overhead_cycles=rng.uniform(0.0, 20.0 if stress else 40.0),
        step_overhead_cycles=rng.uniform(0.0, 60.0 if stress else 200.0),
        message_overhead_cycles=float(rng.choice([0.0, rng.uniform(0.0, 40.0)])),
        launch_overhead_cycles=rng.uniform(0.0, 60.0),
    )
