"""Interactive reports: self-contained HTML pages of Plotly figures (``plummer report``).

One module per report: :mod:`~plummer.report._study` (an Optuna study of layouts),
:mod:`~plummer.report._validate` (closed forms against the executor and the measured
WSE-3 cycles), :mod:`~plummer.report._layout` (one layout on the wafer) and
:mod:`~plummer.report._mesh` (one executor run as heatmaps). Each writes one HTML file
that needs no network (:mod:`~plummer.report._page`) and returns a
:class:`~plummer.report._result.Report`. Reports read results; nothing imports them.
"""

from __future__ import annotations

from plummer.report._page import Page
from plummer.report._result import Report
from plummer.report._study import EXHAUSTIVE_MAX_POINTS, study_report

__all__ = ["EXHAUSTIVE_MAX_POINTS", "Page", "Report", "study_report"]
