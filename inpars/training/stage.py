"""The ``train`` stage: fine-tune the cross-encoder (and the dense encoder when asked)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from inpars.config import TrainConfig
from inpars.errors import StageError
from inpars.manifest import StageContext, config_dict
from inpars.training.cross_encoder import SUMMARY, read_training_summary, train_cross_encoder
from inpars.training.dense import train_dense

log = logging.getLogger(__name__)

CROSS_ENCODER_DIR = "cross-encoder"
DENSE_DIR = "dense"


def _finished(model_dir: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The summary of a model an interrupted run of this stage already finished."""
    if not (model_dir / SUMMARY).is_file():
        return None
    summary = read_training_summary(model_dir)
    return summary if summary.get("config") == config_dict(cfg) else None


def train_stage(ctx: StageContext, cfg: TrainConfig, examples_path: Path) -> None:
    """Train into ``ctx.out_dir/cross-encoder/`` (and ``ctx.out_dir/dense/`` when
    ``cfg.dense``); record counts, drops, throughput and loss curves in the manifest.

    A model folder already complete from an interrupted run of the same stage (same
    settings; :func:`~inpars.manifest.run_stage` checks the inputs) is kept, not retrained.
    """
    if not Path(examples_path).is_file():
        raise StageError(
            f"{examples_path}: training examples not found. Fix: run `inpars negatives` first"
        )
    jobs = [(CROSS_ENCODER_DIR, train_cross_encoder)]
    if cfg.dense:
        jobs.append((DENSE_DIR, train_dense))
    for name, train in jobs:
        model_dir = ctx.out_dir / name
        summary = _finished(model_dir, cfg)
        if summary is None:
            with ctx.timed(name):
                train(examples_path, model_dir, cfg, seed=ctx.seed)
            summary = read_training_summary(model_dir)
        else:
            log.info("train: %s already trained in %s, keeping it", name, model_dir)
        ctx.output(name, model_dir)
        key = name.replace("-", "_")
        data = summary["data"]
        ctx.counts[f"{key}_examples_read"] = data["examples_read"]
        ctx.counts[f"{key}_examples_used"] = data["examples_used"]
        ctx.counts[f"{key}_random_negatives"] = data["random_negatives"]
        ctx.counts[f"{key}_pairs"] = summary["pairs"]
        ctx.counts[f"{key}_steps"] = summary["steps"]
        for reason, count in data["drops"].items():
            ctx.drops[f"{name}: {reason}"] = count
        ctx.extra[key] = {k: v for k, v in summary.items() if k != "config"}
