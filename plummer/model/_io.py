"""Presets and TOML files for :class:`ModelSpec`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from plummer import _fields as f
from plummer.errors import SpecError
from plummer.model._hf import model_from_hf_config
from plummer.model._spec import ModelSpec

_PRESET_DIR = resources.files("plummer.model") / "presets"


def model_presets() -> list[str]:
    """Names of the built-in model presets."""
    return sorted(p.name[:-5] for p in _PRESET_DIR.iterdir() if p.name.endswith(".toml"))


def load_model(name_or_path: str | Path) -> ModelSpec:
    """Load a preset by name, a plummer model TOML file, or a Hugging Face ``config.json``."""
    text = str(name_or_path)
    if text in model_presets():
        path = Path(str(_PRESET_DIR / f"{text}.toml"))
    else:
        path = Path(text)
        if not path.exists():
            raise SpecError(
                f"model '{text}' is neither a preset ({', '.join(model_presets())}) "
                "nor an existing file"
            )
        if path.suffix == ".json":
            return model_from_hf_config(path)
    return ModelSpec.from_dict(f.read_toml(path), owner=f"model file '{path}'")


def save_model(spec: ModelSpec, path: str | Path, header: str = "") -> None:
    """Write ``spec`` as a TOML file that :func:`load_model` reads back unchanged."""
    f.write_toml(Path(path), spec.to_dict(), header=header or f"plummer model '{spec.name}'")
