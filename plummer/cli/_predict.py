"""``plummer predict``: TTFT, decode tokens/s, utilization and memory of an LLM layout."""

from __future__ import annotations

import argparse
import math
from typing import Any

from plummer.cli._base import CommandLineError, add_json_flag, parse_mesh, print_json
from plummer.hardware import load_hardware
from plummer.layout import (
    HEADLINE,
    SUBSET_NOTE,
    Layout,
    Prediction,
    default_layout,
    load_layout,
    predict,
    save_layout,
)
from plummer.model import load_model


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    pred = subparsers.add_parser(
        "predict", help="predict TTFT, decode tokens/s, utilization and memory of an LLM layout",
        description="Closed-form prediction of one LLM on one chip with one layout (a TOML file "
        "or defaults chosen for what is not given): TTFT, prefill and decode tokens/s, "
        "end-to-end tokens/s, wafer utilization, memory per core, KV capacity and a "
        "per-operation breakdown.",
    )
    pred.add_argument("--model", help="model preset, plummer model TOML or Hugging Face config.json "
                      "(default: the layout file's, else llama3-8b)")
    pred.add_argument("--hardware", help="hardware preset or TOML (default: the layout file's, else wse2)")
    pred.add_argument("--layout", help="layout TOML file: [prefill] and [decode] tables and the "
                      "request, as `plummer predict --output-layout` and `plummer study best -o` "
                      "write them (plummer/layout/_layout.py documents every field)")
    for phase in ("prefill", "decode"):
        pred.add_argument(f"--{phase}-grid", dest=f"{phase}_grid",
                          help=f"{phase} region grid PxQ (cores, at least 2x2); with --layout it "
                          f"replaces only the grid of the file's [{phase}] (its other fields kept, "
                          "its origins dropped; regions that do not fit the new grid are an error)")
    pred.add_argument("--regions", type=_positive, help="regions of both phases (with --layout, "
                      "the file's layers_per_region and origins of a phase whose count changes "
                      "are dropped)")
    pred.add_argument("--prefill-regions", dest="prefill_regions", type=_positive,
                      help="prefill regions (overrides --regions)")
    pred.add_argument("--decode-regions", dest="decode_regions", type=_positive,
                      help="decode regions (overrides --regions)")
    pred.add_argument("--input-tokens", dest="input_tokens", type=_positive,
                      help="input (prompt) tokens per request (default 4096)")
    pred.add_argument("--output-tokens", dest="output_tokens", type=_positive,
                      help="output tokens per request (default 256)")
    pred.add_argument("--batch", type=_positive, help="requests prefilled and decoded together (default 1)")
    pred.add_argument("--kv-cache", dest="kv_cache", choices=("shift", "concat"),
                      help="KV-cache scheme of decode (default shift)")
    pred.add_argument("-o", "--output-layout", dest="output_layout", metavar="LAYOUT.toml",
                      help="write the layout used (given or chosen) to this TOML file")
    add_json_flag(pred)
    pred.set_defaults(func=_predict)


def _grid(text: str | None, option: str) -> tuple[int, int] | None:
    """A layout grid option (a region needs at least 2 x 2 cores)."""
    return None if text is None else parse_mesh(text, option, minimum=2)


def run_predict(args: argparse.Namespace) -> Prediction:
    """The prediction the options describe (the API call behind ``plummer predict``)."""
    base = load_layout(args.layout) if args.layout else None
    model = load_model(args.model or (base.model if base and base.model else "llama3-8b"))
    spec = load_hardware(args.hardware or (base.hardware if base and base.hardware else "wse2"))
    request: dict[str, Any] = {
        "batch": args.batch or (base.batch if base else 1),
        "input_tokens": args.input_tokens or (base.input_tokens if base else 4096),
        "output_tokens": args.output_tokens or (base.output_tokens if base else 256),
        "kv_cache": args.kv_cache or (base.kv_cache if base else "shift"),
    }
    layout, chosen = default_layout(
        spec, model, **request,
        prefill=base.prefill if base else None, decode=base.decode if base else None,
        grids={"prefill": _grid(args.prefill_grid, "--prefill-grid"),
               "decode": _grid(args.decode_grid, "--decode-grid")},
        regions={"prefill": args.prefill_regions or args.regions,
                 "decode": args.decode_regions or args.regions},
    )
    if base and base.description:
        layout = layout.replace(description=base.description)
    return predict(spec, model, layout.replace(model=model.name, hardware=spec.name), chosen)


def _predict(args: argparse.Namespace) -> None:
    result = run_predict(args)
    if args.output_layout:
        save_layout(result.layout, args.output_layout,
                    header=f"plummer layout for {result.model.name} on {result.hardware.name}")
    if args.json:
        print_json(result.as_dict())
        return
    _print(result)
    if args.output_layout:
        print(f"\nwrote {args.output_layout}")


def _number(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if abs(value) >= 1e5 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def _print(result: Prediction) -> None:
    lay: Layout = result.layout
    print(f"{result.model.name} on {result.hardware.name}: batch {lay.batch}, "
          f"{lay.input_tokens:,} input and {lay.output_tokens:,} output tokens, KV cache {lay.kv_cache}")
    for phase in ("prefill", "decode"):
        p = getattr(lay, phase)
        extra = f", {p.gemm} GEMMs" if phase == "prefill" else ""
        print(f"  {phase:<8} {p.grid[0]}x{p.grid[1]} cores x {p.regions} region(s), {p.head_groups} "
              f"head groups, {p.allreduce} allreduce (K={p.k_tree}){extra}")
    for text in result.chosen:
        print(f"  chosen: {text}")
    print()
    width = max(len(k) for k in HEADLINE)
    for key in HEADLINE:
        print(f"  {key:<{width}}  {_number(result.metrics[key])}")
    print(f"  {'feasible':<{width}}  {result.feasible}")
    for text in result.infeasible_reasons:
        print(f"    - {text}")
    if not result.feasible:
        print(f"    ({SUBSET_NOTE})")
    print()
    print(f"  {'phase':<8}{'op':<24}{'kernel':<28}{'repeats':>8}{'cycles/layer':>14}"
          f"{'compute':>12}{'comm':>12}{'memory B':>10}")
    for row in result.breakdown:
        print(f"  {row['phase']:<8}{row['op']:<24}{row['kernel']:<28}{row['repeats']:>8.0f}"
              f"{row['cycles_per_layer']:>14,.0f}{row['compute_cycles_per_layer']:>12,.0f}"
              f"{row['comm_cycles_per_layer']:>12,.0f}{row['memory_bytes']:>10,.0f}")


__all__ = ["CommandLineError", "register", "run_predict"]
