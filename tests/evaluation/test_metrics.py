"""evaluate_runs on crafted qrels and runs: values checked against hand computation.

Every test that scores with ranx is ``slow`` (numba compiles ranx's kernels on first use);
interpolation, Holm, the marks and the confidence intervals are checked without it.
"""

from __future__ import annotations

import math
import random

import pytest

from inpars.config import EvaluateConfig
from inpars.errors import ConfigError, DataError
from inpars.evaluation import Evaluation, WinTieLoss, evaluate_runs
from inpars.records import Qrel, ScoredPair
from tests.evaluation.crafted import BM25, DENSE, FUSED, QRELS, RUNS, hand_evaluation


@pytest.mark.slow
@pytest.mark.parametrize(("system", "expected"), [("bm25", BM25), ("dense", DENSE), ("bm25+dense", FUSED)])
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


@pytest.mark.slow
def test_the_hand_built_evaluation_is_what_ranx_measures(crafted_evaluation: Evaluation) -> None:
    """The fast report tests use ``hand_evaluation``: it must stay what ranx measures."""
    hand, ranx = hand_evaluation(), crafted_evaluation
    for name in ("metrics", "systems", "baseline", "stat_test", "max_p", "query_ids", "excluded_query_ids",
                 "excluded_requested", "no_relevant", "missing", "unjudged", "fused", "win_tie_loss",
                 "tests_per_family"):
        assert getattr(hand, name) == getattr(ranx, name), name
    for system in ranx.systems:
        for metric in ranx.metrics:
            assert hand.per_query[system][metric] == pytest.approx(ranx.per_query[system][metric], abs=1e-9)
            assert hand.means[system][metric] == pytest.approx(ranx.means[system][metric], abs=1e-9)


@pytest.mark.slow
def test_query_bookkeeping(crafted_evaluation: Evaluation) -> None:
    ev = crafted_evaluation
    assert ev.systems == ["bm25", "dense", "bm25+dense"]
    assert ev.excluded_query_ids == ["qx"]
    assert ev.excluded_requested == 2
    assert ev.no_relevant == ["q4"]
    assert ev.missing == {"bm25": 1, "dense": 1}  # bm25 lacks q2, dense lacks q4
    assert ev.unjudged == {"bm25": 1, "dense": 0}  # qy has no qrels


@pytest.mark.slow
def test_rrf_fusion_is_a_system(crafted_evaluation: Evaluation) -> None:
    ev = crafted_evaluation
    assert ev.fused == {"bm25+dense": ["bm25", "dense"]}
    fused = ev.per_query["bm25+dense"]["ndcg@10"]
    # q1: RRF(k=60) puts d1 (1/63 + 1/61) just ahead of d2 (2/62), then dx: the dense order.
    assert fused["q1"] == pytest.approx(DENSE["ndcg@10"]["q1"])
    assert fused["q2"] == pytest.approx(1.0)  # only dense found d3
    assert "bm25+dense" in ev.p_values


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_exclusion_drops_queries(crafted_evaluation: Evaluation) -> None:
    full = evaluate_runs(QRELS, RUNS, EvaluateConfig(fusion=[]))
    assert "qx" in full.query_ids and full.excluded_query_ids == []
    assert len(full.query_ids) == len(crafted_evaluation.query_ids) + 1
    assert full.per_query["bm25"]["ndcg@10"]["qx"] == pytest.approx(1.0)


@pytest.mark.slow
def test_missing_fusion_member_is_skipped_and_noted(crafted_evaluation: Evaluation) -> None:
    cfg = EvaluateConfig(fusion=[["bm25", "splade"]])
    ev = evaluate_runs(QRELS, {"bm25": RUNS["bm25"]}, cfg)
    assert ev.systems == ["bm25"]
    assert any("bm25+splade skipped" in note for note in ev.notes)


@pytest.mark.slow
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
    from inpars.evaluation.interpolation import interpolate

    base = {"q": {"a": 10.0, "b": 5.0, "c": 0.0}, "r": {"a": 3.0, "b": 3.0}}
    other = {"q": {"a": 0.0, "b": 1.0, "d": 2.0}}
    mixed = interpolate(base, other, 0.25)
    # q: base -> a 1, b .5, c 0; other -> a 0, b .5, d 1 (a doc one run lacks gets 0 from it)
    assert mixed["q"] == pytest.approx({"a": 0.25, "b": 0.5, "c": 0.0, "d": 0.75})
    assert mixed["r"] == pytest.approx({"a": 0.25, "b": 0.25})  # all-equal scores normalize to 1
    assert interpolate(base, other, 1.0)["q"] == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0, "d": 0.0})


@pytest.mark.slow
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


def test_interpolation_normalizes_the_reranker_over_the_documents_it_rescored() -> None:
    from inpars.evaluation.interpolation import interpolate

    # first stage: 10 documents; a reranker rescored the top 3 (rerank depth 3 < 10) and, as
    # inpars.reranking.rerank keeps them, ranked the other 7 after them at min - 1, - 2, ...
    base = {"q": {f"d{i}": 20.0 - i for i in range(10)}}
    head = {"d2": 3.0, "d0": 2.0, "d1": 1.0}
    tail = {f"d{i}": 1.0 - (i - 2) for i in range(3, 10)}
    other = {"q": {**head, **tail}}
    only_reranker = interpolate(base, other, 0.0, depth=3)["q"]
    assert {d: only_reranker[d] for d in head} == pytest.approx({"d2": 1.0, "d0": 0.5, "d1": 0.0})
    # over the whole list the placeholder tail squashes the head to the top of [0, 1]
    squashed = interpolate(base, other, 0.0)["q"]
    assert min(squashed[d] for d in head) > 0.7
    # the documents below depth follow in the first stage's order, below the head
    ranked = sorted(only_reranker, key=lambda d: -only_reranker[d])
    assert ranked == ["d2", "d0", "d1", *(f"d{i}" for i in range(3, 10))]
    assert max(only_reranker[f"d{i}"] for i in range(3, 10)) < 0.0
    mixed = interpolate(base, other, 0.5, depth=3)["q"]
    # baseline over the head: d0 1, d1 .5, d2 0; reranker: d2 1, d0 .5, d1 0
    assert {d: mixed[d] for d in head} == pytest.approx({"d0": 0.75, "d2": 0.5, "d1": 0.25})
    assert sorted(mixed, key=lambda d: -mixed[d])[3:] == [f"d{i}" for i in range(3, 10)]
    # dropped tail (below_depth = "drop"): the same interpolation, the baseline's tail kept
    assert interpolate(base, {"q": head}, 0.5, depth=3) == {"q": mixed}
    with pytest.raises(ConfigError, match="depth = 0"):
        interpolate(base, other, 0.5, depth=0)


@pytest.mark.slow
def test_evaluate_runs_interpolates_over_the_rescored_depth() -> None:
    qrels = [Qrel(q, "d1", 1) for q in ("q", "r")]  # r only keeps the t-tests defined
    base = [ScoredPair("q", f"d{i}", 20.0 - i) for i in range(10)]
    # the reranker rescored bm25's top 3, put d1 first and d0 last; its tail is far below
    reranked = [ScoredPair("q", "d1", 3.0), ScoredPair("q", "d2", 2.5), ScoredPair("q", "d0", 1.0)]
    reranked += [ScoredPair("q", f"d{i}", 1.0 - (i - 2) * 100) for i in range(3, 10)]
    cfg = EvaluateConfig(metrics=["mrr@10"], fusion=[], interpolate={"ce": 0.5})
    r_reranked = [ScoredPair("r", "d0", 3.0), ScoredPair("r", "d2", 2.0), ScoredPair("r", "d1", 1.0)]
    runs = {"bm25": {"q": base, "r": base}, "ce": {"q": reranked, "r": r_reranked}}
    whole = evaluate_runs(qrels, runs, cfg)
    rescored = evaluate_runs(qrels, runs, cfg, rescored_depth={"ce": 3})
    assert whole.per_query["ce+interp"]["mrr@10"]["q"] == pytest.approx(0.5)  # bm25's d0 stays first
    # over the 3 rescored: d1 .5 x .5 + .5 x 1 = .75 beats d0 .5 x 1 + .5 x 0 = .5
    assert rescored.per_query["ce+interp"]["mrr@10"]["q"] == pytest.approx(1.0)
    assert any("over the top 3 documents ce rescored" in n for n in rescored.notes)


def test_holm_adjusts_step_down() -> None:
    from inpars.evaluation.metrics import holm

    # sorted: .005 x 4 = .02, .01 x 3 = .03, .03 x 2 = .06, .04 x 1 = .04 -> .06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, 0.9]) == pytest.approx([0.4, 0.9])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    got = holm([0.01, None, 0.5])  # an undefined test counts in the family, stays undefined
    assert got[1] is None and got[0] == pytest.approx(0.03) and got[2] == pytest.approx(1.0)
    assert holm([]) == []


def test_significance_marks_use_holm_adjusted_p_values() -> None:
    from inpars.evaluation.metrics import _fill_comparisons

    systems = ["base", "s1", "s2", "s3"]
    queries = [f"q{i}" for i in range(5)]
    gains = {"base": 0.0, "s1": 0.3, "s2": 0.2, "s3": 0.1}
    per_query = {
        s: {"ndcg@10": {q: 0.2 + gains[s] + 0.05 * i for i, q in enumerate(queries)}} for s in systems
    }
    per_query["s1"]["ndcg@10"]["q0"] += 0.1  # not a constant difference
    raw = {("base", "s1"): 0.01, ("base", "s2"): 0.04, ("base", "s3"): 0.5,
           ("s1", "s2"): 0.001, ("s1", "s3"): 0.2, ("s2", "s3"): 0.3}
    comparisons = {pair: {"ndcg@10": {"p_value": p}} for pair, p in raw.items()}
    ev = Evaluation(
        metrics=["ndcg@10"], systems=systems, baseline="base", stat_test="student", max_p=0.05,
        query_ids=queries, per_query=per_query, p_values={}, marks={}, better_than={}, win_tie_loss={},
        means={s: {"ndcg@10": sum(per_query[s]["ndcg@10"].values()) / 5} for s in systems},
    )
    _fill_comparisons(ev, comparisons)
    # one family of 6 pairwise tests: .001 x 6, .01 x 5 = .05, .04 x 4 = .16, then .6
    assert ev.tests_per_family == 6
    assert ev.p_values["s2"]["ndcg@10"] == 0.04  # raw: significant without a correction
    assert ev.adjusted_p_values["s2"]["ndcg@10"] == pytest.approx(0.16)
    assert ev.adjusted_p_values["s1"]["ndcg@10"] == pytest.approx(0.05)
    assert ev.marks["s1"]["ndcg@10"] == "win" and ev.marks["s2"]["ndcg@10"] == ""
    assert ev.better_than["s1"]["ndcg@10"] == ["base", "s2"]
    assert ev.better_than["s2"]["ndcg@10"] == []
    low, high = ev.ci95["s2"]["ndcg@10"] or (0.0, 0.0)
    assert low == pytest.approx(0.2) and high == pytest.approx(0.2)  # constant difference: no spread


def test_mean_difference_ci_is_paired_t_based() -> None:
    from inpars.evaluation.metrics import mean_difference_ci

    low, high = mean_difference_ci([1.0, 2.0, 3.0, 4.0, 5.0]) or (0.0, 0.0)
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4) x sd / sqrt(n)
    assert low == pytest.approx(3.0 - half) and high == pytest.approx(3.0 + half)
    assert mean_difference_ci([0.5]) is None
