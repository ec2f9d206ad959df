"""Exceptions raised by plummer.

Every error a user can cause derives from :class:`PlummerError`; the CLI prints its
message on one line and exits with code 2. Messages name the field, the value and
what is allowed.
"""

from __future__ import annotations


class PlummerError(ValueError):
    """Base class of every user-facing plummer error."""


class SpecError(PlummerError):
    """A hardware, model or kernel specification is invalid."""


class CoreMemoryError(PlummerError):
    """A core's tiles would exceed its per-core memory budget (bytes)."""


class RoutingError(PlummerError):
    """A kernel needs more distinct routes (colors) at a core than the hardware has,
    or two routes on one color conflict at a core."""


class DataError(PlummerError):
    """A measurement file or record cannot be used."""


__all__ = ["CoreMemoryError", "DataError", "PlummerError", "RoutingError", "SpecError"]
