"""What inpars adds to sentence-transformers' ``CrossEncoderTrainer``; imported only to train.

The library trains, checkpoints and resumes; it does not count the (query, document) pairs
it trains on, so neither throughput nor the pairs of inpars' loss curve come out of its
logs. :class:`Progress` keeps inpars' :class:`~inpars.training.loop.LossCurve` (fed by
:class:`Trainer`, which sees each micro-batch) and saves it into every checkpoint, so a
resumed run's summary covers the whole run. Checkpoints live in a hidden folder beside the
model (``.<name>.checkpoints/<key>/``, ``key`` from the settings, data and seed) that
survives a kill and is removed once the model is saved.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from sentence_transformers.cross_encoder import CrossEncoderTrainer
from transformers import PrinterCallback, TrainerCallback

from inpars.io import read_json, write_json
from inpars.training.ce_losses import QUERY
from inpars.training.loop import CURVE, LossCurve, checkpoint_root
from inpars.training.weights import WEIGHT

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class Progress(TrainerCallback):
    """Turns micro-batch losses into :class:`LossCurve` steps; saves the curve with each checkpoint."""

    def __init__(self, every: int, pairs_per_row: int) -> None:
        self.curve = LossCurve(every)
        self.pairs_per_row = pairs_per_row
        self._loss = 0.0
        self._rows = 0

    def batch(self, loss: float, rows: int) -> None:
        """One micro-batch of ``rows`` rows and its mean loss."""
        self._loss += loss * rows
        self._rows += rows

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._rows:  # the step's loss: the mean over its rows, as one batch holding them all
            self.curve.step(self._loss / self._rows, self._rows * self.pairs_per_row)
        self._loss, self._rows = 0.0, 0

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            write_json(folder / CURVE, self.curve.state())

    def resume(self, checkpoint: Path) -> None:
        """Continue the curve saved in ``checkpoint``."""
        self.curve = LossCurve.resume(read_json(checkpoint / CURVE))


class Trainer(CrossEncoderTrainer):
    """``CrossEncoderTrainer`` that reports each training micro-batch to :class:`Progress`, and
    hands a weighted loss the batch's ``weight`` column (:mod:`inpars.training.weighted_losses`)."""

    def __init__(self, progress: Progress, **kwargs: Any) -> None:
        super().__init__(callbacks=[progress], **kwargs)
        self.progress = progress

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        rows = len(inputs[QUERY])
        if WEIGHT in inputs:  # not a text column: the loss takes it, the library never sees it
            weighted: Any = self.loss
            weighted.set_weights(inputs.pop(WEIGHT))
        out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if model.training:
            loss: Any = out[0] if return_outputs else out
            self.progress.batch(float(loss.detach()), rows)
        return out


def make_trainer(
    model: Any, args: Any, columns: dict[str, list[Any]], loss: Any, progress: Progress
) -> Trainer:
    """The trainer of ``model`` on a dataset of ``columns``."""
    # `datasets` ships no type information; imported by name to keep mypy off it
    dataset = importlib.import_module("datasets").Dataset.from_dict(columns)
    trainer = Trainer(progress, model=model, args=args, train_dataset=dataset, loss=loss)
    if args.disable_tqdm:  # not a terminal: inpars' loss curve logs progress, not a printed dict per log
        trainer.remove_callback(PrinterCallback)
    return trainer


def checkpoint_dir(target: Path, config: dict[str, Any], data_sha256: str, seed: int) -> Path:
    """The checkpoint folder of this run (settings, data and seed); checkpoints of other
    runs of ``target`` are removed (they cannot be resumed by this one)."""
    key = hashlib.sha256(json.dumps([config, data_sha256, seed], sort_keys=True).encode()).hexdigest()[:16]
    root = checkpoint_root(target)
    if root.is_dir():
        for old in root.iterdir():
            if old.name != key:
                shutil.rmtree(old, ignore_errors=True)
    return root / key


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (one whose curve was saved after it)."""
    found = [(int(m.group(1)), p) for p in folder.glob("checkpoint-*")
             if (m := CHECKPOINT.match(p.name)) and (p / CURVE).is_file()]
    return max(found)[1] if found else None
