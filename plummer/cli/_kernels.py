"""``plummer cost``, ``plummer run`` and ``plummer validate``: kernels from the CLI."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from plummer.cli._base import CommandLineError, add_json_flag, emit, parse_mesh, print_json
from plummer.errors import SpecError
from plummer.hardware import HardwareSpec, load_hardware
from plummer.kernels import Kernel, algorithms, families, get_kernel
from plummer.validate import VALIDATION_FAMILIES, summarize, validate_kernels

#: The algorithm each family uses when ``--algo`` is not given.
DEFAULT_ALGO = {"gemm": "meshgemm", "allreduce": "ktree", "broadcast": "multicast", "gemv": "ktree", "shift": "shift"}

#: Cores above which ``plummer run`` asks for ``--force``: the executor times every message
#: in Python (a 64x64 MeshGEMM takes ~15 s; a wafer-sized mesh would take hours).
_RUN_LIMIT = 128 * 128

#: Kernel parameters that have a CLI option of the same name (``k_tree`` is ``--k-tree``).
_OPTIONS = ("m", "k", "n", "k_tree", "group_num", "distance", "axis")


def _add_kernel_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kernel", choices=families(), metavar="KERNEL", help=f"one of {', '.join(families())}")
    algos = "; ".join(f"{family}: {', '.join(algorithms(family))} (default {DEFAULT_ALGO[family]})"
                      for family in families())
    parser.add_argument("--algo", help=f"algorithm of the KERNEL family: {algos}")
    parser.add_argument("--mesh", required=True,
                        help="mesh PxQ in cores (P columns, Q rows), e.g. 16x16; one number P means PxP")
    parser.add_argument("--m", type=int, help="rows of A (gemm), length of x (gemv), rows of the matrix (shift)")
    parser.add_argument("--k", type=int, help="inner dimension (gemm)")
    parser.add_argument("--n", type=int, help="columns of B / W / the matrix; vector length per core (allreduce, broadcast)")
    parser.add_argument("--axis", choices=("x", "y"),
                        help="mesh axis to reduce, broadcast or shift along: x (along a row, P cores) or y "
                        "(along a column, Q cores); default x")
    parser.add_argument("--k-tree", dest="k_tree", type=int,
                        help="levels K of the K-tree allreduce (ktree, ktree-2d, reduce-ktree, gemv ktree; "
                        "default 2), at most floor(log2 of the cores along the axis), or 4 on any line")
    parser.add_argument("--group-num", dest="group_num", type=int,
                        help="groups in the first K-tree level, a divisor of the cores along the axis (default 0: "
                        "groups of about length^(1/K) cores)")
    parser.add_argument("--distance", type=int,
                        help="cores to shift by (shift), >= 1; a distance of the axis' length or more is "
                        "allowed (as measured on WSE-3): every core still runs every step, only filler is left")
    parser.add_argument("--hardware", default="wse3", help="hardware preset or TOML file (default wse3)")
    add_json_flag(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    cost = subparsers.add_parser("cost", help="closed-form PLMR cost of a kernel",
                                 description="Closed-form cost of a kernel with its breakdown.")
    _add_kernel_options(cost)
    cost.set_defaults(func=_cost)
    run = subparsers.add_parser("run", help="run a kernel on the exact mesh executor",
                                description="Run a kernel on random data on the exact mesh executor.")
    _add_kernel_options(run)
    run.add_argument("--seed", type=int, default=0, help="random seed of the operands (default 0)")
    run.add_argument("--force", action="store_true",
                     help=f"run meshes larger than {_RUN_LIMIT:,} cores (the executor is pure Python)")
    run.set_defaults(func=_run)
    val = subparsers.add_parser(
        "validate", help="closed forms vs the executor (kernels, whole layers) or the published runs",
        description="Check the closed forms: a table of predicted against reference with each "
        "row's relative error. A kernel family (or all): its sweep of meshes and sizes run on the "
        "exact executor against the closed form (cycles: makespan and mean over cores), then the "
        "mean and max error per algorithm; progress on stderr unless --json. layout: whole layers "
        "of a tiny model in several layouts executed on the mesh against the layouts' closed form "
        "(per op, layer and phase) and a numpy transformer (the hidden states). paper: WaferLLM's "
        "published WSE-2 runs (plummer/scenario/data) predicted against the observed tokens/s, "
        "with leave-one-out errors of the fitted ones and the mean and max error.",
    )
    val.add_argument("which", choices=(*VALIDATION_FAMILIES, "all", "layout", "paper"), metavar="WHICH",
                     help=f"one of {', '.join(VALIDATION_FAMILIES)}, all (every kernel family), "
                     "layout (whole layers of a tiny model executed against the layouts' closed "
                     "form and a numpy transformer), paper (the published WaferLLM runs)")
    val.add_argument("--hardware", help="hardware preset or TOML file (default wse3; for paper: "
                     "each scenario's own)")
    add_json_flag(val)
    val.set_defaults(func=_validate)


#: The option that sets each kernel parameter (``p`` and ``q`` are the two sides of ``--mesh``).
_OPTION_OF = {"p": "--mesh P", "q": "--mesh Q", **{name: "--" + name.replace("_", "-") for name in _OPTIONS}}


def _kernel_and_params(args: argparse.Namespace) -> tuple[HardwareSpec, Kernel, dict[str, Any]]:
    """The spec, the kernel and its parameters (defaults filled in) the options name, checked:
    a parameter the kernel refuses is a one-line error naming its option (:func:`kernel_errors`)."""
    spec = load_hardware(args.hardware)
    kernel = get_kernel(args.kernel, args.algo or DEFAULT_ALGO[args.kernel])
    p, q = parse_mesh(args.mesh)
    params: dict[str, Any] = {"p": p, "q": q}
    for name in _OPTIONS:
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if name not in kernel.parameters:
            if value is not None:
                raise CommandLineError(
                    f"{flag} does not apply to {args.kernel} --algo {kernel.name}; "
                    f"its parameters: {', '.join(kernel.parameters)}"
                )
        elif value is not None:
            params[name] = value
        elif name not in kernel.defaults:
            raise CommandLineError(f"{args.kernel} --algo {kernel.name} needs {flag}")
    params = {**kernel.defaults, **params}
    with kernel_errors():
        kernel.check(spec, **params)
    return spec, kernel, params


@contextmanager
def kernel_errors() -> Iterator[None]:
    """Within: a kernel's :class:`SpecError` becomes a one-line error naming the option too."""
    try:
        yield
    except SpecError as exc:
        raise CommandLineError(_name_option(str(exc))) from None


def _name_option(message: str) -> str:
    """A kernel's error with the option of the parameter it names: ``parameter 'k_tree'`` ->
    ``parameter 'k_tree' (--k-tree)``."""
    return re.sub(r"parameter '(\w+)'",
                  lambda m: f"{m.group(0)} ({_OPTION_OF[m.group(1)]})" if m.group(1) in _OPTION_OF else m.group(0),
                  message, count=1)


def _cost(args: argparse.Namespace) -> None:
    spec, kernel, params = _kernel_and_params(args)
    payload = {"kernel": args.kernel, "algo": kernel.name, "hardware": spec.name, **params}
    with kernel_errors():
        payload |= kernel.cost(spec, **params).as_dict()
    emit(payload, args.json, f"closed-form cost ({spec.name})")


def _run(args: argparse.Namespace) -> None:
    spec, kernel, params = _kernel_and_params(args)
    if params["p"] * params["q"] > _RUN_LIMIT and not args.force:
        raise CommandLineError(
            f"--mesh {args.mesh} has {params['p'] * params['q']:,} cores; the executor runs up to "
            f"{_RUN_LIMIT:,} without --force (use `plummer cost` for large meshes)"
        )
    with kernel_errors():
        run = kernel.execute(spec, seed=args.seed, **params)
        cost = kernel.cost(spec, **params)
    payload = {"kernel": args.kernel, "algo": kernel.name, "hardware": spec.name, **params}
    payload |= {
        **run.as_dict(),
        "compute_cycles": float(cost.compute_cycles),
        "predicted_cycles": float(cost.cycles),
        "predicted_rel_error": abs(float(cost.cycles) - run.execution.cycles) / run.execution.cycles,
        "hops": float(cost.hops),
        "routing_stages": float(cost.routing_stages),
    }
    payload["comm_cycles"] = payload["cycles"] - payload["compute_cycles"]
    emit(payload, args.json, f"executed on the mesh ({spec.name})")


def _validate_paper(args: argparse.Namespace) -> None:
    from plummer.scenario import summary_rows, validate_paper

    result = validate_paper(load_hardware(args.hardware) if args.hardware_given else None)
    rows = summary_rows(result)
    if args.json:
        print_json({k: v for k, v in result.items() if k != "rows"} | {"rows": rows})
        return
    print(f"published WaferLLM runs vs plummer ({result['hardware']}; fitted on these: "
          f"{', '.join(result['fitted_parameters']) or 'nothing'})")
    print(f"{'scenario':<24}{'metric':<22}{'grid':>9}{'predicted':>12}{'observed':>12}{'error':>9}"
          f"{'fitted':>8}{'leave-one-out':>15}")
    for row in rows:
        def pct(v: float | None) -> str:
            return "-" if v is None else f"{100 * v:+.1f}%"
        observed = "-" if row["observed"] is None else f"{row['observed']:,.1f}"
        print(f"{row['scenario']:<24}{row['metric']:<22}{row['grid']:>9}{row['predicted']:>12,.1f}"
              f"{observed:>12}{pct(row['rel_error']):>9}{'yes' if row['fitted'] else 'no':>8}"
              f"{pct(row['loo_error']):>15}")
    for key, label in (("fitted", "fitted scenarios"), ("not_fitted", "other observed scenarios"),
                       ("leave_one_out", "leave-one-out")):
        part = result[key]
        if part["n"]:
            print(f"{label}: n={part['n']}, mean {100 * part['mean']:.2f}%, max {100 * part['max']:.2f}%")


def _validate_layout(args: argparse.Namespace) -> None:
    from plummer.layout import TINY, validate_layouts

    spec = load_hardware(args.hardware)
    rows = validate_layouts(spec)
    if args.json:
        print_json({"hardware": spec.name, "model": TINY.to_dict(), "rows": rows})
        return
    print(f"layouts of a tiny model ({TINY.hidden} hidden, {TINY.heads} heads, {TINY.kv_heads} KV heads, "
          f"FFN {TINY.ffn}, {TINY.layers} layers on 2 regions) executed on the mesh ({spec.name})")
    print(f"{'layout':<42}{'output error':>14}{'op runs':>9}{'max op err':>12}{'layer err':>11}"
          f"{'phase err':>11}{'TTFT cycles':>13}{'decode cycles':>15}")
    for r in rows:
        err = max(r["prefill_error"], r["decode_error"])
        print(f"{r['layout']:<42}{err:>14.2e}{r['op_runs']:>9}{r['max_op_error']:>12.1e}"
              f"{r['max_layer_error']:>11.1e}{r['max_phase_error']:>11.1e}{r['prefill_cycles']:>13,.0f}"
              f"{r['decode_cycles']:>15,.0f}")
    print("output error: largest |executed - numpy reference| of the hidden states (prefill and decode); "
          "errors: relative, executed cycles against the closed form")


def _validate(args: argparse.Namespace) -> None:
    args.hardware_given = args.hardware is not None
    args.hardware = args.hardware or "wse3"
    if args.which == "paper":
        _validate_paper(args)
        return
    if args.which == "layout":
        _validate_layout(args)
        return
    spec = load_hardware(args.hardware)
    chosen = [f for f in VALIDATION_FAMILIES if f in families()] if args.which == "all" else [args.which]
    table = validate_kernels(spec, chosen, progress=not args.json)
    summary = summarize(table)
    if args.json:
        print_json({
            "hardware": spec.name,
            "rows": table.to_dict(orient="records"),
            "summary": summary.to_dict(orient="records"),
        })
        return
    with pd.option_context("display.max_rows", None, "display.width", 160,
                           "display.float_format", lambda v: f"{v:,.4g}" if not math.isnan(v) else "-"):
        print(table.drop(columns=["family"]).to_string(index=False))
        print()
        print(summary.to_string(index=False))


def register_benchmark(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser(
        "benchmark", help="speed of the executor, the closed forms and the layouts; search quality "
        "of the studies",
        description="Three parts (--part; default all), medians of repeats. kernels: the executor "
        "(MeshGEMM 32x32 and 64x64 with 8x8x8 tiles, K-tree allreduce 64x64, seconds) and every "
        "kernel's closed form (configurations per second vectorised over random LLM-sized "
        "configurations in which every parameter varies, and microseconds per single "
        "configuration); --hardware, --quick, --configs, --limit and --clock apply to it. layouts: "
        "the layouts' closed form on wse3 (one Qwen2-72B prediction in microseconds, layouts per "
        "second in a flat random batch and in an outer-product batch; CPU time). studies: each "
        "shipped single-objective study's sampler against its exhaustive optimum (regret by trial, "
        "runs within 1%, share of time in the objective) and the speed of exhaustive enumeration; "
        "--studies, --trials and --seeds apply to it. --repeats applies to kernels and layouts.",
    )
    bench.add_argument("--hardware", default="wse3", help="hardware preset or TOML (default wse3)")
    bench.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is shown (default 3)")
    bench.add_argument("--quick", action="store_true",
                       help="skip the 64x64 MeshGEMM run; 10^5 configurations and 1 s per call by default")
    bench.add_argument("--configs", type=int,
                       help="random configurations per vectorised call (default 10^6; 10^5 with --quick)")
    bench.add_argument("--limit", type=float,
                       help="seconds a closed-form call may take before it is stopped (default 20; 1 with --quick)")
    bench.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                       help="the process's CPU time (default: steadier on a shared machine) or the wall clock")
    bench.add_argument("--part", choices=("kernels", "layouts", "studies", "all"), default="all",
                       help="what to time: the kernels (executor and closed forms), the layouts' closed "
                       "form (one Qwen2-72B prediction, batches), the studies (regret against the "
                       "exhaustive optimum, objective share, exhaustive speed); default all")
    bench.add_argument("--studies", nargs="+", metavar="NAME",
                       help="with --part studies/all: only these shipped studies (default: every "
                       "single-objective one)")
    bench.add_argument("--trials", type=int, default=300, help="trials per study for the regret curves (default 300)")
    bench.add_argument("--seeds", type=int, default=5,
                       help="runs per study, seeded with the study file's seed, seed + 1, ...; medians are shown "
                       "(default 5)")
    add_json_flag(bench)
    bench.set_defaults(func=_benchmark)


def _benchmark(args: argparse.Namespace) -> None:
    from plummer.benchmark import run_benchmark

    size, limit = (100_000, 1.0) if args.quick else (1_000_000, 20.0)
    size = size if args.configs is None else args.configs
    limit = limit if args.limit is None else args.limit
    if args.repeats < 1:
        raise CommandLineError(f"--repeats {args.repeats} must be >= 1")
    if size < 1:
        raise CommandLineError(f"--configs {size} must be >= 1")
    if not limit > 0:
        raise CommandLineError(f"--limit {limit} must be > 0 seconds")
    if args.trials < 1:
        raise CommandLineError(f"--trials {args.trials} must be >= 1")
    if args.seeds < 1:
        raise CommandLineError(f"--seeds {args.seeds} must be >= 1")
    out: dict[str, Any] = {}
    if args.part in ("layouts", "all"):
        from plummer.layout import layout_benchmark

        out["layouts"] = layout_benchmark(repeats=args.repeats)
    if args.part in ("studies", "all"):
        from search import study_benchmark

        out["studies"] = study_benchmark(args.studies, args.trials, args.seeds)
    if args.part in ("kernels", "all"):
        out["kernels"] = run_benchmark(load_hardware(args.hardware), repeats=args.repeats, large=not args.quick,
                                       size=size, limit=limit, clock=args.clock)
    if args.json:
        print_json(out)
        return
    if "layouts" in out:
        emit(out["layouts"], False, "layouts' closed form (medians, CPU time)")
    if "studies" in out:
        _print_studies(out["studies"])
    if "kernels" in out:
        _print_kernels(out["kernels"])


def _print_studies(figures: dict[str, Any]) -> None:
    print("\nstudies: regret of the study's sampler against the exhaustive optimum after N trials "
          "(@N), median over the seeds (- before a feasible trial); trials each seed took to 1%")
    rows = []
    for row in figures["studies"]:
        reached = [r["trials_to_1pct"] for r in row["runs"]]
        rows.append({"study": row["study"], "points": row["points"], "exhaustive s": row["exhaustive_s"],
                     **{f"@{k}": "-" if v is None else f"{100 * v:.1f}%" for k, v in row["median_regret"].items()},
                     "within 1%": f"{row['runs_within_1pct']}/{row['seeds']}",
                     "trials to 1%": " ".join("-" if t is None else str(t) for t in reached),
                     "objective share": f"{100 * row['median_evaluation_share']:.1f}%"})
    with pd.option_context("display.max_rows", None, "display.width", 220,
                           "display.float_format", lambda v: f"{v:,.3g}" if not math.isnan(v) else "-"):
        print(pd.DataFrame(rows).to_string(index=False, na_rep="-"))
    e = figures["exhaustive"]
    print(f"exhaustive enumeration: {e['points']:,} points in {e['seconds']:.2f} s ({e['points_per_s']:,.0f} points/s)")


def _print_kernels(figures: dict[str, Any]) -> None:
    rows = figures.pop("closed_forms")
    print()
    emit(figures, False, "kernels (medians)")
    table = pd.DataFrame(rows).rename(columns={"configs": "vectorised over", "configs_per_s": "configs/s",
                                               "scalar_us": "us per call", "first_call_us": "first call us"})
    print()
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 80,
                           "display.float_format", lambda v: f"{v:,.3g}" if not math.isnan(v) else "-"):
        print(table.to_string(index=False))
