"""``plummer hardware`` and ``plummer model``: show and export specs."""

from __future__ import annotations

import argparse
from typing import Any

from plummer.cli._base import add_json_flag, emit, print_json
from plummer.hardware import hardware_presets, load_hardware, save_hardware
from plummer.model import load_model, model_presets, save_model


def register(subparsers: argparse._SubParsersAction) -> None:
    hw = subparsers.add_parser("hardware", help="show or export a PLMR hardware spec")
    hw_sub = hw.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = hw_sub.add_parser(
        "show", help="print a hardware spec and its derived quantities",
        description=f"Show a hardware preset ({', '.join(hardware_presets())}) or TOML file.",
    )
    show.add_argument("spec", metavar="NAME|FILE", help="preset name or hardware TOML file")
    show.add_argument("-o", "--output", help="also write the spec to this TOML file")
    add_json_flag(show)
    show.set_defaults(func=_hardware_show)
    listing = hw_sub.add_parser(
        "list", help="list the hardware presets",
        description="Print the hardware presets' names, one a line; with --json one object "
        '{"hardware": [...]} with each preset\'s name, description, mesh (cores), memory per '
        "core (bytes), clock (GHz) and peak FLOP/s.",
    )
    add_json_flag(listing)
    listing.set_defaults(func=_hardware_list)

    model = subparsers.add_parser("model", help="show or export an LLM shape")
    model_sub = model.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = model_sub.add_parser(
        "show", help="print a model's shape and derived sizes",
        description=(
            f"Show a model preset ({', '.join(model_presets())}), a plummer model TOML file, "
            "or a Hugging Face config.json."
        ),
    )
    show.add_argument("spec", metavar="NAME|CONFIG.json", help="preset, TOML or config.json")
    show.add_argument(
        "--context", type=int, default=4096,
        help="context length (tokens) for the FLOPs per token (default 4096)",
    )
    show.add_argument("-o", "--output", help="also write the model to this TOML file")
    add_json_flag(show)
    show.set_defaults(func=_model_show)
    listing = model_sub.add_parser(
        "list", help="list the model presets",
        description="Print the model presets' names, one a line; with --json one object "
        '{"models": [...]} with each preset\'s name, shape (hidden, FFN, layers, heads, KV '
        "heads, head dim, vocab), dtype, weights (elements) and source.",
    )
    add_json_flag(listing)
    listing.set_defaults(func=_model_list)


#: What ``hardware list --json`` says of each preset (``hardware show`` says everything).
HARDWARE_SUMMARY = ("name", "description", "mesh_width", "mesh_height", "cores", "memory_bytes",
                    "clock_ghz", "peak_flops")
#: What ``model list --json`` says of each preset.
MODEL_SUMMARY = ("name", "hidden", "ffn", "layers", "heads", "kv_heads", "head_dim", "vocab", "dtype",
                 "weights_total", "source")


def _list_presets(args: argparse.Namespace, names: list[str], load: Any, summary: tuple[str, ...],
                  key: str) -> None:
    """One preset name per line, or with ``--json`` ``{key: [summary of each preset]}``."""
    if not args.json:
        print("\n".join(names))
        return
    rows = []
    for name in names:
        spec = load(name)
        fields = spec.to_dict() | spec.derived()
        rows.append({field: fields[field] for field in summary})
    print_json({key: rows})


def _hardware_list(args: argparse.Namespace) -> None:
    _list_presets(args, hardware_presets(), load_hardware, HARDWARE_SUMMARY, "hardware")


def _model_list(args: argparse.Namespace) -> None:
    _list_presets(args, model_presets(), load_model, MODEL_SUMMARY, "models")


def _hardware_show(args: argparse.Namespace) -> None:
    spec = load_hardware(args.spec)
    if args.output:
        save_hardware(spec, args.output)
    emit(spec.to_dict() | spec.derived(), args.json, f"hardware {spec.name}")


def _model_show(args: argparse.Namespace) -> None:
    spec = load_model(args.spec)
    if args.output:
        save_model(spec, args.output)
    emit(spec.to_dict() | spec.derived(context=args.context), args.json, f"model {spec.name}")
