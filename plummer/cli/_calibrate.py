"""``plummer calibrate``: fit the hardware parameters to measured observations and say how
loosely the data pin each one (:func:`plummer.calibrate.analyse`)."""

from __future__ import annotations

import argparse
import math

from plummer.calibrate import BOUNDS, MEASURED, CalibrationReport, analyse, load_measurements
from plummer.cli._base import CommandLineError, add_json_flag, print_json
from plummer.hardware import load_hardware, save_hardware


def register(subparsers: argparse._SubParsersAction) -> None:
    cal = subparsers.add_parser(
        "calibrate", help="fit alpha, beta, FMA rate and overheads to measured cycles",
        description="Fit the PLMR parameters of the closed forms to measured observations "
        "(least squares on relative error, each kind weighted equally), report the error per "
        "kind on the fitted records and on records held out by mesh size, and how loosely the "
        "data pin each parameter: its profile range, each kind's records alone, the fit against "
        "another timing figure, and sweeps whose differences cancel the constant terms.",
    )
    cal.add_argument(
        "data", nargs="+", metavar="DATA",
        help="files of observations, any mix of: measured kernel cycles as .json (a list of records, "
        'or {"results": [...]} as in ../shared/data/wse3) or .csv with the same columns (the fields '
        "say the kind: meshgemm P,M,K,N; meshgemv P,M,N,group_num; shift P,L,M,N; and "
        "mean_cycle_count); published whole-layer runs as scenario .toml files with an "
        "[observation] (plummer/scenario/data); one file per argument, not a directory",
    )
    cal.add_argument("--hardware", default="wse3", help="base hardware preset or TOML (default wse3)")
    cal.add_argument("--kind", choices=tuple(MEASURED),
                     help="kind of every record (default: recognised from the fields)")
    cal.add_argument("--holdout-min-p", dest="holdout_min_p", type=int,
                     help="hold out records with P >= N and report their error apart")
    cal.add_argument("--fit", nargs="+", choices=tuple(BOUNDS), metavar="PARAM",
                     help=f"parameters to fit (default: all the data identify): {', '.join(BOUNDS)}")
    figures = sorted({name for kind in MEASURED.values() for name in kind.figures})
    cal.add_argument("--figure", action="append", metavar="FIGURE|KIND=FIGURE",
                     help="compare every kind that offers FIGURE (or one KIND; repeatable) with "
                     f"that figure instead of what it measured ({', '.join(figures)})")
    cal.add_argument("--tolerance", type=float, default=0.10,
                     help="profile ranges hold the values whose fit error is at most (1 + this) "
                     "times the minimum (default 0.10)")
    cal.add_argument("--no-profile", dest="profile", action="store_false",
                     help="skip the profiles (faster; identification from the Jacobians alone)")
    cal.add_argument("-o", "--output", help="write the fitted hardware spec to this TOML file")
    add_json_flag(cal)
    cal.set_defaults(func=_calibrate)


def _figure_option(values: list[str] | None) -> str | dict[str, str] | None:
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    mapping = {}
    for value in values:
        kind, sep, name = value.partition("=")
        if not sep or not kind or not name:
            raise CommandLineError(
                f"--figure {value!r}: give one FIGURE for every kind, or KIND=FIGURE for each kind"
            )
        mapping[kind] = name
    return mapping


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}%"


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4g}"


def _cell(report: CalibrationReport, kind: str, name: str) -> str:
    """A kind's own value of a parameter as the table shows it."""
    fit = report.kinds[kind]
    status = fit.status[name]
    if status == "-":
        return "-"
    if status == "confounded":
        return "conf."
    if fit.calibration is None:
        return "?"
    value = _num(fit.calibration.parameters[name][0])
    return f"({value})" if status == "weak" else value


def _range(report: CalibrationReport, name: str) -> str:
    profile = report.profiles.get(name)
    if profile is None:
        return "-"
    low = f"{_num(profile.low)}{' (bound)' if profile.low_open else ''}"
    high = f"{_num(profile.high)}{' (bound)' if profile.high_open else ''}"
    return f"{low} .. {high}"


def _step(step: float) -> str:
    return f"{step:+.3g}"


def _print_report(report: CalibrationReport, base_name: str, records: int) -> None:
    joint = report.calibration
    held = int(joint.records["held_out"].sum())
    where = f" (P >= {joint.holdout_min_p})" if joint.holdout_min_p is not None else ""
    print(f"calibrated {base_name} on {records} records: {records - held} fitted, {held} held out{where}")
    print("compared with: " + ", ".join(f"{k} {v}" for k, v in joint.figures.items()))
    for name in sorted(set(joint.figures.values())):
        owner = next(k for k, v in joint.figures.items() if v == name)
        print(f"  {name}: {MEASURED[owner].figures[name]}")
    print(f"fit error (RMS relative error, each kind weighted equally): {_pct(joint.rms)}")
    if report.profiles:
        print(f"profile range: where the fit error, the others refitted, stays <= "
              f"{_pct((1 + report.tolerance) * joint.rms)} (+{100 * report.tolerance:.0f}%)")
    kinds = list(report.kinds)
    print()
    header = f"{'parameter':<27}{'joint':>9}{'1-sigma':>9}  {'profile range':<26}"
    header += "".join(f"{k:>10}" for k in kinds) + "  identified alone by"
    print(header)
    for name, (value, sigma) in joint.parameters.items():
        line = f"{name:<27}{_num(value):>9}{sigma:>9.2g}  {_range(report, name):<26}"
        line += "".join(f"{_cell(report, k, name):>10}" for k in kinds)
        print(line + "  " + (", ".join(report.identified_by(name)) or "none (jointly only)"))
    if joint.fixed:
        print(f"not identified by these data (kept): {', '.join(joint.fixed)}")
    print("1-sigma: from the Jacobian, treating the residuals as noise (they are the model's error).")
    print("per kind: its records alone, the parameters it identifies refitted and the others held at "
          "the joint values; conf. = confounded, - = not used, "
          + ("(x) = weak (its own profile reaches a bound)." if report.profiles
             else "no profiles: a value wherever its Jacobian column is independent."))

    combinations = [(k, c) for k, fit in report.kinds.items() for c in fit.identification.combinations]
    if combinations:
        print("\nconfounded on one kind's records (its predictions do not move along):")
        for kind, combination in combinations:
            print(f"  {kind:<10}" + ", ".join(f"{n} {_step(s)}" for n, s in combination.items()))
    print("conditioning (largest / smallest singular value, unit Jacobian columns of the parameters "
          "it fits): " + ", ".join(f"{k} {fit.identification.condition:.3g}" for k, fit in report.kinds.items()))
    disagreements = report.disagreements()
    if report.profiles:
        print("\nkinds alone vs joint: " + ("every kind's own profile holds the joint value" if not disagreements else ""))
        for d in disagreements:
            print(f"  {d['parameter']}: {d['kind']} alone {_num(d['value'])} "
                  f"({_num(d['low'])} .. {_num(d['high'])}) excludes the joint {_num(d['joint'])}")

    if report.variants:
        labels = list(report.variants)
        print("\nvariants: the joint fit again with one kind compared with another figure")
        print(f"{'parameter':<27}{'joint':>15}" + "".join(f"{label:>20}" for label in labels) + f"{'spread':>22}")
        for name, (value, _) in joint.parameters.items():
            low, high = report.spread(name)
            cells = "".join(
                f"{_num(report.variants[label].parameters.get(name, (math.nan, 0))[0]):>20}" for label in labels
            )
            print(f"{name:<27}{_num(value):>15}{cells}{_num(low) + ' .. ' + _num(high):>22}")
        print(f"{'fit error':<27}{_pct(joint.rms):>15}"
              + "".join(f"{_pct(report.variants[label].rms):>20}" for label in labels))
        for row in joint.errors.to_dict(orient="records"):
            kind = row["kind"]
            cells = []
            for label in labels:
                other = report.variants[label].errors.set_index("kind").loc[kind]
                cells.append(f"{_pct(other['mape_fit']) + ' / ' + _pct(other['mape_holdout']):>20}")
            joint_cell = _pct(row["mape_fit"]) + " / " + _pct(row["mape_holdout"])
            print(f"{kind + ' error fit / held':<27}{joint_cell:>15}" + "".join(cells))
        print("error: mean relative error on the fitted / held-out records; spread: over the joint fit, "
              "the variants and the kinds that identify the parameter alone")

    if report.sweeps:
        print("\nsweeps: fitted on the differences within groups of records equal in every other field "
              "(what does not change along the sweep cancels)")
        print(f"{'kind':<10}{'field':<11}{'P':>5}  {'figure':<10}{'groups':>7}  {'fitted':<28}"
              f"{'rms':>8}{'rms joint':>11}{'condition':>11}")
        for s in report.sweeps:
            size = "all" if s.size is None else str(s.size)
            fitted = " ".join(f"{n}={v:.3g}" for n, v in s.parameters.items())
            print(f"{s.kind:<10}{s.field:<11}{size:>5}  {s.figure:<10}{s.groups:>7}  {fitted:<28}"
                  f"{s.rms:>8.3g}{s.rms_given:>11.3g}{s.condition:>11.3g}")
        print("rms: of the differences' residuals, in the kind's unit, at that fit and at the joint fit")

    print()
    print(f"{'kind':<10}{'figure':<10}{'n_fit':>7}{'mape_fit':>10}{'max_fit':>10}"
          f"{'n_hold':>8}{'mape_hold':>11}{'max_hold':>10}")
    for row in joint.errors.to_dict(orient="records"):
        print(f"{row['kind']:<10}{row['figure']:<10}{row['n_fit']:>7}{_pct(row['mape_fit']):>10}"
              f"{_pct(row['max_err_fit']):>10}{row['n_holdout']:>8}"
              f"{_pct(row['mape_holdout']):>11}{_pct(row['max_err_holdout']):>10}")


def _calibrate(args: argparse.Namespace) -> None:
    base = load_hardware(args.hardware)
    records = load_measurements(args.data, kind=args.kind)
    report = analyse(
        records, base, holdout_min_p=args.holdout_min_p, parameters=args.fit,
        figure=_figure_option(args.figure), tolerance=args.tolerance, profile=args.profile,
    )
    spec = report.calibration.spec
    if args.output:
        save_hardware(spec, args.output, header=(
            f"plummer hardware spec '{spec.name}': {spec.calibration}\n"
            f"written by plummer calibrate from {', '.join(args.data)}"
        ))
    if args.json:
        print_json(report.as_dict())
        return
    _print_report(report, base.name, len(records))
    if args.output:
        print(f"\nwrote {args.output}")
