"""Fine-tune a cross-encoder reranker on (query, positive, negatives) examples.

The model is a ``sentence_transformers.CrossEncoder`` with one logit (the relevance
score), trained by the library's ``CrossEncoderTrainer`` (a transformers ``Trainer``:
AdamW without decay on biases and norms, linear warmup and decay, gradient clipping at 1,
gradient accumulation, bf16 autocast, checkpoints). The default start point is the
packaged all-MiniLM-L6-v2 sentence encoder, which gets a fresh 1-logit head trained at
``head_learning_rate`` (the library's ``learning_rate_mapping``) while the encoder moves
at ``learning_rate``; any local folder or hub id of a BERT-like encoder or an existing
cross-encoder works too. The losses (``bce``, ``listwise``, ``margin-mse``) and the rows
they train on are in :mod:`inpars.training.ce_losses`.

An interrupted run resumes from its last checkpoint (every ``CHECKPOINT_STEPS`` optimizer
steps, kept beside the model until it is saved; see :mod:`inpars.training.ce_trainer`).
The saved folder is written atomically. It is a sentence-transformers CrossEncoder folder
whose root is also a plain transformers model + tokenizer (the tokenizer's
``model_max_length`` is the training ``max_length``), so ``CrossEncoder``, transformers and
:func:`inpars.scoring.load_scorer` all load it; ``training.json`` beside the weights
records the data hash, settings, loss curve and throughput.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from inpars.config import TrainConfig
from inpars.errors import ModelError
from inpars.io import read_json, write_json
from inpars.manifest import config_dict
from inpars.models import resolve_model
from inpars.records import TrainingExample
from inpars.scoring.runtime import resolve_dtype
from inpars.training.ce_losses import Rows, make_loss, rows_per_batch, training_rows
from inpars.training.examples import ExampleSet, load_examples
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

SUMMARY = "training.json"
CHECKPOINT_STEPS = 50  # optimizer steps between the checkpoints an interrupted run resumes from


def transformer_folder(path: str) -> str:
    """The folder holding the transformer of a sentence-transformers model whose first
    module lives in a subfolder (``0_Transformer``); ``path`` itself otherwise."""
    modules = Path(path) / "modules.json"
    if modules.is_file():
        try:
            first = json.loads(modules.read_text(encoding="utf-8"))[0].get("path", "")
        except (ValueError, IndexError, AttributeError):
            first = ""
        if first and (Path(path) / first / "config.json").is_file():
            return str(Path(path) / first)
    return path


def load_start_model(name: str, max_length: int = 256, device: str = "cpu") -> tuple[Any, str, bool]:
    """``(CrossEncoder with a 1-logit head, resolved path, whether that head is fresh)``.

    The head is fresh (randomly initialised, from torch's current seed) when the start
    point has no sequence-classification head or one with another number of labels.
    """
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import AutoConfig

    path = transformer_folder(resolve_model(name))
    try:
        config = AutoConfig.from_pretrained(path)
        classifier = any(a.endswith("ForSequenceClassification") for a in config.architectures or [])
        same_labels = getattr(config, "num_labels", 1) == 1
        model = CrossEncoder(
            path, num_labels=1, max_length=max_length, device=device, local_files_only=Path(path).is_dir(),
            # e.g. a 2-class classifier: a new 1-logit head
            model_kwargs={} if same_labels else {"ignore_mismatched_sizes": True},
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"{name}: cannot load it as a cross-encoder start point ({exc}). Fix: set train.model to "
            "'all-MiniLM-L6-v2', a local folder with a BERT-like model, or a hub id you can download"
        ) from exc
    return model, path, not (classifier and same_labels)


def head_pattern(model: Any) -> str:
    """A regular expression matching (by ``re.search``) the names of the classifier head's
    parameters, the transformers model's parameters outside its base model, in the names
    the trainer gives them (``model.0.model.classifier.weight``)."""
    inner = model.model
    prefix = f"{inner.base_model_prefix}."
    names = [name for name, _ in inner.named_parameters() if not name.startswith(prefix)]
    if not names:
        raise ModelError(f"{type(inner).__name__}: no classifier head parameters found")
    return "|".join(rf"(?:^|\.)model\.{re.escape(name)}$" for name in names)


def train_cross_encoder(
    examples: Iterable[TrainingExample] | Path | str,
    out_dir: Path | str,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    signals: Mapping[str, float] | None = None,
) -> Path:
    """Fine-tune ``cfg.model`` as a cross-encoder on ``examples``; returns ``out_dir``.

    ``seed`` is used when ``cfg.seed`` is unset; ``signals`` (query id -> signal) feed the
    ``logprob`` and ``critic`` weightings (:mod:`inpars.training.weights`). The folder is
    written atomically: an interrupted run leaves any previous model in ``out_dir``
    untouched, and a rerun with the same settings, data (and weights) and seed resumes from
    its last checkpoint.
    """
    from inpars.training.ce_trainer import (
        Progress,
        checkpoint_dir,
        last_checkpoint,
        make_trainer,
    )

    run_seed = cfg.seed if cfg.seed is not None else seed
    seed_everything(run_seed)  # also draws a fresh head
    threads = set_threads(cfg.threads)
    device = pick_device(cfg.device)
    data = load_examples(examples, max_examples=cfg.max_examples, seed=run_seed)
    weights = weights_for(data.examples, cfg, signals, "cross-encoder")
    rows = training_rows(data.examples, cfg, random.Random(run_seed), weights.values if weights else None)
    model, base_path, fresh_head = load_start_model(cfg.model, cfg.max_length, device)
    precision = "bfloat16" if _is_bf16(resolve_dtype(cfg.precision, device)) else "float32"
    head_lr = (cfg.head_learning_rate or cfg.learning_rate) if fresh_head else None
    target = Path(out_dir)
    data_key = data.sha256 + (weights.digest() if weights else "")  # resumed only with the same weights
    checkpoints = checkpoint_dir(target, fingerprint_settings(cfg), data_key, run_seed)
    rates = {head_pattern(model): head_lr} if head_lr and head_lr != cfg.learning_rate else {}
    steps = planned_steps(-(-len(rows) // rows_per_batch(cfg)), cfg.epochs, cfg.grad_accumulation,
                          cfg.max_steps)
    progress = Progress(cfg.log_every, rows.pairs_per_row)
    trainer = make_trainer(model, _arguments(cfg, checkpoints, run_seed, device, precision, rates, steps),
                           rows.columns, make_loss(cfg, model, weighted=weights is not None), progress)
    resume = last_checkpoint(checkpoints)
    if resume is not None:
        progress.resume(resume)
        log.info("cross-encoder: resuming from %s", resume)
    log.info("cross-encoder: %d examples, %d rows of %d pairs per epoch, %d optimizer steps on %s (%s, %d "
             "threads, head lr %s)", len(data.examples), len(rows), rows.pairs_per_row, steps, device,
             precision, threads, head_lr or "as the encoder")
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)

    summary: dict[str, Any] = {
        "kind": "cross-encoder",
        "base_model": cfg.model,
        "base_model_path": base_path,
        "loss": cfg.loss,
        "seed": run_seed,
        "device": device,
        "precision": precision,
        "threads": threads,
        "fresh_head": fresh_head,
        "head_learning_rate": head_lr,
        "resumed_from_step": int(resume.name.rsplit("-", 1)[1]) if resume else None,
        "data": _data_summary(data, rows, weights),
        "config": config_dict(cfg),
        **progress.curve.summary(),
    }
    with atomic_dir(target) as tmp:
        model.save_pretrained(str(tmp))
        write_json(tmp / SUMMARY, summary)
    shutil.rmtree(checkpoint_root(target), ignore_errors=True)
    log.info("cross-encoder saved to %s (%.1f pairs/s, loss %s -> %s)", target,
             summary["pairs_per_second"], summary["first_loss"], summary["last_loss"])
    return target


def _data_summary(data: ExampleSet, rows: Rows, weights: ExampleWeights | None) -> dict[str, Any]:
    return {
        "weights": weights.summary() if weights else None,
        "source": data.source,
        "sha256": data.sha256,
        "examples_read": data.read,
        "examples_used": len(data.examples),
        "units_per_epoch": len(rows),
        "pairs_per_unit": rows.pairs_per_row,
        "random_negatives": rows.random_negatives,
        "drops": dict(data.drops + rows.drops),
    }


def _is_bf16(dtype: Any) -> bool:
    import torch

    return bool(dtype == torch.bfloat16)


def _arguments(cfg: TrainConfig, folder: Path, seed: int, device: str, precision: str,
               learning_rates: dict[str, float], steps: int) -> Any:
    """The trainer's arguments for ``cfg`` (checkpoints in ``folder``; ``steps`` planned)."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    return CrossEncoderTrainingArguments(
        output_dir=str(folder),
        num_train_epochs=cfg.epochs,
        max_steps=steps if cfg.max_steps else -1,  # max_steps stops early, never adds epochs
        per_device_train_batch_size=rows_per_batch(cfg),
        gradient_accumulation_steps=cfg.grad_accumulation,
        learning_rate=cfg.learning_rate,
        learning_rate_mapping=learning_rates,
        warmup_steps=cfg.warmup_ratio,  # a float below 1: a ratio of the steps
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        seed=seed,
        bf16=precision == "bfloat16",  # autocast; on a CPU with bf16 faster than float32 (measured)
        use_cpu=device == "cpu",
        dataloader_pin_memory=device.startswith("cuda"),
        logging_steps=cfg.log_every,
        save_strategy="steps",
        save_steps=CHECKPOINT_STEPS,
        save_total_limit=1,
        report_to="none",
        disable_tqdm=not sys.stderr.isatty(),
    )


def read_training_summary(model_dir: Path | str) -> dict[str, Any]:
    """The ``training.json`` a trainer wrote beside a model."""
    data = read_json(Path(model_dir) / SUMMARY)
    if not isinstance(data, dict):
        raise ModelError(f"{model_dir}/{SUMMARY}: not a training summary. Fix: retrain the model")
    return data
