"""``plummer calibrate``: fit the hardware parameters to measured cycles."""

from __future__ import annotations

import argparse
import math

from plummer.calibrate import BOUNDS, KERNEL_FIELDS, calibrate, load_measurements
from plummer.cli._base import add_json_flag, print_json
from plummer.hardware import load_hardware, save_hardware


def register(subparsers: argparse._SubParsersAction) -> None:
    cal = subparsers.add_parser(
        "calibrate", help="fit alpha, beta, FMA rate and overheads to measured cycles",
        description="Fit the PLMR parameters of the closed forms to measured kernel cycles "
        "(least squares on relative error) and report the error per kernel, on the fitted "
        "records and on records held out by mesh size.",
    )
    cal.add_argument("data", nargs="+", metavar="DATA", help="measurement files (.json or .csv)")
    cal.add_argument("--hardware", default="wse3", help="base hardware preset or TOML (default wse3)")
    cal.add_argument("--kernel", choices=tuple(KERNEL_FIELDS),
                     help="kernel of every record (default: recognised from the fields)")
    cal.add_argument("--holdout-min-p", dest="holdout_min_p", type=int,
                     help="hold out records with P >= N and report their error apart")
    cal.add_argument("--fit", nargs="+", choices=tuple(BOUNDS), metavar="PARAM",
                     help=f"parameters to fit (default: all the data identify): {', '.join(BOUNDS)}")
    cal.add_argument("-o", "--output", help="write the fitted hardware spec to this TOML file")
    add_json_flag(cal)
    cal.set_defaults(func=_calibrate)


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}%"


def _calibrate(args: argparse.Namespace) -> None:
    base = load_hardware(args.hardware)
    records = load_measurements(args.data, kernel=args.kernel)
    result = calibrate(records, base, holdout_min_p=args.holdout_min_p, parameters=args.fit)
    if args.output:
        save_hardware(result.spec, args.output, header=(
            f"plummer hardware spec '{result.spec.name}': {result.spec.calibration}\n"
            f"written by plummer calibrate from {', '.join(args.data)}"
        ))
    if args.json:
        print_json(result.as_dict())
        return
    print(f"calibrated {base.name} on {len(records)} records")
    print(f"{'parameter':<28}{'value':>12}{'sigma':>10}")
    for name, (value, sigma) in result.parameters.items():
        print(f"{name:<28}{value:>12.4g}{sigma:>10.2g}")
    if result.fixed:
        print(f"not identified by these data (kept): {', '.join(result.fixed)}")
    print()
    print(f"{'kernel':<10}{'n_fit':>7}{'mape_fit':>10}{'max_fit':>10}"
          f"{'n_hold':>8}{'mape_hold':>11}{'max_hold':>10}")
    for row in result.errors.to_dict(orient="records"):
        print(f"{row['kernel']:<10}{row['n_fit']:>7}{_pct(row['mape_fit']):>10}"
              f"{_pct(row['max_err_fit']):>10}{row['n_holdout']:>8}"
              f"{_pct(row['mape_holdout']):>11}{_pct(row['max_err_holdout']):>10}")
    if args.output:
        print(f"\nwrote {args.output}")
