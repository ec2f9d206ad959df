"""The ``plummer`` console script: one entry point, one module per command group."""

from __future__ import annotations

import sys

from plummer import __version__
from plummer.cli import _calibrate, _kernels, _predict, _report, _specs, _study
from plummer.cli._base import CommandLineError, Parser
from plummer.errors import PlummerError


def build_parser() -> Parser:
    """The full argument parser (exposed for documentation and tests)."""
    parser = Parser(
        prog="plummer",
        description="PLMR cost models, an exact mesh executor and calibration for LLM "
        "inference on wafer-scale 2-D mesh accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"plummer {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _specs.register(subparsers)
    _kernels.register(subparsers)
    _calibrate.register(subparsers)
    _predict.register(subparsers)
    _study.register(subparsers)
    _report.register(subparsers)
    _kernels.register_benchmark(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (PlummerError, CommandLineError) as exc:
        sys.stderr.write(f"plummer {args.command}: error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
