"""``plummer hardware`` and ``plummer model``: show and export specs."""

from __future__ import annotations

import argparse

from plummer.cli._base import add_json_flag, emit
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
    hw_sub.add_parser("list", help="list the hardware presets").set_defaults(
        func=lambda args: print("\n".join(hardware_presets()))
    )

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
    model_sub.add_parser("list", help="list the model presets").set_defaults(
        func=lambda args: print("\n".join(model_presets()))
    )


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
