"""What every plummer command shares: the argument parser, output and error handling."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

import numpy as np


class CommandLineError(Exception):
    """Bad command-line input found after parsing (printed on one line, exit code 2)."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--json``: print exactly one JSON object on stdout instead of text."""
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout instead of text"
    )


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays as Python numbers and lists,
    paths as strings, and NaN and infinities as ``None`` (strict JSON has no such numbers:
    ``NaN`` would break every parser but Python's).

    Example:
        >>> _jsonable({"a": np.float64("nan"), "b": [np.int64(3), float("inf")], "c": (1.5,)})
        {'a': None, 'b': [3, None], 'c': [1.5]}
    """
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(payload: dict[str, Any]) -> None:
    """Print ``payload`` as one strict JSON object (numpy values converted, NaN and
    infinities as ``null``)."""
    sys.stdout.write(json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n")


def print_fields(payload: dict[str, Any], title: str | None = None) -> None:
    """Print ``payload`` as aligned ``key  value`` lines."""
    if title:
        print(title)
    width = max((len(k) for k in payload), default=0)
    for key, value in payload.items():
        if isinstance(value, float):
            text = f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            text = f"{value:,}"
        elif isinstance(value, (list, tuple)):
            text = ", ".join(str(v) for v in value) or "-"
        else:
            text = str(value)
        print(f"  {key:<{width}}  {text}")


def emit(payload: dict[str, Any], as_json: bool, title: str) -> None:
    """Print ``payload``: one JSON object with ``as_json``, else aligned fields under ``title``."""
    if as_json:
        print_json(payload)
    else:
        print_fields(payload, title=title)


def parse_mesh(text: str, option: str = "--mesh", minimum: int = 1) -> tuple[int, int]:
    """Parse ``PxQ`` (or ``P``, meaning ``PxP``) into (width, height) cores, each at least
    ``minimum``; errors name ``option``."""
    parts = text.lower().split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        dims = []
    if len(dims) == 1:
        dims = dims * 2
    if len(dims) != 2 or min(dims) < minimum:
        raise CommandLineError(f"{option} {text!r} must be PxQ with integers >= {minimum}, "
                               "e.g. 16x16")
    return dims[0], dims[1]
