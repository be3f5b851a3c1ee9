"""Per-example loss weights from a confidence signal (SunGen-style data weighting).

``[train] weighting`` names the signal of each training example:

- ``logprob``: the ``mean_logprob`` of its synthetic query (the generator's confidence),
  read from the filter stage's ``kept.jsonl`` by query id;
- ``teacher_margin``: ``teacher(positive) - max(teacher(negative))`` over the example's
  scored mined negatives, clipped at 0 (from :attr:`TrainingExample.teacher_scores`);
- ``critic``: the filter critic's P(real) of its query (``settings["filter_scores"]["critic"]``
  on the kept records, present when ``[filter] steps`` holds ``critic``).

The formula, over the examples that have a finite signal ``s_i`` (``f`` = ``weight_floor``)::

    r_i = f + (1 - f) * (s_i - min s) / (max s - min s)     (r_i = 1 when max s == min s)
    w_i = r_i / mean_j(r_j)

so the signalled examples' weights have mean 1 and span a ratio of at most ``1 / f``. An
example without the signal (a real-label example has no log-prob; a negative the teacher did
not score) gets ``w_i = 1`` exactly, so the mean over the whole training set is 1 too. The
losses use them as ``mean_i(w_i * loss_i)`` in place of ``mean_i(loss_i)``
(:mod:`inpars.training.weighted_losses`): with mean-1 weights this is an unbiased estimate of
the training set's weighted mean ``sum(w * loss) / sum(w)``, and with all weights 1 it is the
plain mean.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpars.errors import ConfigError
from inpars.filtering.chain import SCORES_KEY
from inpars.io import read_records
from inpars.manifest import config_dict
from inpars.records import SyntheticQuery, TrainingExample

log = logging.getLogger(__name__)

WEIGHT = "weight"  # the dataset column of the cross-encoder rows that carries the weights
# the signals read from the kept synthetic queries (teacher_margin is on the examples)
QUERY_SIGNALS = ("logprob", "critic")
WEIGHT_KEYS = ("weighting", "weight_floor")  # the [train] keys of this module


@dataclass(frozen=True)
class ExampleWeights:
    """One weight per training example (in order), and where they came from."""

    values: tuple[float, ...]
    weighting: str
    floor: float
    defaulted: int  # examples without the signal, weighted 1

    def summary(self) -> dict[str, Any]:
        """What ``training.json`` and the manifest record: min/mean/max and the defaulted count."""
        n = len(self.values)
        return {
            "weighting": self.weighting,
            "weight_floor": self.floor,
            "examples": n,
            "defaulted": self.defaulted,
            "min": round(min(self.values), 6) if n else None,
            "mean": round(sum(self.values) / n, 6) if n else None,
            "max": round(max(self.values), 6) if n else None,
        }

    def digest(self) -> str:
        """A hash of the weights (part of the key a training checkpoint is resumed by)."""
        return hashlib.sha256(repr(self.values).encode()).hexdigest()[:16]

    def log(self, what: str) -> None:
        """One log line: the spread, and how many examples had no signal (weighted 1)."""
        info = self.summary()
        log.info("%s: %s weighting, weights %s / %s / %s (min / mean / max), %d of %d examples without "
                 "the signal weighted 1", what, self.weighting, info["min"], info["mean"], info["max"],
                 self.defaulted, info["examples"])


def normalise(signals: Sequence[float | None], floor: float) -> list[float]:
    """The weights of examples with these signals (``None``: no signal, weight 1); see the
    module docstring for the formula."""
    present = [s for s in signals if s is not None and math.isfinite(s)]
    if not present:
        return [1.0] * len(signals)
    lo, hi = min(present), max(present)
    raw = [floor + (1 - floor) * (s - lo) / (hi - lo) if hi > lo else 1.0 for s in present]
    scale = len(raw) / sum(raw)
    scaled = iter(r * scale for r in raw)
    return [next(scaled) if s is not None and math.isfinite(s) else 1.0 for s in signals]


def teacher_margin(example: TrainingExample) -> float | None:
    """``teacher(positive) - max(teacher(negative))`` clipped at 0, over the mined negatives the
    teacher scored; ``None`` when it scored none."""
    scores = example.teacher_scores
    if len(scores) != 1 + len(example.negatives) or len(scores) < 2:
        return None
    negatives = [s for s in scores[1:] if math.isfinite(s)]
    if not negatives or not math.isfinite(scores[0]):
        return None
    return max(0.0, scores[0] - max(negatives))


def example_weights(
    examples: Sequence[TrainingExample],
    weighting: str,
    floor: float,
    signals: Mapping[str, float] | None = None,
) -> ExampleWeights | None:
    """The weights of ``examples`` under ``weighting`` (``None`` for ``"none"``). ``signals``:
    query id -> the query's signal, for the ``logprob`` and ``critic`` weightings."""
    if weighting == "none":
        return None
    if weighting == "teacher_margin":
        found = [teacher_margin(e) for e in examples]
    elif weighting in QUERY_SIGNALS:
        table = signals or {}
        found = [table.get(e.query_id) for e in examples]
    else:
        raise ConfigError(f"[train] weighting = {weighting!r} is not known. "
                          "Fix: use 'none', 'logprob', 'teacher_margin' or 'critic'")
    defaulted = sum(1 for s in found if s is None or not math.isfinite(s))
    return ExampleWeights(tuple(normalise(found, floor)), weighting, floor, defaulted)


def weights_for(examples: Sequence[TrainingExample], cfg: Any, signals: Mapping[str, float] | None,
                what: str) -> ExampleWeights | None:
    """The weights of ``cfg`` (a ``TrainConfig``) for ``examples``, logged for model ``what``."""
    weights = example_weights(examples, cfg.weighting, cfg.weight_floor, signals)
    if weights is not None:
        weights.log(what)
    return weights


def query_signals(kept: Path, weighting: str) -> dict[str, float]:
    """Query id -> the ``logprob`` or ``critic`` signal of each kept synthetic query that has it."""
    out: dict[str, float] = {}
    for query in read_records(kept, SyntheticQuery):
        value: Any = query.mean_logprob if weighting == "logprob" else \
            query.settings.get(SCORES_KEY, {}).get("critic")
        if isinstance(value, int | float) and math.isfinite(value):
            out[query.query_id] = float(value)
    return out


def fingerprint_settings(cfg: Any) -> dict[str, Any]:
    """A ``[train]`` section (``TrainConfig``) as the train stage is fingerprinted with it:
    less :data:`WEIGHT_KEYS` while ``weighting = "none"`` (the fingerprints of runs finished
    before the keys existed stay valid)."""
    return without_unused_weighting(config_dict(cfg))


def without_unused_weighting(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` (a ``[train]`` section as JSON data) less :data:`WEIGHT_KEYS` when it does
    not weight (also one written before the keys existed)."""
    if settings.get("weighting", "none") != "none":
        return dict(settings)
    return {k: v for k, v in settings.items() if k not in WEIGHT_KEYS}


def check_weighting(weighting: str, filter_steps: Sequence[str], teacher: str, where: str = "") -> None:
    """Fail fast on a weighting whose signal the run will not produce."""
    prefix = f"{where}: " if where else ""
    if weighting == "critic" and "critic" not in filter_steps:
        raise ConfigError(f"{prefix}[train] weighting = 'critic' weights examples by the filter critic's "
                          "score, but [filter] steps has no 'critic'. Fix: add 'critic' to [filter] steps, "
                          "or choose another weighting")
    if weighting == "teacher_margin" and teacher == "none":
        raise ConfigError(f"{prefix}[train] weighting = 'teacher_margin' needs teacher scores on the "
                          "examples. Fix: set [negatives] teacher = 'hybrid' or 'cross-encoder'")
