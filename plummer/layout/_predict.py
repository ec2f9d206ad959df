"""One layout's prediction with its breakdown, and the default layout ``plummer predict`` picks.

:func:`predict` evaluates one :class:`~plummer.layout.Layout` through the batch closed form
(a batch of one) and adds what a user reads: the per-operation breakdown, the reasons a
layout does not fit with the bytes that overflow, and the layout itself.
:func:`default_layout` fills in what a user did not give by evaluating a sweep of
candidates in one batch and keeping the best that fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from plummer.hardware import HardwareSpec
from plummer.layout._arrays import LayoutArrays, default_head_groups, layout_arrays
from plummer.layout._layout import Layout, PhaseLayout
from plummer.layout._metrics import Evaluation, PhaseCost, evaluate, reason_texts
from plummer.model import ModelSpec

#: The headline figures, in the order they are printed.
HEADLINE = ("ttft_s", "prefill_tokens_per_s", "decode_tokens_per_s", "decode_s_per_token",
            "e2e_tokens_per_s", "prefill_throughput_tokens_per_s",
            "decode_throughput_tokens_per_s", "e2e_throughput_tokens_per_s", "utilization",
            "utilization_prefill", "utilization_decode", "utilization_single",
            "energy_per_token_j", "replacement_s", "memory_per_core_bytes",
            "memory_prefill_bytes", "memory_decode_bytes", "kv_cache_bytes", "routes_per_core",
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


def _memory_reasons(ev: Evaluation, spec: HardwareSpec, model: ModelSpec, layout: Layout) -> list[str]:
    """Why the memory does not fit, with the bytes that overflow and the op that peaks."""
    m = {k: float(v.reshape(-1)[0]) for k, v in ev.metrics.items()}
    budget = spec.memory_bytes
    texts = []
    for phase, cost, key in (("prefill", ev.prefill, "memory_prefill_bytes"),
                             ("decode", ev.decode, "memory_decode_bytes")):
        total = m[key]
        if total <= budget:
            continue
        lay = getattr(layout, phase)
        layers = max(lay.layers_per_region or [-(-model.layers // lay.regions)])
        worst = max(cost.ops, key=lambda op: float(
            (cost.costs[op.name].memory_bytes - cost.costs[op.name].resident_bytes
             + op.live_bytes).reshape(-1)[0]) if np.asarray(op.repeats).reshape(-1)[0] else -1)
        weights = float(cost.weights_bytes.reshape(-1)[0]) * layers
        text = (f"{phase}: memory per core {total:,.0f} B exceeds the budget {budget:,} B by "
                f"{total - budget:,.0f} B: weights {weights:,.0f} B ({layers} layers per region)")
        if phase == "decode":
            text += f", KV cache {m['kv_cache_bytes']:,.0f} B at {layout.input_tokens + layout.output_tokens:,} tokens"
        text += f", buffers {float(cost.working_bytes.reshape(-1)[0]):,.0f} B (largest in op '{worst.name}')"
        texts.append(text)
    return texts


def predict(spec: HardwareSpec, model: ModelSpec, layout: Layout, chosen: list[str] | None = None) -> Prediction:
    """The closed-form prediction of one layout (errors name the bad field); the layout it
    returns has its default head groupings resolved."""
    arrays = layout_arrays(spec, model, [layout])
    layout = layout.replace(prefill={"head_groups": int(arrays.prefill.head_groups[0])},
                            decode={"head_groups": int(arrays.decode.head_groups[0])})
    ev = evaluate(spec, model, arrays)
    metrics = {k: (int(v[0]) if k == "reasons" else float(v[0])) for k, v in ev.metrics.items()}
    code = metrics["reasons"]
    reasons = [t for t in reason_texts(code) if "memory" not in t] + _memory_reasons(ev, spec, model, layout)
    reasons = _route_details(ev, spec, reasons)
    breakdown = _breakdown("prefill", ev.prefill) + _breakdown("decode", ev.decode)
    return Prediction(layout, model, spec, metrics, code == 0, reasons, breakdown, chosen or [])


def _route_details(ev: Evaluation, spec: HardwareSpec, reasons: list[str]) -> list[str]:
    out = []
    for text in reasons:
        if "routes" in text:
            phase = text.split(":")[0]
            cost = ev.prefill if phase == "prefill" else ev.decode
            op = max(cost.ops, key=lambda o: float(cost.costs[o.name].routes.reshape(-1)[0]))
            routes = float(cost.costs[op.name].routes.reshape(-1)[0])
            text = (f"{phase}: op '{op.name}' needs {routes:.0f} routes per core; the budget is "
                    f"{spec.route_budget}")
        out.append(text)
    return out


#: Square grids the default search tries (cores per side), and the most regions.
_CANDIDATE_SIDES = tuple(range(24, 1200, 24))


def default_layout(
    spec: HardwareSpec, model: ModelSpec, *, batch: int = 1, input_tokens: int = 4096,
    output_tokens: int = 256, kv_cache: str = "shift",
    prefill: PhaseLayout | None = None, decode: PhaseLayout | None = None,
    grids: dict[str, tuple[int, int] | None] | None = None,
    regions: dict[str, int | None] | None = None,
) -> tuple[Layout, list[str]]:
    """A layout for what is not given. A phase given whole (``prefill``, ``decode``) is kept,
    with its ``regions`` replaced if ``regions[phase]`` is given. Otherwise its grid
    (``grids[phase]``, else every square from 24 x 24 up in steps of 24) and region count
    (``regions[phase]``, else 1 up to what fits; grids of aspect 1, 2 and 3) are the candidates, all evaluated in one
    batch, and the fastest that fits is kept (prefill: the least TTFT; decode: the most
    tokens/s per request); if none fits, the one whose memory overflows least. Returns the
    layout and a sentence per choice made."""
    grids, regions = grids or {}, regions or {}
    chosen: list[str] = []
    side_max = min(spec.fabric_width, spec.fabric_height)
    # candidates, and grids 2 or 3 times as tall (or wide) as they are wide, which tile an
    # oblong fabric better and pad no more (lcm(P, kP) = kP)
    candidates = [(p, q) for s in _CANDIDATE_SIDES for k in (1, 2, 3)
               for p, q in dict.fromkeys(((s, k * s), (k * s, s)))
               if p <= spec.fabric_width and q <= spec.fabric_height] or [(side_max, side_max)]
    phases: dict[str, PhaseLayout] = {}
    for phase, given in (("prefill", prefill), ("decode", decode)):
        count = regions.get(phase)
        if given is not None:
            phases[phase] = given if count is None else PhaseLayout(
                **{**given.__dict__, "regions": count, "layers_per_region": None, "origins": None})
            continue
        shapes = [grids[phase]] if grids.get(phase) else candidates
        cand_p, cand_q, cand_r = [], [], []
        for p, q in shapes:
            fit = (spec.fabric_width // p) * (spec.fabric_height // q)
            for r in ([count] if count else range(1, min(model.layers, fit, 64) + 1)):
                cand_p.append(p)
                cand_q.append(q)
                cand_r.append(r)
        prefix = "pf" if phase == "prefill" else "dc"
        small = min(shapes[0])
        columns = {"pf_p": small, "pf_q": small, "dc_p": small, "dc_q": small,
                   f"{prefix}_p": np.asarray(cand_p), f"{prefix}_q": np.asarray(cand_q),
                   f"{prefix}_regions": np.asarray(cand_r)}
        arrays = LayoutArrays.from_columns(spec, model, batch=batch, input_tokens=input_tokens,
                                           output_tokens=output_tokens, kv_cache=kv_cache, **columns)
        m = evaluate(spec, model, arrays).metrics
        bits = (1 | 4 | 16 | 64) if phase == "prefill" else (2 | 8 | 32 | 128)
        ok = (m["reasons"] & bits) == 0
        score = -m["ttft_s"] if phase == "prefill" else m["decode_tokens_per_s"]
        key = "memory_prefill_bytes" if phase == "prefill" else "memory_decode_bytes"
        best = int(np.argmax(np.where(ok, score, -np.inf))) if ok.any() else int(np.argmin(m[key]))
        p, q, r = cand_p[best], cand_q[best], cand_r[best]
        phases[phase] = PhaseLayout(grid=(p, q), regions=r, head_groups=default_head_groups(model, p, q))
        goal = "the least TTFT" if phase == "prefill" else "the most decode tokens/s per request"
        fits = "that fits" if ok.any() else "(none fits: the least memory overflow)"
        what = "region count" if grids.get(phase) else "grid and region count"
        chosen.append(f"{phase}: {what} {p}x{q} x {r}: {goal} {fits} among {len(cand_p)} candidates")
    layout = Layout(prefill=phases["prefill"], decode=phases["decode"], batch=batch,
                    input_tokens=input_tokens, output_tokens=output_tokens, kv_cache=kv_cache,
                    model=model.name, hardware=spec.name)
    return layout, chosen


__all__ = ["HEADLINE", "Prediction", "default_layout", "predict"]
