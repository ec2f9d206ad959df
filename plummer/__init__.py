"""plummer: PLMR cost models, an exact mesh executor and calibration for LLM inference
on wafer-scale and other 2-D mesh accelerators."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("plummer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
