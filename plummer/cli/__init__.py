"""The ``plummer`` console script: one entry point, one module per command group."""

from __future__ import annotations

import os
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


#: Exit codes as a shell reports a process ended by SIGINT (Ctrl-C) or SIGPIPE (128 + signal).
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code: 0 ok, 2 bad input (one line on stderr), 130
    interrupted (Ctrl-C: one line on stderr), 141 stdout closed early (``plummer model list |
    head -1``: nothing said, as a shell tool that gets SIGPIPE)."""
    try:
        args = build_parser().parse_args(argv)
        try:
            args.func(args)
        except (PlummerError, CommandLineError) as exc:
            sys.stderr.write(f"plummer {args.command}: error: {exc}\n")
            return 2
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
    except KeyboardInterrupt:
        sys.stderr.write("plummer: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return 0


def _silence_stdout() -> None:
    """Point stdout's file descriptor at /dev/null, so that the interpreter's flush of what is
    still buffered on exit does not raise (and print) a second BrokenPipeError."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured): nothing to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    raise SystemExit(main())
