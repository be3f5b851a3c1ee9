"""The hybrid teacher (BM25 + encoder cosine) and the negatives it ranks and labels."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from inpars.config import NegativesConfig
from inpars.errors import ConfigError, DataError
from inpars.negatives import mine_negatives
from inpars.records import Query, ScoredPair
from inpars.teacher import HybridTeacher
from tests.test_negatives import DOC_IDS, FakeIndex, corpus, queries, rankings


class FakeEncoder:
    """Encodes 'query number i' as the embedding of that query's positive document."""

    def __init__(self, vectors: dict[str, Any]) -> None:
        self.vectors = vectors

    def encode(self, texts: list[str], **_: Any) -> Any:
        return np.stack([self.vectors["d00" if int(t.split()[-1]) % 2 == 0 else "d01"] for t in texts])


class FakeDense:
    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        matrix = rng.normal(size=(len(DOC_IDS), 8))
        self._matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        self.doc_ids = list(DOC_IDS)
        self.encoder = FakeEncoder(dict(zip(DOC_IDS, self._matrix, strict=True)))

    def embeddings(self) -> Any:
        return self._matrix


def test_scores_mix_normalized_bm25_and_cosine() -> None:
    dense = FakeDense()
    lexical = [ScoredPair("q", d, 10.0 - i) for i, d in enumerate(["d03", "d04", "d07"])]
    vector = dense.embeddings()[DOC_IDS.index("d01")]
    only_bm25 = HybridTeacher(dense, bm25_weight=1.0).scores(vector, lexical, ["d01"])
    assert only_bm25 == {"d03": 1.0, "d04": 0.5, "d07": 0.0, "d01": 0.0}  # outside the list: the floor
    only_cosine = HybridTeacher(dense, bm25_weight=0.0).scores(vector, lexical, ["d01"])
    assert only_cosine["d01"] == pytest.approx(1.0) and min(only_cosine.values()) == pytest.approx(0.0)
    mixed = HybridTeacher(dense, bm25_weight=0.3).scores(vector, lexical, ["d01"])
    for doc_id, score in mixed.items():
        assert score == pytest.approx(0.3 * only_bm25[doc_id] + 0.7 * only_cosine[doc_id])
    with pytest.raises(DataError, match="not in the dense index"):
        HybridTeacher(dense).scores(vector, lexical, ["nope"])


def test_teacher_labels_follow_the_positive_and_its_negatives() -> None:
    qs = queries(6)
    index, dense = FakeIndex(rankings(qs), corpus()), FakeDense()
    cfg = NegativesConfig(depth=20, count=3, sampling="top", teacher="hybrid", teacher_bm25_weight=0.0)
    examples = list(mine_negatives(qs, index, cfg, dense=index, teacher=HybridTeacher(dense, 0.0)))
    for example in examples:
        assert len(example.teacher_scores) == 1 + len(example.negative_ids) == 4
        assert example.teacher_scores[0] == pytest.approx(1.0)  # the query embeds as its positive
        assert max(example.teacher_scores[1:]) < 1.0
    with pytest.raises(ConfigError, match="needs the hybrid teacher"):
        list(mine_negatives(qs, index, cfg, dense=index))


def test_the_hybrid_retriever_takes_negatives_from_the_teacher_ranking() -> None:
    qs = queries(4)
    index, dense = FakeIndex(rankings(qs), corpus()), FakeDense()
    teacher = HybridTeacher(dense, 0.0)
    cfg = NegativesConfig(depth=20, count=2, sampling="top", retriever="hybrid")
    for example in mine_negatives(qs, index, cfg, dense=index, teacher=teacher):
        assert example.teacher_scores == ()  # ranked by the teacher, not labelled (teacher = "none")
        vector = dense.embeddings()[DOC_IDS.index(example.doc_id)]
        pool = set(rankings(qs)[example.query_id][:20])
        cosine = {d: float(dense.embeddings()[DOC_IDS.index(d)] @ vector) for d in pool}
        unusable = {example.doc_id, "d06"} | ({"d05"} if example.doc_id == "d00" else set())
        best = sorted((d for d in pool if d not in unusable), key=lambda d: -cosine[d])[:2]
        assert list(example.negative_ids) == best


def test_the_hybrid_retriever_ranks_both_pools_by_the_teacher() -> None:
    from inpars.filtering.roundtrip import RoundtripFilter
    from inpars.teacher import HybridRetriever

    qs = queries(4)
    lexical = FakeIndex({q.query_id: [d for d in DOC_IDS if d != q.doc_id] for q in qs}, corpus())
    semantic = FakeIndex(rankings(qs, seed=5), corpus())  # holds the positive somewhere
    hybrid = HybridRetriever(lexical, semantic, HybridTeacher(FakeDense(), 0.0), depth=30)
    run = hybrid.search([Query(q.query_id, q.text) for q in qs], 3)
    for q in qs:
        assert run[q.query_id][0].doc_id == q.doc_id  # found through the dense pool
        assert len(run[q.query_id]) == 3
    verdicts = RoundtripFilter(hybrid, k=1, label="hybrid").judge(qs)
    assert all(v.keep for v in verdicts)


class FakeCrossEncoder:
    """Scores a pair by the number of the document it holds ('document d03' -> 0.3)."""

    name = "fake-ce"

    def __init__(self, fresh_head: bool = False) -> None:
        self.fresh_head = fresh_head
        self.calls: list[int] = []

    def score(self, pairs: Any) -> list[float]:
        self.calls.append(len(pairs))
        return [doc_number(text) / 10 for _, text in pairs]


def doc_number(text: str) -> int:
    found = re.search(r"document d(\d+)", text)
    assert found is not None, text
    return int(found.group(1))


def test_a_cross_encoder_teacher_labels_the_positive_then_each_negative() -> None:
    from inpars.teacher import CrossEncoderTeacher

    qs = queries(6)
    index = FakeIndex(rankings(qs), corpus())
    cfg = NegativesConfig(depth=20, count=3, sampling="top", teacher="cross-encoder", teacher_model="m")
    scorer = FakeCrossEncoder()
    examples = list(mine_negatives(qs, index, cfg, labeller=CrossEncoderTeacher(scorer)))  # no dense index
    assert scorer.calls == [6 * 4]  # one call per batch of queries
    for example in examples:
        texts = (example.positive, *example.negatives)
        assert example.teacher_scores == tuple(doc_number(t) / 10 for t in texts)
    with pytest.raises(ConfigError, match="needs its model"):
        list(mine_negatives(qs, index, cfg))
    with pytest.raises(ConfigError, match="no trained relevance head"):
        CrossEncoderTeacher(FakeCrossEncoder(fresh_head=True))


def test_a_cross_encoder_teacher_is_configured_with_its_model() -> None:
    NegativesConfig(teacher="cross-encoder", teacher_model="runs/x/train/cross-encoder-synthetic")
    with pytest.raises(ValueError, match="needs teacher_model"):
        NegativesConfig(teacher="cross-encoder")
    with pytest.raises(ValueError, match="only read with teacher = 'cross-encoder'"):
        NegativesConfig(teacher="hybrid", teacher_model="m")
    with pytest.raises(ValueError, match="only read with teacher = 'cross-encoder'"):
        NegativesConfig(teacher="none", teacher_logits=True)
