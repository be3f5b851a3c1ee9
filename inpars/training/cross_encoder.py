"""Fine-tune a cross-encoder reranker on (query, positive, negatives) examples.

The model is a transformers sequence classifier with one logit (the relevance score).
The default start point is the packaged all-MiniLM-L6-v2 sentence encoder, which gets
a fresh 1-logit head; any local folder or hub id of a BERT-like encoder or an existing
cross-encoder works too. Two losses:

- ``bce``: pointwise binary cross-entropy; the positive is labelled 1, each negative 0;
  pairs are shuffled across queries and batched ``batch_size`` at a time.
- ``listwise``: softmax cross-entropy over each query's group ``[positive, negatives...]``
  (the localized contrastive / multiple-negatives loss); a batch holds
  ``batch_size // (1 + negatives_per_example)`` whole groups (at least one).

The saved folder is a plain transformers model + tokenizer (the tokenizer's
``model_max_length`` is the training ``max_length``), which transformers and
``sentence_transformers.CrossEncoder`` both load; ``training.json`` beside the weights
records the data hash, settings, loss curve and throughput.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from inpars.config import TrainConfig
from inpars.errors import ModelError
from inpars.io import chunked, read_json, write_json
from inpars.manifest import config_dict
from inpars.models import resolve_model
from inpars.records import TrainingExample
from inpars.training.examples import load_examples, with_negatives
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

SUMMARY = "training.json"


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


def load_start_model(name: str) -> tuple[Any, Any, str]:
    """``(tokenizer, model with a 1-logit head, resolved path)`` for a model setting."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = transformer_folder(resolve_model(name))
    try:
        config = AutoConfig.from_pretrained(path)
        kwargs: dict[str, Any] = {"num_labels": 1}
        if getattr(config, "num_labels", 1) != 1:
            kwargs["ignore_mismatched_sizes"] = True  # e.g. a 2-class classifier: new head
        model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"{name}: cannot load it as a cross-encoder start point ({exc}). Fix: set train.model to "
            "'all-MiniLM-L6-v2', a local folder with a BERT-like model, or a hub id you can download"
        ) from exc
    return tokenizer, model, path


def score_logits(model: Any, tokenizer: Any, queries: Sequence[str], docs: Sequence[str],
                 max_length: int, device: str) -> Any:
    """Raw relevance logits (a 1-D tensor) of a batch of pairs, padded to its longest pair."""
    encoded = tokenizer(list(queries), list(docs), padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt").to(device)
    return model(**encoded).logits.squeeze(-1)


def train_cross_encoder(
    examples: Iterable[TrainingExample] | Path | str,
    out_dir: Path | str,
    cfg: TrainConfig,
    *,
    seed: int = 0,
) -> Path:
    """Fine-tune ``cfg.model`` as a cross-encoder on ``examples``; returns ``out_dir``.

    ``seed`` is used when ``cfg.seed`` is unset. The folder is written atomically: an
    interrupted run leaves any previous model in ``out_dir`` untouched.
    """
    import torch

    run_seed = cfg.seed if cfg.seed is not None else seed
    rng = random.Random(run_seed)
    seed_everything(run_seed)
    threads = set_threads(cfg.threads)
    device = pick_device(cfg.device)
    data = load_examples(examples, max_examples=cfg.max_examples, seed=run_seed)
    tokenizer, model, base_path = load_start_model(cfg.model)
    model.to(device)
    model.train()

    groups, random_negatives = with_negatives(data.examples, cfg.negatives_per_example, rng)
    units: list[Any]
    if cfg.loss == "bce":
        units = [(q, pos, 1.0) for q, pos, _ in groups] + [
            (q, neg, 0.0) for q, _, negs in groups for neg in negs
        ]
        per_batch = cfg.batch_size
    else:
        units = groups
        per_batch = max(1, cfg.batch_size // (1 + cfg.negatives_per_example))
    batches_per_epoch = -(-len(units) // per_batch)
    total_steps = planned_steps(batches_per_epoch, cfg.epochs, cfg.grad_accumulation, cfg.max_steps)
    optimizer, scheduler = make_optimizer(model, cfg.learning_rate, cfg.weight_decay, cfg.warmup_ratio,
                                          total_steps)
    mixed, precision = autocast(cfg.precision, device)
    log.info("cross-encoder: %d examples, %d %s per epoch, %d optimizer steps on %s (%s, %d threads)",
             len(data.examples), len(units), "pairs" if cfg.loss == "bce" else "groups", total_steps,
             device, precision, threads)

    curve = LossCurve(cfg.log_every)
    bar = progress_bar(total_steps, "train cross-encoder")
    step = 0
    for _epoch in range(cfg.epochs):
        if step >= total_steps:
            break
        order = list(units)
        rng.shuffle(order)
        batches = list(chunked(order, per_batch))
        weights = accumulation_weights([len(b) for b in batches], cfg.grad_accumulation)
        window_loss, window_pairs, window_batches = 0.0, 0, 0
        for index, batch in enumerate(batches):
            with mixed:
                loss, pairs = _batch_loss(model, tokenizer, batch, cfg, device)
            (loss * weights[index]).backward()  # the window's gradient: that of its mean loss
            window_loss += float(loss.detach()) * weights[index]
            window_pairs += pairs
            window_batches += 1
            if window_batches == cfg.grad_accumulation or index == len(batches) - 1:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                curve.step(window_loss, window_pairs)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{window_loss:.4f}", pairs_s=f"{curve.rate:.1f}")
                window_loss, window_pairs, window_batches = 0.0, 0, 0
                if step >= total_steps:
                    break
    bar.close()

    summary: dict[str, Any] = {
        "kind": "cross-encoder",
        "base_model": cfg.model,
        "base_model_path": base_path,
        "loss": cfg.loss,
        "seed": run_seed,
        "device": device,
        "precision": precision,
        "threads": threads,
        "data": {
            "source": data.source,
            "sha256": data.sha256,
            "examples_read": data.read,
            "examples_used": len(data.examples),
            "units_per_epoch": len(units),
            "random_negatives": random_negatives,
            "drops": dict(data.drops),
        },
        "config": config_dict(cfg),
        **curve.summary(),
    }
    target = Path(out_dir)
    model.eval()
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.model_max_length = cfg.max_length
        tokenizer.save_pretrained(tmp)
        write_json(tmp / SUMMARY, summary)
    log.info("cross-encoder saved to %s (%.1f pairs/s, loss %s -> %s)", target,
             summary["pairs_per_second"], summary["first_loss"], summary["last_loss"])
    return target


def _batch_loss(
    model: Any, tokenizer: Any, batch: list[Any], cfg: TrainConfig, device: str
) -> tuple[Any, int]:
    """The loss of one batch and the number of (query, document) pairs it scored."""
    import torch

    if cfg.loss == "bce":
        logits = score_logits(model, tokenizer, [q for q, _, _ in batch], [d for _, d, _ in batch],
                              cfg.max_length, device).float()
        labels = torch.tensor([label for _, _, label in batch], dtype=logits.dtype, device=logits.device)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels), len(batch)
    size = 1 + cfg.negatives_per_example
    queries = [q for q, _, _ in batch for _ in range(size)]
    docs = [d for _, pos, negs in batch for d in (pos, *negs)]
    logits = score_logits(model, tokenizer, queries, docs, cfg.max_length, device).view(len(batch), size)
    target = torch.zeros(len(batch), dtype=torch.long, device=logits.device)
    return torch.nn.functional.cross_entropy(logits.float(), target), len(docs)


def read_training_summary(model_dir: Path | str) -> dict[str, Any]:
    """The ``training.json`` a trainer wrote beside a model."""
    data = read_json(Path(model_dir) / SUMMARY)
    if not isinstance(data, dict):
        raise ModelError(f"{model_dir}/{SUMMARY}: not a training summary. Fix: retrain the model")
    return data
