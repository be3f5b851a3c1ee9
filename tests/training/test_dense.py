"""Dense retriever fine-tuning with the real packaged sentence encoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from inpars.config import TrainConfig
from inpars.errors import ModelError
from inpars.models import resolve_model
from inpars.records import TrainingExample
from inpars.training import read_training_summary, train_dense


@pytest.mark.slow
def test_one_step_changes_the_embeddings_and_saves_a_sentence_transformers_folder(
    tmp_path: Path, make_examples: Callable[..., list[TrainingExample]]
) -> None:
    from sentence_transformers import SentenceTransformer

    examples = make_examples(negatives=1)
    texts = [examples[0].query, examples[0].positive]
    before = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu").encode(texts)
    cfg = TrainConfig(dense_batch_size=4, dense_max_length=48, max_steps=2, dense_learning_rate=1e-4,
                      warmup_ratio=0.0, seed=3, log_every=1)
    out = train_dense(examples, tmp_path / "dense", cfg)
    model = SentenceTransformer(str(out), device="cpu")
    after = model.encode(texts)
    assert after.shape == before.shape
    assert abs(after - before).max() > 1e-4  # the weights moved
    assert model.max_seq_length == 48
    summary = read_training_summary(out)
    assert summary["kind"] == "dense" and summary["steps"] == 2
    assert summary["pairs"] == 2 * 4 * 2  # 2 batches of 4 queries, a positive and a negative each
    assert len(summary["loss_curve"]) == 2


def test_a_model_that_is_not_there_is_a_model_error(
    tmp_path: Path, make_examples: Callable[..., list[TrainingExample]]
) -> None:
    with pytest.raises(ModelError, match="not found"):
        train_dense(make_examples(), tmp_path / "dense", TrainConfig(dense_model=str(tmp_path / "none")))
