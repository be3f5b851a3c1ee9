"""Interpolating a reranked run with its first stage (``[evaluate] interpolate``): per-query
min-max normalization, over the documents the reranker rescored when its depth is known."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from inpars.errors import ConfigError

if TYPE_CHECKING:
    from inpars.config import EvaluateConfig

log = logging.getLogger(__name__)

def _normalized(scores: Mapping[str, float]) -> dict[str, float]:
    """Min-max normalization to [0, 1]; all-equal scores normalize to 1."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {d: (s - low) / span if span > 0 else 1.0 for d, s in scores.items()}


def interpolate(
    base: Mapping[str, Mapping[str, float]],
    other: Mapping[str, Mapping[str, float]],
    weight: float,
    depth: int | None = None,
) -> dict[str, dict[str, float]]:
    """``weight * base + (1 - weight) * other`` per query, each run's scores min-max normalized
    within the query first. The usual way to combine a reranker with its first stage.

    ``depth=None``: over the union of both runs' documents, each run normalized over all its
    documents (a document one run lacks gets 0 from it; a query whose scores are all equal
    normalizes to 1).

    ``depth=k`` (``other`` reranked the baseline's top ``k``, as InPars / monoT5 interpolate):
    the candidates are ``other``'s top ``k`` documents, the ones it rescored, and both runs are
    normalized over the candidates only, so the reranker's scores spread over [0, 1]
    (normalizing over a whole list whose tail holds the placeholder scores ``min - 1, - 2,
    ...`` of :func:`inpars.reranking.rerank` squashed them to about [0.99, 1]). The other
    documents (``other``'s tail, and baseline documents it lacks) follow below the
    candidates in the baseline's order (then ``other``'s), scored ``min(candidates) - 1,
    - 2, ...`` like a reranked run's tail.
    """
    if depth is not None and depth < 1:
        raise ConfigError(f"interpolation depth = {depth}: must be at least 1")
    out: dict[str, dict[str, float]] = {}
    for query_id in dict.fromkeys([*base, *other]):  # ordered, so ties rank the same on every run
        base_scores, other_scores = base.get(query_id, {}), other.get(query_id, {})
        if depth is None:
            a, b = _normalized(base_scores), _normalized(other_scores)
            docs = dict.fromkeys([*a, *b])
            out[query_id] = {d: weight * a.get(d, 0.0) + (1 - weight) * b.get(d, 0.0) for d in docs}
            continue
        ranked = sorted(other_scores, key=lambda d: -other_scores[d])  # stable: ties in run order
        head = ranked[:depth]
        a = _normalized({d: base_scores[d] for d in head if d in base_scores})
        b = _normalized({d: other_scores[d] for d in head})
        mixed = {d: weight * a.get(d, 0.0) + (1 - weight) * b[d] for d in head}
        in_head = set(head)
        by_base = sorted((d for d in base_scores if d not in in_head), key=lambda d: -base_scores[d])
        tail = [*by_base, *(d for d in ranked[depth:] if d not in base_scores)]
        floor = min(mixed.values(), default=0.0)
        mixed.update((d, floor - i) for i, d in enumerate(tail, start=1))
        out[query_id] = mixed
    return out


def interpolated_name(system: str) -> str:
    """The name of ``system`` interpolated with the baseline, as evaluation reports it."""
    return f"{system}+interp"


def add_interpolations(
    runs: dict[str, dict[str, dict[str, float]]], cfg: EvaluateConfig, notes: list[str],
    rescored_depth: Mapping[str, int],
) -> dict[str, list[str]]:
    """Add ``<system>+interp`` for each ``cfg.interpolate`` entry (system -> baseline weight);
    a system in ``rescored_depth`` is normalized over the documents it rescored only."""
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
        depth = rescored_depth.get(system)
        runs[name] = interpolate(runs[cfg.baseline], runs[system], weight, depth)
        over = (
            f" over the top {depth} documents {system} rescored (the rest follow in {cfg.baseline} order)"
            if depth is not None else ""
        )
        notes.append(
            f"{name}: {weight:g} × {cfg.baseline} + {1 - weight:g} × {system}, "
            f"scores min-max normalized per query{over}"
        )
        made[name] = [cfg.baseline, system]
    return made


