"""Read a figure's data and layout back from a report's HTML (what Plotly.newPlot is given), so
tests can check hover texts and axis ranges, not only point counts."""

from __future__ import annotations

import json
import re
from typing import Any


def figure_json(text: str, name: str) -> dict[str, Any]:
    """The ``data`` (traces) and ``layout`` of figure ``fig-<name>`` in a report's HTML."""
    match = re.search(r'Plotly\.newPlot\(\s*"fig-' + re.escape(name) + r'",\s*', text)
    assert match, f"no figure {name!r} in the page"
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(text, match.end())
    end = re.compile(r"\s*,\s*").match(text, end).end()
    layout, _ = decoder.raw_decode(text, end)
    return {"data": data, "layout": layout}
