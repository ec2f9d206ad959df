"""``plummer study``: run, inspect and check Optuna studies of LLM layouts."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from plummer.cli._base import add_json_flag, print_json
from plummer.errors import SpecError
from plummer.layout import Layout, save_layout


def register(subparsers: argparse._SubParsersAction) -> None:
    study = subparsers.add_parser(
        "study", help="Optuna studies: search layouts for the best predicted utilization",
        description="Search layouts of an LLM on a chip with Optuna (study files in studies/).")
    actions = study.add_subparsers(dest="action", required=True, metavar="ACTION")

    def add(name: str, help_text: str, with_file: bool = True) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text, description=help_text)
        if with_file:
            parser.add_argument("study", metavar="STUDY.toml", help="study file")
        parser.add_argument("--storage", help="Optuna RDB URL (sqlite:///..., postgresql://...) or "
                            "journal file path (default: the study file's, else "
                            "./plummer-storage/studies.journal)")
        add_json_flag(parser)
        return parser

    run = add("run", "run trials of a study (more trials each time: re-running continues it)")
    run.add_argument("--trials", type=int, help="trials to run (default: the study file's [run] trials)")
    run.add_argument("--jobs", type=int, default=1, help="worker processes on the same storage (default 1)")
    run.set_defaults(func=_run)
    best = add("best", "the best feasible layout (or the Pareto front) found so far")
    best.add_argument("-o", "--output", metavar="LAYOUT.toml",
                      help="write the best layout (several objectives: the front's best on the "
                      "first) as a layout file for `plummer predict --layout`")
    best.set_defaults(func=_best)
    ex = add("exhaustive", "evaluate every point of the space: the true optimum or Pareto front, "
             "and the regret of what the study found")
    ex.set_defaults(func=_exhaustive)
    add("list", "the studies a storage holds", with_file=False).set_defaults(func=_list)
    show = add("show", "a study's trials: counts by state, feasible, best, the space")
    show.set_defaults(func=_show)


def _load(args: argparse.Namespace) -> tuple[Any, str]:
    from search import load_study_file, storage_url

    study = load_study_file(args.study)
    return study, storage_url(study, args.storage)


def _run(args: argparse.Namespace) -> None:
    from search import best, open_storage, open_study, run_study

    study, url = _load(args)
    open_study(study, open_storage(url))  # a refusal (another search of the name) before any output
    if not args.json:
        print(f"study '{study.name}' ({study.model.name} on {study.hardware.name}, "
              f"{study.space.size:,} points, {study.sampler}) in {url}", file=sys.stderr)
    try:
        summary = run_study(study, url, trials=args.trials, jobs=args.jobs, progress=not args.json)
    except KeyboardInterrupt:
        sys.stderr.write(f"plummer study: interrupted; the trials told so far are kept in {url}, "
                         "and running the study again continues it\n")
        raise SystemExit(130) from None
    found = best(study, url)
    summary["best"] = found["best"][:1] if not study.multi_objective else found["best"]
    summary["feasible_trials"] = found["feasible"]
    if args.json:
        print_json(summary)
        return
    print(f"ran {summary['trials_run']} trials ({summary['trials_complete']} complete in the study, "
          f"{found['feasible']} feasible) in {summary['wall_s']:.1f} s with {args.jobs} job(s)")
    if summary["evaluation_share"] is not None:
        print(f"plummer's evaluation: {summary['evaluation_s']:.2f} s "
              f"({100 * summary['evaluation_share']:.1f}% of the wall time)")
    _print_best(study, found)


def _print_best(study: Any, found: dict[str, Any]) -> None:
    if not found["best"]:
        print("no feasible trial yet")
        return
    print("best:" if not study.multi_objective else f"Pareto front ({len(found['best'])} layouts):")
    for row in found["best"]:
        values = ", ".join(f"{o.metric} {v:.6g}" for o, v in zip(study.objectives, row["values"]))
        point = " ".join(f"{k}={v}" for k, v in sorted(row["point"].items()))
        print(f"  trial {row['trial']}: {values}\n    {point}")


def _best(args: argparse.Namespace) -> None:
    from search import best

    study, url = _load(args)
    found = best(study, url)
    if args.output:
        if not found["best"]:
            raise SpecError(f"study '{study.name}' has no feasible trial to write")
        layout = Layout.from_dict(found["best"][0]["layout"])
        if "hardware" in found["best"][0]:  # co-design: the chip goes in a file of its own
            from pathlib import Path

            from plummer.hardware import save_hardware
            from search import chip

            chip_path = Path(args.output).with_suffix(".hardware.toml")
            save_hardware(chip(study.hardware, found["best"][0]["hardware"]), chip_path)
            layout = layout.replace(hardware=str(chip_path.resolve()))
        save_layout(layout, args.output, header=f"best layout of study '{study.name}' "
                    f"(trial {found['best'][0]['trial']}), written by plummer study best")
    if args.json:
        print_json(found)
        return
    print(f"study '{study.name}': {found['trials']} complete trials, {found['feasible']} feasible")
    _print_best(study, found)
    if args.output:
        print(f"wrote {args.output}")


def _exhaustive(args: argparse.Namespace) -> None:
    from search import best, exhaustive, regret

    study, url = _load(args)
    truth = exhaustive(study)
    try:
        found = best(study, url)["best"]
    except SpecError:
        found = []
    out = {"study": study.name, "points": truth["points"], "feasible": truth["feasible"],
           "seconds": truth["seconds"]}
    if not study.multi_objective:
        optimum = truth["optimum"]
        best_found = found[0] if found else None
        out |= {"optimum": optimum, "best_found": best_found and {
            "value": best_found["values"][0], "point": best_found["point"], "trial": best_found["trial"]},
            "regret": regret(study, optimum and optimum["value"], best_found and best_found["values"][0])}
    else:
        front = truth["front"]
        exact = {tuple(np.round(f["values"], 12)) for f in front}
        hits = sum(tuple(np.round(r["values"], 12)) in exact for r in found)
        out |= {"optimum": {"front": front}, "best_found": {"front": [
            {"values": r["values"], "point": r["point"], "trial": r["trial"]} for r in found]},
            "regret": {"exact_front_size": len(front), "found_front_size": len(found),
                       "found_on_exact_front": hits}}
    if args.json:
        print_json(out)
        return
    print(f"study '{study.name}': {out['points']:,} points ({out['feasible']:,} feasible) evaluated "
          f"in {out['seconds']:.2f} s")
    if not study.multi_objective:
        metric = study.objectives[0].metric
        if out["optimum"] is None:
            print("no feasible point")
            return
        print(f"  optimum    {metric} {out['optimum']['value']:.6g} at {out['optimum']['point']}")
        if out["best_found"]:
            print(f"  best found {metric} {out['best_found']['value']:.6g} (trial "
                  f"{out['best_found']['trial']}); regret {100 * out['regret']:.3f}%")
        else:
            print("  the study has no feasible trial yet (run `plummer study run` first)")
    else:
        r = out["regret"]
        print(f"  exact Pareto front: {r['exact_front_size']} points; the study's front: "
              f"{r['found_front_size']}, of which {r['found_on_exact_front']} on the exact front")


def _list(args: argparse.Namespace) -> None:
    from search import list_studies, storage_url

    url = storage_url(None, args.storage)
    rows = list_studies(url)
    if args.json:
        print_json({"storage": url, "studies": rows})
        return
    print(f"{url}: {len(rows)} studies")
    for row in rows:
        print(f"  {row['study']:<32} {row['trials']:>7} trials  {', '.join(row['directions'])}  "
              f"{row['model']} on {row['hardware']}")


def _show(args: argparse.Namespace) -> None:
    import optuna

    from search import best, open_existing_storage, open_study

    study, url = _load(args)
    handle = open_study(study, open_existing_storage(url), create=False)
    states: dict[str, int] = {}
    for t in handle.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    found = best(study, url)
    out = {"study": study.name, "storage": url, "model": study.model.name,
           "hardware": study.hardware.name, "space": study.space.to_dict(),
           "points": study.space.size, "sampler": study.sampler,
           "objectives": found["objectives"], "states": states, "feasible": found["feasible"],
           "best": found["best"], "optuna": optuna.__version__}
    if args.json:
        print_json(out)
        return
    print(f"study '{study.name}' in {url}: {study.model.name} on {study.hardware.name}, "
          f"{study.space.size:,} points, sampler {study.sampler}")
    print(f"  trials by state: {', '.join(f'{k} {v}' for k, v in sorted(states.items()))}; "
          f"feasible {found['feasible']}")
    _print_best(study, found)
