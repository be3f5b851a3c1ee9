"""Round-trip consistency: keep a query only if a retriever finds its source document.

The query is searched with BM25 or a dense index; it is kept when its document is in the
top ``k`` (its rank is the step's score), else dropped as ``source_not_retrieved``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from inpars.filtering.chain import Verdict, drop
from inpars.records import Query, ScoredPair, SyntheticQuery

CHUNK = 2000  # queries per search call


class Retriever(Protocol):
    """What the round-trip filter and negative mining need from an index: the top ``k``
    documents of each query, best first (``Bm25Searcher`` and ``DenseIndex`` fit)."""

    def search(self, queries: Sequence[Query], k: int) -> dict[str, list[ScoredPair]]:
        ...


@dataclass
class RoundtripFilter:
    """Keeps queries whose source document ``retriever`` ranks in its top ``k``."""

    retriever: Retriever
    k: int = 10
    label: str = "bm25"
    name: str = "roundtrip"

    def judge(self, queries: Sequence[SyntheticQuery]) -> list[Verdict]:
        from tqdm import tqdm

        verdicts: list[Verdict] = []
        for start in tqdm(range(0, len(queries), CHUNK), desc=f"round-trip ({self.label})", unit="chunk",
                          disable=len(queries) <= CHUNK):
            chunk = queries[start : start + CHUNK]
            run = self.retriever.search([Query(q.query_id, q.text) for q in chunk], self.k)
            for query in chunk:
                hits = [p.doc_id for p in run.get(query.query_id, [])[: self.k]]
                if query.doc_id in hits:
                    verdicts.append(Verdict(True, score=float(hits.index(query.doc_id) + 1)))
                else:
                    verdicts.append(drop("source_not_retrieved", f"not in the {self.label} top {self.k}"))
        return verdicts
