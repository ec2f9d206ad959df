"""What the report test files share: small studies made in a temporary folder, the checks
that a report file is self-contained, and the check that it renders in Chromium."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import plotly.offline
from _browser import PageView

#: A model small enough that a search space mixes feasible and infeasible layouts.
TINY_MODEL = """
name = "tiny"
hidden = 1024
ffn = 4096
layers = 8
heads = 8
kv_heads = 2
head_dim = 128
vocab = 32000
tied_embeddings = false
qkv_bias = false
dtype = "bf16"
"""

#: A study over it (head_groups = 1 until the GEMM kernels take non-square meshes).
STUDY = """
name = "{name}"
model = "tiny.toml"
hardware = "wse2"
[space]
input_tokens = 2048
output_tokens = 64
pf_p = [60, 120, 240, 480]
pf_q = "pf_p"
pf_regions = [1, 2, 4, 8]
pf_head_groups = 1
dc_head_groups = 1
dc_p = {{low = 60, high = 600, step = 60}}
dc_q = "dc_p"
dc_regions = {{low = 1, high = 8}}
dc_allreduce = ["ktree", "pipeline"]
batch = [1, 4]
{objectives}
[sampler]
name = "{sampler}"
seed = 1
[run]
trials = {trials}
batch = 16
"""

TWO_OBJECTIVES = """
[[objectives]]
metric = "utilization"
direction = "maximize"
[[objectives]]
metric = "decode_tokens_per_s"
direction = "maximize"
"""

ONE_OBJECTIVE = """
[[objectives]]
metric = "ttft_s"
direction = "minimize"
"""


def make_study(folder: Path, name: str, objectives: str, sampler: str, trials: int) -> Path:
    """Write the tiny model and a study file over it in ``folder``; returns the study file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.toml").write_text(TINY_MODEL)
    path = folder / f"{name}.toml"
    path.write_text(STUDY.format(name=name, objectives=objectives, sampler=sampler, trials=trials))
    return path


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_self_contained(path: Path) -> str:
    """One HTML file holding plotly.js once and nothing that points off the file: with the
    bundle taken out, no ``http://`` or ``https://`` at all (so no script, style sheet,
    image or font source). Returns the text."""
    text = path.read_text(encoding="utf-8")
    bundle = plotly.offline.get_plotlyjs()
    assert text.startswith("<!DOCTYPE html>")
    assert text.count(bundle) == 1, "plotly.js must be embedded exactly once"
    rest = text.replace(bundle, "")
    for scheme in ("http://", "https://"):
        assert scheme not in rest, f"{path.name} refers to {scheme}: {rest[rest.index(scheme) - 80:rest.index(scheme) + 80]}"
    assert "<script src" not in rest and "<link" not in rest and "<img" not in rest
    return text


def assert_renders(view: PageView, summaries: list[dict[str, Any]]) -> None:
    """The page opened without a JavaScript error or a network request, Plotly drew every
    figure the report lists with the traces and point counts it lists, and the screenshot
    (of a figure) is a picture, not a blank area: its luminance spreads (a drawn figure:
    14 to 60 out of 255; an empty one: 0) over many colours."""
    assert view.console_errors == [] and view.page_errors == [], (view.console_errors, view.page_errors)
    assert view.requests == []
    assert [f["id"] for f in view.figures] == [f"fig-{s['name']}" for s in summaries]
    for drawn, summary in zip(view.figures, summaries, strict=True):
        assert drawn["drawn"] and drawn["svg_elements"] > 20, drawn["id"]
        expected = [{k: t[k] for k in ("name", "type", "points", "shape") if k in t} for t in summary["traces"]]
        assert drawn["traces"] == expected, drawn["id"]
    assert view.pixels["std"] > 5 and view.pixels["colours"] > 100, view.pixels


def traces(summary: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The traces of a figure summary whose name starts with ``prefix``."""
    return [t for t in summary["traces"] if (t["name"] or "").startswith(prefix)]


def figure(report: dict[str, Any], name: str) -> dict[str, Any]:
    """The summary of figure ``name`` in a report's JSON."""
    found = [f for f in report["figures"] if f["name"] == name]
    assert found, f"no figure {name!r}: {[f['name'] for f in report['figures']]}"
    return found[0]


def run_json(run_cli: Any, *argv: Any) -> dict[str, Any]:
    """Run a report command with ``--json``: exit 0 and stdout exactly one JSON object."""
    code, out, err = run_cli(*argv, "--json")
    assert code == 0, err
    return json.loads(out)
