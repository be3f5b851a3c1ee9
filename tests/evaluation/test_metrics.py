"""evaluate_runs on crafted qrels and runs: values checked against hand computation."""

from __future__ import annotations

import math
import random

import pytest

from inpars.config import EvaluateConfig
from inpars.errors import ConfigError, DataError
from inpars.evaluation import Evaluation, WinTieLoss, evaluate_runs
from inpars.records import Qrel, ScoredPair
from tests.evaluation.crafted import QRELS, RUNS

L3 = math.log2(3)
# nDCG with linear gains (ranx, trec_eval): DCG = sum rel / log2(rank + 1)
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


@pytest.mark.parametrize(("system", "expected"), [("bm25", BM25), ("dense", DENSE)])
def test_per_query_and_mean_values_match_hand_computation(
    crafted_evaluation: Evaluation, system: str, expected: dict[str, dict[str, float]]
) -> None:
    ev = crafted_evaluation
    assert ev.query_ids == ["q1", "q2", "q3", "q4"]
    for metric, by_query in expected.items():
        for query_id, value in by_query.items():
            got = ev.per_query[system][metric][query_id]
            assert got == pytest.approx(value, abs=1e-9), (metric, query_id)
        assert ev.means[system][metric] == pytest.approx(sum(by_query.values()) / 4, abs=1e-9)


def test_query_bookkeeping(crafted_evaluation: Evaluation) -> None:
    ev = crafted_evaluation
    assert ev.systems == ["bm25", "dense", "bm25+dense"]
    assert ev.excluded_query_ids == ["qx"]
    assert ev.excluded_requested == 2
    assert ev.no_relevant == ["q4"]
    assert ev.missing == {"bm25": 1, "dense": 1}  # bm25 lacks q2, dense lacks q4
    assert ev.unjudged == {"bm25": 1, "dense": 0}  # qy has no qrels


def test_rrf_fusion_is_a_system(crafted_evaluation: Evaluation) -> None:
    ev = crafted_evaluation
    assert ev.fused == {"bm25+dense": ["bm25", "dense"]}
    fused = ev.per_query["bm25+dense"]["ndcg@10"]
    # q1: RRF(k=60) puts d1 (1/63 + 1/61) just ahead of d2 (2/62), then dx: the dense order.
    assert fused["q1"] == pytest.approx(DENSE["ndcg@10"]["q1"])
    assert fused["q2"] == pytest.approx(1.0)  # only dense found d3
    assert "bm25+dense" in ev.p_values


def test_win_tie_loss_against_baseline(crafted_evaluation: Evaluation) -> None:
    ev = crafted_evaluation
    assert ev.win_tie_loss["dense"]["ndcg@10"] == WinTieLoss(wins=2, ties=1, losses=1)
    assert ev.deltas("dense", "mrr@10") == pytest.approx([0.5, 1.0, -0.5, 0.0])
    for system in ev.others:
        for metric in ev.metrics:
            p = ev.p_values[system][metric]
            assert p is None or 0.0 <= p <= 1.0


def _separable_runs(n: int, seed: int) -> tuple[list[Qrel], dict[str, dict[str, list[ScoredPair]]]]:
    """'good' ranks the relevant document first for every query, 'poor' at a random rank
    in 2..10, 'same' is a copy of 'poor'."""
    rng = random.Random(seed)
    qrels = [Qrel(f"q{i}", f"rel{i}", 1) for i in range(n)]
    good: dict[str, list[ScoredPair]] = {}
    poor: dict[str, list[ScoredPair]] = {}
    for i in range(n):
        q = f"q{i}"
        others = [ScoredPair(q, f"n{i}_{j}", 10.0 - j) for j in range(10)]
        good[q] = [ScoredPair(q, f"rel{i}", 11.0), *others]
        rank = rng.randint(2, 10)
        poor[q] = [*others[: rank - 1], ScoredPair(q, f"rel{i}", 10.5 - rank), *others[rank - 1:]]
    return qrels, {"poor": poor, "good": good, "same": dict(poor)}


@pytest.mark.parametrize("stat_test", ["student", "fisher"])
def test_significance_marks_and_p_values(crafted_evaluation: Evaluation, stat_test: str) -> None:
    qrels, runs = _separable_runs(30, seed=3)
    cfg = EvaluateConfig(metrics=["ndcg@10", "mrr@10"], baseline="poor", stat_test=stat_test,  # type: ignore[arg-type]
                         fusion=[], n_permutations=500)
    ev = evaluate_runs(qrels, runs, cfg, seed=7)
    assert ev.stat_test == stat_test
    for metric in cfg.metrics:
        p_good = ev.p_values["good"][metric]
        assert p_good is not None and 0.0 <= p_good <= 0.01
        assert ev.marks["good"][metric] == "win"
        assert ev.better_than["good"][metric] == ["poor", "same"]
        assert ev.better_than["poor"][metric] == []
        assert ev.p_values["same"][metric] == 1.0  # identical per-query scores
        assert ev.marks["same"][metric] == ""
        assert ev.win_tie_loss["good"][metric] == WinTieLoss(30, 0, 0)


def test_exclusion_drops_queries(crafted_evaluation: Evaluation) -> None:
    full = evaluate_runs(QRELS, RUNS, EvaluateConfig(fusion=[]))
    assert "qx" in full.query_ids and full.excluded_query_ids == []
    assert len(full.query_ids) == len(crafted_evaluation.query_ids) + 1
    assert full.per_query["bm25"]["ndcg@10"]["qx"] == pytest.approx(1.0)


def test_missing_fusion_member_is_skipped_and_noted(crafted_evaluation: Evaluation) -> None:
    cfg = EvaluateConfig(fusion=[["bm25", "splade"]])
    ev = evaluate_runs(QRELS, {"bm25": RUNS["bm25"]}, cfg)
    assert ev.systems == ["bm25"]
    assert any("bm25+splade skipped" in note for note in ev.notes)


def test_unknown_baseline_and_empty_inputs_raise(crafted_evaluation: Evaluation) -> None:
    with pytest.raises(ConfigError, match="baseline = 'splade'"):
        evaluate_runs(QRELS, RUNS, EvaluateConfig(baseline="splade"))
    with pytest.raises(DataError, match="no qrels left"):
        evaluate_runs(QRELS, RUNS, EvaluateConfig(), excluded_query_ids={q.query_id for q in QRELS})
    with pytest.raises(DataError, match="no runs"):
        evaluate_runs(QRELS, {}, EvaluateConfig())


def test_config_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="not a ranx metric"):
        EvaluateConfig(metrics=["ndgc@10"])
    with pytest.raises(ValueError, match="two or more"):
        EvaluateConfig(fusion=[["bm25"]])
    with pytest.raises(ValueError, match="max_p"):
        EvaluateConfig(max_p=1.5)


def test_interpolate_hand_values() -> None:
    from inpars.evaluation.metrics import interpolate

    base = {"q": {"a": 10.0, "b": 5.0, "c": 0.0}, "r": {"a": 3.0, "b": 3.0}}
    other = {"q": {"a": 0.0, "b": 1.0, "d": 2.0}}
    mixed = interpolate(base, other, 0.25)
    # q: base -> a 1, b .5, c 0; other -> a 0, b .5, d 1 (a doc one run lacks gets 0 from it)
    assert mixed["q"] == pytest.approx({"a": 0.25, "b": 0.5, "c": 0.0, "d": 0.75})
    assert mixed["r"] == pytest.approx({"a": 0.25, "b": 0.25})  # all-equal scores normalize to 1
    assert interpolate(base, other, 1.0)["q"] == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0, "d": 0.0})


def test_interpolated_system_is_added_and_explained() -> None:
    cfg = EvaluateConfig(fusion=[], interpolate={"dense": 0.5})
    ev = evaluate_runs(QRELS, RUNS, cfg)
    assert ev.systems == ["bm25", "dense", "dense+interp"]
    assert ev.fused == {"dense+interp": ["bm25", "dense"]}
    assert any(n.startswith("dense+interp: 0.5 × bm25 + 0.5 × dense") for n in ev.notes)
    # q2: only dense has results, so the interpolated run ranks them as dense does
    assert ev.per_query["dense+interp"]["ndcg@10"]["q2"] == pytest.approx(1.0)
    # weight 1 is the baseline's ranking (ties aside)
    only_bm25 = evaluate_runs(QRELS, RUNS, EvaluateConfig(fusion=[], interpolate={"dense": 1.0}))
    assert only_bm25.per_query["dense+interp"]["ndcg@10"]["q1"] == pytest.approx(BM25["ndcg@10"]["q1"])


def test_interpolate_weight_is_checked() -> None:
    with pytest.raises(ValueError, match=r"interpolate.dense = 1.5"):
        EvaluateConfig(interpolate={"dense": 1.5})
