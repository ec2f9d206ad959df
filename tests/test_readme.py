"""The README's example outputs are what the commands print today."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

# numbers that depend on the machine's BLAS (fp32 rounding), not on plummer
_MACHINE_DEPENDENT = ("max_abs_error", "predicted_rel_error")


def _examples() -> list[tuple[str, str]]:
    """(command, printed output) of every ``$ plummer ...`` line in a fenced block that is
    followed by its output."""
    examples = []
    for block in re.findall(r"```\n(.*?)```", README.read_text(), flags=re.DOTALL):
        lines = block.splitlines()
        if lines and lines[0].startswith("$ plummer ") and len(lines) > 1:
            examples.append((lines[0][2:], "\n".join(lines[1:])))
    return examples


def _comparable(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()
            if not line.strip().startswith(_MACHINE_DEPENDENT)]


def test_the_readme_shows_a_run_example():
    assert any(command.startswith("plummer run gemm") for command, _ in _examples())


@pytest.mark.parametrize(
    "command, shown", [pytest.param(*example, id=example[0]) for example in _examples()]
)
def test_readme_example_output_is_current(run_cli, command, shown):
    code, out, err = run_cli(*shlex.split(command)[1:])
    assert code == 0, err
    assert _comparable(out) == _comparable(shown)
