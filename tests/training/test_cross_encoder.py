"""Cross-encoder training on a tiny set with the real packaged MiniLM start point."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from inpars.config import TrainConfig, parse_config
from inpars.errors import ConfigError, ModelError
from inpars.records import TrainingExample
from inpars.training.cross_encoder import (
    SUMMARY,
    load_start_model,
    read_training_summary,
    score_logits,
    train_cross_encoder,
)
from inpars.training.loop import seed_everything

Examples = Callable[..., list[TrainingExample]]
SEED = 7
FAST = {"max_length": 48, "batch_size": 8, "learning_rate": 2e-4, "warmup_ratio": 0.0, "seed": SEED,
        "log_every": 2}


def margins(tokenizer: Any, model: Any, examples: list[TrainingExample]) -> float:
    """Mean score of each positive minus its negatives' mean."""
    model.eval()
    with torch.no_grad():
        total = 0.0
        for e in examples:
            scores = score_logits(model, tokenizer, [e.query] * (1 + len(e.negatives)),
                                  [e.positive, *e.negatives], 48, "cpu").tolist()
            total += scores[0] - sum(scores[1:]) / len(e.negatives)
    return total / len(examples)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, make_examples: Examples) -> tuple[Path, float]:
    """A BCE model trained 6 steps into a folder that held a stale file; the base margin."""
    examples = make_examples()
    seed_everything(SEED)  # the same fresh head as training draws
    tokenizer, base, _ = load_start_model("all-MiniLM-L6-v2")
    before = margins(tokenizer, base, examples)
    out = tmp_path_factory.mktemp("ce") / "model"
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    cfg = TrainConfig(loss="bce", negatives_per_example=2, epochs=2, **FAST)  # type: ignore[arg-type]
    assert train_cross_encoder(examples, out, cfg) == out
    return out, before


@pytest.mark.slow
def test_training_improves_the_ranking_and_records_a_summary(
    trained: tuple[Path, float], make_examples: Examples
) -> None:
    out, before = trained
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out)
    after = margins(AutoTokenizer.from_pretrained(out), model, make_examples())
    assert after > before + 0.15, (before, after)
    summary = read_training_summary(out)
    assert summary["loss"] == "bce" and summary["data"]["examples_used"] == 8
    assert summary["pairs"] == 2 * 8 * 3  # 2 epochs of 8 positives + 16 negatives
    assert summary["steps"] == 6 and len(summary["loss_curve"]) == 3
    assert summary["pairs_per_second"] > 0 and summary["last_loss"] < summary["first_loss"]
    assert len(summary["data"]["sha256"]) == 64
    assert not (out / "stale.txt").exists()  # the folder was replaced as a whole
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


@pytest.mark.slow
def test_saved_folder_reloads_as_a_sentence_transformers_cross_encoder(
    trained: tuple[Path, float], make_examples: Examples
) -> None:
    out, _ = trained
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    pairs = [(e.query, d) for e in make_examples()[:3] for d in (e.positive, *e.negatives)]
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.model_max_length == 48
    with torch.no_grad():
        ours = score_logits(model, tokenizer, [q for q, _ in pairs], [d for _, d in pairs], 48, "cpu")
    ours = ours.tolist()
    theirs = CrossEncoder(str(out), device="cpu").predict(pairs, activation_fn=torch.nn.Identity())
    assert theirs.tolist() == pytest.approx(ours, abs=1e-4)
    assert len(set(round(s, 3) for s in ours)) > 1


@pytest.mark.slow
def test_listwise_loss_trains(tmp_path: Path, make_examples: Examples) -> None:
    cfg = TrainConfig(loss="listwise", negatives_per_example=3, max_steps=1, **FAST)  # type: ignore[arg-type]
    out = train_cross_encoder(make_examples(), tmp_path / "listwise", cfg)
    summary = json.loads((out / SUMMARY).read_text())
    # groups of 1 + 3 pairs, 8 // 4 = 2 groups a batch; one random negative tops up each example
    assert summary["steps"] == 1 and summary["pairs"] == 2 * 4
    assert summary["data"]["random_negatives"] == 8
    assert all(math.isfinite(p["loss"]) for p in summary["loss_curve"])
    assert (out / "model.safetensors").is_file()


def test_bad_settings_and_models_are_reported(tmp_path: Path, make_examples: Examples) -> None:
    with pytest.raises(ConfigError, match="loss"):
        parse_config({"train": {"loss": "pairwise"}})
    with pytest.raises(ConfigError, match="batch_size"):
        parse_config({"train": {"batch_size": 0}})
    with pytest.raises(ConfigError, match="negatives_per_example"):
        parse_config({"train": {"loss": "listwise", "negatives_per_example": 0}})
    with pytest.raises(ConfigError, match="device"):
        parse_config({"train": {"device": "gpu"}})
    with pytest.raises(ModelError, match="not found"):
        train_cross_encoder(make_examples(), tmp_path / "m", TrainConfig(model=str(tmp_path / "no-model")))
    not_a_model = tmp_path / "empty-model"
    not_a_model.mkdir()
    with pytest.raises(ModelError, match="cross-encoder start point"):
        load_start_model(str(not_a_model))
    assert not (tmp_path / "m").exists()
