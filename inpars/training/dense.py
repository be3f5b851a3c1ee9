"""Fine-tune a sentence encoder (dense retriever) on synthetic queries, GPL/InPars-style.

Each batch holds ``dense_batch_size`` examples with distinct positive documents; the loss
is sentence-transformers' MultipleNegativesRankingLoss: for each query, softmax
cross-entropy of its positive against every other document of the batch (the other
queries' positives and everyone's hard negatives). Each example contributes
``dense_negatives_per_example`` hard negatives (topped up with random negatives when
mined ones run out). The result is a sentence-transformers folder;
:mod:`inpars.indexing` re-encodes the corpus with it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inpars.config import TrainConfig
from inpars.errors import ModelError
from inpars.io import write_json
from inpars.manifest import config_dict
from inpars.models import resolve_model
from inpars.records import TrainingExample
from inpars.training.cross_encoder import SUMMARY
from inpars.training.examples import distinct_batches, load_examples, with_negatives
from inpars.training.loop import (
    LossCurve,
    accumulation_weights,
    atomic_dir,
    autocast,
    make_optimizer,
    pick_device,
    planned_steps,
    progress_bar,
    seed_everything,
    set_threads,
)

log = logging.getLogger(__name__)


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


def _ranking_loss(model: Any) -> Any:
    import importlib

    try:  # sentence-transformers >= 6
        losses = importlib.import_module("sentence_transformers.sentence_transformer.losses")
    except ImportError:  # older releases
        losses = importlib.import_module("sentence_transformers.losses")
    return losses.MultipleNegativesRankingLoss(model)


def _features(model: Any, texts: list[str], device: str) -> dict[str, Any]:
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    features = tokenize(texts)
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}


def train_dense(
    examples: Iterable[TrainingExample] | Path | str,
    out_dir: Path | str,
    cfg: TrainConfig,
    *,
    seed: int = 0,
) -> Path:
    """Fine-tune ``cfg.dense_model`` with in-batch and hard negatives; returns ``out_dir``
    (a sentence-transformers folder with ``training.json``, written atomically)."""
    import torch

    run_seed = cfg.seed if cfg.seed is not None else seed
    rng = random.Random(run_seed)
    seed_everything(run_seed)
    threads = set_threads(cfg.threads)
    device = pick_device(cfg.device)
    data = load_examples(examples, max_examples=cfg.max_examples, seed=run_seed)
    model, base_path = load_sentence_encoder(cfg.dense_model, device)
    model.max_seq_length = cfg.dense_max_length
    loss_fn = _ranking_loss(model)
    model.train()

    groups, random_negatives = with_negatives(data.examples, cfg.dense_negatives_per_example, rng)
    items = [(example.doc_id, group) for example, group in zip(data.examples, groups, strict=True)]
    batches_per_epoch = -(-len(items) // cfg.dense_batch_size)
    total_steps = planned_steps(batches_per_epoch, cfg.dense_epochs, cfg.grad_accumulation, cfg.max_steps)
    optimizer, scheduler = make_optimizer(model, cfg.dense_learning_rate, cfg.weight_decay,
                                          cfg.warmup_ratio, total_steps)
    mixed, precision = autocast(cfg.precision, device)
    log.info("dense: %d examples, %d optimizer steps on %s (%s, %d threads)", len(items), total_steps,
             device, precision, threads)

    curve = LossCurve(cfg.log_every)
    bar = progress_bar(total_steps, "train dense encoder")
    step = 0
    for _epoch in range(cfg.dense_epochs):
        if step >= total_steps:
            break
        order = list(items)
        rng.shuffle(order)
        batches = distinct_batches(order, cfg.dense_batch_size, key=lambda item: item[0])
        weights = accumulation_weights([len(b) for b in batches], cfg.grad_accumulation)
        window_loss, window_texts, window_batches = 0.0, 0, 0
        for index, batch in enumerate(batches):
            columns = [[g[0] for _, g in batch], [g[1] for _, g in batch]]
            columns += [[g[2][k] for _, g in batch] for k in range(cfg.dense_negatives_per_example)]
            features = [_features(model, column, device) for column in columns]
            with mixed:
                loss = loss_fn(features, None)
            (loss * weights[index]).backward()  # the window's gradient: that of its mean loss
            window_loss += float(loss.detach()) * weights[index]
            window_texts += len(batch) * (len(columns) - 1)
            window_batches += 1
            if window_batches == cfg.grad_accumulation or index == len(batches) - 1:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                curve.step(window_loss, window_texts)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{window_loss:.4f}", pairs_s=f"{curve.rate:.1f}")
                window_loss, window_texts, window_batches = 0.0, 0, 0
                if step >= total_steps:
                    break
    bar.close()

    summary: dict[str, Any] = {
        "kind": "dense",
        "base_model": cfg.dense_model,
        "base_model_path": base_path,
        "loss": "multiple_negatives_ranking",
        "seed": run_seed,
        "device": device,
        "precision": precision,
        "threads": threads,
        "data": {
            "source": data.source,
            "sha256": data.sha256,
            "examples_read": data.read,
            "examples_used": len(data.examples),
            "random_negatives": random_negatives,
            "drops": dict(data.drops),
        },
        "config": config_dict(cfg),
        **curve.summary(),
    }
    target = Path(out_dir)
    model.eval()
    with atomic_dir(target) as tmp:
        model.save(str(tmp))
        write_json(tmp / SUMMARY, summary)
    log.info("dense encoder saved to %s (loss %s -> %s)", target, summary["first_loss"], summary["last_loss"])
    return target
