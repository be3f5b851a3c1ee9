"""What :mod:`inpars.training.dense` adds to sentence-transformers' trainer.

Imported only when a dense encoder trains (it loads sentence-transformers and torch).
The library lacks three things inpars relies on, so they are written here:

- **pairs and seconds per step** in the trainer's log: the loss curve of ``training.json``
  reports throughput in (query, document) pairs, which the trainer does not count. They go
  into ``state.log_history``, which a checkpoint keeps, so a resumed run's curve and
  throughput cover the whole run, not only the part after the resume.
- **time-based checkpoints**: the trainer saves every N steps, but a step costs from
  milliseconds (GPU) to seconds (CPU); a checkpoint every few minutes bounds the work a
  kill loses whatever the hardware.
- **the progress bar** of the other trainers (:func:`inpars.training.loop.progress_bar`,
  silent when not on a terminal) in place of the trainer's bar, which also prints every
  log line (each step here).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from sentence_transformers import SentenceTransformerTrainer
from transformers import TrainerCallback

from inpars.training.loop import progress_bar

log = logging.getLogger(__name__)


class DenseTrainer(SentenceTransformerTrainer):
    """The sentence-transformers trainer, logging pairs and training seconds each step.

    ``docs_per_query``: documents each row of the dataset pairs its query with (1 + the
    negatives for in-batch losses; 2 for a margin triplet).
    """

    def __init__(self, *args: Any, docs_per_query: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.docs_per_query = docs_per_query
        self._pairs = 0
        self._prior_seconds = 0.0
        self._clock: float | None = None

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if model.training:
            if self._clock is None:  # the first step of this process (a resume starts mid-run)
                self._clock = time.perf_counter()
                self._prior_seconds = _last_seconds(self.state.log_history)
            rows = next((len(v) for v in inputs.values() if isinstance(v, torch.Tensor)), 0)
            self._pairs += rows * self.docs_per_query
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._clock is not None:
            logs = {**logs, "pairs": self._pairs,
                    "seconds": self._prior_seconds + time.perf_counter() - self._clock}
            self._pairs = 0
        super().log(logs, start_time)


def _last_seconds(history: list[dict[str, Any]]) -> float:
    return next((float(h["seconds"]) for h in reversed(history) if "seconds" in h), 0.0)


class TimedCheckpoints(TrainerCallback):
    """Ask for a checkpoint once ``every_s`` seconds passed since the last one (never at
    the last step: the final model is saved by the caller)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._last = time.monotonic()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step < state.max_steps and time.monotonic() - self._last >= self.every_s:
            control.should_save = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last = time.monotonic()


class Progress(TrainerCallback):
    """inpars' progress bar, with the last loss and pairs per second, and a log line every
    ``every`` steps (as :class:`~inpars.training.loop.LossCurve` logs for the other loops)."""

    def __init__(self, desc: str, every: int) -> None:
        self.desc = desc
        self.every = every
        self.bar: Any = None
        self.pairs: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.bar = progress_bar(state.max_steps, self.desc)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if self.bar is None or not logs or "pairs" not in logs:
            return
        if self.pairs is None:  # the first log of this process: count a resumed run's earlier steps
            self.pairs = sum(int(h.get("pairs", 0)) for h in state.log_history)
        else:
            self.pairs += int(logs["pairs"])
        self.bar.update(state.global_step - self.bar.n)
        rate = self.pairs / max(float(logs["seconds"]), 1e-9)
        self.bar.set_postfix(loss=f"{logs['loss']:.4f}", pairs_s=f"{rate:.1f}")
        if state.global_step % self.every == 0:
            log.info("%s: step %d/%d, loss %.4f, %d pairs, %.1f pairs/s", self.desc, state.global_step,
                     state.max_steps, logs["loss"], self.pairs, rate)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()


def curve_summary(history: list[dict[str, Any]], every: int) -> dict[str, Any]:
    """What :meth:`inpars.training.loop.LossCurve.summary` reports (steps, pairs, seconds,
    pairs per second, first and last loss, a point per ``every`` steps), from the per-step
    entries :class:`DenseTrainer` logs."""
    rows = [h for h in history if "loss" in h and "pairs" in h]
    points: list[dict[str, float]] = []
    pairs = 0
    for start in range(0, len(rows), every):
        window = rows[start : start + every]
        pairs += sum(int(r["pairs"]) for r in window)
        points.append({
            "step": int(window[-1]["step"]),
            "loss": round(sum(float(r["loss"]) for r in window) / len(window), 5),
            "pairs": pairs,
            "seconds": round(float(window[-1]["seconds"]), 2),
        })
    seconds = _last_seconds(rows)
    return {
        "steps": int(rows[-1]["step"]) if rows else 0,
        "pairs": pairs,
        "train_seconds": round(seconds, 2),
        "pairs_per_second": round(pairs / seconds, 3) if seconds > 0 else 0.0,
        "first_loss": points[0]["loss"] if points else None,
        "last_loss": points[-1]["loss"] if points else None,
        "loss_curve": points,
    }
