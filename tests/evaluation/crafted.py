"""Crafted qrels and runs whose metrics the tests compute by hand."""

from __future__ import annotations

import math

from inpars.evaluation.metrics import Evaluation
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


L3 = math.log2(3)
# The metrics of the crafted runs computed by hand. nDCG with linear gains (ranx,
# trec_eval): DCG = sum rel / log2(rank + 1); qx is excluded, qy has no qrels.
BM25 = {
    "ndcg@10": {"q1": (2 / L3 + 1 / 2) / (2 + 1 / L3), "q2": 0.0,
                "q3": (1 + 1 / math.log2(5)) / (1 + 1 / L3), "q4": 0.0},
    "mrr@10": {"q1": 0.5, "q2": 0.0, "q3": 1.0, "q4": 0.0},
    "recall@100": {"q1": 1.0, "q2": 0.0, "q3": 1.0, "q4": 0.0},
    "map@100": {"q1": (1 / 2 + 2 / 3) / 2, "q2": 0.0, "q3": (1 + 2 / 4) / 2, "q4": 0.0},
}
DENSE = {
    "ndcg@10": {"q1": (1 + 2 / L3) / (2 + 1 / L3), "q2": 1.0, "q3": (1 / L3) / (1 + 1 / L3), "q4": 0.0},
    "mrr@10": {"q1": 1.0, "q2": 1.0, "q3": 0.5, "q4": 0.0},
    "recall@100": {"q1": 1.0, "q2": 1.0, "q3": 0.5, "q4": 0.0},
    "map@100": {"q1": 1.0, "q2": 1.0, "q3": 0.5 / 2, "q4": 0.0},
}
# RRF (k=60) of bm25 and dense: q1 d1 (1/63 + 1/61), d2 (2/62), dx; q2 dense's ranking;
# q3 dz (1/63 + 1/61), d5 (1/64 + 1/62), d4 (1/61), dy (1/62); q4 nothing relevant.
FUSED = {
    "ndcg@10": {"q1": DENSE["ndcg@10"]["q1"], "q2": 1.0, "q3": (1 / L3 + 1 / 2) / (1 + 1 / L3), "q4": 0.0},
    "mrr@10": {"q1": 1.0, "q2": 1.0, "q3": 0.5, "q4": 0.0},
    "recall@100": {"q1": 1.0, "q2": 1.0, "q3": 1.0, "q4": 0.0},
    "map@100": {"q1": 1.0, "q2": 1.0, "q3": (1 / 2 + 2 / 3) / 2, "q4": 0.0},
}
# Stand-in p-values (raw, per pair of systems) for the evaluation built by hand.
HAND_P_VALUES = {("bm25", "dense"): 0.3, ("bm25", "bm25+dense"): 0.2, ("dense", "bm25+dense"): 0.9}


def hand_evaluation() -> Evaluation:
    """What ``evaluate_runs(QRELS, RUNS, EvaluateConfig(), excluded_query_ids=EXCLUDED)``
    returns, built without ranx (no numba compilation): the hand-computed metrics above and
    the stand-in p-values ``HAND_P_VALUES`` (ranx's own are not reproduced)."""
    from inpars.evaluation.metrics import _fill_comparisons

    per_query = {"bm25": BM25, "dense": DENSE, "bm25+dense": FUSED}
    systems = list(per_query)
    metrics = ["ndcg@10", "recall@100", "mrr@10", "map@100"]
    query_ids = ["q1", "q2", "q3", "q4"]
    ev = Evaluation(
        metrics=metrics, systems=systems, baseline="bm25", stat_test="student", max_p=0.05,
        query_ids=query_ids,
        means={s: {m: sum(per_query[s][m].values()) / len(query_ids) for m in metrics} for s in systems},
        per_query={s: {m: dict(per_query[s][m]) for m in metrics} for s in systems},
        p_values={}, marks={}, better_than={}, win_tie_loss={},
        excluded_query_ids=["qx"], excluded_requested=len(EXCLUDED), no_relevant=["q4"],
        missing={"bm25": 1, "dense": 1}, unjudged={"bm25": 1, "dense": 0},
        fused={"bm25+dense": ["bm25", "dense"]},
    )
    _fill_comparisons(ev, {pair: {m: {"p_value": p} for m in metrics} for pair, p in HAND_P_VALUES.items()})
    return ev
