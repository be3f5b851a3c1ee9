"""Interpolating a reranked run with its first stage (``[evaluate] interpolate``): per-query
min-max normalization, over the documents the reranker rescored when its depth is known."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
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
    return mix([base, other], [weight, 1 - weight], depth, head_from=1)


def mix(
    runs: Sequence[Mapping[str, Mapping[str, float]]],
    weights: Sequence[float],
    depth: int | None = None,
    head_from: int = 0,
) -> dict[str, dict[str, float]]:
    """``sum(weights[i] * runs[i])`` per query, each run min-max normalized within the query
    (:func:`interpolate` is the two-run case; the same rules for ``depth``).

    ``depth=k``: the candidates are the top ``k`` documents of ``runs[head_from]`` (a reranker
    that rescored the first stage's top ``k``); every run is normalized over the candidates
    it has (a candidate a run lacks gets 0 from it), and the other documents follow below
    the candidates, each run's in its own order, ``runs[0]``'s first.
    """
    if depth is not None and depth < 1:
        raise ConfigError(f"interpolation depth = {depth}: must be at least 1")
    if len(runs) != len(weights) or not 0 <= head_from < len(runs):
        raise ValueError(f"mix: {len(runs)} runs, {len(weights)} weights, head_from = {head_from}")
    out: dict[str, dict[str, float]] = {}
    query_ids = dict.fromkeys(q for run in runs for q in run)  # ordered: ties rank the same on every run
    for query_id in query_ids:
        scores = [run.get(query_id, {}) for run in runs]
        if depth is None:
            normalized = [_normalized(s) for s in scores]
            docs = dict.fromkeys(d for n in normalized for d in n)
            out[query_id] = {d: sum(w * n.get(d, 0.0) for w, n in zip(weights, normalized, strict=True))
                             for d in docs}
            continue
        head = _ranked(scores[head_from])[:depth]
        normalized = [_normalized({d: s[d] for d in head if d in s}) for s in scores]
        mixed = {d: sum(w * n.get(d, 0.0) for w, n in zip(weights, normalized, strict=True)) for d in head}
        placed = set(head)
        tail: list[str] = []
        for run_scores in scores:
            for d in _ranked(run_scores):
                if d not in placed:
                    placed.add(d)
                    tail.append(d)
        floor = min(mixed.values(), default=0.0)
        mixed.update((d, floor - i) for i, d in enumerate(tail, start=1))
        out[query_id] = mixed
    return out


def _ranked(scores: Mapping[str, float]) -> list[str]:
    """Document ids by descending score; ties keep the run's order (a stable sort)."""
    return sorted(scores, key=lambda d: -scores[d])


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




def add_mixes(
    runs: dict[str, dict[str, dict[str, float]]], cfg: EvaluateConfig, notes: list[str],
    rescored_depth: Mapping[str, int],
) -> dict[str, list[str]]:
    """Add each ``cfg.mix`` system (name -> {system: weight}): the weighted sum of its systems'
    per-query min-max normalized scores. When a member reranked the first stage, the
    candidates are the documents the first such member rescored (as in :func:`interpolate`)."""
    made: dict[str, list[str]] = {}
    for name, members in cfg.mix.items():
        if skipped("mix", name, members, runs, notes):
            continue
        if name in runs:
            raise ConfigError(f"[evaluate] mix {name!r} is already the name of a system. "
                              "Fix: give the mix another name")
        systems = list(members)
        reranked = [i for i, s in enumerate(systems) if s in rescored_depth]
        head_from = reranked[0] if reranked else 0
        depth = rescored_depth[systems[head_from]] if reranked else None
        runs[name] = mix([runs[s] for s in systems], [members[s] for s in systems], depth, head_from)
        parts = " + ".join(f"{members[s]:g} × {s}" for s in systems)
        over = (f" over the top {depth} documents {systems[head_from]} rescored" if depth is not None else "")
        notes.append(f"{name}: {parts}, scores min-max normalized per query{over}")
        made[name] = systems
    return made


def skipped(kind: str, name: str, members: Iterable[str], runs: Collection[str], notes: list[str]) -> bool:
    """Whether a combined system (``kind`` ``name``) lacks a member's run; if so, noted and logged."""
    absent = [s for s in members if s not in runs]
    if absent:
        note = f"{kind} {name} skipped: no run for {', '.join(absent)}"
        log.warning(note)
        notes.append(note)
    return bool(absent)
