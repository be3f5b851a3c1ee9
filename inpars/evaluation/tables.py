"""The report tables as plain text cells, shared by the Markdown and HTML renderers.

Cells hold plain text (significance marks are Unicode characters); each renderer escapes
them for its own format.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inpars.evaluation.metrics import Evaluation
from inpars.records import SyntheticQuery

SUPERSCRIPTS = "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖ۹ʳˢᵗᵘᵛʷˣʸᶻ"  # ranx's marks: a, b, c, ...
LETTERS = "abcdefghijklmnopqrstuvwxyz"
WIN, LOSS = "▲", "▼"
STAT_TESTS = {
    "student": "two-sided paired Student's t-test",
    "fisher": "Fisher's randomization test (paired, two-sided)",
}
_LABELS = {
    "hits": "Hits", "hit_rate": "Hit Rate", "precision": "P", "recall": "Recall", "f1": "F1",
    "r-precision": "R-Prec", "mrr": "MRR", "map": "MAP", "dcg": "DCG", "dcg_burges": "DCG Burges",
    "ndcg": "nDCG", "ndcg_burges": "nDCG Burges", "bpref": "BPref",
}


@dataclass(frozen=True)
class Table:
    """A table: header cells, rows of cells, and a note printed under it."""

    header: list[str]
    rows: list[list[str]]
    note: str = ""


def metric_label(metric: str) -> str:
    """``ndcg@10`` -> ``nDCG@10`` (``-lN`` relevance levels kept)."""
    base, _, level = metric.partition("-l")
    name, at, cutoff = base.partition("@")
    label = _LABELS.get(name, name) + (f"@{cutoff}" if at else "")
    return label + (f"-l{level}" if level else "")


def letter(index: int) -> str:
    return LETTERS[index] if index < len(LETTERS) else str(index + 1)


def _superscript(index: int) -> str:
    return SUPERSCRIPTS[index] if index < len(SUPERSCRIPTS) else f"^{index + 1}"


def fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def fmt_p(p: float | None, digits: int = 4) -> str:
    """A p-value with ``digits`` decimals; one below the last shown digit as "<0.001" (for 3),
    never a misleading "0.000"."""
    if p is None:
        return "n/a"
    floor = 10.0 ** -digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def comparison_table(ev: Evaluation, digits: int) -> Table:
    """ranx-style table: mean of each metric, with a superscript letter for each system it
    beats significantly."""
    header = ["#", "System", *(metric_label(m) for m in ev.metrics)]
    rows = []
    for i, system in enumerate(ev.systems):
        name = f"{system} (baseline)" if system == ev.baseline else system
        cells = [letter(i), name]
        for metric in ev.metrics:
            marks = "".join(_superscript(ev.systems.index(o)) for o in ev.better_than[system][metric])
            cells.append(fmt(ev.means[system][metric], digits) + marks)
        rows.append(cells)
    note = (
        f"{len(ev.query_ids)} queries. A superscript letter marks a significant improvement over the "
        f"system with that letter ({STAT_TESTS.get(ev.stat_test, ev.stat_test)}, {correction_text(ev)})."
    )
    return Table(header, rows, note)


def correction_text(ev: Evaluation) -> str:
    """How significance was decided, in words: the test family and the corrected threshold."""
    if ev.tests_per_family <= 1:
        return f"p ≤ {ev.max_p}; one test per metric, so Holm's correction changes nothing"
    return (
        f"Holm-adjusted p ≤ {ev.max_p}; one family per metric of all {ev.tests_per_family} "
        "pairwise tests in this report"
    )


def baseline_table(ev: Evaluation, digits: int) -> Table:
    """Difference with the baseline per metric, its mark and its p-value."""
    header = ["System", *(f"Δ {metric_label(m)} (p)" for m in ev.metrics)]
    rows = []
    for system in ev.others:
        cells = [system]
        for metric in ev.metrics:
            delta = ev.means[system][metric] - ev.means[ev.baseline][metric]
            mark = {"win": f" {WIN}", "loss": f" {LOSS}", "": ""}[ev.marks[system][metric]]
            cells.append(f"{delta:+.{digits}f}{mark} ({fmt_p(ev.adjusted_p_values[system][metric])})")
        rows.append(cells)
    note = (
        f"Against {ev.baseline}: {WIN} significantly better, {LOSS} significantly worse "
        f"({STAT_TESTS.get(ev.stat_test, ev.stat_test)}, {correction_text(ev)}); Holm-adjusted "
        "p-values in brackets (raw p-values and 95% confidence intervals of each difference in "
        "metrics.json)."
    )
    return Table(header, rows, note)


def win_tie_loss_table(ev: Evaluation) -> Table:
    header = ["System", *(metric_label(m) for m in ev.metrics)]
    rows = [[s, *(str(ev.win_tie_loss[s][m]) for m in ev.metrics)] for s in ev.others]
    return Table(header, rows, f"Queries where each system beats / ties / loses to {ev.baseline}.")


def largest_changes(
    ev: Evaluation, system: str, metric: str, query_texts: Mapping[str, str] | None, count: int = 5
) -> Table:
    """The queries where ``system`` gains and loses most against the baseline."""
    deltas = sorted(zip(ev.deltas(system, metric), ev.query_ids, strict=True))
    picked = [*reversed(deltas[-count:]), *deltas[:count]]
    seen: set[str] = set()
    rows = []
    for delta, query_id in picked:
        if query_id in seen or delta == 0:
            continue
        seen.add(query_id)
        text = (query_texts or {}).get(query_id, "")
        rows.append([query_id, text, fmt(ev.per_query[ev.baseline][metric][query_id], 4),
                     fmt(ev.per_query[system][metric][query_id], 4), f"{delta:+.4f}"])
    header = ["Query", "Text", ev.baseline, system, "Δ"]
    return Table(header, rows, f"{metric_label(metric)}: largest per-query gains and losses.")


def exclusion_lines(ev: Evaluation) -> list[str]:
    """Plain sentences on which queries were left out or scored zero, and why."""
    lines = [
        f"{len(ev.excluded_query_ids)} queries excluded from evaluation (few-shot examples and queries used "
        f"in generation; {ev.excluded_requested} ids were given, {len(ev.excluded_query_ids)} of them "
        "have qrels in this split).",
        f"{len(ev.query_ids)} queries evaluated: those with qrels, as ranx does.",
    ]
    if ev.no_relevant:
        lines.append(f"{len(ev.no_relevant)} evaluated queries have no document judged relevant; "
                     "they score 0 for every system (ranx/trec_eval behaviour).")
    for system, count in ev.missing.items():
        if count:
            lines.append(f"{system}: no results for {count} evaluated queries (counted as 0).")
    for system, count in ev.unjudged.items():
        if count:
            lines.append(f"{system}: results for {count} queries without qrels were ignored.")
    for name, parts in ev.fused.items():
        if not any(note.startswith(f"{name}:") for note in ev.notes):  # interpolations say more in a note
            lines.append(f"{name}: fusion of {', '.join(parts)}.")
    lines.extend(ev.notes)
    return lines


def synthetic_table(queries: Sequence[SyntheticQuery]) -> Table:
    """Counts and distributions of synthetic queries."""
    lengths = [len(q.text.split()) for q in queries]
    logprobs = [q.mean_logprob for q in queries if q.mean_logprob is not None]
    per_doc = Counter(q.doc_id for q in queries)
    rows = [
        ["queries", str(len(queries))],
        ["documents", str(len(per_doc))],
        ["queries per document (mean)", f"{len(queries) / max(len(per_doc), 1):.2f}"],
        ["distinct query texts", str(len({q.text for q in queries}))],
    ]
    if lengths:
        rows.append(["query length in words (mean / median / max)",
                     f"{statistics.fmean(lengths):.1f} / {statistics.median(lengths):g} / {max(lengths)}"])
    if logprobs:
        rows.append(["mean token log-prob (mean / median)",
                     f"{statistics.fmean(logprobs):.3f} / {statistics.median(logprobs):.3f}"])
    for label, values in (("templates", Counter(q.template for q in queries)),
                          ("models", Counter(q.model for q in queries))):
        rows.append([label, ", ".join(f"{k} ({v})" for k, v in values.most_common(5))])
    return Table(["Synthetic data", "Value"], rows)


def synthetic_examples(
    queries: Sequence[SyntheticQuery], count: int, doc_texts: Mapping[str, str] | None, width: int = 300
) -> Table:
    """The first ``count`` synthetic queries (document text shortened to ``width`` characters)."""
    rows = []
    for q in queries[:count]:
        doc = (doc_texts or {}).get(q.doc_id, "")
        doc = doc if len(doc) <= width else doc[:width] + "…"
        logprob = "" if q.mean_logprob is None else f"{q.mean_logprob:.3f}"
        rows.append([q.doc_id, doc, q.text, logprob])
    return Table(["Document", "Document text", "Synthetic query", "Mean log-prob"], rows)
