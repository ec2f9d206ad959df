"""Kernels: closed-form PLMR costs (vectorised) and executor programs, side by side.

:func:`get_kernel` maps the CLI's names to kernels; :data:`KERNELS` lists them all.
"""

from __future__ import annotations

from plummer.errors import SpecError
from plummer.kernels import allreduce, broadcast, gemv, shift
from plummer.kernels._base import COST_KEYS, Cost, Kernel, KernelRun
from plummer.kernels.cannon import Cannon
from plummer.kernels.gemmt import GEMMT
from plummer.kernels.meshgemm import MeshGEMM
from plummer.kernels.summa import SUMMA, SUMMARelay

#: Every kernel by (family, algorithm). The family is the CLI's KERNEL argument.
KERNELS: dict[tuple[str, str], Kernel] = {
    (kernel.family, kernel.name): kernel
    for kernel in (
        MeshGEMM(),
        SUMMA(),
        SUMMARelay(),
        Cannon(),
        GEMMT(),
        *allreduce.KERNELS,
        *broadcast.KERNELS,
        *gemv.KERNELS,
        *shift.KERNELS,
    )
}


def families() -> list[str]:
    """Kernel families in the order the CLI lists them."""
    return list(dict.fromkeys(family for family, _ in KERNELS))


def algorithms(family: str) -> list[str]:
    """Algorithms of ``family``."""
    return [name for fam, name in KERNELS if fam == family]


def get_kernel(family: str, algorithm: str) -> Kernel:
    """The kernel ``algorithm`` of ``family``; a clear error for unknown names."""
    if family not in families():
        raise SpecError(f"kernel '{family}' is unknown; allowed: {', '.join(families())}")
    try:
        return KERNELS[(family, algorithm)]
    except KeyError:
        raise SpecError(
            f"--algo '{algorithm}' is not an algorithm of '{family}'; allowed: "
            f"{', '.join(algorithms(family))}"
        ) from None


__all__ = ["COST_KEYS", "KERNELS", "Cost", "Kernel", "KernelRun", "algorithms", "families", "get_kernel"]
