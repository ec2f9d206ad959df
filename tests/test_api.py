"""The Python API mirrors the CLI: what the commands call is public (in a package's
``__all__``), and the README's list of calls names things that exist."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import plummer.cli

CLI = Path(plummer.cli.__file__).parent
README = Path(__file__).resolve().parent.parent / "README.md"


def _cli_imports() -> list[tuple[str, str, str]]:
    """(CLI module file, module, name) of every ``from plummer... import name`` and ``from
    search... import name`` in the CLI's modules (the CLI's own modules aside)."""
    found = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("plummer", "search") \
                    and not node.module.startswith("plummer.cli"):
                found += [(path.name, node.module, alias.name) for alias in node.names]
    return found


IMPORTS = _cli_imports()


def test_the_cli_imports_from_plummer():
    modules = {module for _, module, _ in IMPORTS}
    assert {"plummer.layout", "plummer.report", "plummer.scenario", "plummer.calibrate"} <= modules


@pytest.mark.parametrize("where, module, name", IMPORTS, ids=[f"{w}:{m}.{n}" for w, m, n in IMPORTS])
def test_what_the_cli_calls_is_public(where, module, name):
    assert not any(part.startswith("_") for part in module.split(".")), \
        f"{where} imports {name} from the private module {module}"
    public = importlib.import_module(module)
    assert name in getattr(public, "__all__", ()), f"{module}.__all__ lacks {name} ({where} uses it)"


@pytest.mark.parametrize("package", ["plummer.calibrate", "plummer.layout", "plummer.report", "plummer.scenario",
                                     "plummer.validate", "plummer.benchmark", "plummer.errors", "search"])
def test_every_exported_name_exists(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


def test_the_calibration_kinds_are_public():
    from plummer import calibrate

    assert {"ScenarioObservation", "MeasuredKernel", "WSE3_DATA", "analyse", "load_measurements"} <= set(
        calibrate.__all__)


def _readme_api() -> list[str]:
    paragraph = re.search(r"The Python API mirrors the CLI.*?\n\n", README.read_text(), flags=re.DOTALL).group(0)
    return re.findall(r"`((?:plummer|search)\.[\w.]+)", paragraph)


def test_the_readme_lists_a_call_per_command():
    names = _readme_api()
    for call in ("plummer.layout.predict", "plummer.scenario.validate_paper", "plummer.calibrate.analyse",
                 "plummer.report.validate_report", "plummer.kernels.get_kernel", "search.run_study"):
        assert call in names


@pytest.mark.parametrize("dotted", _readme_api())
def test_the_readme_api_names_exist(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"{dotted}: {'.'.join(parts[:cut])} has no {attr}"
            obj = getattr(obj, attr)
        if cut < len(parts):
            module = importlib.import_module(".".join(parts[:cut]))
            assert parts[cut] in getattr(module, "__all__", (parts[cut],)), f"{dotted} is not exported"
        return
    pytest.fail(f"{dotted} does not import")
