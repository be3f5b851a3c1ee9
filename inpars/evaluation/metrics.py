"""Score runs with ranx: per-query metrics, significance against a baseline, fused systems.

How queries are counted (the rules of ranx, which follow trec_eval):

* Only queries that have qrels are evaluated. Run entries for other queries are ignored
  (ranx's ``make_comparable``); :attr:`Evaluation.unjudged` counts them per system.
* A query that has qrels but no document judged relevant (relevance >= 1) is evaluated and
  scores 0 for every system; :attr:`Evaluation.no_relevant` lists them.
* A query a run has no results for counts as zero for that system (empty ranking);
  :attr:`Evaluation.missing` counts them per system.
* Excluded queries (few-shot examples, queries used in generation) are removed from the
  qrels before anything else; :attr:`Evaluation.excluded_query_ids` lists those that had qrels.

Significance: ranx's ``compare`` tests every pair of systems on every metric. The p-values
are corrected for multiple comparisons with Holm's step-down method, one family per metric
holding every pairwise test of the report (so the baseline column and the ranx-style
superscripts use the same adjusted p-values); a test counts as significant when its
adjusted p-value is at most ``max_p``. :attr:`Evaluation.p_values` keeps the raw p-values
against the baseline, :attr:`Evaluation.adjusted_p_values` the Holm-adjusted ones.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from inpars.errors import ConfigError, DataError
from inpars.evaluation.interpolation import add_interpolations, add_mixes, skipped
from inpars.records import Qrel, ScoredPair

if TYPE_CHECKING:
    from inpars.config import EvaluateConfig


QrelsInput = Sequence[Qrel] | Mapping[str, Mapping[str, int]]
Mark = Literal["win", "loss", ""]
_UINT_CAST = "unsafe cast from uint64 to int64"  # a harmless numba warning of ranx's kernels


@dataclass(frozen=True)
class WinTieLoss:
    """Per-query comparison of a system with the baseline on one metric."""

    wins: int
    ties: int
    losses: int

    def __str__(self) -> str:
        return f"{self.wins} / {self.ties} / {self.losses}"


@dataclass
class Evaluation:
    """Everything :func:`evaluate_runs` measured; the reports are rendered from it."""

    metrics: list[str]
    systems: list[str]  # the baseline first, then the runs in the given order, fused systems last
    baseline: str
    stat_test: str
    max_p: float
    query_ids: list[str]  # the evaluated queries, sorted
    means: dict[str, dict[str, float]]  # system -> metric -> mean over query_ids
    per_query: dict[str, dict[str, dict[str, float]]]  # system -> metric -> query id -> score
    p_values: dict[str, dict[str, float | None]]  # other system -> metric -> raw p vs baseline
    marks: dict[str, dict[str, Mark]]  # other system -> metric -> significant (adjusted p) win / loss
    better_than: dict[str, dict[str, list[str]]]  # system -> metric -> systems it beats significantly
    win_tie_loss: dict[str, dict[str, WinTieLoss]]  # other system -> metric -> vs baseline
    excluded_query_ids: list[str] = field(default_factory=list)  # excluded queries that had qrels
    excluded_requested: int = 0  # size of the exclusion set given (with or without qrels)
    no_relevant: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    unjudged: dict[str, int] = field(default_factory=dict)
    fused: dict[str, list[str]] = field(default_factory=dict)  # fused system -> its components
    notes: list[str] = field(default_factory=list)  # skipped fusions, undefined p-values, ...
    # other system -> metric -> Holm-adjusted p vs baseline (family: a metric's pairwise tests)
    adjusted_p_values: dict[str, dict[str, float | None]] = field(default_factory=dict)
    correction: str = "holm"  # how adjusted_p_values were corrected for multiple comparisons
    tests_per_family: int = 0  # pairwise tests per metric, the size of each Holm family
    # other system -> metric -> paired t-based 95% CI of the mean difference vs the baseline
    ci95: dict[str, dict[str, tuple[float, float] | None]] = field(default_factory=dict)

    @property
    def others(self) -> list[str]:
        """The systems other than the baseline, in report order."""
        return [s for s in self.systems if s != self.baseline]

    def deltas(self, system: str, metric: str) -> list[float]:
        """Per-query differences ``system - baseline`` on ``metric`` (query id order)."""
        return self.differences(system, self.baseline, metric)

    def differences(self, system: str, other: str, metric: str) -> list[float]:
        """Per-query differences ``system - other`` on ``metric`` (query id order)."""
        mine, theirs = self.per_query[system][metric], self.per_query[other][metric]
        return [mine[q] - theirs[q] for q in self.query_ids]


# --------------------------------------------------------------------------- inputs
def qrels_dict(qrels: QrelsInput) -> dict[str, dict[str, int]]:
    """Qrels as ``{query_id: {doc_id: relevance}}`` (a later judgement of a pair wins)."""
    if isinstance(qrels, Mapping):
        return {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in qrels.items() if docs}
    out: dict[str, dict[str, int]] = {}
    for qrel in qrels:
        out.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    return out


def run_dict(
    pairs_by_query: Mapping[str, Iterable[ScoredPair]], keep: Collection[str]
) -> dict[str, dict[str, float]]:
    """A run as ``{query_id: {doc_id: score}}`` for the queries in ``keep`` only.

    A document listed twice for a query keeps its highest score.
    """
    out: dict[str, dict[str, float]] = {}
    for query_id, pairs in pairs_by_query.items():
        if query_id not in keep:
            continue
        docs: dict[str, float] = {}
        for pair in pairs:
            if not math.isfinite(pair.score):
                raise DataError(
                    f"run entry for query {query_id!r}, document {pair.doc_id!r}: score {pair.score} is not "
                    "finite. Fix: rerun the stage that wrote the run"
                )
            if pair.doc_id not in docs or pair.score > docs[pair.doc_id]:
                docs[pair.doc_id] = pair.score
        if docs:
            out[query_id] = docs
    return out


def mean_scores(qrels: QrelsInput, runs: Mapping[str, Mapping[str, Sequence[ScoredPair]]],
                metric: str = "ndcg@10") -> dict[str, float]:
    """Each run's mean ``metric`` on ``qrels`` (ranx; no tests): for dev-set choices such as
    interpolation grids and refinement rounds."""
    from ranx import Qrels, evaluate
    from ranx import Run as RanxRun

    judged = qrels_dict(qrels)
    ranx_qrels = Qrels.from_dict(judged)
    return {name: float(evaluate(ranx_qrels, RanxRun.from_dict(run_dict(run, judged)), metric))
            for name, run in runs.items()}


def _ranx_run(docs: dict[str, dict[str, float]], name: str, qrels: Any) -> Any:
    """A ranx Run with exactly the qrels' queries (missing ones empty)."""
    from ranx import Run

    run = Run.from_dict(docs, name=name) if docs else Run(name=name)
    return run.make_comparable(qrels)


# --------------------------------------------------------------------------- evaluation
def evaluate_runs(
    qrels: QrelsInput,
    runs: Mapping[str, Mapping[str, Sequence[ScoredPair]]],
    cfg: EvaluateConfig,
    *,
    excluded_query_ids: Collection[str] = (),
    seed: int = 42,
    rescored_depth: Mapping[str, int] | None = None,
) -> Evaluation:
    """Evaluate ``runs`` (system name -> query id -> scored pairs) against ``qrels``.

    Adds a fused system ``"a+b"`` for each group of ``cfg.fusion`` whose systems are all
    present (a group with a missing system is skipped and noted), and an interpolated
    ``"<system>+interp"`` for each ``cfg.interpolate`` entry; ``rescored_depth`` gives, for
    a reranked system, how many first-stage documents per query it rescored (``[rerank]
    depth``), which its interpolation normalizes over (see :func:`interpolate`). Tests every
    pair of systems with ranx's ``compare`` (``cfg.stat_test``; ``seed`` drives Fisher's
    permutations), Holm-corrected per metric (see the module doc).
    """
    from ranx import Qrels

    if not runs:
        raise DataError(
            "no runs to evaluate. Fix: pass at least one run (e.g. the bm25 run of the index stage)"
        )
    excluded = set(excluded_query_ids)
    judged, dropped = _judged_qrels(qrels, excluded)
    ranx_qrels = Qrels.from_dict(judged)
    query_ids = sorted(judged)
    notes: list[str] = []
    as_dicts = {name: run_dict(pairs, judged) for name, pairs in runs.items()}
    missing = {name: sum(1 for q in query_ids if q not in docs) for name, docs in as_dicts.items()}
    unjudged = {name: sum(1 for q, p in pairs.items() if q not in judged and q not in excluded and p)
                for name, pairs in runs.items()}
    ranx_runs, fused = _ranx_systems(as_dicts, ranx_qrels, cfg, notes, rescored_depth or {})
    order = _report_order(ranx_runs, cfg.baseline)
    report = _ranx_compare(ranx_qrels, [ranx_runs[s] for s in order], cfg, seed)
    per_query = {
        s: {m: {q: float(ranx_runs[s].scores[m][q]) for q in query_ids} for m in cfg.metrics} for s in order
    }
    means = {s: {m: float(report.results[s][m]) for m in cfg.metrics} for s in order}
    evaluation = Evaluation(
        metrics=list(cfg.metrics), systems=order, baseline=cfg.baseline, stat_test=cfg.stat_test,
        max_p=cfg.max_p, query_ids=query_ids, means=means, per_query=per_query, p_values={}, marks={},
        better_than={}, win_tie_loss={}, excluded_query_ids=dropped, excluded_requested=len(excluded),
        no_relevant=[q for q in query_ids if not any(r >= 1 for r in judged[q].values())],
        missing=missing, unjudged=unjudged, fused=fused, notes=notes,
    )
    _fill_comparisons(evaluation, report.comparisons)
    return evaluation


def _judged_qrels(
    qrels: QrelsInput, excluded: Collection[str]
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """The qrels without the excluded queries, and the excluded queries that had qrels (sorted)."""
    judged = qrels_dict(qrels)
    dropped = sorted(q for q in judged if q in excluded)
    judged = {q: docs for q, docs in judged.items() if q not in excluded}
    if not judged:
        raise DataError(
            f"no qrels left to evaluate ({len(dropped)} queries excluded). "
            "Fix: check the split's qrels and the excluded query ids"
        )
    return judged, dropped


def _ranx_systems(
    as_dicts: dict[str, dict[str, dict[str, float]]], ranx_qrels: Any, cfg: EvaluateConfig,
    notes: list[str], rescored_depth: Mapping[str, int],
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every system as a ranx Run: the given runs, their interpolations (added to ``as_dicts``)
    and fusions; with the components of each interpolated or fused system."""
    interpolated = add_interpolations(as_dicts, cfg, notes, rescored_depth)
    interpolated |= add_mixes(as_dicts, cfg, notes, rescored_depth)
    ranx_runs = {name: _ranx_run(docs, name, ranx_qrels) for name, docs in as_dicts.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UINT_CAST)
        fused = interpolated | _add_fusions(ranx_runs, cfg, notes)
    return ranx_runs, fused


def _report_order(systems: Collection[str], baseline: str) -> list[str]:
    """The baseline first, then the other systems in the given order."""
    if baseline not in systems:
        raise ConfigError(
            f"[evaluate] baseline = {baseline!r} is not among the systems ({', '.join(systems)}). "
            "Fix: set baseline to one of them"
        )
    return [baseline] + [s for s in systems if s != baseline]


def _ranx_compare(ranx_qrels: Any, ranx_runs: list[Any], cfg: EvaluateConfig, seed: int) -> Any:
    """ranx's report of every metric of ``ranx_runs`` and its pairwise tests (``cfg.stat_test``)."""
    from ranx import compare

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UINT_CAST)
        return compare(
            ranx_qrels,
            ranx_runs,
            list(cfg.metrics),
            stat_test=cfg.stat_test,
            n_permutations=cfg.n_permutations,
            max_p=cfg.max_p,
            random_seed=seed,
            make_comparable=True,
        )


def _add_fusions(ranx_runs: dict[str, Any], cfg: EvaluateConfig, notes: list[str]) -> dict[str, list[str]]:
    """Fuse each configured group of systems into a new system named ``a+b``."""
    from ranx import fuse

    fused: dict[str, list[str]] = {}
    for group in cfg.fusion:
        name = "+".join(group)
        if skipped("fusion", name, group, ranx_runs, notes):
            continue
        if name in ranx_runs:
            raise ConfigError(
                f"[evaluate] fusion {group!r} would be named {name!r}, which is already a system. "
                "Fix: rename that system or drop the fusion group"
            )
        rrf = cfg.fusion_method == "rrf"  # rank-based: score normalization would change nothing
        members = [ranx_runs[s] for s in group]
        run = fuse(members, norm=None if rrf else cfg.fusion_norm, method=cfg.fusion_method,
                   params={"k": cfg.rrf_k} if rrf else {})
        run.name = name
        ranx_runs[name] = run
        fused[name] = list(group)
    return fused


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (step-down), in input order.

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i + 1`` (``i`` from 1),
    then made non-decreasing in that order and capped at 1; comparing the adjusted
    p-values with ``alpha`` controls the family-wise error rate at ``alpha``. An undefined
    p-value (``None``) stays ``None`` but counts in ``m``, as a test that rejects nothing.
    """
    values = [1.0 if p is None else float(p) for p in p_values]
    m = len(values)
    adjusted: list[float | None] = [None] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=values.__getitem__)):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = None if p_values[index] is None else running
    return adjusted


def mean_difference_ci(deltas: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """The paired t-based confidence interval of the mean of ``deltas`` (per-query
    differences); ``None`` with fewer than two queries."""
    n = len(deltas)
    if n < 2:
        return None
    import importlib

    t = importlib.import_module("scipy.stats").t  # scipy comes with ranx
    mean = math.fsum(deltas) / n
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in deltas) / (n - 1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def _fill_comparisons(ev: Evaluation, comparisons: Any) -> None:
    """p-values (raw and Holm-adjusted), significance marks, ranx-style superscripts,
    confidence intervals and wins/ties/losses."""
    pairs = [(a, b) for i, a in enumerate(ev.systems) for b in ev.systems[i + 1:]]
    ev.tests_per_family = len(pairs)
    adjusted: dict[tuple[str, str, str], float | None] = {}
    for metric in ev.metrics:
        raw = [
            _p_value(comparisons[a, b][metric]["p_value"], ev.differences(b, a, metric)) for a, b in pairs
        ]
        for (a, b), p in zip(pairs, holm(raw), strict=True):
            adjusted[a, b, metric] = adjusted[b, a, metric] = p

    def significant(a: str, b: str, metric: str) -> bool:
        p = adjusted[a, b, metric]
        return p is not None and p <= ev.max_p

    for system in ev.systems:
        ev.better_than[system] = {}
        for metric in ev.metrics:
            ev.better_than[system][metric] = [
                other for other in ev.systems
                if other != system and significant(system, other, metric)
                and ev.means[system][metric] > ev.means[other][metric]
            ]
    for system in ev.others:
        ev.p_values[system], ev.marks[system], ev.win_tie_loss[system] = {}, {}, {}
        ev.adjusted_p_values[system], ev.ci95[system] = {}, {}
        for metric in ev.metrics:
            deltas = ev.deltas(system, metric)
            p = _p_value(comparisons[ev.baseline, system][metric]["p_value"], deltas)
            if p is None:
                ev.notes.append(
                    f"{system} vs {ev.baseline}, {metric}: p-value undefined "
                    f"({len(deltas)} queries, constant per-query difference)"
                )
            ev.p_values[system][metric] = p
            ev.adjusted_p_values[system][metric] = adjusted[ev.baseline, system, metric]
            gain = ev.means[system][metric] - ev.means[ev.baseline][metric]
            mark: Mark = "win" if gain > 0 else "loss" if gain < 0 else ""
            ev.marks[system][metric] = mark if significant(ev.baseline, system, metric) else ""
            ev.ci95[system][metric] = mean_difference_ci(deltas)
            ev.win_tie_loss[system][metric] = WinTieLoss(
                wins=sum(d > 0 for d in deltas), ties=sum(d == 0 for d in deltas),
                losses=sum(d < 0 for d in deltas),
            )


def _p_value(raw: Any, deltas: Sequence[float]) -> float | None:
    """ranx's p-value as a float; identical systems give 1.0, an undefined test ``None``.

    The paired t-test is undefined (NaN) when every per-query difference is the same: when
    all are zero the systems do not differ (p = 1); otherwise the p-value is reported as
    undefined rather than guessed.
    """
    p = float(raw)
    if math.isnan(p):
        return 1.0 if all(d == 0 for d in deltas) else None
    return min(max(p, 0.0), 1.0)
