"""Crafted qrels and runs whose metrics the tests compute by hand."""

from __future__ import annotations

from inpars.records import Qrel, ScoredPair

QRELS = [
    Qrel("q1", "d1", 1), Qrel("q1", "d2", 2),
    Qrel("q2", "d3", 1),
    Qrel("q3", "d4", 1), Qrel("q3", "d5", 1),
    Qrel("q4", "d6", 0),  # judged, but nothing relevant
    Qrel("qx", "d7", 1),  # excluded (a few-shot example)
]
EXCLUDED = {"qx", "fewshot-without-qrels"}


def pairs(query_id: str, *ranked: tuple[str, float]) -> list[ScoredPair]:
    return [ScoredPair(query_id, doc_id, score) for doc_id, score in ranked]


RUNS: dict[str, dict[str, list[ScoredPair]]] = {
    "bm25": {
        "q1": pairs("q1", ("d1", 2.0), ("dx", 5.0), ("d2", 3.0)),  # ranked dx, d2, d1
        # q2 missing: counts as zero
        "q3": pairs("q3", ("d4", 9.0), ("dy", 8.0), ("dz", 7.0), ("d5", 6.0)),
        "q4": pairs("q4", ("d6", 1.0)),
        "qy": pairs("qy", ("d1", 1.0)),  # no qrels: ignored
        "qx": pairs("qx", ("d7", 1.0)),  # excluded
    },
    "dense": {
        "q1": pairs("q1", ("d1", 4.0), ("d2", 3.0)),
        "q2": pairs("q2", ("d3", 1.0), ("dq", 0.5)),
        "q3": pairs("q3", ("dz", 3.0), ("d5", 2.0)),
        "qx": pairs("qx", ("d7", 1.0)),
    },
}
