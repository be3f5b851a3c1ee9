"""Crafted synthetic queries, documents and a fake retriever for the filter tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inpars.records import Document, Query, ScoredPair, SyntheticQuery

DOCS = {
    "d1": Document("d1", "Coral bleaching happens when warm water makes corals expel the algae living in "
                   "their tissue, turning them white and leaving them starving.", "Coral bleaching"),
    "d2": Document("d2", "The global interpreter lock lets only one thread execute Python bytecode at a "
                   "time, so CPU-bound threads do not run in parallel.", "Python GIL"),
    "d3": Document("d3", "Vitamin D deficiency is common in winter at high latitudes because the skin makes "
                   "little vitamin D from weak sunlight.", ""),
}


def make_query(query_id: str, doc_id: str, text: str, mean_logprob: float | None = -1.0,
               **settings: Any) -> SyntheticQuery:
    return SyntheticQuery(query_id=query_id, doc_id=doc_id, text=text, template="inpars", model="test",
                          sample=0, seed=0, mean_logprob=mean_logprob, settings=dict(settings))


class FakeRetriever:
    """A retriever for tests that returns fixed rankings (the retriever is not under test)."""

    def __init__(self, rankings: dict[str, list[str]]) -> None:
        self.rankings = rankings
        self.calls: list[tuple[list[str], int]] = []

    def search(self, queries: Sequence[Query], k: int) -> dict[str, list[ScoredPair]]:
        self.calls.append(([q.query_id for q in queries], k))
        run = {}
        for q in queries:
            ranked = self.rankings.get(q.query_id, [])[:k]
            run[q.query_id] = [ScoredPair(q.query_id, d, 10.0 - r) for r, d in enumerate(ranked)]
        return run
