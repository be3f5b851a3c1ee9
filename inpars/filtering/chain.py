"""The filter chain: each filter judges every query it is shown, keep or drop with a reason.

A filter is a small object with a ``name`` (its step name) and ``judge(queries)``, which
returns one :class:`Verdict` per query. :func:`apply_filters` runs filters in order,
each seeing only what the previous ones kept, and collects the drops (as
:class:`~inpars.records.Dropped` records), the scores a step used, and per-step counts.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from inpars.records import Dropped, SyntheticQuery

log = logging.getLogger(__name__)

SCORES_KEY = "filter_scores"  # settings key of the scores attached to kept queries


@dataclass(frozen=True)
class Verdict:
    """A filter's decision on one query; ``score`` is what the step ranked by, if anything."""

    keep: bool
    reason: str = ""
    detail: str = ""
    score: float | None = None


KEEP = Verdict(True)


def drop(reason: str, detail: str = "", score: float | None = None) -> Verdict:
    """A drop verdict."""
    return Verdict(False, reason, detail, score)


class QueryFilter(Protocol):
    """One step of the chain."""

    name: str

    def judge(self, queries: Sequence[SyntheticQuery]) -> list[Verdict]:
        """One verdict per query, in order."""
        ...


@dataclass
class StepReport:
    """What one step did."""

    step: str
    seen: int
    kept: int
    drops: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


@dataclass
class ChainResult:
    """The kept queries (scores attached), the drops, scores by step and per-step reports."""

    kept: list[SyntheticQuery]
    dropped: list[Dropped]
    scores: dict[str, dict[str, float]]
    steps: list[StepReport]


def keep_count(total: int, keep: float) -> int:
    """How many of ``total`` ranked items ``keep`` keeps: a fraction when <= 1 (rounded
    up, so a non-empty set keeps at least one), else a count (capped at ``total``)."""
    if keep <= 0:
        raise ValueError(f"keep = {keep}: must be positive")
    if keep <= 1:
        return min(total, math.ceil(total * keep - 1e-9))
    return min(total, int(keep))


def top_verdicts(ids: Sequence[str], scores: Sequence[float], keep: float, what: str) -> list[Verdict]:
    """Keep the best ``keep`` (fraction or count) by score; ties go to the smaller id."""
    n_keep = keep_count(len(ids), keep)
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))
    kept = set(order[:n_keep])
    cutoff = scores[order[n_keep - 1]] if n_keep else math.inf
    verdicts = []
    for i, score in enumerate(scores):
        if i in kept:
            verdicts.append(Verdict(True, score=score))
        else:
            detail = f"{what} {score:.4f} below the cutoff {cutoff:.4f} (kept {n_keep} of {len(ids)})"
            verdicts.append(drop("below_cutoff", detail, score))
    return verdicts


def with_scores(query: SyntheticQuery, scores: dict[str, float]) -> SyntheticQuery:
    """``query`` with ``scores`` (step -> score) added to ``settings['filter_scores']``."""
    if not scores:
        return query
    settings = dict(query.settings)
    settings[SCORES_KEY] = {**settings.get(SCORES_KEY, {}), **scores}
    return dataclasses.replace(query, settings=settings)


def apply_filters(queries: Sequence[SyntheticQuery], filters: Sequence[QueryFilter]) -> ChainResult:
    """Run ``filters`` in order over ``queries``; see the module docstring."""
    current = list(queries)
    dropped: list[Dropped] = []
    scores: dict[str, dict[str, float]] = {}
    reports: list[StepReport] = []
    for step in filters:
        start = time.perf_counter()
        verdicts = step.judge(current)
        if len(verdicts) != len(current):
            raise RuntimeError(
                f"filter {step.name!r} gave {len(verdicts)} verdicts for {len(current)} queries"
            )
        report = StepReport(step.name, seen=len(current), kept=0)
        step_scores: dict[str, float] = {}
        survivors = []
        for query, verdict in zip(current, verdicts, strict=True):
            if verdict.score is not None:
                step_scores[query.query_id] = verdict.score
            if verdict.keep:
                survivors.append(query)
                continue
            report.drops[verdict.reason] += 1
            dropped.append(
                Dropped(query.query_id, query.doc_id, query.text, step.name, verdict.reason, verdict.detail)
            )
        report.kept = len(survivors)
        report.seconds = time.perf_counter() - start
        if step_scores:
            scores[step.name] = step_scores
        log.info("filter %s: kept %d of %d %s", step.name, report.kept, report.seen, dict(report.drops))
        reports.append(report)
        current = survivors
    kept = [with_scores(q, {name: s[q.query_id] for name, s in scores.items() if q.query_id in s})
            for q in current]
    return ChainResult(kept=kept, dropped=dropped, scores=scores, steps=reports)
