"""The probe of a refinement round: which queries fail, which documents get new queries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inpars.io import read_records, write_records
from inpars.records import Document, Query, ScoredPair, SyntheticQuery
from inpars.refinement.failures import (
    Failure,
    find_failures,
    pick_documents,
    probe,
    probe_sample,
    with_sources,
)


def synthetic(query_id: str, doc_id: str, text: str = "q") -> SyntheticQuery:
    return SyntheticQuery(query_id, doc_id, text, "neighbours", "fake", 0, 0)


def pairs(query_id: str, *ranked: str) -> list[ScoredPair]:
    return [ScoredPair(query_id, doc, float(len(ranked) - i)) for i, doc in enumerate(ranked)]


def test_the_source_is_added_below_the_hits_when_the_retriever_missed_it() -> None:
    queries = [synthetic("a#q0", "A"), synthetic("b#q0", "B")]
    hits = {"a#q0": pairs("a#q0", "X", "A", "Y"), "b#q0": pairs("b#q0", "X", "Y", "Z")}
    run = with_sources(hits, queries, candidates=2)
    assert [p.doc_id for p in run["a#q0"]] == ["X", "A"]
    assert [p.doc_id for p in run["b#q0"]] == ["X", "Y", "B"]
    assert run["b#q0"][-1].score < run["b#q0"][-2].score
    assert [p.doc_id for p in with_sources({}, queries[:1], 2)["a#q0"]] == ["A"]  # nothing retrieved


def test_a_query_fails_when_its_source_is_ranked_below_top_k() -> None:
    queries = [synthetic("a#q0", "A", "alpha"), synthetic("b#q0", "B"), synthetic("c#q0", "C")]
    ranked = {"a#q0": pairs("a#q0", "X", "Y", "A"), "b#q0": pairs("b#q0", "X", "B"),
              "c#q0": pairs("c#q0", "X", "Y")}
    failures = find_failures(queries, ranked, top_k=2)
    assert failures == [Failure("a#q0", "A", "alpha", 3, ("X", "Y")),
                        Failure("c#q0", "C", "q", 3, ("X", "Y"))]  # C not ranked at all: just below the list


def test_documents_are_picked_worst_first_with_the_documents_of_their_worst_query() -> None:
    failures = [
        Failure("a#q0", "A", "t", 3, ("X", "Y")),
        Failure("a#q1", "A", "t", 5, ("Y", "Z", "W", "X")),  # A's worst: its neighbours are shown
        Failure("b#q0", "B", "t", 5, ("X", "Y", "Z", "W")),  # same worst rank, fewer failures than A
        Failure("c#q0", "C", "t", 4, ("Y", "Z", "X")),
    ]
    assert pick_documents(failures, max_docs=2, neighbours=2) == {"A": ("Y", "Z"), "B": ("X", "Y")}
    assert list(pick_documents(failures, max_docs=10, neighbours=1)) == ["A", "B", "C"]
    assert pick_documents([], max_docs=3, neighbours=2) == {}


def test_the_probe_sample_is_seeded_and_leaves_out_excluded_documents() -> None:
    queries = [synthetic(f"d{i}#q0", f"d{i}") for i in range(10)]
    first = probe_sample(queries, 4, seed=3)
    assert len(first) == 4 and first == probe_sample(queries, 4, seed=3)
    assert first != probe_sample(queries, 4, seed=4)
    assert probe_sample(queries, 0, seed=3, exclude_docs={"d0", "d1"}) == queries[2:]
    assert probe_sample(queries, 50, seed=3) == queries


class FakeSearcher(dict[str, Document]):
    """BM25 by shared words; the documents by id (a DocumentSource)."""

    def search(self, queries: Sequence[Query], k: int) -> dict[str, list[ScoredPair]]:
        out = {}
        for query in queries:
            words = set(query.text.split())
            scored = [(len(words & set(doc.text.split())), doc.doc_id) for doc in self.values()]
            ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:k]
            out[query.query_id] = [ScoredPair(query.query_id, d, float(s)) for s, d in ranked]
        return out


class LengthScorer:
    """A model that prefers short documents, whatever the query: it fails on long sources."""

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [-float(len(doc)) for _, doc in pairs]


def test_probe_ranks_the_candidates_with_the_model() -> None:
    searcher = FakeSearcher({
        "long": Document("long", "heart attack risk factors in a long cohort study of many adults"),
        "short": Document("short", "heart risk"),
        "other": Document("other", "solar panels"),
    })
    queries = [synthetic("long#q0", "long", "heart attack cohort"),
               synthetic("short#q0", "short", "heart risk")]
    failures = probe(queries, searcher, LengthScorer(), candidates=2, top_k=1)
    assert failures == [Failure("long#q0", "long", "heart attack cohort", 2, ("short",))]
    assert probe([], searcher, LengthScorer(), candidates=2, top_k=1) == []


def test_failures_round_trip_through_jsonl(tmp_path: Path) -> None:
    failures = [Failure("a#q0", "A", "text", 4, ("X", "Y"))]
    write_records(tmp_path / "f.jsonl", failures)
    assert list(read_records(tmp_path / "f.jsonl", Failure)) == failures
