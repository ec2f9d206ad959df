"""Interactive reports: self-contained HTML pages of Plotly figures (``plummer report``).

One module per report, one writer each (the ``plummer report`` command of the same name):
:func:`study_report` (an Optuna study of layouts), :func:`validate_report` (closed forms
against the executor and the measured WSE-3 cycles), :func:`paper_report` (the published
WaferLLM runs reproduced), :func:`layout_report` (one layout on the wafer) and
:func:`mesh_report` (one executor run as heatmaps). Each writes one HTML file
that needs no network (:mod:`~plummer.report._page`) and returns a
:class:`~plummer.report._result.Report`. Reports read results; nothing imports them.
"""

from __future__ import annotations

from plummer.report._layout import layout_report
from plummer.report._mesh import mesh_report
from plummer.report._page import Page
from plummer.report._paper import paper_report
from plummer.report._result import Report
from plummer.report._study import EXHAUSTIVE_MAX_POINTS, study_report
from plummer.report._validate import validate_report

__all__ = ["EXHAUSTIVE_MAX_POINTS", "Page", "Report", "layout_report", "mesh_report", "paper_report",
           "study_report", "validate_report"]
