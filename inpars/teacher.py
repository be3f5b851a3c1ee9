"""A teacher for GPL-style soft labels, and the hybrid ranking it implies.

The teacher is the strongest zero-shot system of a run that needs no training data: BM25
interpolated with the sentence encoder of the dense index. For one query and a pool of
candidate documents (its BM25 top ``depth``, its dense top ``depth`` and whatever else is
asked, e.g. its positive), each component is min-max normalized over the pool and mixed
as ``w * bm25 + (1 - w) * cosine`` (``w`` = ``[negatives] teacher_bm25_weight``, the same
form as ``[evaluate] interpolate``). A document outside the BM25 top ``depth`` gets the
lowest BM25 score of that list (its true score is lower still; Lucene is not asked for
scores of single documents); its cosine is exact, from the index's stored embeddings.

Distillation losses (MarginMSE) train on the teacher's margins between a query's positive
and its negatives, which keeps a student robust to generated queries whose positive the
teacher itself ranks low (GPL, Wang et al. 2022).

GPL's own teacher is a cross-encoder: :class:`CrossEncoderTeacher` labels each mined example
(positive and negatives) with a cross-encoder's relevance score, e.g. the one a previous run
trained on its synthetic data, or any hub cross-encoder. By default the score is the model's
activated output (sigmoid for a one-logit model), a probability on the hybrid teacher's
[0, 1] scale, so margins stay in [-1, 1]: a cosine student (the bi-encoder) cannot reach the
margins of a BCE-trained model's raw logits, which span tens of units. A cross-encoder
trained with margin-mse on such margins (an inpars run's) has logit differences on that
scale already, and the sigmoid would shrink them about fourfold: ``teacher_logits = true``
labels with its raw logits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from inpars.errors import ConfigError, DataError
from inpars.records import Query, ScoredPair, TrainingExample


class EmbeddedCorpus(Protocol):
    """What the teacher needs of a dense index (``inpars.indexing.DenseIndex`` fits)."""

    doc_ids: list[str]

    @property
    def encoder(self) -> Any: ...

    def embeddings(self) -> Any: ...


def _min_max(values: Any) -> Any:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else values * 0.0 + 1.0


class HybridTeacher:
    """BM25 + sentence-encoder cosine, per query, over a pool of candidates."""

    def __init__(self, dense: EmbeddedCorpus, bm25_weight: float = 0.3) -> None:
        if not 0 <= bm25_weight <= 1:
            raise DataError(f"teacher bm25 weight {bm25_weight}: must be in [0, 1]")
        self.dense = dense
        self.bm25_weight = bm25_weight
        self._rows = {doc_id: row for row, doc_id in enumerate(dense.doc_ids)}
        self._embeddings = dense.embeddings()

    def query_vectors(self, queries: Sequence[Query]) -> dict[str, Any]:
        """Query id -> normalized embedding, encoded in one call."""
        from inpars.indexing.encoder import encode

        vectors = encode(self.dense.encoder, [q.text for q in queries], batch_size=64, queries=True)
        return {q.query_id: v for q, v in zip(queries, vectors, strict=True)}

    def scores(self, query_vector: Any, lexical: Sequence[ScoredPair], *others: Iterable[str]
               ) -> dict[str, float]:
        """Teacher score of every document of the pool: the BM25 hits plus ``others``."""
        import numpy as np

        bm25 = {p.doc_id: p.score for p in lexical}
        pool = list(dict.fromkeys([*bm25, *(d for group in others for d in group)]))
        if not pool:
            return {}
        floor = min(bm25.values(), default=0.0)
        missing = [d for d in pool if d not in self._rows]
        if missing:
            raise DataError(f"documents {missing[:3]} are not in the dense index. "
                            "Fix: rebuild the index from the collection the queries come from")
        lexical_part = _min_max(np.array([bm25.get(d, floor) for d in pool], dtype=np.float64))
        cosine = np.asarray(self._embeddings[[self._rows[d] for d in pool]], dtype=np.float64) @ query_vector
        mixed = self.bm25_weight * lexical_part + (1 - self.bm25_weight) * _min_max(cosine)
        return {d: float(s) for d, s in zip(pool, mixed, strict=True)}

    def ranking(self, query_id: str, scores: dict[str, float]) -> list[ScoredPair]:
        """The pool ranked by teacher score, best first (ties in pool order)."""
        ranked = sorted(scores, key=lambda d: -scores[d])
        return [ScoredPair(query_id, d, scores[d]) for d in ranked]


class Searcher(Protocol):
    def search(self, queries: Sequence[Query], k: int) -> dict[str, list[ScoredPair]]: ...


class HybridRetriever:
    """The retriever the teacher implies: each query's BM25 top ``depth`` and dense top
    ``depth``, ranked by the teacher's score (for the round-trip filter)."""

    def __init__(self, bm25: Searcher, dense: Searcher, teacher: HybridTeacher, depth: int = 100) -> None:
        self.bm25, self.dense, self.teacher, self.depth = bm25, dense, teacher, depth

    def search(self, queries: Sequence[Query], k: int) -> dict[str, list[ScoredPair]]:
        depth = max(k, self.depth)
        lexical = self.bm25.search(queries, depth)
        semantic = self.dense.search(queries, depth)
        vectors = self.teacher.query_vectors(queries)
        run: dict[str, list[ScoredPair]] = {}
        for query in queries:
            scores = self.teacher.scores(vectors[query.query_id], lexical.get(query.query_id, []),
                                         (p.doc_id for p in semantic.get(query.query_id, [])))
            run[query.query_id] = self.teacher.ranking(query.query_id, scores)[:k]
        return run


class PairScorer(Protocol):
    """What the cross-encoder teacher needs of a scorer (``inpars.scoring.Scorer`` fits)."""

    name: str

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]: ...


class CrossEncoderTeacher:
    """Soft labels from a cross-encoder: its score of each example's positive and negatives."""

    def __init__(self, scorer: PairScorer) -> None:
        if getattr(scorer, "fresh_head", False):
            raise ConfigError(f"[negatives] teacher_model = {scorer.name!r} has no trained relevance head, "
                              "so its scores mean nothing. Fix: name a trained cross-encoder, e.g. "
                              "'runs/<exp>/train/cross-encoder'")
        self.scorer = scorer

    def label(self, examples: Sequence[TrainingExample]) -> list[TrainingExample]:
        """``examples`` with ``teacher_scores`` = the scores of ``(positive, *negatives)``,
        all pairs of the batch scored in one call."""
        pairs = [(e.query, text) for e in examples for text in (e.positive, *e.negatives)]
        scores = iter(round(s, 6) for s in self.scorer.score(pairs))
        return [dataclasses.replace(e, teacher_scores=tuple(next(scores) for _ in (e.positive, *e.negatives)))
                for e in examples]
