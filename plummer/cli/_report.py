"""``plummer report``: interactive HTML reports (one self-contained file each, in reports/).

::

    plummer report STUDY.toml [--storage URL] [-o FILE.html]   # what a study found
    plummer report validate [-o FILE.html]                      # closed forms vs executor and WSE-3
    plummer report paper [--hardware FILE] [-o FILE.html]       # the published WaferLLM runs reproduced
    plummer report layout --layout FILE | --model ... [-o FILE.html]
    plummer report mesh KERNEL --mesh PxQ ... [-o FILE.html]    # one executor run as heatmaps

``plummer report STUDY.toml`` is short for ``plummer report study STUDY.toml``. Each prints
where it wrote the file; ``--json`` prints one JSON object (the path and the figures'
summaries).
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plummer.calibrate import WSE3_DATA
from plummer.cli import _kernels, _predict
from plummer.cli._base import CommandLineError, Parser, add_json_flag, print_json

#: Where reports go unless ``-o`` says otherwise (relative to the working directory).
REPORTS = Path("reports")
#: The measured WSE-3 data ``report validate`` calibrates on by default: ``shared/`` beside the
#: checkout that holds plummer (:data:`plummer.calibrate.WSE3_DATA`), from any directory.
DEFAULT_DATA = WSE3_DATA / "*.json"


class _CommandsOrStudy(dict):
    """The report commands' parsers by name, where argparse's check of a choice accepts any
    word (one that names no command is a study file)."""

    def __contains__(self, name: object) -> bool:
        return True


class _StudyByDefault(argparse._SubParsersAction):
    """Sub-commands where a first word that is none of them is the study file of ``study``."""

    def accept_any_word(self) -> None:
        """Once every command is added: let argparse's check of the first word pass any word."""
        self._name_parser_map = self.choices = _CommandsOrStudy(self._name_parser_map)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: list[str], option_string: str | None = None) -> None:
        if values and not dict.__contains__(self._name_parser_map, values[0]):
            values = ["study", *values]
        super().__call__(parser, namespace, values, option_string)


def _add_output(parser: argparse.ArgumentParser, default: str, json_flag: bool = True) -> None:
    parser.add_argument("-o", "--html", metavar="FILE.html", help=f"the report file (default {default})")
    if json_flag:
        add_json_flag(parser)


def _predict_parser() -> argparse.ArgumentParser:
    """``plummer predict``'s parser, whose layout options ``report layout`` takes as they are
    (one definition of them)."""
    commands = Parser(prog="plummer").add_subparsers()
    _predict.register(commands)
    return commands.choices["predict"]


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser(
        "report", help="interactive HTML reports: a study, the validation, a layout, a mesh run",
        description="Write one self-contained HTML file (plotly.js embedded, nothing fetched from "
        "the network) to reports/ by default. `plummer report STUDY.toml` is short for "
        "`plummer report study STUDY.toml`.")
    kinds = report.add_subparsers(dest="report", required=True, metavar="STUDY.toml|validate|paper|layout|mesh",
                                  action=_StudyByDefault)

    study = kinds.add_parser(
        "study", help="what a study found: Pareto front, history, importances, the best layouts "
        "(co-design studies: also the sensitivity to each hardware field)",
        description="The report of an Optuna study (read only: the storage is not changed).")
    study.add_argument("study", metavar="STUDY.toml", help="study file")
    study.add_argument("--storage", help="Optuna RDB URL or journal file (default: the study file's, "
                       "else ./plummer-storage/studies.journal)")
    study.add_argument("--top", type=int, default=10, help="layouts in the table of the best (default 10)")
    study.add_argument("--exhaustive-max", dest="exhaustive_max", type=int, default=None,
                       help="enumerate the space for the true optimum when it has at most this many "
                       "points (default 2,000,000; 0 never)")
    _add_output(study, "reports/<study name>.html")
    study.set_defaults(func=_study)

    validate = kinds.add_parser(
        "validate", help="closed forms against the executor and the measured WSE-3 cycles",
        description="Run the validation sweep on the executor (it takes a while: progress on "
        "stderr unless --json) and calibrate on the measured WSE-3 data; predicted against "
        "executed and measured cycles on log-log axes with the error statistics.")
    validate.add_argument("--which", nargs="+", metavar="FAMILY",
                          help=f"kernel families of the sweep (default all: {', '.join(_families())})")
    validate.add_argument("--hardware", default="wse3", help="hardware preset or TOML (default wse3)")
    validate.add_argument("--data", nargs="+", metavar="FILE",
                          help=f"measurement files to calibrate on (default {DEFAULT_DATA})")
    validate.add_argument("--holdout-min-p", dest="holdout_min_p", type=int, default=464,
                          help="hold records with P >= N out of the fit (default 464; 0 none)")
    _add_output(validate, "reports/validate-<hardware>.html")
    validate.set_defaults(func=_validate)

    paper = kinds.add_parser(
        "paper", help="the published WaferLLM runs (WSE-2) reproduced: predicted vs observed, tokens/s vs grid",
        description="Predict every shipped scenario (plummer validate paper): predicted against the "
        "published tokens/s (fitted, held-out and leave-one-out apart), decode and prefill tokens/s "
        "against the grid side over the released grids, and the error table.")
    paper.add_argument("--hardware", help="hardware preset or TOML (default: each scenario's own, wse2)")
    _add_output(paper, "reports/paper-<hardware>.html")
    paper.set_defaults(func=_paper)

    layout = kinds.add_parser(
        "layout", parents=[_predict_parser()], conflict_handler="resolve",
        help="one layout: regions on the wafer, memory per core, time per operation",
        description="The report of one layout, given as for `plummer predict` (--layout FILE, or "
        "--model, --hardware, grids and regions; what is not given is chosen).")
    _add_output(layout, "reports/layout-<layout file or model-hardware>.html")
    layout.set_defaults(func=_layout)

    mesh = kinds.add_parser(
        "mesh", help="one executor run as heatmaps: memory per core, bytes per link, busy vs idle",
        description="Run a kernel on the exact executor (the options of `plummer run`) and draw "
        "where it is hot.")
    _kernels._add_kernel_options(mesh)
    mesh.add_argument("--seed", type=int, default=0, help="random seed of the operands (default 0)")
    mesh.add_argument("--force", action="store_true",
                      help=f"run meshes larger than {_kernels._RUN_LIMIT:,} cores")
    _add_output(mesh, "reports/mesh-<kernel>-<algo>-<P>x<Q>.html", json_flag=False)  # run's options have --json
    mesh.set_defaults(func=_mesh)
    kinds.accept_any_word()


def _families() -> list[str]:
    from plummer.kernels import families
    from plummer.validate import VALIDATION_FAMILIES

    return [f for f in VALIDATION_FAMILIES if f in families()]


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress lines on stderr, none with ``--json``."""
    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr)
    return say


def _emit(args: argparse.Namespace, report: Any, extra: list[str] = ()) -> None:
    if args.json:
        print_json(report.as_dict())
        return
    names = ", ".join(f["name"] for f in report.figures)
    print(f"wrote {report.path} ({len(report.figures)} figures: {names})")
    for line in extra:
        print(line)


def _study(args: argparse.Namespace) -> None:
    from plummer.report import EXHAUSTIVE_MAX_POINTS, study_report
    from search import load_study_file, storage_url

    study = load_study_file(args.study)
    url = storage_url(study, args.storage)
    output = Path(args.html) if args.html else REPORTS / f"{study.name}.html"
    limit = EXHAUSTIVE_MAX_POINTS if args.exhaustive_max is None else args.exhaustive_max
    if limit < 0:
        raise CommandLineError(f"--exhaustive-max = {limit} must be >= 0")
    report = study_report(study, url, output, top=args.top, exhaustive_max=limit, say=_say(args))
    layouts = report.facts["layouts"]
    extra = [(f"wrote {len(layouts)} layout files to {Path(layouts[0]['file']).parent}/; reproduce one "
              f"with: {layouts[0]['command']}")] if layouts else []
    _emit(args, report, extra)


def _validate(args: argparse.Namespace) -> None:
    from plummer.hardware import load_hardware
    from plummer.report import validate_report

    spec = load_hardware(args.hardware)
    known = _families()
    which = args.which or known
    for family in which:
        if family not in known:
            raise CommandLineError(f"--which {family!r} is not a kernel family of the sweep; allowed: "
                                   f"{', '.join(known)}")
    data = args.data or sorted(glob.glob(str(DEFAULT_DATA)))
    if not data:
        raise CommandLineError(f"no measurement files at {DEFAULT_DATA} (the default: shared/data/wse3 "
                               "beside the plummer checkout); give them with --data FILE ...")
    if args.holdout_min_p < 0:
        raise CommandLineError(f"--holdout-min-p = {args.holdout_min_p} must be >= 0")
    output = Path(args.html) if args.html else REPORTS / f"validate-{spec.name}.html"

    report = validate_report(spec, which, data, output, holdout_min_p=args.holdout_min_p or None,
                             progress=not args.json, say=_say(args))
    _emit(args, report)


def _paper(args: argparse.Namespace) -> None:
    from plummer.hardware import load_hardware
    from plummer.report import paper_report
    from plummer.scenario import shipped_scenarios

    spec = load_hardware(args.hardware) if args.hardware else None
    name = spec.name if spec else shipped_scenarios()[0].hardware
    output = Path(args.html) if args.html else REPORTS / f"paper-{name}.html"
    _emit(args, paper_report(output, spec, say=_say(args)))


def _layout(args: argparse.Namespace) -> None:
    from plummer.layout import save_layout
    from plummer.report import layout_report

    prediction = _predict.run_predict(args)
    if args.layout:
        stem, source = Path(args.layout).stem, f"layout file {args.layout}"
    else:
        stem, source = f"{prediction.model.name}-{prediction.hardware.name}", "layout chosen by plummer predict"
    output = Path(args.html) if args.html else REPORTS / f"layout-{stem}.html"
    report = layout_report(prediction, output, source)
    extra = []
    if args.output_layout:
        save_layout(prediction.layout, args.output_layout, header=f"plummer layout for "
                    f"{prediction.model.name} on {prediction.hardware.name}")
        extra.append(f"wrote {args.output_layout}")
    _emit(args, report, extra)


def _mesh(args: argparse.Namespace) -> None:
    from plummer.report import mesh_report

    spec, kernel, params = _kernels._kernel_and_params(args)
    cores = params["p"] * params["q"]
    if cores > _kernels._RUN_LIMIT and not args.force:
        raise CommandLineError(f"--mesh {args.mesh} has {cores:,} cores; the executor runs up to "
                               f"{_kernels._RUN_LIMIT:,} without --force")
    output = Path(args.html) if args.html else REPORTS / f"mesh-{args.kernel}-{kernel.name}-{params['p']}x{params['q']}.html"
    with _kernels.kernel_errors():
        report = mesh_report(spec, kernel, params, output, seed=args.seed, label=f"{args.kernel} --algo {kernel.name}")
    _emit(args, report)


__all__ = ["DEFAULT_DATA", "REPORTS", "register"]
