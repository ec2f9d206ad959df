"""PLMR hardware specs: mesh, memory, routes, alpha, beta, link width, compute rate.

Presets are TOML data files in ``plummer/hardware/presets``; a user's own file may say
anything a preset says.
"""

from __future__ import annotations

from plummer.hardware._io import hardware_presets, load_hardware, save_hardware
from plummer.hardware._spec import CALIBRATABLE, HardwareSpec

__all__ = ["CALIBRATABLE", "HardwareSpec", "hardware_presets", "load_hardware", "save_hardware"]
