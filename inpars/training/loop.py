"""What every trainer shares: device and threads (those of :mod:`inpars.scoring.runtime`),
seeding, AdamW with linear warmup, the loss curve, and the atomic save of a model folder."""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.scoring.runtime import resolve_device as pick_device
from inpars.scoring.runtime import resolve_dtype, set_threads, usable_cores

__all__ = [
    "LossCurve", "accumulation_weights", "atomic_dir", "autocast", "make_optimizer", "pick_device",
    "planned_steps", "progress_bar", "seed_everything", "set_threads", "usable_cores",
]

log = logging.getLogger(__name__)


def autocast(precision: str, device: str) -> tuple[AbstractContextManager[Any], str]:
    """Mixed precision for a training step: bfloat16 autocast (weights stay float32) when
    ``precision`` asks for it or is ``auto`` on a chip with bf16 (CUDA, AMX / AVX-512 BF16
    CPUs), else nothing. Returns the context and the precision's name."""
    import torch

    if resolve_dtype(precision, device) == torch.bfloat16:
        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16), "bfloat16"
    return nullcontext(), "float32"


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's random generators."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: Any, learning_rate: float, weight_decay: float, warmup_ratio: float,
                   total_steps: int) -> tuple[Any, Any]:
    """AdamW (no decay on biases and LayerNorm weights) and a linear warmup-then-decay schedule."""
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate,
    )
    warmup = math.ceil(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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


def progress_bar(total: int, desc: str, unit: str = "step") -> Any:
    """A tqdm bar (shown on a terminal, silent otherwise)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None, dynamic_ncols=True)


def accumulation_weights(sizes: Sequence[int], grad_accumulation: int) -> list[float]:
    """What each micro-batch's mean loss is multiplied by before ``backward()``.

    Optimizer steps take windows of ``grad_accumulation`` consecutive micro-batches (the
    last window of an epoch may hold fewer). A micro-batch of ``n`` units (pairs, groups or
    queries, what its loss averages over) in a window of ``N`` units gets ``n / N``, so the
    accumulated gradient is that of the mean loss over the window's units: the same as one
    batch holding them all, also for a short last window or a short last micro-batch
    (dividing by ``grad_accumulation`` under-weighted those).
    """
    if grad_accumulation < 1:
        raise ValueError(f"grad_accumulation = {grad_accumulation}: must be at least 1")
    weights: list[float] = []
    for start in range(0, len(sizes), grad_accumulation):
        window = sizes[start : start + grad_accumulation]
        total = sum(window)
        weights.extend(n / total if total else 0.0 for n in window)
    return weights


def planned_steps(batches_per_epoch: int, epochs: int, grad_accumulation: int, max_steps: int) -> int:
    """Optimizer steps a run will take."""
    total = math.ceil(batches_per_epoch / grad_accumulation) * epochs
    return min(total, max_steps) if max_steps else total

