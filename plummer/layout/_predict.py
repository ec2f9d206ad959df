"""One layout's prediction with its breakdown, and the default layout ``plummer predict`` picks.

:func:`predict` evaluates one :class:`~plummer.layout.Layout` through the batch closed form
(a batch of one) and adds what a user reads: the per-operation breakdown, the reasons a
layout does not fit with the bytes that overflow, and the layout itself.
:func:`default_layout` fills in what a user did not give by evaluating a sweep of
candidates in one batch and keeping the best that fits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from plummer.errors import SpecError
from plummer.hardware import HardwareSpec
from plummer.layout._arrays import LayoutArrays, default_head_groups, layout_arrays
from plummer.layout._layout import Layout, PhaseLayout
from plummer.layout._metrics import Evaluation, PhaseCost, evaluate, reason_texts
from plummer.layout._ops import Op
from plummer.model import ModelSpec

#: The headline figures, in the order they are printed.
HEADLINE = ("ttft_s", "prefill_tokens_per_s", "decode_tokens_per_s", "decode_s_per_token",
            "e2e_tokens_per_s", "prefill_throughput_tokens_per_s",
            "decode_throughput_tokens_per_s", "e2e_throughput_tokens_per_s", "utilization",
            "utilization_prefill", "utilization_decode", "utilization_single",
            "energy_per_token_j", "replacement_s", "memory_per_core_bytes",
            "memory_prefill_bytes", "memory_decode_bytes", "prompt_kv_bytes", "kv_cache_bytes",
            "routes_per_core",
            "max_context_concat", "max_context_shift")

SUBSET_NOTE = ("the timing is computed all the same: published wafer results for models larger "
               "than the wafer's SRAM run a subset of the layers and scale the time up")


@dataclass(frozen=True)
class Prediction:
    """A layout's figures (:data:`HEADLINE`), fit, breakdown and the layout itself."""

    layout: Layout
    model: ModelSpec
    hardware: HardwareSpec
    metrics: dict[str, float]
    feasible: bool
    infeasible_reasons: list[str]
    breakdown: list[dict[str, Any]]
    chosen: list[str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: headline figures, fit, breakdown, the layout and what was chosen."""
        out: dict[str, Any] = {"model": self.model.name, "hardware": self.hardware.name}
        out |= {k: self.metrics[k] for k in HEADLINE}
        out |= {k: v for k, v in self.metrics.items() if k not in HEADLINE and k != "reasons"}
        out["feasible"] = self.feasible
        out["infeasible_reasons"] = self.infeasible_reasons
        if not self.feasible:
            out["note"] = SUBSET_NOTE
        out["chosen_defaults"] = self.chosen
        out["breakdown"] = self.breakdown
        out["layout"] = self.layout.to_dict()
        return out


def _breakdown(phase: str, cost: PhaseCost) -> list[dict[str, Any]]:
    """A phase's rows of the breakdown: every op that runs, its cycles per layer split into
    compute and communication, its memory per core (bytes) and useful FLOPs."""
    rows = []
    for op in cost.ops:
        c = cost.costs[op.name]
        repeats = float(np.asarray(op.repeats).reshape(-1)[0])
        if repeats == 0:
            continue
        run = float(c.cycles.reshape(-1)[0])
        compute = float(c.compute_cycles.reshape(-1)[0])
        per_layer = repeats * (run - c.launch)
        rows.append({
            "phase": phase, "op": op.name, "kernel": _kernel_label(op),
            "repeats": repeats, "cycles_per_run": run, "cycles_per_layer": per_layer,
            "compute_cycles_per_layer": repeats * min(compute, run - c.launch),
            "comm_cycles_per_layer": per_layer - repeats * min(compute, run - c.launch),
            "memory_bytes": float(c.memory_bytes.reshape(-1)[0]),
            "useful_flops_per_layer": float(np.asarray(op.flops).reshape(-1)[0]),
        })
    return rows


def _kernel_label(op: Any) -> str:
    from plummer.layout._evaluate import _kernel_name

    if op.kind == "local":
        return "local"
    code = None if op.codes is None else int(np.asarray(op.codes).reshape(-1)[0])
    family, algo = _kernel_name(op, code)
    return f"{family}/{algo}" + (f" ({op.axis})" if op.axis else "")


#: Bits of ``reasons`` (:data:`~plummer.layout.REASONS`) whose texts :func:`predict` details.
_MEMORY_BITS, _ROUTE_BITS = {"prefill": 1, "decode": 2}, {"prefill": 4, "decode": 8}


def _runs(op: Op) -> bool:
    """Whether the op runs in the (one) layout evaluated: repeats 0 switch it off."""
    return bool(np.asarray(op.repeats).reshape(-1)[0])


def _memory_reason(ev: Evaluation, arrays: LayoutArrays, spec: HardwareSpec, layout: Layout,
                   phase: str) -> str:
    """Why a phase's memory does not fit, with the bytes that overflow and the op that peaks."""
    m = {k: float(v.reshape(-1)[0]) for k, v in ev.metrics.items()}
    budget = spec.memory_bytes
    cost = ev.prefill if phase == "prefill" else ev.decode
    total = m[f"memory_{phase}_bytes"]
    part = getattr(arrays, phase)
    layers, in_flight = int(part.max_layers.reshape(-1)[0]), int(part.regions.reshape(-1)[0])
    worst = max((op for op in cost.ops if _runs(op)),
                key=lambda op: float(cost.op_working_bytes[op.name].reshape(-1)[0]))
    weights = float(cost.weights_bytes.reshape(-1)[0]) * layers
    text = (f"{phase}: memory per core {total:,.0f} B exceeds the budget {budget:,} B by "
            f"{total - budget:,.0f} B: weights {weights:,.0f} B ({layers} layers per region)")
    batches = f"{in_flight} batch{'es' if in_flight > 1 else ''} in flight"
    if phase == "decode":
        text += (f", KV cache {m['kv_cache_bytes']:,.0f} B at {layout.input_tokens + layout.output_tokens:,} "
                 f"tokens ({batches})")
    else:
        text += f", the prompts' KV {m['prompt_kv_bytes']:,.0f} B ({batches})"
    return text + f", buffers {float(cost.working_bytes.reshape(-1)[0]):,.0f} B (largest in op '{worst.name}')"


def _route_details(ev: Evaluation, spec: HardwareSpec, phase: str) -> str:
    """Why a phase's routes do not fit: the running op that needs the most, and the budget."""
    cost = ev.prefill if phase == "prefill" else ev.decode
    op = max(cost.ops, key=lambda o: float(cost.costs[o.name].routes.reshape(-1)[0]) if _runs(o) else -1.0)
    routes = float(cost.costs[op.name].routes.reshape(-1)[0])
    return f"{phase}: op '{op.name}' needs {routes:.0f} routes per core; the budget is {spec.route_budget}"


def predict(spec: HardwareSpec, model: ModelSpec, layout: Layout, chosen: list[str] | None = None) -> Prediction:
    """The closed-form prediction of one layout (errors name the bad field); the layout it
    returns has its default head groupings resolved."""
    arrays = layout_arrays(spec, model, [layout])
    layout = layout.replace(prefill={"head_groups": int(arrays.prefill.head_groups[0])},
                            decode={"head_groups": int(arrays.decode.head_groups[0])})
    ev = evaluate(spec, model, arrays)
    metrics = {k: (int(v[0]) if k == "reasons" else float(v[0])) for k, v in ev.metrics.items()}
    code = metrics["reasons"]
    detailed = sum(_MEMORY_BITS.values()) | sum(_ROUTE_BITS.values())
    reasons = ([_route_details(ev, spec, phase) for phase, bit in _ROUTE_BITS.items() if code & bit]
               + reason_texts(code & ~detailed)
               + [_memory_reason(ev, arrays, spec, layout, phase)
                  for phase, bit in _MEMORY_BITS.items() if code & bit])
    breakdown = _breakdown("prefill", ev.prefill) + _breakdown("decode", ev.decode)
    return Prediction(layout, model, spec, metrics, code == 0, reasons, breakdown, chosen or [])


#: Square grids the default search tries (cores per side); it also tries each 2 and 3 times
#: as tall, and as wide.
_CANDIDATE_SIDES = tuple(range(24, 1200, 24))
#: The most regions the default search tries per grid (or the model's layers if fewer).
_MAX_SEARCHED_REGIONS = 64


def _given_phase(spec: HardwareSpec, phase: str, given: PhaseLayout, grid: tuple[int, int] | None,
                 count: int | None) -> tuple[PhaseLayout, list[str]]:
    """A given phase with its grid and region count replaced where given, dropping what
    they invalidate (with a note each): origins place regions of the old grid; layer counts
    and origins list the old regions. Regions that do not fit a replaced grid are an error."""
    notes = []
    if count is not None and count != given.regions:
        dropped = [name for name in ("layers_per_region", "origins") if getattr(given, name) is not None]
        if dropped:
            notes.append(f"{phase}: {count} regions replace the layout's {given.regions}; its "
                         f"{' and '.join(dropped)} are dropped (layers spread evenly, snake placement)")
        given = dataclasses.replace(given, regions=count, layers_per_region=None, origins=None)
    if grid is not None and grid != given.grid:
        fit = (spec.fabric_width // grid[0]) * (spec.fabric_height // grid[1])
        if given.regions > fit:
            raise SpecError(f"--{phase}-grid {grid[0]}x{grid[1]}: the layout's {given.regions} {phase} "
                            f"regions do not fit the fabric of '{spec.name}' ({spec.fabric_width} x "
                            f"{spec.fabric_height} cores) with that grid; allowed 1..{fit} "
                            f"(--{phase}-regions sets them)")
        if given.origins is not None:
            notes.append(f"{phase}: grid {grid[0]}x{grid[1]} replaces the layout's "
                         f"{given.grid[0]}x{given.grid[1]}; its origins are dropped (snake placement)")
        given = dataclasses.replace(given, grid=grid, origins=None)
    return given, notes


def default_layout(
    spec: HardwareSpec, model: ModelSpec, *, batch: int = 1, input_tokens: int = 4096,
    output_tokens: int = 256, kv_cache: str = "shift",
    prefill: PhaseLayout | None = None, decode: PhaseLayout | None = None,
    grids: dict[str, tuple[int, int] | None] | None = None,
    regions: dict[str, int | None] | None = None,
) -> tuple[Layout, list[str]]:
    """A layout for what is not given (``grids`` and ``regions`` are ``plummer predict``'s
    ``--prefill-grid`` etc.; a grid must be at least 2 x 2 and fit the fabric).

    A phase given whole (``prefill``, ``decode``) is kept, with its grid replaced if
    ``grids[phase]`` is given (its origins dropped; its regions must fit the new grid) and
    its region count if ``regions[phase]`` is (its layer counts and origins dropped).
    Otherwise its grid (``grids[phase]``, else every square from 24 x 24 up in steps of 24
    and grids 2 and 3 times as tall or wide) and region count (``regions[phase]``, else 1 up
    to what fits the fabric, the layers and :data:`_MAX_SEARCHED_REGIONS`) are the
    candidates, all that fit the fabric evaluated in one batch: the fastest that fits the
    memory and routes is kept (prefill: the least TTFT; decode: the most tokens/s per
    request), else the one with the least memory per core. Returns the layout and a
    sentence per choice made."""
    grids, regions = grids or {}, regions or {}
    width, height = spec.fabric_width, spec.fabric_height
    for phase, grid in grids.items():
        if grid is not None and (min(grid) < 2 or grid[0] > width or grid[1] > height):
            raise SpecError(f"--{phase}-grid {grid[0]}x{grid[1]} must be at least 2x2 and fit the "
                            f"fabric of '{spec.name}' ({width} x {height} cores)")
    chosen: list[str] = []
    # grids 2 or 3 times as tall (or wide) as they are wide tile an oblong fabric better and
    # pad no more (lcm(P, kP) = kP); a fabric smaller than every candidate: its largest square
    side = min(width, height)
    candidates = [(p, q) for s in _CANDIDATE_SIDES for k in (1, 2, 3)
                  for p, q in dict.fromkeys(((s, k * s), (k * s, s)))
                  if p <= width and q <= height] or [(side, side)]
    phases: dict[str, PhaseLayout] = {}
    for phase, given in (("prefill", prefill), ("decode", decode)):
        count, grid = regions.get(phase), grids.get(phase)
        if given is not None:
            phases[phase], notes = _given_phase(spec, phase, given, grid, count)
            chosen += notes
            continue
        shapes = [grid] if grid else candidates
        fits = {(p, q): min((width // p) * (height // q), model.layers) for p, q in shapes}
        cand = [(p, q, r) for (p, q), fit in fits.items()
                for r in (range(1, min(fit, _MAX_SEARCHED_REGIONS) + 1) if count is None
                          else [count] if count <= fit else [])]
        if not cand:
            where = f"grid {grid[0]}x{grid[1]}" if grid else "any grid searched"
            raise SpecError(f"{phase}: {count} regions (--{phase}-regions or --regions) of {where} "
                            f"do not fit the fabric of '{spec.name}' ({width} x {height} cores) or "
                            f"outnumber the model's {model.layers} layers; allowed 1..{max(fits.values())}")
        cand_p, cand_q, cand_r = (np.asarray(c) for c in zip(*cand, strict=True))
        prefix = "pf" if phase == "prefill" else "dc"
        small = min(shapes[0])  # the other phase: a placeholder that fits
        columns = {"pf_p": small, "pf_q": small, "dc_p": small, "dc_q": small,
                   f"{prefix}_p": cand_p, f"{prefix}_q": cand_q, f"{prefix}_regions": cand_r}
        arrays = LayoutArrays.from_columns(spec, model, batch=batch, input_tokens=input_tokens,
                                           output_tokens=output_tokens, kv_cache=kv_cache, **columns)
        m = evaluate(spec, model, arrays).metrics
        # the fallback never takes regions that do not fit the fabric (bits 16, 32)
        placed = (m["reasons"] & (16 if phase == "prefill" else 32)) == 0
        bits = (1 | 4 | 16 | 64) if phase == "prefill" else (2 | 8 | 32 | 128)
        ok = (m["reasons"] & bits) == 0
        memory = m["memory_prefill_bytes" if phase == "prefill" else "memory_decode_bytes"]
        what = "region count" if grid else "grid and region count"
        if ok.any():
            score = -m["ttft_s"] if phase == "prefill" else m["decode_tokens_per_s"]
            best = int(np.argmax(np.where(ok, score, -np.inf)))
            goal = "the least TTFT" if phase == "prefill" else "the most decode tokens/s per request"
            why = f"{goal} among the {int(ok.sum())} of {len(cand)} candidates that fit"
        else:
            best = int(np.argmin(np.where(placed, memory, np.inf)))
            why = (f"none of the {len(cand)} candidates fits the memory and route budgets: the "
                   f"least memory per core ({float(memory[best]):,.0f} B)")
        p, q, r = int(cand_p[best]), int(cand_q[best]), int(cand_r[best])
        phases[phase] = PhaseLayout(grid=(p, q), regions=r, head_groups=default_head_groups(model, p, q))
        chosen.append(f"{phase}: {what} {p}x{q} x {r}: {why}")
    layout = Layout(prefill=phases["prefill"], decode=phases["decode"], batch=batch,
                    input_tokens=input_tokens, output_tokens=output_tokens, kv_cache=kv_cache,
                    model=model.name, hardware=spec.name)
    return layout, chosen


__all__ = ["HEADLINE", "Prediction", "default_layout", "predict"]
