"""The ``train`` stage: fine-tune the cross-encoder (and the dense encoder when asked)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inpars.config import TrainConfig
from inpars.errors import ConfigError, StageError
from inpars.io import atomic_open
from inpars.manifest import StageContext
from inpars.training.cross_encoder import SUMMARY, read_training_summary, train_cross_encoder
from inpars.training.dense import train_dense
from inpars.training.loop import checkpoint_root
from inpars.training.weights import (
    QUERY_SIGNALS,
    fingerprint_settings,
    query_signals,
    without_unused_weighting,
)

log = logging.getLogger(__name__)

CROSS_ENCODER_DIR = "cross-encoder"
DENSE_DIR = "dense"
BOTH_EXAMPLES = "both-examples.jsonl"


def model_dir_name(kind_dir: str, labels: str) -> str:
    """The folder of a model trained on ``labels``: ``cross-encoder``, ``dense`` for the
    synthetic data (the run's main models), ``cross-encoder-real``, ``dense-both``... else."""
    return kind_dir if labels == "synthetic" else f"{kind_dir}-{labels}"


def _finished(model_dir: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The summary of a model an interrupted run of this stage already finished; the
    checkpoints a kill left between saving that model and removing them are removed."""
    if not (model_dir / SUMMARY).is_file():
        return None
    summary = read_training_summary(model_dir)
    done = without_unused_weighting(summary.get("config") or {})
    if done != fingerprint_settings(cfg):
        return None
    shutil.rmtree(checkpoint_root(model_dir), ignore_errors=True)
    return summary


def _examples_for(labels: str, examples: Mapping[str, Path], out_dir: Path) -> Path:
    """The examples file of a label set; "both" is the synthetic and real files together,
    written once into the stage folder."""
    if labels != "both":
        if labels not in examples:
            raise StageError(f"[train] asks for {labels!r} labels but the negatives stage wrote no such "
                             "examples. Fix: rerun it with `inpars negatives CONFIG --force`")
        path = examples[labels]
    else:
        path = out_dir / BOTH_EXAMPLES
        if not path.is_file():
            parts = [_examples_for(label, examples, out_dir) for label in ("synthetic", "real")]
            with atomic_open(path) as handle:
                for part in parts:
                    handle.write(part.read_text(encoding="utf-8"))
    if not path.is_file():
        raise StageError(f"{path}: training examples not found. Fix: run `inpars negatives` first")
    return path


def weighting_signals(cfg: TrainConfig, kept: Path | None) -> dict[str, float] | None:
    """Query id -> the ``[train] weighting`` signal of each kept synthetic query (``None``:
    the weighting reads none)."""
    if cfg.weighting not in QUERY_SIGNALS:
        return None
    if kept is None or not kept.is_file():
        raise StageError(f"[train] weighting = {cfg.weighting!r} reads the filter stage's kept.jsonl, but "
                         f"none was given ({kept}). Fix: rerun `inpars filter`, or set [train] weighting")
    signals = query_signals(kept, cfg.weighting)
    if not signals:
        what = "mean_logprob" if cfg.weighting == "logprob" else "critic score"
        raise ConfigError(f"[train] weighting = {cfg.weighting!r}, but no kept synthetic query in {kept} has "
                          f"a {what}. Fix: use a backend that returns log-probs (logprob), add 'critic' to "
                          "[filter] steps (critic), or set [train] weighting = 'none'")
    log.info("train: %s weighting, signals for %d kept synthetic queries; examples without one (real "
             "labels) are weighted 1", cfg.weighting, len(signals))
    return signals


def train_stage(ctx: StageContext, cfg: TrainConfig, examples: Mapping[str, Path],
                kept: Path | None = None) -> None:
    """Train the cross-encoder on each of ``cfg.labels`` (and the dense encoder on each of
    ``cfg.dense_labels`` when ``cfg.dense``) into ``ctx.out_dir/<model_dir_name>/``; record
    counts, drops, throughput and loss curves in the manifest. ``examples`` maps "synthetic"
    (and "real" when asked for) to the negatives stage's example files; ``kept`` is the filter
    stage's ``kept.jsonl``, read for the ``logprob`` and ``critic`` weightings.

    A model folder already complete from an interrupted run of the same stage (same
    settings; :func:`~inpars.manifest.run_stage` checks the inputs) is kept, not retrained.
    """
    jobs = [(CROSS_ENCODER_DIR, label) for label in cfg.labels]
    if cfg.dense:
        jobs.extend((DENSE_DIR, label) for label in cfg.dense_labels)
    signals = weighting_signals(cfg, kept)
    for kind_dir, labels in jobs:
        name = model_dir_name(kind_dir, labels)
        model_dir = ctx.out_dir / name
        summary = _finished(model_dir, cfg)
        if summary is None:  # else an interrupted run of the stage finished it: kept, not timed
            with ctx.timed(name):
                summary = train_model(kind_dir, _examples_for(labels, examples, ctx.out_dir), model_dir,
                                      cfg, seed=ctx.seed, signals=signals)
        ctx.output(name, model_dir)
        _record(ctx, name, summary)


def train_model(kind_dir: str, examples: Path, model_dir: Path, cfg: TrainConfig, *, seed: int,
                signals: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Train one model (``kind_dir``: :data:`CROSS_ENCODER_DIR` or :data:`DENSE_DIR`) on
    ``examples`` into ``model_dir`` and return its training summary; a model folder already
    complete from an interrupted run with the same settings is kept, not retrained."""
    summary = _finished(model_dir, cfg)
    if summary is not None:
        log.info("train: %s already trained, keeping it", model_dir)
        return summary
    train = train_cross_encoder if kind_dir == CROSS_ENCODER_DIR else train_dense
    train(examples, model_dir, cfg, seed=seed, signals=signals)
    return read_training_summary(model_dir)


def _record(ctx: StageContext, name: str, summary: dict[str, Any]) -> None:
    key = name.replace("-", "_")
    data = summary["data"]
    ctx.counts[f"{key}_examples_read"] = data["examples_read"]
    ctx.counts[f"{key}_examples_used"] = data["examples_used"]
    ctx.counts[f"{key}_random_negatives"] = data["random_negatives"]
    ctx.counts[f"{key}_pairs"] = summary["pairs"]
    ctx.counts[f"{key}_steps"] = summary["steps"]
    for reason, count in data["drops"].items():
        ctx.drops[f"{name}: {reason}"] = count
    if data.get("weights"):
        ctx.counts[f"{key}_weights_defaulted"] = data["weights"]["defaulted"]
    ctx.extra[key] = {k: v for k, v in summary.items() if k != "config"}
