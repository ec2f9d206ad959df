"""The examples in docstrings run and print what they say (``python -m doctest``)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import plummer


def _modules_with_examples() -> list[str]:
    finder = doctest.DocTestFinder()
    names = []
    for info in pkgutil.walk_packages(plummer.__path__, "plummer."):
        module = importlib.import_module(info.name)
        if any(test.examples for test in finder.find(module)):
            names.append(info.name)
    return names


def test_the_package_has_examples():
    assert "plummer.mesh._executor" in _modules_with_examples()


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples_run(name):
    outcome = doctest.testmod(importlib.import_module(name))
    assert outcome.failed == 0
