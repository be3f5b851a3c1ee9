"""Where a trained model fails on its own training data: the probe of a refinement round.

A probed synthetic query *fails* when the model, ranking BM25's top ``candidates`` for it
(with the query's source document added when BM25 missed it), puts the source below
``top_k``. The documents it ranked above the source are the ones it *wrongly preferred*;
the next round shows them beside the source document in the prompt and asks for a query
that the source answers and they do not (:mod:`inpars.refinement.rounds`).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inpars.records import Query, ScoredPair, SyntheticQuery
from inpars.reranking import rerank


@dataclass(frozen=True)
class Failure:
    """A probed query whose source document the model ranked at ``rank`` (1 = first), below
    the cut; ``preferred``: the documents it ranked above the source, best first."""

    query_id: str
    doc_id: str
    text: str
    rank: int
    preferred: tuple[str, ...]


def probe_sample(queries: Sequence[SyntheticQuery], size: int, seed: int,
                 exclude_docs: Collection[str] = ()) -> list[SyntheticQuery]:
    """A seeded sample of ``size`` queries (all when ``size`` is 0 or more than there are),
    leaving out the queries of ``exclude_docs`` (a label-free dev set's documents)."""
    pool = [q for q in queries if q.doc_id not in exclude_docs]
    if size == 0 or size >= len(pool):
        return pool
    return random.Random(seed).sample(pool, size)


def with_sources(hits: Mapping[str, Sequence[ScoredPair]], queries: Sequence[SyntheticQuery],
                 candidates: int) -> dict[str, list[ScoredPair]]:
    """The first ``candidates`` hits of each query, its source document appended (below the
    last hit) when the retriever missed it: the model is judged on ranking the source."""
    run: dict[str, list[ScoredPair]] = {}
    for query in queries:
        pairs = sorted(hits.get(query.query_id, ()), key=lambda p: (-p.score, p.doc_id))[:candidates]
        if all(p.doc_id != query.doc_id for p in pairs):
            floor = pairs[-1].score - 1.0 if pairs else 0.0
            pairs.append(ScoredPair(query.query_id, query.doc_id, floor))
        run[query.query_id] = pairs
    return run


def find_failures(queries: Sequence[SyntheticQuery], ranked: Mapping[str, Sequence[ScoredPair]],
                  top_k: int) -> list[Failure]:
    """The queries whose source document ``ranked`` (query id -> pairs, best first) puts below
    ``top_k``, in the order of ``queries``."""
    failures = []
    for query in queries:
        docs = [p.doc_id for p in ranked.get(query.query_id, ())]
        rank = docs.index(query.doc_id) + 1 if query.doc_id in docs else len(docs) + 1
        if rank > top_k:
            failures.append(Failure(query.query_id, query.doc_id, query.text, rank, tuple(docs[: rank - 1])))
    return failures


def pick_documents(failures: Sequence[Failure], max_docs: int, neighbours: int) -> dict[str, tuple[str, ...]]:
    """Document id -> the documents to show beside it (those the model wrongly preferred
    for its worst-ranked query, best first, at most ``neighbours``), for the ``max_docs``
    documents whose queries the model ranked worst (then the most failed queries, then id)."""
    worst: dict[str, Failure] = {}
    failed: dict[str, int] = {}
    for failure in failures:
        failed[failure.doc_id] = failed.get(failure.doc_id, 0) + 1
        known = worst.get(failure.doc_id)
        if known is None or (failure.rank, known.query_id) > (known.rank, failure.query_id):
            worst[failure.doc_id] = failure
    order = sorted(worst, key=lambda d: (-worst[d].rank, -failed[d], d))[:max_docs]
    return {doc_id: worst[doc_id].preferred[:neighbours] for doc_id in order}


def probe(queries: Sequence[SyntheticQuery], searcher: Any, scorer: Any, *, candidates: int,
          top_k: int) -> list[Failure]:
    """Rank BM25's top ``candidates`` (plus the source) for each query with ``scorer`` and
    return the failures. ``searcher``: :class:`inpars.indexing.Bm25Searcher` (it also gives
    the documents' texts); ``scorer``: a loaded system (:func:`inpars.reranking.load_system`)."""
    if not queries:
        return []
    plain = [Query(q.query_id, q.text) for q in queries]
    run = with_sources(searcher.search(plain, candidates), queries, candidates)
    ranked = rerank(run, plain, searcher, scorer, depth=candidates + 1, below_depth="drop",
                    desc="refine probe")
    return find_failures(queries, ranked, top_k)
