"""The ``filter`` stage: synthetic queries in, the kept ones (and why the rest went) out.

Outputs in the stage folder:

- ``kept.jsonl``: kept :class:`~inpars.records.SyntheticQuery` records, the scores the
  steps ranked them by in ``settings["filter_scores"]`` (step -> score)
- ``dropped.jsonl``: :class:`~inpars.records.Dropped` records (step, reason, detail)
- ``scores_<step>.jsonl``: :class:`~inpars.records.ScoredPair` of every pair a scoring
  step saw (``scores_reranker.jsonl`` doubles as the resume cache of that step)
- counts per step and reason in the manifest (``counts``, ``drops`` as ``step:reason``)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpars.config import FilterConfig
from inpars.data.lookup import DocumentLookup, DocumentSource
from inpars.errors import ConfigError, DataError
from inpars.filtering.chain import QueryFilter, apply_filters
from inpars.filtering.contamination import ContaminationFilter
from inpars.filtering.critic import CriticFilter, Encoder, load_encoder
from inpars.filtering.dedup import DedupFilter
from inpars.filtering.logprob import LogprobFilter
from inpars.filtering.reranker import RerankerFilter, reranker_filter
from inpars.filtering.roundtrip import Retriever, RoundtripFilter
from inpars.filtering.rules import RulesFilter
from inpars.io import read_records, write_records
from inpars.manifest import StageContext
from inpars.records import Document, Query, ScoredPair, SyntheticQuery
from inpars.scoring import Scorer

if TYPE_CHECKING:
    from inpars.distributed.scoring import RayScoring

log = logging.getLogger(__name__)

KEPT = "kept.jsonl"
DROPPED = "dropped.jsonl"


def read_queries(path: Path) -> list[SyntheticQuery]:
    """Synthetic queries of a generate stage folder (its shards, in order) or one JSONL file."""
    if path.is_file():
        return list(read_records(path, SyntheticQuery))
    from inpars.generation.shards import read_synthetic_queries

    return list(read_synthetic_queries(path))


def resolve_steps(steps: Sequence[str], eval_queries: Sequence[Query]) -> list[str]:
    """The steps to run: ``contamination`` is added first when evaluation queries are known."""
    resolved = list(steps)
    if eval_queries and "contamination" not in resolved:
        log.info("filter: adding the contamination check (evaluation queries are known)")
        resolved.insert(0, "contamination")
    return resolved


def build_filters(
    cfg: FilterConfig,
    steps: Sequence[str],
    documents: dict[str, Document],
    *,
    eval_queries: Sequence[Query] = (),
    roundtrip: Retriever | None = None,
    scorer: Scorer | None = None,
    work_dir: Path | None = None,
    seed: int = 0,
    real_queries: Sequence[Query] = (),
    real_source: str = "",
    encoder: Encoder | None = None,
    on_ray: RayScoring | None = None,
) -> list[QueryFilter]:
    """The filter objects for ``steps`` (in that order) with the settings of ``cfg``.

    ``roundtrip`` is the retriever ``cfg.roundtrip_retriever`` names (BM25, dense or the
    hybrid of :mod:`inpars.teacher`); ``scorer`` overrides the reranker model of ``cfg`` (it
    is loaded only when the reranker step runs); ``work_dir`` holds the reranker's resume cache.
    ``real_queries`` (from ``real_source``) are what the critic learns real queries from;
    ``encoder`` overrides its sentence encoder (else loaded when the critic has work);
    ``on_ray``: the reranker step scores on the actors of this Ray session.
    """
    filters: list[QueryFilter] = []
    for step in steps:
        if step == "rules":
            filters.append(RulesFilter(
                documents, min_words=cfg.min_words, max_words=cfg.max_words,
                max_copied_ngram=cfg.max_copied_ngram, min_letter_ratio=cfg.min_letter_ratio,
                banned_phrases=tuple(cfg.banned_phrases),
            ))
        elif step == "dedup":
            filters.append(DedupFilter(cfg.near_dup_threshold, seed=seed))
        elif step == "contamination":
            if not eval_queries:
                log.warning("filter: 'contamination' is on but no evaluation queries were given: no-op")
            filters.append(ContaminationFilter(eval_queries, cfg.contamination_threshold, seed=seed))
        elif step == "logprob":
            filters.append(LogprobFilter(cfg.logprob_keep))
        elif step == "reranker":
            filters.append(reranker_filter(cfg, documents, scorer=scorer, work_dir=work_dir, seed=seed,
                                           on_ray=on_ray))
        elif step == "roundtrip":
            if roundtrip is None:
                raise ConfigError(
                    f"[filter] steps has 'roundtrip' with roundtrip_retriever = '{cfg.roundtrip_retriever}', "
                    "but no retriever was given. Fix: build the index it needs ([index] dense = true for "
                    "'dense' and 'hybrid') or set roundtrip_retriever = 'bm25'"
                )
            filters.append(RoundtripFilter(roundtrip, cfg.roundtrip_k, label=cfg.roundtrip_retriever))
        elif step == "critic":
            filters.append(CriticFilter(real_queries, encoder, lambda: load_encoder(cfg),
                                        keep=cfg.critic_keep, seed=seed, source=real_source))
        else:
            raise ConfigError(f"[filter] steps: unknown step {step!r}")
    return filters


def filter_stage(
    ctx: StageContext,
    cfg: FilterConfig,
    queries_dir: Path,
    collection: DocumentSource,
    *,
    eval_queries: Sequence[Query],
    roundtrip: Retriever | None,
    scorer: Scorer | None = None,
    real_queries: Sequence[Query] = (),
    real_source: str = "",
    encoder: Encoder | None = None,
) -> None:
    """Filter the synthetic queries of ``queries_dir`` (a generate stage folder or a JSONL
    file) with the steps of ``cfg``; ``eval_queries`` are the queries of every evaluated
    split (their near-copies are always dropped); ``real_queries`` (from ``real_source``) are
    the critic's real side (see :func:`~inpars.filtering.critic.critic_real_queries`)."""
    with ctx.timed("read"):
        queries = read_queries(Path(queries_dir))
        lookup = DocumentLookup(collection, fix="filter with the collection the queries were generated from")
        documents = lookup.fetch(q.doc_id for q in queries)
    ids = [q.query_id for q in queries]
    if len(set(ids)) != len(ids):
        raise DataError(
            f"{queries_dir}: synthetic query ids are not unique. Fix: regenerate into an empty folder"
        )
    steps = resolve_steps(cfg.steps, eval_queries)
    with ExitStack() as stack:
        on_ray = _ray_scoring(cfg, steps, stack)
        filters = build_filters(cfg, steps, documents, eval_queries=eval_queries, roundtrip=roundtrip,
                                scorer=scorer, work_dir=ctx.out_dir, seed=ctx.seed, real_queries=real_queries,
                                real_source=real_source, encoder=encoder, on_ray=on_ray)
        with ctx.timed("filter"):
            result = apply_filters(queries, filters)

    kept_path = ctx.out_dir / KEPT
    write_records(kept_path, result.kept)
    ctx.output("kept", kept_path)
    dropped_path = ctx.out_dir / DROPPED
    write_records(dropped_path, result.dropped)
    ctx.output("dropped", dropped_path)
    pair_of = {q.query_id: q.doc_id for q in queries}
    for step, scores in result.scores.items():
        path = ctx.out_dir / f"scores_{step}.jsonl"
        write_records(path, (ScoredPair(qid, pair_of[qid], s) for qid, s in scores.items()))
        ctx.output(f"scores_{step}", path)

    ctx.counts["queries"] = len(queries)
    ctx.counts["documents"] = len(documents)
    ctx.counts["kept"] = len(result.kept)
    ctx.counts["dropped"] = len(result.dropped)
    for report in result.steps:
        ctx.counts[f"{report.step}_seen"] = report.seen
        ctx.counts[f"{report.step}_kept"] = report.kept
        ctx.timings[f"step_{report.step}"] = report.seconds
        for reason, count in report.drops.items():
            ctx.drops[f"{report.step}:{reason}"] += count
    ctx.extra["steps"] = steps
    ctx.extra["kept_documents"] = len({q.doc_id for q in result.kept})
    if "reranker" in steps:
        reranker = next(f for f in filters if isinstance(f, RerankerFilter))
        ctx.extra["reranker"] = _reranker_record(cfg, reranker.scorer, on_ray)
    critic = next((f for f in filters if isinstance(f, CriticFilter)), None)
    if critic is not None:
        ctx.extra["critic"] = {**critic.report, "model": cfg.critic_model}
    log.info("filter: kept %d of %d queries (%s)", len(result.kept), len(queries),
             ", ".join(f"{r.step} -{r.seen - r.kept}" for r in result.steps))


def _ray_scoring(cfg: FilterConfig, steps: Sequence[str], stack: ExitStack) -> RayScoring | None:
    """The reranker step's Ray session (closed with ``stack``; the cluster is joined only when
    the step has pairs to score), or ``None`` with ``executor = "local"`` or no reranker step."""
    from inpars.distributed.settings import ray_settings

    settings = ray_settings(cfg)
    if settings is None or "reranker" not in steps:
        return None
    from inpars.distributed.scoring import RayScoring

    return stack.enter_context(RayScoring(None, settings, threads=cfg.threads, where="[filter]"))


def _reranker_record(cfg: FilterConfig, used: Scorer | None, on_ray: RayScoring | None) -> dict[str, Any]:
    """What the manifest keeps of the reranker step: the scorer (as it describes itself when
    it was loaded here or given, else as ``cfg`` names it) and where it scored."""
    record: dict[str, Any] = {"kind": cfg.reranker_kind, "model": cfg.reranker_model,
                              "dtype": cfg.reranker_dtype}
    if used is not None:
        record = {"kind": getattr(used, "kind", "custom"), "model": used.name,
                  "dtype": str(getattr(used, "dtype", ""))}
    record["executor"] = on_ray.record() if on_ray is not None else {"kind": "local"}
    return record
