"""The train stage under run_stage: outputs, counts, manifest extras, skip and reuse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from inpars.config import TrainConfig
from inpars.errors import StageError
from inpars.io import write_records
from inpars.manifest import StageContext, run_stage
from inpars.records import TrainingExample
from inpars.training import CROSS_ENCODER_DIR, DENSE_DIR, train_stage
from inpars.training.loop import checkpoint_root


@pytest.mark.parametrize("start", ["tiny-bert", pytest.param("minilm", marks=pytest.mark.slow)])
def test_train_stage_trains_both_models_and_records_them(
    start: str, tmp_path: Path, make_examples: Callable[..., list[TrainingExample]],
    request: pytest.FixtureRequest,
) -> None:
    """From the packaged MiniLM (slow), or fast from a tiny random BERT (the stage's wiring)."""
    examples = tmp_path / "examples.jsonl"
    write_records(examples, make_examples())
    models: dict[str, str] = {}
    if start == "tiny-bert":
        tiny = str(request.getfixturevalue("tiny_bert"))
        models = {"model": tiny, "dense_model": tiny}
    cfg = TrainConfig(batch_size=8, max_length=32, max_steps=1, dense=True, dense_batch_size=4,
                      dense_max_length=32, **models)
    out = tmp_path / "train"

    def body(ctx: StageContext) -> None:
        train_stage(ctx, cfg, {"synthetic": examples})

    result = run_stage("train", out, cfg, {"examples": examples}, body, seed=5)
    manifest = result.manifest
    assert set(manifest["outputs"]) == {CROSS_ENCODER_DIR, DENSE_DIR}
    assert (out / CROSS_ENCODER_DIR / "model.safetensors").is_file()
    assert (out / DENSE_DIR / "modules.json").is_file()
    assert manifest["counts"]["cross_encoder_examples_used"] == 8
    assert manifest["counts"]["cross_encoder_steps"] == manifest["counts"]["dense_steps"] == 1
    assert manifest["counts"]["cross_encoder_random_negatives"] == 8  # 2 mined + 1 random each
    extra = manifest["extra"]["cross_encoder"]
    assert extra["seed"] == 5 and extra["pairs_per_second"] > 0 and extra["loss_curve"]
    assert {"cross-encoder", "dense"} <= set(manifest["timings"])
    assert run_stage("train", out, cfg, {"examples": examples}, body, seed=5).skipped

    # a resumed run keeps the models an interrupted one finished with the same settings, and
    # removes the checkpoints a kill left between saving a model and removing them
    leftovers = [checkpoint_root(out / name) / "0123456789abcdef" / "checkpoint-3"
                 for name in (CROSS_ENCODER_DIR, DENSE_DIR)]
    for folder in leftovers:
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"left by a kill")
    ctx = StageContext(name="train", out_dir=out, seed=5, config=cfg)
    before = (out / CROSS_ENCODER_DIR / "model.safetensors").stat().st_mtime_ns
    train_stage(ctx, cfg, {"synthetic": examples})
    assert not ctx.timings and set(ctx.outputs) == {CROSS_ENCODER_DIR, DENSE_DIR}
    assert ctx.counts == manifest["counts"]
    assert (out / CROSS_ENCODER_DIR / "model.safetensors").stat().st_mtime_ns == before
    assert not any(folder.parent.parent.exists() for folder in leftovers)


def test_missing_examples_say_which_stage_to_run(tmp_path: Path) -> None:
    ctx = StageContext(name="train", out_dir=tmp_path, seed=0, config=None)
    with pytest.raises(StageError, match="inpars negatives"):
        train_stage(ctx, TrainConfig(), {"synthetic": tmp_path / "missing.jsonl"})
    with pytest.raises(StageError, match="inpars negatives"):
        train_stage(ctx, TrainConfig(labels=["real"]), {"synthetic": tmp_path / "missing.jsonl"})


def test_worth_labels_train_one_model_per_label_set(
    tmp_path: Path, make_examples: Callable[..., list[TrainingExample]], tiny_bert: Path,
) -> None:
    """``labels`` / ``dense_labels``: a model per label set, "both" on the two files together."""
    synthetic, real = tmp_path / "examples.jsonl", tmp_path / "real-examples.jsonl"
    write_records(synthetic, make_examples())
    write_records(real, make_examples()[:3])
    cfg = TrainConfig(batch_size=8, max_length=32, max_steps=1, dense=True, dense_batch_size=4,
                      dense_max_length=32, model=str(tiny_bert), dense_model=str(tiny_bert),
                      labels=["synthetic", "both"], dense_labels=["real"])
    ctx = StageContext(name="train", out_dir=tmp_path / "train", seed=1, config=cfg)
    train_stage(ctx, cfg, {"synthetic": synthetic, "real": real})
    assert set(ctx.outputs) == {CROSS_ENCODER_DIR, f"{CROSS_ENCODER_DIR}-both", f"{DENSE_DIR}-real"}
    both = (tmp_path / "train" / "both-examples.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(both) == len(make_examples()) + 3
    assert ctx.counts["cross_encoder_both_examples_read"] == len(both)
    assert ctx.counts["dense_real_examples_read"] == 3


def test_the_encoder_alone_distils_a_teacher(
    tmp_path: Path, make_examples: Callable[..., list[TrainingExample]], tiny_bert: Path,
) -> None:
    """GPL's set-up: ``labels = []`` with ``dense = true`` and ``dense_loss = "margin-mse"``
    trains the encoder alone on the teacher's margins, and no cross-encoder."""
    import dataclasses

    examples = tmp_path / "examples.jsonl"
    write_records(examples, [dataclasses.replace(e, teacher_scores=(0.9, 0.2, 0.1)) for e in make_examples()])
    cfg = TrainConfig(labels=[], dense=True, dense_loss="margin-mse", max_steps=1, dense_batch_size=4,
                      dense_max_length=32, model=str(tiny_bert), dense_model=str(tiny_bert))
    ctx = StageContext(name="train", out_dir=tmp_path / "train", seed=1, config=cfg)
    train_stage(ctx, cfg, {"synthetic": examples})
    assert set(ctx.outputs) == {DENSE_DIR}
    assert not (tmp_path / "train" / CROSS_ENCODER_DIR).exists()
    assert ctx.counts["dense_steps"] == 1 and "cross_encoder_steps" not in ctx.counts
