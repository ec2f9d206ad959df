"""The study report: what an Optuna study of layouts found, as one HTML page.

Sections, all read from the study's storage (opened read-only in effect: the study must
exist, nothing is created or told, see :func:`open_readonly`):

- Pareto front (several objectives): every feasible complete trial in objective space, the
  non-dominated ones marked (:func:`search.best_trials`), one panel per pair of
  objectives; hovering a point shows its whole layout and headline metrics. Infeasible
  trials are drawn apart, one trace per set of reasons, with the reasons in the hover.
- History: each complete trial's objective values in trial order and the best feasible
  value so far, against the exhaustive optimum (:func:`search.exhaustive`) when the space
  has at most ``exhaustive_max`` points (for several objectives, each objective's best on
  the exact front).
- Parameter importances: Optuna's ``optuna.importance.get_param_importances`` (its default
  evaluator, PED-ANOVA) per objective over the feasible complete trials (an in-memory copy
  of them, so the stored study is not touched).
- The chosen layout (the best trial; several objectives: the front's best on the first)
  through :func:`plummer.layout._predict.predict`: cycles per layer of every op, compute
  against communication, per kernel, prefill and decode.
- The top layouts (the front, or the best feasible trials with distinct points), each
  written as a layout file next to the report with the ``plummer predict --layout FILE``
  command that reproduces its figures.

A co-design study (a ``[hardware_space]``: each trial a chip) gets the same page with each
trial's chip and the layout chosen for it (hovers, the chosen layout, layout files with the
chip's hardware file), and a sensitivity section (:mod:`plummer.report._codesign`).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec, save_hardware
from plummer.layout import Layout, save_layout
from plummer.layout._predict import HEADLINE, predict
from plummer.report import _codesign
from plummer.report._figures import breakdown_figures, hover, layout_lines
from plummer.report._page import COLORS, Page, check_writable, number
from plummer.report._result import Report
from search import (
    StudyFile,
    best_trials,
    exhaustive,
    is_feasible,
    open_existing_storage,
    open_study,
    point_layout,
    regret,
    trial_point,
)

#: Spaces with at most this many points get their exhaustive optimum on the page.
EXHAUSTIVE_MAX_POINTS = 2_000_000

#: Headline metrics shown in a trial's hover (the stored record has every metric).
_HOVER_METRICS = ("utilization", "ttft_s", "decode_tokens_per_s", "e2e_tokens_per_s",
                  "prefill_throughput_tokens_per_s", "decode_throughput_tokens_per_s",
                  "memory_prefill_bytes", "memory_decode_bytes", "routes_per_core",
                  "max_context_shift", "energy_per_token_j")


def open_readonly(study: StudyFile, url: str) -> optuna.Study:
    """The stored study of ``study`` (a :class:`search.StudyFile`) without changing the
    storage: it must exist (:func:`search.open_existing_storage`; opening a missing one would
    create it), the study must be there with the file's fingerprint, and nothing is written."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return open_study(study, open_existing_storage(url), create=False)


def _objective_title(objective: Any) -> str:
    return f"{objective.metric} ({objective.direction})"


def _axis_type(values: np.ndarray) -> str:
    """``log`` for positive values spread over more than 50x, else ``linear``."""
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 50:
        return "log"
    return "linear"


#: Short names of the built-in constraints (:data:`search._objective.BUILT_IN`).
_CONSTRAINT_LABELS = {"memory_prefill_bytes": "prefill memory", "memory_decode_bytes": "decode memory",
                      "routes": "routes", "placement": "regions do not fit", "choices": "invalid choice",
                      "a_layout_fits": "no layout fits the chip"}


class _Trials:
    """The study's trials as the report reads them: complete ones in trial order, their
    points, layouts, feasibility and records."""

    def __init__(self, study: StudyFile, handle: optuna.Study) -> None:
        self.study = study
        every = handle.get_trials(deepcopy=False)
        self.states: dict[str, int] = {}
        for t in every:
            self.states[t.state.name] = self.states.get(t.state.name, 0) + 1
        self.complete = sorted((t for t in every if t.state == optuna.trial.TrialState.COMPLETE),
                               key=lambda t: t.number)
        self.feasible = [t for t in self.complete if is_feasible(t)]
        self.infeasible = [t for t in self.complete if not is_feasible(t)]
        self.best = best_trials(study, handle)
        self.chips: dict[int, HardwareSpec] = {}  # co-design: each trial's chip
        if study.codesign is None:
            self.points = {t.number: trial_point(study, t) for t in self.complete}
            self.layouts = {n: point_layout(study, p) for n, p in self.points.items()}
        else:  # a trial's point is its chip's; its layout the one the study chose for it
            self.points = {t.number: _codesign.hardware_point(study, t) for t in self.complete}
            self.chips = {n: _codesign.chip_of(study, p) for n, p in self.points.items()}
            self.layouts = {t.number: point_layout(study, lp) for t in self.complete
                            if (lp := _codesign.layout_point(t)) is not None}
        self.signs = np.array([1.0 if o.direction == "maximize" else -1.0 for o in study.objectives])

    def record(self, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        return trial.user_attrs.get("plummer", {})

    def violated(self, trial: optuna.trial.FrozenTrial) -> list[str]:
        """Short names of the constraints a trial violates (what makes it infeasible)."""
        constraints = self.record(trial).get("constraints", {})
        return [_CONSTRAINT_LABELS.get(name, name) for name, value in constraints.items() if value > 0]

    def text(self, trial: optuna.trial.FrozenTrial, status: str) -> str:
        """A trial's hover: status, objective values, the whole layout, headline metrics and
        the reasons it does not fit."""
        record = self.record(trial)
        lines = [f"#trial {trial.number} ({status})"]
        lines += [f"{o.metric} = {number(v, 6)}" for o, v in zip(self.study.objectives, trial.values)]
        if self.study.codesign is not None:
            lines += ["#chip", *_codesign.chip_lines(self.points[trial.number])]
        if trial.number in self.layouts:
            lines += ["#layout", *layout_lines(self.layouts[trial.number])]
        else:
            lines += ["#no layout of the space fits this chip"]
        metrics = record.get("metrics", {})
        shown = [k for k in _HOVER_METRICS if k in metrics and not (isinstance(metrics[k], float)
                                                                   and math.isnan(metrics[k]))]
        if shown:
            lines += ["#metrics", *(f"{k} = {number(metrics[k], 5)}" for k in shown)]
        if self.violated(trial):
            lines += [f"#violates: {', '.join(self.violated(trial))}", *record.get("reasons", [])]
        elif record.get("reasons"):
            lines += ["#ranked as if it fit (the study ignores memory)", *record["reasons"]]
        return hover(lines)


def _pareto_figure(trials: _Trials, front_exact: list[dict[str, Any]] | None) -> go.Figure:
    study = trials.study
    pairs = list(itertools.combinations(range(len(study.objectives)), 2))
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    figure = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.09, vertical_spacing=0.16)
    on_front = {t.number for t in trials.best}
    dominated = [t for t in trials.feasible if t.number not in on_front]
    front = sorted(trials.best, key=lambda t: -trials.signs[0] * t.values[0])
    groups = [("dominated feasible trials", dominated, "circle", "#b9b9b9", 6, "dominated"),
              (f"Pareto front ({len(front)} trials)", front, "circle", COLORS[0], 10, "on the Pareto front")]
    for index, (i, j) in enumerate(pairs):
        row, col = index // cols + 1, index % cols + 1
        for name, members, symbol, color, size, status in groups:
            figure.add_trace(go.Scatter(
                x=[t.values[i] for t in members], y=[t.values[j] for t in members], mode="markers",
                name=name, legendgroup=name, showlegend=index == 0,
                marker={"symbol": symbol, "color": color, "size": size,
                        "line": {"width": 1, "color": "#ffffff"}},
                hovertext=[trials.text(t, status) for t in members], hoverinfo="text"),
                row=row, col=col)
        if front_exact is not None:
            name = f"exact front, exhaustive ({len(front_exact)} points)"
            figure.add_trace(go.Scatter(
                x=[f["values"][i] for f in front_exact], y=[f["values"][j] for f in front_exact],
                mode="markers", name=name, legendgroup=name, showlegend=index == 0,
                marker={"symbol": "diamond-open", "color": COLORS[1], "size": 11, "line": {"width": 1.5}},
                hovertext=[hover(["#exact Pareto point (search.exhaustive)",
                                  *(f"{o.metric} = {number(v, 6)}" for o, v in zip(study.objectives, f["values"])),
                                  "#layout", *f["layout"]]) for f in front_exact],
                hoverinfo="text"), row=row, col=col)
        values = [np.array([t.values[k] for t in trials.feasible] or [np.nan]) for k in (i, j)]
        figure.update_xaxes(title_text=_objective_title(study.objectives[i]), type=_axis_type(values[0]),
                            row=row, col=col)
        figure.update_yaxes(title_text=_objective_title(study.objectives[j]), type=_axis_type(values[1]),
                            row=row, col=col)
    figure.update_layout(title="Pareto front of the feasible trials", height=470 * rows + 60,
                         legend={"orientation": "h", "y": -0.22 / rows})
    return figure


def _infeasible_figure(trials: _Trials) -> go.Figure:
    study = trials.study
    multi = study.multi_objective
    by_reason: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for t in trials.infeasible:
        key = " + ".join(trials.violated(t)) or "no constraint recorded"
        by_reason.setdefault(key, []).append(t)
    figure = go.Figure()
    symbols = ("x", "cross", "triangle-up", "square", "star", "diamond")
    for k, (reason, members) in enumerate(sorted(by_reason.items(), key=lambda kv: -len(kv[1]))):
        figure.add_trace(go.Scatter(
            x=[t.values[0] if multi else t.number for t in members],
            y=[t.values[1] if multi else t.values[0] for t in members], mode="markers",
            name=f"{reason} ({len(members)})",
            marker={"symbol": symbols[k % len(symbols)], "size": 8, "color": COLORS[(k + 1) % len(COLORS)],
                    "opacity": 0.75},
            hovertext=[trials.text(t, "infeasible") for t in members], hoverinfo="text"))
    x_title = _objective_title(study.objectives[0]) if multi else "trial"
    y_title = _objective_title(study.objectives[1 if multi else 0])
    figure.update_xaxes(title_text=x_title, type=_axis_type(np.array(
        [t.values[0] for t in trials.infeasible])) if multi else "linear")
    figure.update_yaxes(title_text=y_title, type=_axis_type(np.array(
        [t.values[1 if multi else 0] for t in trials.infeasible] or [np.nan])))
    figure.update_layout(title="Infeasible trials, by the reasons they do not fit", height=480,
                         legend={"orientation": "h", "y": -0.2})
    return figure


def _best_so_far(trials: _Trials, k: int) -> np.ndarray:
    """The best feasible value of objective ``k`` after each complete trial (NaN before the
    first feasible one)."""
    sign, best, out = trials.signs[k], -np.inf, []
    for t in trials.complete:
        if is_feasible(t):
            best = max(best, sign * t.values[k])
        out.append(best * sign if np.isfinite(best) else np.nan)
    return np.asarray(out)


def _history_figure(trials: _Trials, optimum: list[float | None]) -> go.Figure:
    study = trials.study
    k_count = len(study.objectives)
    figure = make_subplots(rows=k_count, cols=1, shared_xaxes=True, vertical_spacing=0.07)
    numbers = [t.number for t in trials.complete]
    for k, objective in enumerate(study.objectives):
        for name, members, color, symbol in (("feasible trials", trials.feasible, COLORS[0], "circle"),
                                             ("infeasible trials", trials.infeasible, "#c7c7c7", "x")):
            figure.add_trace(go.Scatter(
                x=[t.number for t in members], y=[t.values[k] for t in members], mode="markers",
                name=name, legendgroup=name, showlegend=k == 0,
                marker={"color": color, "symbol": symbol, "size": 6},
                hovertext=[trials.text(t, name.split()[0]) for t in members], hoverinfo="text"),
                row=k + 1, col=1)
        figure.add_trace(go.Scatter(
            x=numbers, y=_best_so_far(trials, k), mode="lines", line={"shape": "hv", "color": COLORS[1], "width": 2},
            name="best feasible so far", legendgroup="best", showlegend=k == 0), row=k + 1, col=1)
        if optimum[k] is not None and numbers:
            figure.add_trace(go.Scatter(
                x=[numbers[0], numbers[-1]], y=[optimum[k], optimum[k]], mode="lines",
                line={"color": COLORS[2], "dash": "dash", "width": 2},
                name="exhaustive optimum", legendgroup="optimum", showlegend=k == 0,
                hovertext=f"exhaustive optimum: {number(optimum[k], 6)}", hoverinfo="text"),
                row=k + 1, col=1)
        figure.update_yaxes(title_text=_objective_title(objective), row=k + 1, col=1,
                            type=_axis_type(np.array([t.values[k] for t in trials.feasible] or [np.nan])))
    figure.update_xaxes(title_text="trial", row=k_count, col=1)
    figure.update_layout(title="Optimization history", height=260 * k_count + 200,
                         legend={"orientation": "h", "y": -0.5 / k_count})
    return figure


def _importances(trials: _Trials) -> dict[str, dict[str, float]]:
    """Optuna's parameter importances per objective over the feasible complete trials
    (lower target is better for PED-ANOVA, so maximised objectives are negated)."""
    study = trials.study
    copy = optuna.create_study(directions=[o.direction for o in study.objectives])  # in memory
    copy.add_trials(trials.feasible)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, objective in enumerate(study.objectives):
            sign = -trials.signs[k]
            out[objective.metric] = optuna.importance.get_param_importances(
                copy, target=lambda t, k=k, sign=sign: sign * t.values[k])
    return out


def _importance_figure(importances: dict[str, dict[str, float]]) -> go.Figure:
    params = sorted({p for values in importances.values() for p in values},
                    key=lambda p: sum(v.get(p, 0.0) for v in importances.values()))
    figure = go.Figure()
    for metric, values in importances.items():
        figure.add_trace(go.Bar(y=params, x=[values.get(p, 0.0) for p in params], orientation="h", name=metric))
    figure.update_layout(title="Parameter importances (Optuna, PED-ANOVA)", barmode="group",
                         height=max(300, 40 * len(params) * max(1, len(importances)) // 2 + 160),
                         xaxis_title="importance (normalised per objective)")
    return figure


def _top_trials(trials: _Trials, top: int) -> list[optuna.trial.FrozenTrial]:
    """The front sorted by the first objective (several objectives), or the best feasible
    trials with distinct points (one objective), at most ``top``."""
    if trials.study.multi_objective:
        return sorted(trials.best, key=lambda t: -trials.signs[0] * t.values[0])[:top]
    ranked = sorted(trials.feasible, key=lambda t: (-trials.signs[0] * t.values[0], t.number))
    seen, out = set(), []
    for t in ranked:
        key = tuple(sorted((k, str(v)) for k, v in trials.points[t.number].items()))
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out[:top]


def _write_layouts(trials: _Trials, chosen: list[optuna.trial.FrozenTrial], folder: Path) -> list[dict[str, Any]]:
    """Each chosen trial's layout file (and, co-design, its chip's hardware file, which the
    layout names and the command passes)."""
    rows = []
    for rank, t in enumerate(chosen, start=1):
        path = folder / f"trial-{t.number}.toml"
        layout, command = trials.layouts[t.number], f"plummer predict --layout {path}"
        what = f"trial {t.number} of study '{trials.study.name}' (rank {rank} in its report), written by plummer report"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if t.number in trials.chips:
                chip_path = folder / f"trial-{t.number}-chip.toml"
                save_hardware(trials.chips[t.number], chip_path, header=f"chip of {what}")
                layout = layout.replace(hardware=str(chip_path))
                command += f" --hardware {chip_path}"
            save_layout(layout, path, header=f"layout of {what}")
        except OSError as exc:
            raise SpecError(f"cannot write the layout file '{path}': {exc.strerror or exc}") from None
        rows.append({"rank": rank, "trial": t.number, "values": list(t.values), "file": str(path),
                     "command": command})
    return rows


def study_report(study: StudyFile, storage_url: str, output: str | Path, top: int = 10,
                 exhaustive_max: int = EXHAUSTIVE_MAX_POINTS, say: Callable[[str], None] | None = None) -> Report:
    """Write the report of ``study`` (a :class:`search.StudyFile`) stored at ``storage_url``
    to ``output`` (module docstring); the top layouts go to ``<output stem>-layouts/``;
    ``say`` reports progress (a line each)."""
    if top < 1:
        raise SpecError(f"--top = {top} must be >= 1")
    output = check_writable(output)
    handle = open_readonly(study, storage_url)
    trials = _Trials(study, handle)
    if not trials.complete:
        raise SpecError(f"study '{study.name}' in '{storage_url}' has no complete trial yet; "
                        "run `plummer study run` first")
    objectives = ", ".join(f"{o.direction} {o.metric}" for o in study.objectives)
    page = Page(f"Study {study.name}", f"{study.model.name} on {study.hardware.name}: {objectives}")
    states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(trials.states.items()))
    if study.description:
        page.note(study.description)
    design = study.codesign
    size = study.space.size if design is None else _codesign.searched_size(study)
    if design is None:
        space = f"space of {study.space.size:,} points"
    else:
        per_chip = f"its best of {study.space.size:,} layouts" if design.mode == "nested" else "one layout"
        space = f"{design.space.size:,} chips, each with {per_chip}"
    page.note(f"{len(trials.complete)} complete trials ({len(trials.feasible)} feasible, "
              f"{len(trials.infeasible)} infeasible; by state: {states}); sampler {study.sampler}; "
              f"{space}; storage `{storage_url}`.")
    page.note(f"The same study opens in optuna-dashboard (standard Optuna storage): "
              f"`optuna-dashboard {storage_url}`.")

    truth = None
    if size <= exhaustive_max:
        if say is not None:
            say(f"enumerating the {size:,} points of the space for the true optimum")
        truth = exhaustive(study)
    exhaustive_note = (
        f"Exhaustive ground truth: all {truth['points']:,} points of the space evaluated by "
        f"`search.exhaustive` in {truth['seconds']:.1f} s ({truth['feasible']:,} feasible)."
        if truth else
        f"No exhaustive ground truth: the space has {size:,} points, more than the "
        f"{exhaustive_max:,} this report enumerates.")
    front_exact = None
    optimum: list[float | None] = [None] * len(study.objectives)
    if truth and study.multi_objective:
        front_exact = [{"values": f["values"], "layout": layout_lines(point_layout(study, f["point"]))}
                       if design is None else
                       {"values": f["values"], "layout": _codesign.chip_lines(f["point"]) + layout_lines(
                           point_layout(study, f["layout_point"]))} for f in truth["front"]]
        for k in range(len(study.objectives)):
            best = [trials.signs[k] * f["values"][k] for f in truth["front"]]
            optimum[k] = trials.signs[k] * max(best) if best else None
    elif truth and truth["optimum"] is not None:
        optimum[0] = truth["optimum"]["value"]

    if study.multi_objective:
        page.section("Pareto front")
        on_exact = ""
        if front_exact is not None:
            exact = {tuple(np.round(f["values"], 12)) for f in front_exact}
            hits = sum(tuple(np.round(t.values, 12)) in exact for t in trials.best)
            on_exact = f" ({hits} of them on the exact front of {len(front_exact)} points)"
        page.note(f"{len(trials.best)} of the {len(trials.feasible)} feasible trials are non-dominated"
                  f"{on_exact}. Hover a point for its whole layout and metrics. " + exhaustive_note)
        if trials.feasible:
            page.figure("pareto", _pareto_figure(trials, front_exact))
    codesign = _codesign.codesign_section(page, study, say) if design is not None else None
    page.section("Optimization history")
    page.note("Each complete trial in the order it was told, and the best feasible value so far. "
              + (" The dashed line is each objective's best on the exact front." if truth else "")
              if study.multi_objective else
              "Each complete trial in the order it was told, and the best feasible value so far. " + exhaustive_note)
    page.figure("history", _history_figure(trials, optimum))
    if truth and not study.multi_objective and trials.best:
        found = trials.best[0].values[0]
        gap = regret(study, optimum[0], found)
        page.note(f"Best found {number(found, 6)} (trial {trials.best[0].number}); exhaustive optimum "
                  f"{number(optimum[0], 6)}: regret {100 * gap:.3f}%.")

    page.section("Infeasible trials")
    if trials.infeasible:
        counts: dict[str, int] = {}
        for t in trials.infeasible:
            for label in trials.violated(t) or ["no constraint recorded"]:
                counts[label] = counts.get(label, 0) + 1
        page.note(f"{len(trials.infeasible)} complete trials do not fit; they are drawn apart, one "
                  "trace per set of reasons. Their figures are the model's all the same.")
        page.figure("infeasible", _infeasible_figure(trials) if design is None else _codesign.infeasible_figure(
            study, trials.infeasible, trials.points, [trials.text(t, "infeasible") for t in trials.infeasible]))
        page.table(["violated constraint", "trials"], sorted(counts.items(), key=lambda kv: -kv[1]), numeric=[False, True])
    else:
        page.note("Every complete trial fits.")

    page.section("Parameter importances")
    importances: dict[str, dict[str, float]] = {}
    if len(trials.feasible) >= 2 and (study.space if design is None else design.space).dimensions:
        importances = _importances(trials)
        page.note(f"Optuna's `optuna.importance.get_param_importances` (its default evaluator, "
                  f"PED-ANOVA) over the {len(trials.feasible)} feasible complete trials, per objective.")
        page.figure("importances", _importance_figure(importances))
    else:
        page.note("Importances need at least two feasible complete trials and a searched dimension.")

    layouts: list[dict[str, Any]] = []
    chosen = None
    if trials.best:
        best = _top_trials(trials, 1)[0]
        layout: Layout = trials.layouts[best.number]
        prediction = predict(trials.chips.get(best.number, study.hardware), study.model, layout)
        chosen = {"trial": best.number, "values": list(best.values)}
        page.section(f"The chosen layout: trial {best.number}")
        which = "the front's best on the first objective" if study.multi_objective else "the best feasible trial"
        chip = " ".join(_codesign.chip_lines(trials.points[best.number])) + ". " if design is not None else ""
        page.note(f"{which.capitalize()}, through `plummer.layout.predict`. {chip}" + " ".join(layout_lines(layout)))
        page.metrics({k: prediction.metrics[k] for k in HEADLINE if not math.isnan(prediction.metrics[k])})
        per_op, per_kernel = breakdown_figures(prediction.breakdown, "Cycles per layer by operation")
        page.figure("breakdown", per_op)
        page.figure("breakdown_kernels", per_kernel)

        chosen_trials = _top_trials(trials, top)
        layouts = _write_layouts(trials, chosen_trials, output.parent / f"{output.stem}-layouts")
        page.section("Top layouts")
        page.note("Each layout is written next to this report; its command prints the same figures.")
        header = ["rank", "trial", *(o.metric for o in study.objectives), "layout", "reproduce"]
        chip_text = (lambda n: _codesign.chip_lines(trials.points[n])) if design is not None else (lambda n: [])
        rows = [[row["rank"], row["trial"], *row["values"],
                 " | ".join(chip_text(row["trial"]) + layout_lines(trials.layouts[row["trial"]])), row["command"]]
                for row in layouts]
        page.table(header, rows, numeric=[True, True, *[True] * len(study.objectives), False, False],
                   code=[False, False, *[False] * len(study.objectives), False, True])
    page.write(output)
    facts = {
        "study": study.name, "storage": storage_url,
        "trials": {"complete": len(trials.complete), "feasible": len(trials.feasible),
                   "infeasible": len(trials.infeasible), "pareto": len(trials.best) if study.multi_objective else None,
                   "states": trials.states},
        "exhaustive": None if truth is None else {
            "points": truth["points"], "feasible": truth["feasible"], "seconds": truth["seconds"],
            "optimum": optimum, "front": len(truth["front"]) if study.multi_objective else None},
        "chosen": chosen, "importances": importances, "layouts": layouts,
    }
    if codesign is not None:
        facts["codesign"] = codesign
    return Report("study", output, page.summaries(), facts)


__all__ = ["EXHAUSTIVE_MAX_POINTS", "open_readonly", "study_report"]
