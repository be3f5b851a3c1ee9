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
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from inpars.errors import ConfigError, DataError
from inpars.records import Qrel, ScoredPair

if TYPE_CHECKING:
    from inpars.config import EvaluateConfig

log = logging.getLogger(__name__)

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
    p_values: dict[str, dict[str, float | None]]  # other system -> metric -> p vs baseline
    marks: dict[str, dict[str, Mark]]  # other system -> metric -> significant win / loss vs baseline
    better_than: dict[str, dict[str, list[str]]]  # system -> metric -> systems it beats significantly
    win_tie_loss: dict[str, dict[str, WinTieLoss]]  # other system -> metric -> vs baseline
    excluded_query_ids: list[str] = field(default_factory=list)  # excluded queries that had qrels
    excluded_requested: int = 0  # size of the exclusion set given (with or without qrels)
    no_relevant: list[str] = field(default_factory=list)
    missing: dict[str, int] = field(default_factory=dict)
    unjudged: dict[str, int] = field(default_factory=dict)
    fused: dict[str, list[str]] = field(default_factory=dict)  # fused system -> its components
    notes: list[str] = field(default_factory=list)  # skipped fusions, undefined p-values, ...

    @property
    def others(self) -> list[str]:
        """The systems other than the baseline, in report order."""
        return [s for s in self.systems if s != self.baseline]

    def deltas(self, system: str, metric: str) -> list[float]:
        """Per-query differences ``system - baseline`` on ``metric`` (query id order)."""
        mine, base = self.per_query[system][metric], self.per_query[self.baseline][metric]
        return [mine[q] - base[q] for q in self.query_ids]


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
) -> Evaluation:
    """Evaluate ``runs`` (system name -> query id -> scored pairs) against ``qrels``.

    Adds a fused system ``"a+b"`` for each group of ``cfg.fusion`` whose systems are all
    present (a group with a missing system is skipped and noted). Tests every system
    against ``cfg.baseline`` with ranx's ``compare`` (``cfg.stat_test``; ``seed`` drives
    Fisher's permutations).
    """
    from ranx import Qrels, compare

    if not runs:
        raise DataError(
            "no runs to evaluate. Fix: pass at least one run (e.g. the bm25 run of the index stage)"
        )
    judged = qrels_dict(qrels)
    excluded = set(excluded_query_ids)
    dropped = sorted(q for q in judged if q in excluded)
    judged = {q: docs for q, docs in judged.items() if q not in excluded}
    if not judged:
        raise DataError(
            f"no qrels left to evaluate ({len(dropped)} queries excluded). "
            "Fix: check the split's qrels and the excluded query ids"
        )
    ranx_qrels = Qrels.from_dict(judged)
    query_ids = sorted(judged)
    notes: list[str] = []

    ranx_runs: dict[str, Any] = {}
    missing: dict[str, int] = {}
    unjudged: dict[str, int] = {}
    as_dicts: dict[str, dict[str, dict[str, float]]] = {}
    for name, pairs in runs.items():
        as_dicts[name] = run_dict(pairs, judged)
        missing[name] = sum(1 for q in query_ids if q not in as_dicts[name])
        unjudged[name] = sum(1 for q, p in pairs.items() if q not in judged and q not in excluded and p)
    interpolated = _add_interpolations(as_dicts, cfg, notes)
    for name, docs in as_dicts.items():
        ranx_runs[name] = _ranx_run(docs, name, ranx_qrels)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UINT_CAST)
        fused = interpolated | _add_fusions(ranx_runs, cfg, notes)
    if cfg.baseline not in ranx_runs:
        raise ConfigError(
            f"[evaluate] baseline = {cfg.baseline!r} is not among the systems ({', '.join(ranx_runs)}). "
            "Fix: set baseline to one of them"
        )
    order = [cfg.baseline] + [s for s in ranx_runs if s != cfg.baseline]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_UINT_CAST)
        report = compare(
            ranx_qrels,
            [ranx_runs[s] for s in order],
            list(cfg.metrics),
            stat_test=cfg.stat_test,
            n_permutations=cfg.n_permutations,
            max_p=cfg.max_p,
            random_seed=seed,
            make_comparable=True,
        )
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


def interpolate(
    base: Mapping[str, Mapping[str, float]], other: Mapping[str, Mapping[str, float]], weight: float
) -> dict[str, dict[str, float]]:
    """``weight * base + (1 - weight) * other`` per query, each run's scores min-max normalized
    within the query first (a document one run lacks gets 0 from it; a query whose scores are
    all equal normalizes to 1). The usual way to combine a reranker with its first stage."""

    def normalized(scores: Mapping[str, float]) -> dict[str, float]:
        if not scores:
            return {}
        low, high = min(scores.values()), max(scores.values())
        span = high - low
        return {d: (s - low) / span if span > 0 else 1.0 for d, s in scores.items()}

    out: dict[str, dict[str, float]] = {}
    for query_id in dict.fromkeys([*base, *other]):  # ordered, so ties rank the same on every run
        a, b = normalized(base.get(query_id, {})), normalized(other.get(query_id, {}))
        docs = dict.fromkeys([*a, *b])
        out[query_id] = {d: weight * a.get(d, 0.0) + (1 - weight) * b.get(d, 0.0) for d in docs}
    return out


def interpolated_name(system: str) -> str:
    """The system name :func:`evaluate_runs` gives ``system`` interpolated with the baseline."""
    return f"{system}+interp"


def _add_interpolations(
    runs: dict[str, dict[str, dict[str, float]]], cfg: EvaluateConfig, notes: list[str]
) -> dict[str, list[str]]:
    """Add ``<system>+interp`` for each ``cfg.interpolate`` entry (system -> baseline weight)."""
    made: dict[str, list[str]] = {}
    for system, weight in cfg.interpolate.items():
        name = interpolated_name(system)
        if system not in runs or cfg.baseline not in runs:
            absent = system if system not in runs else cfg.baseline
            note = f"interpolation {name} skipped: no run for {absent}"
            log.warning(note)
            notes.append(note)
            continue
        if name in runs:
            raise ConfigError(
                f"[evaluate] interpolate {system!r} would be named {name!r}, which is already a system. "
                "Fix: rename that system or drop the interpolate entry"
            )
        runs[name] = interpolate(runs[cfg.baseline], runs[system], weight)
        notes.append(
            f"{name}: {weight:g} × {cfg.baseline} + {1 - weight:g} × {system}, "
            "scores min-max normalized per query"
        )
        made[name] = [cfg.baseline, system]
    return made


def _add_fusions(ranx_runs: dict[str, Any], cfg: EvaluateConfig, notes: list[str]) -> dict[str, list[str]]:
    """Fuse each configured group of systems into a new system named ``a+b``."""
    from ranx import fuse

    fused: dict[str, list[str]] = {}
    for group in cfg.fusion:
        name = "+".join(group)
        absent = [s for s in group if s not in ranx_runs]
        if absent:
            note = f"fusion {name} skipped: no run for {', '.join(absent)}"
            log.warning(note)
            notes.append(note)
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


def _fill_comparisons(ev: Evaluation, comparisons: Any) -> None:
    """p-values, significance marks, ranx-style superscripts and wins/ties/losses."""
    for system in ev.systems:
        ev.better_than[system] = {}
        for metric in ev.metrics:
            ev.better_than[system][metric] = [
                other for other in ev.systems
                if other != system
                and bool(comparisons[system, other][metric]["significant"])
                and ev.means[system][metric] > ev.means[other][metric]
            ]
    for system in ev.others:
        ev.p_values[system], ev.marks[system], ev.win_tie_loss[system] = {}, {}, {}
        for metric in ev.metrics:
            deltas = ev.deltas(system, metric)
            p = _p_value(comparisons[ev.baseline, system][metric]["p_value"], deltas)
            if p is None:
                ev.notes.append(
                    f"{system} vs {ev.baseline}, {metric}: p-value undefined "
                    f"({len(deltas)} queries, constant per-query difference)"
                )
            ev.p_values[system][metric] = p
            significant = p is not None and p <= ev.max_p
            gain = ev.means[system][metric] - ev.means[ev.baseline][metric]
            mark: Mark = "win" if gain > 0 else "loss" if gain < 0 else ""
            ev.marks[system][metric] = mark if significant else ""
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
