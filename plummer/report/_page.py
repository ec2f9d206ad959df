"""A report page: one self-contained HTML file of Plotly figures, tables and notes.

plotly.js is embedded once, in the page's head (``plotly.offline.get_plotlyjs()``); every
figure is a ``<div>`` drawn by ``Plotly.newPlot`` from the JSON Plotly's ``to_html`` writes
beside it, so the file opens anywhere without the network (no script, style sheet, image
or font is fetched; MathJax and the topojson of map traces are not used).

Each figure added to a :class:`Page` keeps a *summary* (its traces, their types and point
counts) that the commands print with ``--json`` and the tests compare with what the input
implies.

Example:
    >>> import plotly.graph_objects as go
    >>> page = Page("demo", "a page")
    >>> page.figure("line", go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 4, 9], name="squares")))
    >>> page.summaries()[0]["traces"]
    [{'name': 'squares', 'type': 'scatter', 'points': 3}]
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from plummer import __version__
from plummer.errors import SpecError

#: Plotly's options for every figure: no logo, resizes with the window, the camera button
#: saves an SVG (vector: what a paper wants).
_CONFIG = {"displaylogo": False, "responsive": True,
           "toImageButtonOptions": {"format": "svg", "scale": 1}}

#: The figures' look: Plotly's white template, one font, a colour cycle that prints well.
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22", "#7f7f7f")

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 0; background: #fafafa; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 6px; padding-top: 12px; border-top: 1px solid #e4e4e4; }
.subtitle { color: #555; margin: 0 0 12px; }
.note { color: #555; font-size: 14px; margin: 6px 0; max-width: 1050px; }
.figure { margin: 8px 0 4px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e8e8e8; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
       background: #f4f4f4; padding: 1px 4px; border-radius: 3px; }
footer { color: #888; font-size: 12px; margin-top: 40px; }
"""


def trace_points(trace: Any) -> int:
    """Points a trace draws: cells of a heatmap, else the length of its x (or y)."""
    if trace.type == "heatmap":
        return int(np.asarray(trace.z, dtype=float).size)
    for axis in ("x", "y"):
        values = getattr(trace, axis, None)
        if values is not None:
            return len(values)
    return 0


def trace_summary(trace: Any) -> dict[str, Any]:
    """A trace's name, type and points (a heatmap's ``shape`` too: rows, columns)."""
    out = {"name": trace.name, "type": trace.type, "points": trace_points(trace)}
    if trace.type == "heatmap":
        out["shape"] = list(np.asarray(trace.z, dtype=float).shape)
    return out


def figure_summary(name: str, figure: go.Figure) -> dict[str, Any]:
    """A figure's name, title and traces (:func:`trace_summary`)."""
    title = figure.layout.title.text if figure.layout.title else None
    return {"name": name, "title": title, "traces": [trace_summary(t) for t in figure.data]}


def number(value: Any, digits: int = 4) -> str:
    """A readable number: integers with thousands separators, others to ``digits``
    significant digits; NaN and None as ``-``."""
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    value = float(value)
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.{max(digits - 1 - int(math.log10(abs(value))), 0)}f}"
    return f"{value:.{digits}g}"


def percent(value: float) -> str:
    """A fraction as a percentage to 3 significant digits (``-`` for NaN)."""
    return "-" if value is None or math.isnan(value) else f"{100 * value:.3g}%"


def check_writable(path: str | Path) -> Path:
    """``path`` as a :class:`Path` once its folder exists (made if needed) and is writable,
    so a report fails before its work rather than after; errors name the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"-o '{path}': cannot write the report: {exc.strerror or exc}") from None
    if path.is_dir() or not os.access(path.parent, os.W_OK):
        raise SpecError(f"-o '{path}': cannot write the report there")
    return path


class Page:
    """An HTML report in the making: sections of notes, figures and tables.

    ``title`` is the page's heading, ``subtitle`` a line under it; :meth:`write` saves the
    self-contained file.
    """

    def __init__(self, title: str, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self._parts: list[str] = []
        self._figures: list[tuple[str, go.Figure]] = []

    def section(self, title: str) -> None:
        """Start a section (a heading)."""
        self._parts.append(f"<h2>{html.escape(title)}</h2>")

    def note(self, text: str) -> None:
        """A paragraph of plain text (escaped; ``code`` spans in backquotes)."""
        escaped = html.escape(text)
        pieces = escaped.split("`")
        body = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))
        self._parts.append(f'<p class="note">{body}</p>')

    def figure(self, name: str, figure: go.Figure, height: int | None = None) -> None:
        """Add a Plotly figure under a unique ``name`` (its div is ``fig-<name>``)."""
        if any(name == n for n, _ in self._figures):
            raise ValueError(f"figure name {name!r} used twice")
        figure.update_layout(template="plotly_white", colorway=list(COLORS),
                             font={"family": "Helvetica, Arial, sans-serif", "size": 13},
                             hoverlabel={"bgcolor": "rgba(255, 255, 255, 0.94)", "font": {"color": "#222", "size": 12},
                                         "align": "left"})
        if height is not None:
            figure.update_layout(height=height)
        self._figures.append((name, figure))
        config = _CONFIG | {"toImageButtonOptions": _CONFIG["toImageButtonOptions"] | {"filename": name}}
        div = pio.to_html(figure, full_html=False, include_plotlyjs=False, div_id=f"fig-{name}",
                          config=config, default_width="100%",
                          default_height=f"{figure.layout.height or 480}px")
        self._parts.append(f'<div class="figure">{div}</div>')

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]],
              numeric: Sequence[bool] | None = None, code: Sequence[bool] | None = None) -> None:
        """A table; cells are text (escaped) or numbers (formatted with :func:`number`);
        ``numeric`` right-aligns columns, ``code`` sets columns in monospace."""
        numeric = numeric or [False] * len(header)
        code = code or [False] * len(header)
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for value, is_num, is_code in zip(row, numeric, code, strict=True):
                text = html.escape(value if isinstance(value, str) else number(value))
                text = f"<code>{text}</code>" if is_code else text
                cells.append(f'<td class="num">{text}</td>' if is_num else f"<td>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")

    def metrics(self, values: dict[str, Any], columns: int = 3) -> None:
        """Named values as a compact table of ``columns`` (name, value) pairs per row."""
        items = list(values.items())
        rows = []
        for start in range(0, len(items), columns):
            chunk = items[start:start + columns]
            chunk += [("", "")] * (columns - len(chunk))
            rows.append([cell for pair in chunk for cell in pair])
        self.table(["metric", "value"] * columns, rows, numeric=[False, True] * columns)

    def summaries(self) -> list[dict[str, Any]]:
        """Every figure's :func:`figure_summary`, in page order."""
        return [figure_summary(name, figure) for name, figure in self._figures]

    def html(self) -> str:
        """The whole page (plotly.js embedded once)."""
        subtitle = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(self.title)}</title>\n<style>{_STYLE}</style>\n"
            f"<script type=\"text/javascript\">{plotly.offline.get_plotlyjs()}</script>\n"
            "</head>\n<body>\n<main>\n"
            f"<h1>{html.escape(self.title)}</h1>\n{subtitle}\n" + "\n".join(self._parts)
            + f"\n<footer>written by plummer {__version__} (plotly.js embedded: this file "
            "needs no network)</footer>\n</main>\n</body>\n</html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the page to ``path`` (parent directories created); errors name the path."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.html(), encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"-o '{path}': cannot write the report: {exc.strerror or exc}") from None
        return path


__all__ = ["COLORS", "Page", "check_writable", "figure_summary", "number", "percent", "trace_points", "trace_summary"]
