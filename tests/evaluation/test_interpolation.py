"""Mixing several systems (``[evaluate] mix``): hand-checked sums, the rescored head, config checks."""

from __future__ import annotations

import pytest

from inpars.config import EvaluateConfig
from inpars.errors import ConfigError
from inpars.evaluation.interpolation import interpolate, mix
from inpars.evaluation.metrics import evaluate_runs
from inpars.records import Qrel, ScoredPair


def test_mix_of_three_runs_hand_values() -> None:
    bm25 = {"q": {"a": 10.0, "b": 5.0, "c": 0.0}}
    bi = {"q": {"a": 0.0, "b": 1.0, "c": 0.5}}
    ce = {"q": {"a": 2.0, "b": 0.0, "c": 4.0}}
    # normalized: bm25 a 1, b .5, c 0; bi a 0, b 1, c .5; ce a .5, b 0, c 1
    out = mix([bm25, bi, ce], [0.5, 0.3, 0.2])["q"]
    assert out == pytest.approx({"a": 0.6, "b": 0.55, "c": 0.35})


def test_two_run_mix_is_the_interpolation() -> None:
    base = {"q": {f"d{i}": 20.0 - i for i in range(10)}, "r": {"x": 1.0}}
    other = {"q": {"d2": 3.0, "d0": 2.0, "d1": 1.0, **{f"d{i}": -float(i) for i in range(3, 10)}}}
    for depth in (None, 3):
        assert mix([base, other], [0.3, 0.7], depth, head_from=1) == interpolate(base, other, 0.3, depth)


def test_mix_over_the_rescored_head_puts_the_rest_below() -> None:
    bm25 = {"q": {f"d{i}": 10.0 - i for i in range(5)}}
    ce = {"q": {"d1": 5.0, "d0": 1.0, "d3": -100.0, "d4": -101.0}}  # rescored the top 2
    bi = {"q": {"d0": 0.9, "d1": 0.1, "d9": 0.5}}
    out = mix([bm25, ce, bi], [0.2, 0.5, 0.3], depth=2, head_from=1)["q"]
    # head d1, d0: bm25 d0 1, d1 0; ce d1 1, d0 0; bi d0 1, d1 0 -> d0 .5, d1 .5
    assert out["d0"] == pytest.approx(0.5) and out["d1"] == pytest.approx(0.5)
    tail = sorted((d for d in out if d not in ("d0", "d1")), key=lambda d: -out[d])
    assert tail == ["d2", "d3", "d4", "d9"]  # bm25's order first, then the others'
    assert max(out[d] for d in tail) < 0.5


@pytest.mark.parametrize(("members", "message"), [
    ({"bm25": 1.0}, "two or more systems"),
    ({"bm25": 0.5, "dense": 0.6}, "add up to 1.1"),
    ({"bm25": 1.5, "dense": -0.5}, "weights must be in"),
])
def test_mix_weights_are_checked(members: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EvaluateConfig(mix={"m": members})


@pytest.mark.slow
def test_evaluate_runs_adds_a_mix_and_explains_it() -> None:
    qrels = [Qrel(q, "d1", 1) for q in ("q", "r")]
    base = [ScoredPair("q", f"d{i}", 10.0 - i) for i in range(4)]
    ce = [ScoredPair("q", "d1", 2.0), ScoredPair("q", "d0", 1.0), ScoredPair("q", "d2", -9.0)]
    other = [ScoredPair("r", "d1", 1.0), ScoredPair("r", "d0", 0.0)]
    runs = {"bm25": {"q": base, "r": base}, "ce": {"q": ce, "r": other}, "bi": {"q": base, "r": other}}
    cfg = EvaluateConfig(metrics=["mrr@10"], fusion=[], mix={"all": {"bm25": 0.2, "bi": 0.2, "ce": 0.6}})
    ev = evaluate_runs(qrels, runs, cfg, rescored_depth={"ce": 2})
    assert ev.fused["all"] == ["bm25", "bi", "ce"]
    assert ev.per_query["all"]["mrr@10"]["q"] == pytest.approx(1.0)  # d1: .2 x 0 + .2 x 0 + .6 x 1 > d0: .4
    assert any(n.startswith("all: 0.2 × bm25 + 0.2 × bi + 0.6 × ce") and "top 2 documents ce" in n
               for n in ev.notes)
    with pytest.raises(ConfigError, match="mix 'bm25' is already the name"):
        evaluate_runs(qrels, runs, EvaluateConfig(fusion=[], mix={"bm25": {"bi": 0.5, "ce": 0.5}}))
