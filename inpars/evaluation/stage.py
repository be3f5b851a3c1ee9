"""The ``evaluate`` stage: score the runs, write report.md, report.html and metrics.json.

Files in the stage folder (``runs/<name>/evaluate/``): ``report.md``, ``report.html``,
``metrics.json`` (means, p-values, marks, counts) and ``per_query.json`` (every
system's score on every query). The committed reference in ``eval/results/`` changes only
with ``inpars publish`` (:mod:`inpars.pipeline.publish`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from inpars.config import EvaluateConfig
from inpars.evaluation.metrics import Evaluation, evaluate_runs
from inpars.evaluation.report_html import render_html
from inpars.evaluation.report_md import render_markdown
from inpars.evaluation.worth import worth_json, worth_table
from inpars.io import write_json, write_text
from inpars.manifest import StageContext
from inpars.records import Qrel, ScoredPair, SyntheticQuery
from inpars.trec import read_trec_run

log = logging.getLogger(__name__)

REPORT_FILES = ("report.md", "report.html", "metrics.json")


def metrics_json(ev: Evaluation, *, command: str = "") -> dict[str, Any]:
    """The machine-readable summary written to metrics.json."""
    return {
        "command": command,
        "baseline": ev.baseline,
        "stat_test": ev.stat_test,
        "max_p": ev.max_p,
        "metrics": ev.metrics,
        "systems": ev.means,
        "p_values": ev.p_values,  # raw, against the baseline
        "p_values_adjusted": ev.adjusted_p_values,  # what the significance marks use
        "correction": {
            "method": ev.correction,
            "family": "per metric: every pairwise test of the report",
            "tests_per_family": ev.tests_per_family,
        },
        "significance": ev.marks,
        "ci95_difference": {  # paired t-based 95% CI of the mean difference with the baseline
            s: {m: list(ci) if ci is not None else None for m, ci in by_metric.items()}
            for s, by_metric in ev.ci95.items()
        },
        "win_tie_loss": {
            s: {m: {"wins": w.wins, "ties": w.ties, "losses": w.losses} for m, w in by_metric.items()}
            for s, by_metric in ev.win_tie_loss.items()
        },
        "queries_evaluated": len(ev.query_ids),
        "excluded_queries": len(ev.excluded_query_ids),
        "excluded_query_ids_given": ev.excluded_requested,
        "queries_without_relevant": len(ev.no_relevant),
        "missing_queries": ev.missing,
        "unjudged_queries": ev.unjudged,
        "fused": ev.fused,
        "notes": ev.notes,
        "worth": worth_json(worth_table([ev], ev.metrics[0])),
    }


def write_reports(
    ev: Evaluation,
    out_dir: Path,
    cfg: EvaluateConfig,
    *,
    command: str,
    title: str = "Evaluation",
    synthetic: Sequence[SyntheticQuery] | None = None,
    extra_sections: Mapping[str, str] | None = None,
    query_texts: Mapping[str, str] | None = None,
    doc_texts: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write report.md, report.html, metrics.json and per_query.json atomically into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "report.md", render_markdown(
        ev, command=command, title=title, digits=cfg.rounding_digits, synthetic=synthetic,
        extra_sections=extra_sections,
    ))
    write_text(out_dir / "report.html", render_html(
        ev, command=command, title=title, digits=cfg.rounding_digits, with_plots=cfg.plots,
        synthetic=synthetic, examples=cfg.examples, extra_sections=extra_sections,
        query_texts=query_texts, doc_texts=doc_texts,
    ))
    write_json(out_dir / "metrics.json", metrics_json(ev, command=command))
    write_json(out_dir / "per_query.json", {"query_ids": ev.query_ids, "scores": ev.per_query})
    return {name: out_dir / name for name in (*REPORT_FILES, "per_query.json")}


def evaluate_stage(
    ctx: StageContext,
    cfg: EvaluateConfig,
    qrels: list[Qrel],
    runs: dict[str, Path],
    *,
    excluded_query_ids: Collection[str],
    command: str,
    synthetic: list[SyntheticQuery] | None = None,
    extra_sections: dict[str, str] | None = None,
    title: str = "Evaluation",
    query_texts: Mapping[str, str] | None = None,
    doc_texts: Mapping[str, str] | None = None,
    rescored_depth: Mapping[str, int] | None = None,
) -> None:
    """Evaluate TREC run files (system name -> path) against ``qrels`` into ``ctx.out_dir``.

    ``rescored_depth`` maps each reranked system to the number of first-stage documents per
    query it rescored (``[rerank] depth``); its ``[evaluate] interpolate`` entry then
    normalizes over those documents only (see :func:`inpars.evaluation.metrics.interpolate`).
    """
    with ctx.timed("read_runs"):
        loaded: dict[str, dict[str, list[ScoredPair]]] = {n: read_trec_run(p) for n, p in runs.items()}
    with ctx.timed("evaluate"):
        ev = evaluate_runs(qrels, loaded, cfg, excluded_query_ids=excluded_query_ids, seed=ctx.seed,
                           rescored_depth=rescored_depth)
    with ctx.timed("reports"):
        written = write_reports(
            ev, ctx.out_dir, cfg, command=command, title=title, synthetic=synthetic,
            extra_sections=extra_sections, query_texts=query_texts, doc_texts=doc_texts,
        )
    for name, path in written.items():
        ctx.output(name.split(".")[0], path)
    ctx.counts.update({
        "systems": len(ev.systems),
        "queries_evaluated": len(ev.query_ids),
        "excluded_queries": len(ev.excluded_query_ids),
        "queries_without_relevant": len(ev.no_relevant),
    })
    ctx.extra.update({"baseline": ev.baseline, "means": ev.means, "p_values": ev.p_values,
                      "p_values_adjusted": ev.adjusted_p_values})
    if rescored_depth:
        ctx.extra["rescored_depth"] = dict(rescored_depth)

