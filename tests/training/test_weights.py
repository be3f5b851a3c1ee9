"""Per-example loss weights (``[train] weighting``): the formula with hand-checked numbers, the
weighted twins of every loss (equal to the library's with weights 1, the weighted mean with
others), and the wiring through both trainers and the stage's summary."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inpars.config import TrainConfig
from inpars.errors import ConfigError
from inpars.io import write_records
from inpars.manifest import StageContext, config_dict
from inpars.records import SyntheticQuery, TrainingExample
from inpars.training.ce_losses import make_loss, training_rows
from inpars.training.weights import (
    WEIGHT,
    check_weighting,
    example_weights,
    fingerprint_settings,
    normalise,
    query_signals,
    teacher_margin,
)

Examples = Callable[..., list[TrainingExample]]
TINY = {"max_length": 32, "batch_size": 8, "seed": 3, "log_every": 1, "threads": 1, "max_steps": 1,
        "dense_batch_size": 4, "dense_max_length": 32}


def example(query_id: str, scores: tuple[float, ...] = (), negatives: int = 2) -> TrainingExample:
    return TrainingExample(query_id, f"query {query_id}", f"d-{query_id}", f"positive of {query_id}",
                           tuple(f"n{k}-{query_id}" for k in range(negatives)),
                           tuple(f"negative {k} of {query_id}" for k in range(negatives)), scores)


# --------------------------------------------------------------------------- the formula
def test_min_max_to_the_floor_then_mean_one_and_missing_signals_weigh_one() -> None:
    # raw = 0.1 + 0.9 * (s - min) / (max - min) = 0.1, 0.55, 1.0; their mean 0.55
    weights = normalise([-2.0, -1.0, 0.0, None, math.nan], floor=0.1)
    assert weights == pytest.approx([0.1 / 0.55, 1.0, 1.0 / 0.55, 1.0, 1.0])
    assert sum(weights) / len(weights) == pytest.approx(1.0)
    assert max(weights[:3]) / min(weights[:3]) == pytest.approx(10.0)  # 1 / floor
    assert normalise([3.0, 3.0], floor=0.1) == [1.0, 1.0]  # no spread: no preference
    assert normalise([None, None], floor=0.1) == [1.0, 1.0]
    assert normalise([1.0, 2.0], floor=1.0) == [1.0, 1.0]


def test_teacher_margin_is_positive_minus_best_negative_clipped_at_zero() -> None:
    assert teacher_margin(example("a", (5.0, 3.0, 4.0))) == 1.0
    assert teacher_margin(example("b", (2.0, 3.0, 1.0))) == 0.0  # a negative beats the positive
    assert teacher_margin(example("c")) is None  # no teacher
    assert teacher_margin(example("d", (1.0, 0.5))) is None  # scores for another set of negatives
    assert teacher_margin(example("e", (1.0, 0.5), negatives=1)) == 0.5


def test_example_weights_by_signal_with_a_summary() -> None:
    examples = [example("a", (5.0, 3.0, 4.0)), example("b", (2.0, 3.0, 1.0)), example("c")]
    assert example_weights(examples, "none", 0.1) is None
    margin = example_weights(examples, "teacher_margin", 0.5)
    assert margin is not None and margin.values == pytest.approx((4 / 3, 2 / 3, 1.0))  # raw 1, .5; mean .75
    assert margin.summary() == {"weighting": "teacher_margin", "weight_floor": 0.5, "examples": 3,
                                "defaulted": 1, "min": 0.666667, "mean": 1.0, "max": 1.333333}
    logprob = example_weights(examples, "logprob", 0.1, {"a": -0.5, "c": -2.0, "other": 0.0})
    assert logprob is not None and logprob.defaulted == 1
    assert logprob.values == pytest.approx((1.0 / 0.55, 1.0, 0.1 / 0.55))


def test_signals_come_from_the_kept_queries(tmp_path: Path) -> None:
    kept = tmp_path / "kept.jsonl"
    write_records(kept, [
        SyntheticQuery("a", "d1", "x y", "t", "m", 0, 1, mean_logprob=-0.7,
                       settings={"filter_scores": {"critic": 0.9}}),
        SyntheticQuery("b", "d2", "x z", "t", "m", 0, 1, mean_logprob=None),
    ])
    assert query_signals(kept, "logprob") == {"a": -0.7}
    assert query_signals(kept, "critic") == {"a": 0.9}


def test_weightings_whose_signal_the_run_lacks_fail_fast() -> None:
    with pytest.raises(ConfigError, match="'critic' to \\[filter\\] steps"):
        check_weighting("critic", ["rules", "dedup"], "none", "x.toml")
    with pytest.raises(ConfigError, match="teacher = 'hybrid'"):
        check_weighting("teacher_margin", ["rules"], "none")
    check_weighting("critic", ["critic"], "none")
    check_weighting("logprob", [], "none")
    with pytest.raises(ValueError, match="weight_floor"):
        TrainConfig(weight_floor=0.0)


def test_none_keeps_the_fingerprint_of_a_config_without_the_keys() -> None:
    settings = fingerprint_settings(TrainConfig())
    assert "weighting" not in settings and "weight_floor" not in settings
    assert {**settings, "weighting": "none", "weight_floor": 0.1} == config_dict(TrainConfig())
    assert fingerprint_settings(TrainConfig(weighting="logprob"))["weighting"] == "logprob"


# --------------------------------------------------------------------------- the losses
def test_weighted_mean_of_a_three_example_batch_by_hand() -> None:
    import torch

    from inpars.training.weighted_losses import weighted_mean

    losses, weights = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.5, 1.0, 1.5])
    assert float(weighted_mean(losses, weights)) == pytest.approx((0.5 * 1 + 1.0 * 2 + 1.5 * 4) / 3)  # 2.8333
    assert float(weighted_mean(losses, torch.ones(3))) == pytest.approx(7 / 3)  # the plain mean
    # rows of several terms (margin-mse with n negatives): each row's mean, then weighted
    rows = torch.tensor([[1.0, 3.0], [2.0, 2.0], [4.0, 4.0]])
    assert float(weighted_mean(rows, weights)) == pytest.approx((0.5 * 2 + 1.0 * 2 + 1.5 * 4) / 3)


@pytest.fixture(scope="module")
def tiny_ce(tiny_bert: Path) -> Any:
    from inpars.training.cross_encoder import load_start_model

    model = load_start_model(str(tiny_bert), 32, "cpu")[0]
    model.eval()  # no dropout: the same logits on every pass
    return model


def logits(model: Any, pairs: list[tuple[str, str]]) -> list[float]:
    import torch

    with torch.no_grad():
        return [float(x) for x in model(model.preprocess(pairs))["scores"].view(-1)]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize("loss", ["bce", "listwise", "margin-mse"])
def test_each_cross_encoder_loss_weighs_its_rows(loss: str, tiny_ce: Any) -> None:
    import torch

    cfg = TrainConfig(loss=loss, negatives_per_example=2, bce_pos_weight=2.0)  # type: ignore[arg-type]
    examples = [example(q, (3.0, 1.0, 0.5)) for q in ("cats", "dogs", "rivers")]
    weights = [0.5, 1.0, 1.5]
    rows = training_rows(examples, cfg, random.Random(0), weights)
    plain_rows = training_rows(examples, cfg, random.Random(0))
    assert WEIGHT not in plain_rows.columns and make_loss(cfg, tiny_ce).__class__.__module__.startswith(
        "sentence_transformers")  # weighting "none": the library's loss on the same rows as before
    columns = [v for k, v in rows.columns.items() if k not in ("label", WEIGHT)]
    raw = rows.columns["label"]
    labels: Any = [torch.tensor(x) for x in raw] if loss != "bce" else torch.tensor(raw)
    weighted = make_loss(cfg, tiny_ce, weighted=True)
    with torch.no_grad():
        plain = float(make_loss(cfg, tiny_ce)(columns, labels))
        weighted.set_weights([1.0] * len(rows))
        assert float(weighted(columns, labels)) == pytest.approx(plain, rel=1e-5)  # weights 1: the plain mean
        weighted.set_weights(rows.columns[WEIGHT])
        expected = by_hand(loss, tiny_ce, examples, weights)
        assert float(weighted(columns, labels)) == pytest.approx(expected, rel=1e-5)
        with pytest.raises(RuntimeError, match="no weights"):  # each batch's weights are used once
            weighted(columns, labels)


def by_hand(loss: str, model: Any, examples: list[TrainingExample], weights: list[float]) -> float:
    """``mean_i(w_i * loss_i)`` over the rows of ``loss``, from the model's logits."""
    terms: list[tuple[float, float]] = []  # (weight, row loss)
    for e, w in zip(examples, weights, strict=True):
        docs = [e.positive, *e.negatives]
        s = logits(model, [(e.query, d) for d in docs])
        if loss == "bce":  # one row per pair; pos_weight 2 on the positive
            terms += [(w, 2.0 * softplus(-s[0]))] + [(w, softplus(x)) for x in s[1:]]
        elif loss == "listwise":  # -log softmax(s)[positive]
            terms.append((w, math.log(sum(math.exp(x) for x in s)) - s[0]))
        else:  # margins 3 - 1 and 3 - 0.5; squared errors averaged over the row
            errors = [((s[0] - s[k]) - (3.0 - t)) ** 2 for k, t in ((1, 1.0), (2, 0.5))]
            terms.append((w, sum(errors) / 2))
    return sum(w * x for w, x in terms) / len(terms)


def test_dense_losses_weigh_each_query_and_match_the_library_with_weights_one() -> None:
    import torch
    from sentence_transformers.sentence_transformer import losses

    from inpars.training.weighted_losses import WeightedMarginMSELoss, WeightedMNRLoss

    torch.manual_seed(0)
    queries, positives, negatives = (torch.randn(3, 8) for _ in range(3))
    embeddings = [queries, positives, negatives]
    model: Any = torch.nn.Identity()  # the embeddings are given: the losses never call the model
    w = [0.5, 1.0, 1.5]

    def loss(fn: Any, labels: Any) -> float:
        return float(fn.compute_loss_from_embeddings(embeddings, labels))

    ours = WeightedMNRLoss(model)
    assert loss(ours, torch.ones(3)) == pytest.approx(loss(losses.MultipleNegativesRankingLoss(model), None))
    # each query's in-batch term: logsumexp of its scores against all 6 documents minus its positive's
    documents = torch.cat([positives, negatives])
    scores = 20 * torch.nn.functional.cosine_similarity(queries[:, None], documents[None], dim=-1)
    per_query = [float(torch.logsumexp(scores[i], 0) - scores[i, i]) for i in range(3)]
    by_hand = sum(a * b for a, b in zip(w, per_query, strict=True)) / 3
    assert loss(ours, torch.tensor(w)) == pytest.approx(by_hand)

    margins = torch.tensor([0.5, -1.0, 2.0])
    mse = WeightedMarginMSELoss(model)
    assert loss(mse, torch.stack([margins, torch.ones(3)], 1)) == \
        pytest.approx(loss(losses.MarginMSELoss(model), margins))
    dot = (queries * positives).sum(1) - (queries * negatives).sum(1)  # the library's dot-product margins
    errors = [float(x) for x in (dot - margins) ** 2]
    assert loss(mse, torch.stack([margins, torch.tensor(w)], 1)) == \
        pytest.approx(sum(a * b for a, b in zip(w, errors, strict=True)) / 3)


# --------------------------------------------------------------------------- the wiring
def test_the_stage_trains_weighted_models_and_records_the_weights(
    tmp_path: Path, tiny_bert: Path, make_examples: Examples
) -> None:
    from inpars.training.stage import train_stage

    examples = make_examples()
    synthetic = tmp_path / "examples.jsonl"
    write_records(synthetic, examples)
    kept = tmp_path / "kept.jsonl"  # a log-prob for every query but the last
    write_records(kept, [SyntheticQuery(e.query_id, e.doc_id, e.query, "t", "m", 0, 1, mean_logprob=-0.1 * i)
                         for i, e in enumerate(examples[:-1])])
    cfg = TrainConfig(model=str(tiny_bert), dense_model=str(tiny_bert), dense=True, weighting="logprob",
                      **TINY)  # type: ignore[arg-type]
    ctx = StageContext(name="train", out_dir=tmp_path / "train", seed=3, config=cfg)
    train_stage(ctx, cfg, {"synthetic": synthetic}, kept=kept)
    for name in ("cross_encoder", "dense"):
        weights = ctx.extra[name]["data"]["weights"]
        assert weights["weighting"] == "logprob" and weights["defaulted"] == 1 and weights["examples"] == 8
        assert weights["mean"] == pytest.approx(1.0) and weights["min"] < 1 < weights["max"]
        assert ctx.counts[f"{name}_weights_defaulted"] == 1
    empty = tmp_path / "empty.jsonl"
    write_records(empty, [])
    with pytest.raises(ConfigError, match="no kept synthetic query"):
        train_stage(StageContext(name="train", out_dir=tmp_path / "t2", seed=3, config=cfg), cfg,
                    {"synthetic": synthetic}, kept=empty)


def test_dense_margin_rows_carry_the_weight_beside_the_margin() -> None:
    from inpars.training.dense import margin_rows, mnrl_rows

    examples = [example("a", (3.0, 1.0, 0.5)), example("b", (2.0, 2.5, 0.0))]
    columns, _, _ = margin_rows(examples, 2, [0.5, 1.5])
    assert columns["label"] == [[2.0, 0.5], [2.5, 0.5], [-0.5, 1.5], [2.0, 1.5]]
    assert margin_rows(examples, 2)[0]["label"] == [2.0, 2.5, -0.5, 2.0]
    assert mnrl_rows(examples, 1, random.Random(0), [0.5, 1.5])[0]["label"] == [0.5, 1.5]
    assert "label" not in mnrl_rows(examples, 1, random.Random(0))[0]


def test_the_train_stage_is_fingerprinted_without_the_keys_unless_it_weights(
    write_beir: Callable[..., Path], tmp_path: Path
) -> None:
    import dataclasses

    from inpars.config import Config, DataConfig
    from inpars.pipeline import Workspace
    from inpars.pipeline.stages import TrainStage

    config = Config(data=DataConfig(source=str(write_beir())))
    config = dataclasses.replace(config, experiment=dataclasses.replace(config.experiment, seed=11,
                                                                         run_dir=str(tmp_path / "r")))
    stage = TrainStage()
    settings = stage.settings(Workspace(config))
    assert "weighting" not in settings and settings["seed"] == 11
    assert stage.train_config(Workspace(config)) == dataclasses.replace(config.train, seed=11)
    weighted = Workspace(dataclasses.replace(config, train=TrainConfig(weighting="teacher_margin")))
    assert stage.settings(weighted)["weighting"] == "teacher_margin"
