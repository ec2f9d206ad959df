"""Presets and TOML files for :class:`HardwareSpec`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from plummer import _fields as f
from plummer.errors import SpecError
from plummer.hardware._spec import HardwareSpec

_PRESET_DIR = resources.files("plummer.hardware") / "presets"


def hardware_presets() -> list[str]:
    """Names of the built-in hardware presets."""
    return sorted(p.name[:-5] for p in _PRESET_DIR.iterdir() if p.name.endswith(".toml"))


def load_hardware(name_or_path: str | Path) -> HardwareSpec:
    """Load a preset by name (``wse2``, ``wse3``, ``generic-mesh``) or a TOML file by path."""
    text = str(name_or_path)
    if text in hardware_presets():
        path = Path(str(_PRESET_DIR / f"{text}.toml"))
    else:
        path = Path(text)
        if not path.exists():
            raise SpecError(
                f"hardware '{text}' is neither a preset ({', '.join(hardware_presets())}) "
                "nor an existing TOML file"
            )
    return HardwareSpec.from_dict(f.read_toml(path), owner=f"hardware file '{path}'")


def save_hardware(spec: HardwareSpec, path: str | Path, header: str = "") -> None:
    """Write ``spec`` as a TOML file that :func:`load_hardware` reads back unchanged."""
    f.write_toml(Path(path), spec.to_dict(), header=header or f"plummer hardware spec '{spec.name}'")
