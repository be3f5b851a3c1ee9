from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from inpars.filtering import RerankerFilter, apply_filters
from inpars.filtering.chain import SCORES_KEY
from inpars.io import read_records
from inpars.records import Document, ScoredPair
from inpars.scoring import Scorer, load_scorer
from tests.filtering.filtercases import make_query


class NoScoring:
    name = "must-not-score"

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        raise AssertionError("everything should have come from the cache")


class WordOverlap:
    """A fake scorer for the fast variant: the share of the query's words found in the document."""

    name = "word-overlap"

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        def words(text: str) -> set[str]:
            return set(re.findall(r"\w+", text.lower()))

        return [len(words(q) & words(d)) / len(words(q)) for q, d in pairs]


@pytest.mark.parametrize("scorer_kind", ["word-overlap", pytest.param("minilm", marks=pytest.mark.slow)])
def test_scorer_keeps_relevant_queries_and_reuses_its_cache(
    scorer_kind: str, docs: dict[str, Document], tmp_path: Path
) -> None:
    queries = [
        make_query("d1#q0", "d1", "what causes coral bleaching"),
        make_query("d1#q1", "d1", "how do python threads share the interpreter"),  # not about d1
        make_query("d2#q0", "d2", "why do python threads not run in parallel"),
        make_query("d2#q1", "d2", "vitamin d deficiency in winter"),  # not about d2
        make_query("d3#q0", "d3", "why is vitamin d low in winter"),
        make_query("d3#q1", "d3", "coral reef algae"),  # not about d3
    ]
    scorer: Scorer
    if scorer_kind == "minilm":  # the packaged encoder (slow: a real model)
        scorer = load_scorer("bi-encoder", "all-MiniLM-L6-v2", dtype="float32")
    else:
        scorer = WordOverlap()
    cache = tmp_path / "scores_reranker.jsonl"
    result = apply_filters(queries, [RerankerFilter(scorer, docs, keep=0.5, cache_path=cache)])
    assert sorted(q.query_id for q in result.kept) == ["d1#q0", "d2#q0", "d3#q0"]
    assert all(d.reason == "below_cutoff" for d in result.dropped)
    assert all(q.settings[SCORES_KEY]["reranker"] > 0.4 for q in result.kept)
    cached = list(read_records(cache, ScoredPair))
    assert len(cached) == 6 and {p.query_id for p in cached} == {q.query_id for q in queries}

    # a rerun (an interrupted stage resumed) reads every score back from the cache
    again = apply_filters(queries, [RerankerFilter(NoScoring(), docs, keep=3, cache_path=cache)])
    assert [q.query_id for q in again.kept] == [q.query_id for q in result.kept]
    assert [q.settings for q in again.kept] == [q.settings for q in result.kept]
