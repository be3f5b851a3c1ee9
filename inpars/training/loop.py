"""What every trainer shares: device and threads (those of :mod:`inpars.scoring.runtime`),
seeding, planned steps, the loss curve, and the atomic save of a model folder (the
sentence-transformers trainers do the optimisation)."""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.scoring.runtime import resolve_device as pick_device
from inpars.scoring.runtime import set_threads, usable_cores

__all__ = [
    "CURVE", "LossCurve", "atomic_dir", "pick_device", "planned_steps", "progress_bar", "seed_everything",
    "set_threads", "usable_cores",
]

log = logging.getLogger(__name__)

CURVE = "inpars_loss_curve.json"  # in a checkpoint: the curve so far; marks the checkpoint complete


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's random generators."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class LossCurve:
    """Mean loss over each ``every`` optimizer steps, with throughput."""

    every: int
    points: list[dict[str, float]] = field(default_factory=list)
    pairs: int = 0
    steps: int = 0
    seconds: float = 0.0
    _window: list[float] = field(default_factory=list)
    _start: float = field(default_factory=time.perf_counter)

    def step(self, loss: float, pairs: int) -> None:
        """Record one optimizer step's mean loss over ``pairs`` (query, document) pairs."""
        self.steps += 1
        self.pairs += pairs
        self._window.append(loss)
        if len(self._window) >= self.every:
            self._flush()

    def _flush(self) -> None:
        if not self._window:
            return
        self.seconds = time.perf_counter() - self._start
        self.points.append({
            "step": self.steps,
            "loss": round(sum(self._window) / len(self._window), 5),
            "pairs": self.pairs,
            "seconds": round(self.seconds, 2),
        })
        self._window = []
        point = self.points[-1]
        log.info("step %d: loss %.4f, %d pairs, %.1f pairs/s", point["step"], point["loss"], point["pairs"],
                 self.pairs / max(self.seconds, 1e-9))

    def state(self) -> dict[str, Any]:
        """JSON-ready state for :meth:`resume` (saved with a training checkpoint)."""
        return {"every": self.every, "points": self.points, "pairs": self.pairs, "steps": self.steps,
                "seconds": time.perf_counter() - self._start, "window": self._window}

    @classmethod
    def resume(cls, state: dict[str, Any]) -> LossCurve:
        """The curve ``state`` saved, continued: its clock counts the time already spent."""
        return cls(int(state["every"]), points=list(state["points"]), pairs=int(state["pairs"]),
                   steps=int(state["steps"]), _window=[float(x) for x in state["window"]],
                   _start=time.perf_counter() - float(state["seconds"]))

    @property
    def rate(self) -> float:
        """Pairs per second so far."""
        return self.pairs / max(time.perf_counter() - self._start, 1e-9)

    def summary(self) -> dict[str, Any]:
        """The curve and totals, JSON-ready."""
        self._flush()
        self.seconds = time.perf_counter() - self._start
        return {
            "steps": self.steps,
            "pairs": self.pairs,
            "train_seconds": round(self.seconds, 2),
            "pairs_per_second": round(self.pairs / self.seconds, 3) if self.seconds > 0 else 0.0,
            "first_loss": self.points[0]["loss"] if self.points else None,
            "last_loss": self.points[-1]["loss"] if self.points else None,
            "loss_curve": self.points,
        }


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success it replaces
    ``target`` (an older folder there is removed); on failure it is deleted."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def checkpoint_root(target: Path) -> Path:
    """The hidden folder beside the model folder ``target`` that holds its training checkpoints."""
    return target.with_name(f".{target.name}.checkpoints")


def progress_bar(total: int, desc: str, unit: str = "step") -> Any:
    """A tqdm bar (shown on a terminal, silent otherwise)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None, dynamic_ncols=True)


def planned_steps(batches_per_epoch: int, epochs: int, grad_accumulation: int, max_steps: int) -> int:
    """Optimizer steps a run will take."""
    total = math.ceil(batches_per_epoch / grad_accumulation) * epochs
    return min(total, max_steps) if max_steps else total

