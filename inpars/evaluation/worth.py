"""The worth table: what the synthetic data adds to each learnable system.

Each learnable system is a row and each training-label set a column: zero-shot (the
untrained twin) | trained on synthetic data | trained on the collection's real *train*
qrels (same recipe) | real + synthetic. A system's column comes from its name: the
pipeline calls BM25 reranked by a model trained on ``<labels>`` ``bm25+<kind>-<labels>``
(``bm25+ce-synthetic``, ``bm25+bi-real``, ``bm25+bi-zero-shot``...), an interpolation with
BM25 adds ``+interp``, and ``dense-synthetic`` has ``dense`` as its zero-shot twin.

Given several evaluations of the same systems (one per seed), a cell shows the mean and
the standard deviation over seeds; the paired tests compare per-query scores averaged over
the seeds (two-sided paired t-test), each trained cell against its zero-shot twin and
against the baseline, Holm-corrected over all the tests of the table.
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.errors import DataError
from inpars.evaluation.metrics import Evaluation, holm, mean_difference_ci
from inpars.evaluation.tables import Table, fmt_p

LABELS = ("zero-shot", "synthetic", "real", "both")
TRAINED = LABELS[1:]
HEADINGS = {"zero-shot": "zero-shot", "synthetic": "synthetic", "real": "real train qrels",
            "both": "real + synthetic"}
_NAME = re.compile(r"(?P<family>.+?)-(?P<labels>zero-shot|synthetic|real|both)(?P<interp>\+interp)?")


@dataclass(frozen=True)
class Comparison:
    """A trained cell against another system: Holm-adjusted p, 95% CI of the difference."""

    other: str
    difference: float
    p_raw: float | None
    p_adjusted: float | None = None
    ci95: tuple[float, float] | None = None


@dataclass
class Cell:
    system: str
    means: list[float]  # one per evaluation (seed)
    vs_zero_shot: Comparison | None = None
    vs_baseline: Comparison | None = None

    @property
    def mean(self) -> float:
        return statistics.fmean(self.means)

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.means) if len(self.means) > 1 else None


@dataclass
class Row:
    family: str  # e.g. bm25+ce, bm25+bi+interp, dense
    cells: dict[str, Cell] = field(default_factory=dict)  # label -> cell

    def recovered(self) -> float | None:
        """How much of the real-label gain the synthetic data recovers: (synthetic - ref) /
        (real - ref), ref the zero-shot twin (or nothing when there is none)."""
        cells = self.cells
        if "synthetic" not in cells or "real" not in cells or "zero-shot" not in cells:
            return None
        ref = cells["zero-shot"].mean
        gain = cells["real"].mean - ref
        return (cells["synthetic"].mean - ref) / gain if gain > 0 else None


@dataclass
class WorthTable:
    metric: str
    baseline: str
    seeds: int
    queries: int
    rows: list[Row]
    tests: int  # the size of the Holm family
    max_p: float = 0.05  # significance level of the marks
    # the best system trained on synthetic data (no real labels) against the best without labels
    headline: Cell | None = None  # the former, its vs_baseline comparing it with the latter


def data_used(system: str, components: Mapping[str, Sequence[str]]) -> set[str]:
    """Which training data a system depends on: ``synthetic`` (a model trained on synthetic
    queries, real + synthetic, refined with more of them, or an index expanded with them) and
    ``real`` (the collection's judged train queries), from its name and, for a fused system,
    its components'."""
    used = set()
    if re.search(r"-(synthetic|both|expanded|refined)(\+|$)", system):
        used.add("synthetic")
    if re.search(r"-(real|both)(\+|$)", system):
        used.add("real")
    for part in components.get(system, ()):
        used |= data_used(part, components)
    return used


def _best_pair(evaluation: Evaluation, systems: Sequence[str], metric: str) -> tuple[str, str] | None:
    """The best system with synthetic data (and no real labels) and the best without any
    training labels: what the synthetic data buys a collection that has none."""
    uses = {s: data_used(s, evaluation.fused) for s in systems}
    with_synthetic = [s for s in systems if uses[s] == {"synthetic"}]
    label_free = [s for s in systems if not uses[s]]
    if not with_synthetic or not label_free:
        return None
    best = max(with_synthetic, key=lambda s: evaluation.means[s][metric])
    return best, max(label_free, key=lambda s: evaluation.means[s][metric])


def parse_system(name: str, systems: Sequence[str]) -> tuple[str, str] | None:
    """``(row family, label)`` of a system name, or ``None`` when it is not learnable."""
    match = _NAME.fullmatch(name)
    if match:
        return match["family"] + (match["interp"] or ""), match["labels"]
    if f"{name}-synthetic" in systems:  # dense is dense-synthetic's zero-shot twin
        return name, "zero-shot"
    return None


def worth_table(evaluations: Sequence[Evaluation], metric: str = "ndcg@10") -> WorthTable:
    """The worth table of one evaluation per seed (same queries, baseline and systems)."""
    if not evaluations:
        raise DataError("worth table: no evaluations given. Fix: pass at least one")
    first = evaluations[0]
    systems = [s for s in first.systems if all(s in ev.means for ev in evaluations)]
    for ev in evaluations[1:]:
        if ev.query_ids != first.query_ids or ev.baseline != first.baseline:
            raise DataError("worth table: the evaluations differ in queries or baseline. "
                            "Fix: evaluate every seed on the same split with the same baseline")
    rows: dict[str, Row] = {}
    for system in systems:
        parsed = parse_system(system, systems)
        if parsed is not None:
            family, label = parsed
            rows.setdefault(family, Row(family)).cells[label] = Cell(
                system, [ev.means[system][metric] for ev in evaluations])
    kept = [row for row in rows.values() if any(label in row.cells for label in TRAINED)]
    pair = _best_pair(_mean_evaluation(evaluations, systems, metric), systems, metric)
    headline = None if pair is None else Cell(pair[0], [ev.means[pair[0]][metric] for ev in evaluations])
    tests = _compare(kept, evaluations, metric, (headline, pair[1]) if pair and headline else None)
    return WorthTable(metric, first.baseline, len(evaluations), len(first.query_ids), kept, tests,
                      first.max_p, headline)


def _mean_evaluation(evaluations: Sequence[Evaluation], systems: Sequence[str], metric: str) -> Evaluation:
    """The first evaluation with each system's ``metric`` averaged over all of them."""
    first = evaluations[0]
    means = {s: {metric: statistics.fmean(ev.means[s][metric] for ev in evaluations)} for s in systems}
    return dataclasses.replace(first, means=means)


def _per_query(evaluations: Sequence[Evaluation], system: str, metric: str) -> list[float]:
    """A system's per-query scores averaged over the evaluations (query id order)."""
    ids = evaluations[0].query_ids
    return [statistics.fmean(ev.per_query[system][metric][q] for ev in evaluations) for q in ids]


def _compare(rows: list[Row], evaluations: Sequence[Evaluation], metric: str,
             headline: tuple[Cell, str] | None = None) -> int:
    """Fill each trained cell's comparisons (and the headline's against the best label-free
    system); Holm over all of them. Returns their number."""
    baseline = evaluations[0].baseline
    tests: list[tuple[Cell, str, str]] = []  # cell, which comparison, other system
    if headline is not None:
        tests.append((headline[0], "vs_baseline", headline[1]))
    for row in rows:
        zero = row.cells.get("zero-shot")
        for label in TRAINED:
            cell = row.cells.get(label)
            if cell is None:
                continue
            if zero is not None:
                tests.append((cell, "vs_zero_shot", zero.system))
            if cell.system != baseline:
                tests.append((cell, "vs_baseline", baseline))
    made: list[Comparison] = []
    for cell, _, other in tests:
        mine, theirs = _per_query(evaluations, cell.system, metric), _per_query(evaluations, other, metric)
        deltas = [a - b for a, b in zip(mine, theirs, strict=True)]
        made.append(Comparison(other, statistics.fmean(deltas), paired_t(deltas),
                               ci95=mean_difference_ci(deltas)))
    for (cell, attribute, _), comparison, adjusted in zip(tests, made, holm([c.p_raw for c in made]),
                                                          strict=True):
        setattr(cell, attribute, Comparison(comparison.other, comparison.difference, comparison.p_raw,
                                            adjusted, comparison.ci95))
    return len(tests)


def paired_t(deltas: Sequence[float]) -> float | None:
    """Two-sided paired t-test p-value of per-query differences (1.0 when all are zero,
    ``None`` when undefined: fewer than two queries or a constant non-zero difference)."""
    if len(deltas) < 2:
        return None
    if all(d == 0 for d in deltas):
        return 1.0
    import importlib

    stats = importlib.import_module("scipy.stats")  # scipy comes with ranx
    p = float(stats.ttest_1samp(list(deltas), 0.0).pvalue)
    return None if math.isnan(p) else p


def worth_section(table: WorthTable, digits: int = 4) -> Table:
    """The worth table as plain cells for the report renderers."""
    header = ["system", *(HEADINGS[label] for label in LABELS), "synthetic recovers"]
    rows = []
    for row in table.rows:
        cells = [_cell_text(row.cells.get(label), digits, table.max_p) for label in LABELS]
        recovered = row.recovered()
        rows.append([row.family, *cells, "" if recovered is None else f"{recovered:.0%} of the real gain"])
    spread = f"mean ± sd over {table.seeds} seeds" if table.seeds > 1 else "one seed"
    note = (
        f"{table.metric}, {spread}, {table.queries} queries. In brackets: the difference with the "
        f"zero-shot twin (z) and with {table.baseline} (b), and its p-value (two-sided paired t-test on "
        f"per-query scores{' averaged over seeds' if table.seeds > 1 else ''}, Holm-corrected over the "
        f"{table.tests} tests of this table); ▲/▼ significant at {table.max_p}. The real-label columns "
        "train the same recipe on the collection's judged train queries (the dev set left out). \"synthetic "
        "recovers\": (synthetic - zero-shot) / (real - zero-shot). Empty: not trained in this run."
    )
    return Table(header, rows, note + _headline_text(table, digits))


def _headline_text(table: WorthTable, digits: int) -> str:
    """One sentence: the best system with synthetic data against the best without labels."""
    cell = table.headline
    if cell is None or cell.vs_baseline is None:
        return ""
    c = cell.vs_baseline
    ci = "" if c.ci95 is None else f", 95% CI [{c.ci95[0]:+.{digits}f}, {c.ci95[1]:+.{digits}f}]"
    return (f" Best with synthetic data: {cell.system} {cell.mean:.{digits}f}; best without any "
            f"training labels: {c.other} {cell.mean - c.difference:.{digits}f}; "
            f"difference {c.difference:+.{digits}f}{ci}, Holm p "
            f"{fmt_p(c.p_adjusted, 3)}{_mark(c, table.max_p)} "
            f"(best: highest mean {table.metric} on this split).")


def _cell_text(cell: Cell | None, digits: int, max_p: float) -> str:
    if cell is None:
        return ""
    sd = "" if cell.sd is None else f" ± {cell.sd:.{digits}f}"
    parts = [f"{c.difference:+.{digits}f} {tag}, p {fmt_p(c.p_adjusted, 3)}{_mark(c, max_p)}"
             for tag, c in (("z", cell.vs_zero_shot), ("b", cell.vs_baseline)) if c is not None]
    return f"{cell.mean:.{digits}f}{sd}" + (f" ({'; '.join(parts)})" if parts else "")


def _mark(comparison: Comparison, max_p: float) -> str:
    p = comparison.p_adjusted
    if p is None or p > max_p or comparison.difference == 0:
        return ""
    return "▲" if comparison.difference > 0 else "▼"


def worth_json(table: WorthTable) -> dict[str, Any]:
    """The worth table for metrics.json: row -> label -> system, means, comparisons."""

    def comparison(c: Comparison | None) -> dict[str, Any] | None:
        return None if c is None else {"other": c.other, "difference": c.difference, "p_raw": c.p_raw,
                                       "p_adjusted": c.p_adjusted, "ci95": list(c.ci95) if c.ci95 else None}

    return {
        "metric": table.metric, "baseline": table.baseline, "seeds": table.seeds, "queries": table.queries,
        "correction": {"method": "holm", "tests": table.tests},
        "headline": None if table.headline is None else {
            "system": table.headline.system, "mean": table.headline.mean, "sd": table.headline.sd,
            "vs_best_label_free": comparison(table.headline.vs_baseline)},
        "rows": {row.family: {
            "recovered": row.recovered(),
            **{label: {"system": cell.system, "mean": cell.mean, "sd": cell.sd, "means": cell.means,
                       "vs_zero_shot": comparison(cell.vs_zero_shot),
                       "vs_baseline": comparison(cell.vs_baseline)}
               for label, cell in row.cells.items()}} for row in table.rows},
    }


def load_evaluation(stage_dir: Path) -> Evaluation:
    """The parts of a finished evaluate stage the worth table needs, read back from its
    ``metrics.json`` and ``per_query.json`` (systems, baseline, queries, means, per-query
    scores; the stage's own pairwise tests are not restored)."""
    from inpars.io import read_json

    try:
        metrics, per_query = read_json(stage_dir / "metrics.json"), read_json(stage_dir / "per_query.json")
        means, scores = metrics["systems"], per_query["scores"]
        return Evaluation(
            metrics=list(metrics["metrics"]), systems=list(means), baseline=metrics["baseline"],
            stat_test=metrics["stat_test"], max_p=float(metrics["max_p"]),
            query_ids=list(per_query["query_ids"]),
            means=means, per_query=scores, p_values={}, marks={}, better_than={}, win_tie_loss={},
        )
    except (OSError, ValueError, KeyError, TypeError, DataError) as exc:
        raise DataError(f"{stage_dir}: not a finished evaluation ({type(exc).__name__}: {exc}). "
                        "Fix: rerun it with `inpars evaluate CONFIG --force`") from exc
