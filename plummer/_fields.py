"""Field validation shared by the hardware and model specs.

Each check raises :class:`~plummer.errors.SpecError` with a message that names the
field, the value and what is allowed, so bad input never reaches numpy.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

from plummer.errors import SpecError


def require_int(owner: str, field: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum`` (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(
            f"{owner}: field '{field}' = {value!r} must be an integer >= {minimum}"
        )
    if value < minimum:
        raise SpecError(f"{owner}: field '{field}' = {value} must be an integer >= {minimum}")
    return value


def require_number(
    owner: str, field: str, value: Any, minimum: float = 0.0, strict: bool = False
) -> float:
    """Return ``value`` as float if it is a finite number >= ``minimum`` (> if ``strict``)."""
    relation = ">" if strict else ">="
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(
            f"{owner}: field '{field}' = {value!r} must be a finite number {relation} {minimum}"
        )
    if value < minimum or (strict and value == minimum):
        raise SpecError(
            f"{owner}: field '{field}' = {value} must be a finite number {relation} {minimum}"
        )
    return float(value)


def require_bool(owner: str, field: str, value: Any) -> bool:
    """Return ``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise SpecError(f"{owner}: field '{field}' = {value!r} must be true or false")
    return value


def require_str(owner: str, field: str, value: Any) -> str:
    """Return ``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise SpecError(f"{owner}: field '{field}' = {value!r} must be a non-empty string")
    return value


def check_keys(owner: str, data: dict[str, Any], cls: type) -> None:
    """Reject keys of ``data`` that are not fields of dataclass ``cls`` and report missing ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SpecError(
            f"{owner}: unknown field(s) {', '.join(repr(k) for k in unknown)}; "
            f"allowed: {', '.join(names)}"
        )
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [k for k in required if k not in data]
    if missing:
        raise SpecError(f"{owner}: missing required field(s) {', '.join(repr(k) for k in missing)}")


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning I/O and syntax problems into :class:`SpecError`."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SpecError(f"file '{path}' does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"file '{path}' is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"file '{path}' cannot be read: {exc.strerror}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def toml_text(values: dict[str, Any], header: str = "") -> str:
    """``values`` as TOML text: scalars and lists of scalars first, then one ``[table]`` per
    nested mapping (one level); ``None`` values are omitted."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{key} = {_toml_value(val)}" for key, val in values.items()
              if val is not None and not isinstance(val, dict)]
    for key, table in values.items():
        if isinstance(table, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_toml(path: Path, values: dict[str, Any], header: str = "") -> None:
    """Write ``values`` as TOML (:func:`toml_text`): a flat table, with one level of tables."""
    text = toml_text(values, header)
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise SpecError(f"file '{path}' cannot be written: {exc.strerror}") from None
