"""Fine-tune a sentence encoder (dense retriever) on synthetic queries, InPars/GPL-style,
with sentence-transformers' ``SentenceTransformerTrainer``.

Two losses (``[train] dense_loss``):

- ``mnrl``: ``MultipleNegativesRankingLoss`` over (query, positive, negative_1..n) rows:
  for each query, softmax cross-entropy of its positive against every document of the
  batch (the other queries' positives and everyone's hard negatives). Batches come from
  ``BatchSamplers.NO_DUPLICATES``: no text (query or document) appears twice in a batch, so
  a document is never both a query's positive and an in-batch negative. Examples with fewer
  mined negatives than ``dense_negatives_per_example`` are topped up with random ones.
- ``margin-mse`` (GPL): ``MarginMSELoss`` on (query, positive, negative) rows labelled with
  the teacher's margin ``teacher(positive) - teacher(negative)``
  (:attr:`~inpars.records.TrainingExample.teacher_scores`). A negative without a teacher
  score (a random top-up, or none mined) has no label: its row is dropped and counted.

With ``[train] weighting`` each row is weighted by its example's weight
(:mod:`inpars.training.weights`), carried in the label column: ``mnrl`` rows are labelled with
the weight (each query's in-batch term is weighted), ``margin-mse`` rows with ``[margin,
weight]``; the losses are the weighted twins of the library's
(:mod:`inpars.training.weighted_losses`).

The result is a sentence-transformers folder with ``training.json`` beside the weights;
:mod:`inpars.indexing` re-encodes the corpus with it. Checkpoints go to a hidden sibling
``.<name>.checkpoints/`` every few minutes; a rerun with the same settings and data resumes
from the last one, and they are removed once the model is saved.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import random
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from inpars.config import TrainConfig
from inpars.errors import ConfigError, ModelError
from inpars.io import read_json, write_json
from inpars.manifest import config_dict
from inpars.models import resolve_model
from inpars.records import TrainingExample
from inpars.scoring.runtime import resolve_dtype
from inpars.training.cross_encoder import SUMMARY
from inpars.training.examples import ExampleSet, load_examples, with_negatives
from inpars.training.loop import (
    atomic_dir,
    checkpoint_root,
    pick_device,
    planned_steps,
    seed_everything,
    set_threads,
)
from inpars.training.weights import ExampleWeights, fingerprint_settings, weights_for

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 300.0  # at most this much training is lost to a kill
RUN_KEY = "inpars-run.json"  # in the checkpoint folder: what its checkpoints were trained on
LOSS_NAMES = {"mnrl": "multiple_negatives_ranking", "margin-mse": "margin_mse"}
# load_examples' drops count examples; this one counts (query, positive, negative) rows
UNSCORED = "margin-mse rows: negative without a teacher score"


def load_sentence_encoder(name: str, device: str) -> tuple[Any, str]:
    """A ``SentenceTransformer`` for a model setting, and its resolved path."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model(name)
    try:
        return SentenceTransformer(path, device=device), path
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"{name}: cannot load it as a sentence encoder ({exc}). Fix: set train.dense_model to "
            "'all-MiniLM-L6-v2', a sentence-transformers folder, or a hub id you can download"
        ) from exc


def mnrl_rows(examples: Sequence[TrainingExample], negatives: int, rng: random.Random,
              weights: Sequence[float] | None = None) -> tuple[dict[str, list[Any]], int]:
    """Columns ``query, positive, negative_1..n`` (one row per example; ``label``: its weight,
    when ``weights`` are given) and the number of random negatives that topped up examples
    with fewer mined ones."""
    groups, random_negatives = with_negatives(examples, negatives, rng)
    columns: dict[str, list[Any]] = {"query": [g[0] for g in groups], "positive": [g[1] for g in groups]}
    for k in range(negatives):
        columns[f"negative_{k + 1}"] = [g[2][k] for g in groups]
    if weights is not None:
        columns["label"] = list(weights)
    return columns, random_negatives


def margin_rows(examples: Sequence[TrainingExample], negatives: int,
                weights: Sequence[float] | None = None) -> tuple[dict[str, list[Any]], int, int]:
    """Columns ``query, positive, negative, label`` with ``label = teacher(positive) -
    teacher(negative)`` (``[margin, the example's weight]`` with ``weights``), one row per
    negative with a teacher score among an example's first ``negatives``; the rows that could
    not be made (negatives missing or unscored, as random top-ups are), and the examples left
    without any row.

    One row per negative rather than sentence-transformers' (query, positive, negative_1..n)
    form with a margin per negative: that form needs every example to have ``n`` scored
    negatives, and would drop whole examples where this drops single negatives."""
    if negatives < 1:
        raise ConfigError("dense_loss = 'margin-mse' trains on teacher margins between a positive and "
                          "its negatives. Fix: set [train] dense_negatives_per_example to 1 or more")
    if not any(e.teacher_scores for e in examples):
        raise ConfigError("dense_loss = 'margin-mse' needs teacher scores, and no training example has "
                          "any. Fix: set [negatives] teacher = \"hybrid\" (or \"cross-encoder\") and rerun "
                          "the negatives stage")
    columns: dict[str, list[Any]] = {"query": [], "positive": [], "negative": [], "label": []}
    unscored = unused = 0
    for n, example in enumerate(examples):
        scores = example.teacher_scores
        made = 0
        for i, negative in enumerate(example.negatives[:negatives]):
            if i + 1 >= len(scores) or not math.isfinite(scores[0] - scores[i + 1]):
                continue
            margin = scores[0] - scores[i + 1]
            label: Any = margin if weights is None else [margin, weights[n]]
            for name, value in zip(columns, (example.query, example.positive, negative, label), strict=True):
                columns[name].append(value)
            made += 1
        unscored += negatives - made
        unused += made == 0
    if not columns["query"]:
        raise ConfigError("dense_loss = 'margin-mse': no negative of any example has a teacher score. "
                          "Fix: set [negatives] teacher = \"hybrid\" (or \"cross-encoder\") and rerun the "
                          "negatives stage")
    return columns, unscored, unused


def _loss(model: Any, name: str, weighted: bool = False) -> Any:
    from sentence_transformers.sentence_transformer import losses

    if weighted:
        from inpars.training.weighted_losses import WeightedMarginMSELoss, WeightedMNRLoss

        return WeightedMarginMSELoss(model) if name == "margin-mse" else WeightedMNRLoss(model)
    if name == "margin-mse":
        return losses.MarginMSELoss(model)  # dot product, as GPL
    return losses.MultipleNegativesRankingLoss(model)


def _arguments(cfg: TrainConfig, out: Path, rows: int, device: str, bf16: bool, seed: int) -> Any:
    """The trainer's settings for ``cfg`` (optimizer, schedule and batches as before)."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    # max_steps caps the epochs (it does not extend them, as the trainer's own would)
    epoch_steps = planned_steps(-(-rows // cfg.dense_batch_size), cfg.dense_epochs, cfg.grad_accumulation, 0)
    capped = 0 < cfg.max_steps < epoch_steps
    # in-batch negatives (mnrl) must not meet a copy of one of a row's texts
    sampler = BatchSamplers.NO_DUPLICATES if cfg.dense_loss == "mnrl" else BatchSamplers.BATCH_SAMPLER
    return SentenceTransformerTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=cfg.dense_batch_size,
        gradient_accumulation_steps=cfg.grad_accumulation,
        num_train_epochs=cfg.dense_epochs,
        max_steps=cfg.max_steps if capped else -1,
        learning_rate=cfg.dense_learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the steps
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        batch_sampler=sampler,
        seed=seed,
        data_seed=seed,
        bf16=bf16,
        use_cpu=device == "cpu",
        dataloader_pin_memory=device.startswith("cuda"),
        logging_steps=1,  # every step: DenseTrainer adds pairs and seconds to each log line
        save_strategy="no",  # TimedCheckpoints asks for them
        save_total_limit=1,
        report_to="none",
        disable_tqdm=True,
    )


def _resume_point(folder: Path, key: str) -> str | None:
    """The last complete checkpoint in ``folder`` if it was trained with ``key``; clears a
    folder of another run, and checkpoints a kill left half-written."""
    if folder.is_dir():
        try:
            same = read_json(folder / RUN_KEY).get("key") == key
        except (OSError, ValueError, AttributeError):
            same = False
        if not same:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / RUN_KEY, {"key": key})
    done: list[tuple[int, Path]] = []
    for path in folder.glob("checkpoint-*"):
        if not (path / "trainer_state.json").is_file():  # written last: the save did not finish
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.split("-")[-1].isdigit():
            done.append((int(path.name.split("-")[-1]), path))
    return str(max(done)[1]) if done else None


def _run_key(cfg: TrainConfig, data: ExampleSet, base_path: str, seed: int,
             weights: ExampleWeights | None) -> str:
    data_key = data.sha256 + (weights.digest() if weights else "")
    text = json.dumps([fingerprint_settings(cfg), data_key, base_path, seed], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def train_dense(
    examples: Iterable[TrainingExample] | Path | str,
    out_dir: Path | str,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    callbacks: Sequence[Any] = (),
    signals: Mapping[str, float] | None = None,
) -> Path:
    """Fine-tune ``cfg.dense_model`` with ``cfg.dense_loss``; returns ``out_dir`` (a
    sentence-transformers folder with ``training.json``, written atomically). ``callbacks``:
    extra ``transformers.TrainerCallback`` objects; ``signals`` (query id -> signal) feed the
    ``logprob`` and ``critic`` weightings."""
    import torch

    run_seed = cfg.seed if cfg.seed is not None else seed
    seed_everything(run_seed)
    threads = set_threads(cfg.threads)
    device = pick_device(cfg.device)
    data = load_examples(examples, max_examples=cfg.max_examples, seed=run_seed)
    weights = weights_for(data.examples, cfg, signals, "dense")
    values = weights.values if weights else None
    stats: dict[str, Any] = {"random_negatives": 0, "weights": weights.summary() if weights else None}
    if cfg.dense_loss == "margin-mse":
        columns, unscored, unused = margin_rows(data.examples, cfg.dense_negatives_per_example, values)
        stats["examples_used"] = len(data.examples) - unused
        data.drops.update({"no negative with a teacher score": unused, UNSCORED: unscored})
    else:
        columns, stats["random_negatives"] = mnrl_rows(
            data.examples, cfg.dense_negatives_per_example, random.Random(run_seed), values)
    model, base_path = load_sentence_encoder(cfg.dense_model, device)
    model.max_seq_length = cfg.dense_max_length
    precision = "bfloat16" if resolve_dtype(cfg.precision, device) == torch.bfloat16 else "float32"
    target = Path(out_dir)
    checkpoints = checkpoint_root(target)
    resume = _resume_point(checkpoints, _run_key(cfg, data, base_path, run_seed, weights))
    history = _fit(model, columns, cfg, checkpoints, device, precision == "bfloat16", run_seed, resume,
                   callbacks)
    summary = _summary(cfg, data, stats, history, base_path=base_path, seed=run_seed, device=device,
                       precision=precision, threads=threads, resumed=resume)
    model.eval()
    with atomic_dir(target) as tmp:
        model.save(str(tmp))
        write_json(tmp / SUMMARY, summary)
    shutil.rmtree(checkpoints, ignore_errors=True)
    log.info("dense encoder saved to %s (%.1f pairs/s, loss %s -> %s)", target, summary["pairs_per_second"],
             summary["first_loss"], summary["last_loss"])
    return target


def _fit(model: Any, columns: dict[str, list[Any]], cfg: TrainConfig, checkpoints: Path, device: str,
         bf16: bool, seed: int, resume: str | None, callbacks: Sequence[Any]) -> list[dict[str, Any]]:
    """Train ``model`` in place; returns the trainer's log history (one entry per step)."""
    from transformers import PrinterCallback

    from inpars.training.dense_trainer import DenseTrainer, Progress, TimedCheckpoints

    if device.startswith("cuda:") and device != "cuda:0":
        log.warning("dense: the trainer runs on the first visible GPU, not %s. Fix: set "
                    "CUDA_VISIBLE_DEVICES to pick one", device)
    # `datasets` ships no type information; imported by name to keep mypy off it
    dataset = importlib.import_module("datasets").Dataset.from_dict(columns)
    args = _arguments(cfg, checkpoints, len(dataset), device, bf16, seed)
    documents = 2 if cfg.dense_loss == "margin-mse" else 1 + cfg.dense_negatives_per_example
    ours = [TimedCheckpoints(CHECKPOINT_SECONDS), Progress("train dense encoder", cfg.log_every)]
    loss = _loss(model, cfg.dense_loss, weighted=cfg.weighting != "none")
    trainer = DenseTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                           callbacks=[*ours, *callbacks], docs_per_query=documents)
    trainer.remove_callback(PrinterCallback)  # prints every log line (each step) when tqdm is off
    log.info("dense: %d rows, %s loss, on %s (%s)%s", len(dataset), cfg.dense_loss, device,
             "bfloat16" if bf16 else "float32", f", resuming from {resume}" if resume else "")
    trainer.train(resume_from_checkpoint=resume)
    return list(trainer.state.log_history)


def _summary(cfg: TrainConfig, data: ExampleSet, stats: dict[str, Any], history: list[dict[str, Any]], *,
             base_path: str, seed: int, device: str, precision: str, threads: int,
             resumed: str | None) -> dict[str, Any]:
    from inpars.training.dense_trainer import curve_summary

    return {
        "kind": "dense",
        "base_model": cfg.dense_model,
        "base_model_path": base_path,
        "loss": LOSS_NAMES[cfg.dense_loss],
        "seed": seed,
        "device": device,
        "precision": precision,
        "threads": threads,
        "resumed_from": Path(resumed).name if resumed else None,
        "data": {
            "source": data.source,
            "sha256": data.sha256,
            "examples_read": data.read,
            "examples_used": stats.pop("examples_used", len(data.examples)),
            **stats,
            "drops": {k: v for k, v in data.drops.items() if v},
        },
        "config": config_dict(cfg),
        **curve_summary(history, cfg.log_every),
    }
