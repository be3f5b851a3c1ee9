from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inpars.errors import ConfigError, ModelError
from inpars.scoring import Scorer, load_scorer
from inpars.scoring.cross_encoder import CrossEncoderScorer, activation_name

SHORT = [("do cats purr", "Cats purr."), ("", ""), ("why " * 80, "because " * 200), ("a", "b " * 30)]


@pytest.fixture(scope="module")
def ours(cross_encoder_dir: Path) -> CrossEncoderScorer:
    scorer = load_scorer("cross-encoder", str(cross_encoder_dir), batch_size=4, max_length=64,
                         dtype="float32")
    assert isinstance(scorer, CrossEncoderScorer)
    return scorer


@pytest.mark.slow
def test_scores_equal_sentence_transformers_predict(
    ours: CrossEncoderScorer, st_cross_encoder: Any, scifact_pairs: list[tuple[str, str]]
) -> None:
    pairs = scifact_pairs + SHORT
    expected = st_cross_encoder.predict(pairs, batch_size=7)
    got = np.array(ours.score(pairs))
    assert isinstance(ours, Scorer)
    assert got.shape == (len(pairs),)
    assert np.abs(got - expected).max() < 1e-4
    assert ours.activation == "sigmoid" and not ours.fresh_head


@pytest.mark.slow
def test_order_is_restored_after_bucketing(
    ours: CrossEncoderScorer, scifact_pairs: list[tuple[str, str]]
) -> None:
    pairs = scifact_pairs[:10] + SHORT
    base = ours.score(pairs)
    order = list(range(len(pairs)))
    random.Random(1).shuffle(order)
    shuffled = ours.score([pairs[i] for i in order])
    assert np.allclose(shuffled, [base[i] for i in order], atol=1e-5)
    # each pair alone (no padding at all) gives the same score as inside its bucket
    alone = [ours.score([p])[0] for p in pairs[:3]]
    assert np.allclose(alone, base[:3], atol=1e-4)
    assert ours.score([]) == []


@pytest.mark.slow
def test_bfloat16_ranks_like_float32(cross_encoder_dir: Path, ours: CrossEncoderScorer,
                                     scifact_pairs: list[tuple[str, str]]) -> None:
    bf16 = load_scorer("cross-encoder", str(cross_encoder_dir), max_length=64, dtype="bfloat16")
    a, b = np.array(ours.score(scifact_pairs)), np.array(bf16.score(scifact_pairs))
    assert np.abs(a - b).max() < 2e-3


@pytest.mark.slow
def test_encoder_without_head_gets_a_seeded_fresh_head() -> None:
    first = load_scorer("cross-encoder", "all-MiniLM-L6-v2", max_length=64, dtype="float32", seed=7)
    again = load_scorer("cross-encoder", "all-MiniLM-L6-v2", max_length=64, dtype="float32", seed=7)
    assert isinstance(first, CrossEncoderScorer) and first.fresh_head
    assert first.score(SHORT) == again.score(SHORT)
    assert all(0.0 < s < 1.0 for s in first.score(SHORT))  # sigmoid of one logit


def test_activation_is_read_from_the_model_folder(tmp_path: Path) -> None:
    (tmp_path / "config_sentence_transformers.json").write_text(
        '{"activation_fn": "torch.nn.modules.linear.Identity"}'
    )
    assert activation_name(tmp_path, 1) == "identity"
    old = tmp_path / "old"
    old.mkdir()
    block = '{"sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Tanh"}}'
    (old / "config.json").write_text(block)
    assert activation_name(old, 1) == "tanh"
    assert activation_name(tmp_path / "old" / "nothing", 1) == "sigmoid"


def test_bad_model_and_kind_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not found|cannot load"):
        load_scorer("cross-encoder", str(tmp_path / "missing-model/"), max_length=64)
    with pytest.raises(ConfigError, match="bi-encoder, cross-encoder"):
        load_scorer("colbert", "all-MiniLM-L6-v2")


def test_raw_scores_are_logits_that_do_not_saturate() -> None:
    import torch

    scorer = object.__new__(CrossEncoderScorer)  # _activate needs no model
    scorer.num_labels, scorer.activation, scorer.raw = 1, "sigmoid", False
    logits = torch.tensor([[20.0], [25.0], [-3.0]])
    squashed = scorer._activate(logits).tolist()
    assert squashed[0] == squashed[1] == 1.0  # float32 sigmoid saturates: the two tie
    scorer.raw = True
    assert scorer._activate(logits).tolist() == [20.0, 25.0, -3.0]
    scorer.num_labels = 2
    two = torch.tensor([[0.0, 20.0], [1.0, 26.0], [1.0, -2.0]])
    assert scorer._activate(two).tolist() == [20.0, 25.0, -3.0]  # logit of softmax(...)[:, 1]
    scorer.raw = False
    assert scorer._activate(two).tolist()[:2] == [1.0, 1.0]


def test_a_bfloat16_model_scores_with_a_float32_head_so_close_pairs_do_not_tie(tiny_ce: Path) -> None:
    import torch

    from tests.scoring.conftest import tiny_pairs

    pairs = tiny_pairs()
    bf16 = load_scorer("cross-encoder", str(tiny_ce), max_length=64, dtype="bfloat16", device="cpu", raw=True)
    assert isinstance(bf16, CrossEncoderScorer)
    assert bf16.model.classifier.weight.dtype == torch.float32  # the encoder stays bfloat16
    assert bf16.model.bert.encoder.layer[0].output.dense.weight.dtype == torch.bfloat16
    scores = bf16.score(pairs)
    assert len(set(scores)) == len(scores)  # a bfloat16 logit would repeat values
    fp32 = load_scorer("cross-encoder", str(tiny_ce), max_length=64, dtype="float32", device="cpu", raw=True)
    spread = max(scores) - min(scores)
    assert max(abs(a - b) for a, b in zip(fp32.score(pairs), scores, strict=True)) < 0.1 * spread


def test_a_trained_cross_encoder_labels_examples_as_a_teacher(tiny_ce: Path, tiny_bi: Path) -> None:
    """[negatives] teacher = 'cross-encoder' (inpars.teacher): the labels are the scorer's
    activated scores of (positive, *negatives); a model without a trained head is refused."""
    from inpars.records import TrainingExample
    from inpars.teacher import CrossEncoderTeacher
    from tests.scoring.conftest import tiny_pairs

    scorer = load_scorer("cross-encoder", str(tiny_ce), max_length=64, dtype="float32", device="cpu")
    texts = [text for _, text in tiny_pairs()[:6]]
    examples = [TrainingExample(f"q{i}", query, f"d{i}", texts[i], ("n1", "n2"), (texts[i - 1], texts[i - 2]))
                for i, query in enumerate(["what is a cell", "how do plants grow", "why is the sky blue"])]
    labelled = CrossEncoderTeacher(scorer).label(examples)
    for example in labelled:
        expected = scorer.score([(example.query, t) for t in (example.positive, *example.negatives)])
        assert example.teacher_scores == pytest.approx(expected, abs=1e-6)
        assert all(0.0 < s < 1.0 for s in example.teacher_scores)  # sigmoid: the hybrid teacher's scale
    assert len({s for e in labelled for s in e.teacher_scores}) > 3
    # teacher_logits = true: the raw logits, whose sigmoid the default labels are
    logits = load_scorer("cross-encoder", str(tiny_ce), max_length=64, dtype="float32", device="cpu",
                         raw=True)
    for raw, activated in zip(CrossEncoderTeacher(logits).label(examples), labelled, strict=True):
        assert [1 / (1 + math.exp(-x)) for x in raw.teacher_scores] == pytest.approx(
            activated.teacher_scores, abs=1e-5)
    fresh = load_scorer("cross-encoder", str(tiny_bi), max_length=64, dtype="float32", device="cpu")
    with pytest.raises(ConfigError, match="no trained relevance head"):
        CrossEncoderTeacher(fresh)
