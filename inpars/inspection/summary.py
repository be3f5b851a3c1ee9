"""The quality summary as tables of plain-text cells, rendered to ``quality.md`` here and to
the top of ``index.html`` by :mod:`.page` (each renderer escapes for its format)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inpars.evaluation.report_md import md_table
from inpars.evaluation.tables import Table


def num(value: Any, digits: int = 3) -> str:
    """A number for a table cell (``-`` for a missing one)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def counts_table(report: Mapping[str, Any]) -> Table:
    c, cov = report["counts"], report["coverage"]
    rows = [
        ["documents generated for", num(c["documents"])],
        ["samples (generated queries)", num(c["samples"])],
        ["rejected by generation", num(c["generation_rejected"])],
        ["passed generation", num(c["generated"])],
        ["dropped by the filter", num(c["filter_dropped"])],
        ["kept", num(c["kept"])],
        ["coverage: documents with a kept query", f"{num(cov['with_kept_query'])} ({pct(cov['rate'])})"],
        ["kept queries per document", num(cov["kept_per_document"], 2)],
    ]
    return Table(["", "count"], rows)


def drops_table(report: Mapping[str, Any]) -> Table:
    total = report["counts"]["samples"]
    rows = [[stage, reason, num(n), pct(n / total if total else None)]
            for stage, reasons in report["drops"].items() for reason, n in reasons.items()]
    return Table(["stage", "reason", "queries", "of all samples"], rows or [["-", "none", "0", "-"]])


def diversity_table(report: Mapping[str, Any]) -> Table:
    rows = []
    for name, d in report["diversity"].items():
        rows.append([name, num(d["queries"]), num(d["distinct_1"]), num(d["distinct_2"]),
                     pct(d["exact_duplicate_rate"]), pct(d["near_duplicate_rate"])])
    threshold = next(iter(report["diversity"].values()))["near_dup_threshold"]
    note = (f"distinct-n: distinct word n-grams / all word n-grams; duplicates: equal after normalization, "
            f"or character 3-gram Jaccard >= {threshold} with an earlier query")
    header = ["queries", "n", "distinct-1", "distinct-2", "exact duplicates", "near duplicates"]
    return Table(header, rows, note)


def queries_table(report: Mapping[str, Any]) -> Table:
    q, copy, lp = report["queries"], report["copy"], report["logprob"]

    def stat(shape: Mapping[str, Any] | None, key: str, digits: int) -> str:
        s = shape and shape.get(key)
        return f"{num(s['mean'], digits)} (median {num(s['median'], digits)})" if s else "-"

    synthetic, real = q["synthetic_kept"], q["real_train"]
    rows = [
        ["length in words, mean", stat(synthetic, "length_words", 1), stat(real, "length_words", 1)],
        ["term overlap with the document", stat(synthetic, "term_overlap", 3), stat(real, "term_overlap", 3)],
        [f"copy rate ({copy['ngram']} words in a row or the title)", pct(copy["kept"]["rate"]),
         pct(copy["real_train"]["rate"]) if copy.get("real_train") else "-"],
        ["mean log-prob", num(lp["kept"]["mean"]), "-"],
    ]
    note = "term overlap: share of a query's distinct words found in its (judged) document"
    if real is None:
        note += f". No real queries to compare: {q['real_note']}"
    return Table(["", "kept synthetic", f"real train ({q['real_queries']} queries)"], rows, note)


def logprob_table(report: Mapping[str, Any]) -> Table:
    lp = report["logprob"]
    rows = [["kept", num(lp["kept"]["n"]), num(lp["kept"]["mean"])],
            ["dropped by the filter", num(lp["dropped"]["n"]), num(lp["dropped"]["mean"])]]
    rows += [[f"dropped, {reason}", num(v["n"]), num(v["mean"])]
             for reason, v in lp["dropped_by_reason"].items()]
    return Table(["queries", "n", "mean log-prob"], rows, lp["note"])


def copy_table(report: Mapping[str, Any]) -> Table:
    copy = report["copy"]
    rows = [[name.replace("_", " "), num(c["queries"]), num(c["copied"]), pct(c["rate"])]
            for name, c in ((n, copy.get(n)) for n in ("generated", "kept", "real_train")) if c]
    return Table(["queries", "n", "copied", "rate"], rows,
                 f"copied: {copy['ngram']} words in a row from the document, or the document's title")


def embedding_table(report: Mapping[str, Any]) -> Table | None:
    emb = report.get("embedding")
    if not emb:
        return None
    if "skipped" in emb:
        return Table(["embedding similarity"], [[f"skipped: {emb['skipped']}"]])
    rows = [[name, num(v["queries"]), num(v["mean_pairwise_cosine"])]
            for name, v in emb.items() if isinstance(v, dict)]
    return Table(["queries", "sample", "mean pairwise cosine"], rows,
                 f"{emb['model']} embeddings of a seeded sample of at most {emb['sample_size']} queries")


def sections(report: Mapping[str, Any]) -> list[tuple[str, Table, int]]:
    """(title, table, first numeric column) of every part of the summary, in order."""
    parts = [("Counts", counts_table(report), 1),
             ("Drops by reason", drops_table(report), 2),
             ("Diversity", diversity_table(report), 1),
             ("Kept synthetic vs real train queries", queries_table(report), 1),
             ("Copied from the document", copy_table(report), 1),
             ("Log-probabilities", logprob_table(report), 1)]
    emb = embedding_table(report)
    if emb is not None:
        parts.append(("Embedding similarity", emb, 1))
    return parts


def render_markdown(report: Mapping[str, Any], *, command: str = "") -> str:
    lines = [f"# Data quality: {report['experiment']}", ""]
    if command:
        lines += [f"Made by `{command}`; the numbers are in `quality.json`, every query in `index.html`.", ""]
    for title, table, _ in sections(report):
        lines += [f"## {title}", "", md_table(table), ""]
    return "\n".join(lines)
