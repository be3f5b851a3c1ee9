"""Evaluation: ranx metrics, significance tests against a baseline, fused systems, reports.

* :func:`evaluate_runs` scores runs held in memory and returns an :class:`Evaluation`;
* :func:`write_reports` renders report.md, report.html (with plots) and metrics.json;
* :func:`evaluate_stage` is the pipeline stage (TREC run files in, reports out);

ranx (and numba) are imported only when something is evaluated.
"""

from __future__ import annotations

from inpars.evaluation.metrics import Evaluation, WinTieLoss, evaluate_runs, qrels_dict
from inpars.evaluation.report_html import render_html
from inpars.evaluation.report_md import render_markdown
from inpars.evaluation.stage import evaluate_stage, metrics_json, write_reports

__all__ = [
    "Evaluation",
    "WinTieLoss",
    "evaluate_runs",
    "evaluate_stage",
    "metrics_json",
    "qrels_dict",
    "render_html",
    "render_markdown",
    "write_reports",
]
