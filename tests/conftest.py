"""Shared fixtures: run the CLI in-process and capture what the user would see."""

from __future__ import annotations

import json

import pytest

from plummer.cli import main


def _reject_constant(name: str) -> None:
    raise ValueError(f"not strict JSON: {name} (NaN and infinities must be printed as null)")


def strict_json(text: str) -> dict:
    """``text`` parsed as exactly one strict JSON object: ``NaN``, ``Infinity`` and
    ``-Infinity``, which Python's parser alone accepts, raise ``ValueError``."""
    payload = json.loads(text, parse_constant=_reject_constant)
    assert isinstance(payload, dict), f"--json must print one object, not {type(payload).__name__}"
    return payload


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*argv) -> (exit code, stdout, stderr)``; argparse's SystemExit becomes the code.

    A successful command given ``--json`` must have printed exactly one strict JSON object
    (checked here, so that every test of a ``--json`` command checks it)."""

    def run(*argv: str) -> tuple[int, str, str]:
        argv = [str(a) for a in argv]
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        if code == 0 and "--json" in argv and "--help" not in argv and "-h" not in argv:
            strict_json(captured.out)
        return code, captured.out, captured.err

    return run
