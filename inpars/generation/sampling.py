"""Sampling settings, per-(document, sample) seeds, and a seeded token sampler.

Every query is drawn with its own seed, derived from (run seed, doc id, sample number),
so the random draws of a document never depend on the order documents are processed in,
on the batch it is decoded in, on the thread count, nor on whether the run was interrupted
and resumed. (The logits themselves can differ in the last digits with the batch a
document is decoded in and with the thread count, which is why batches are fixed groups
of documents, see :mod:`inpars.generation.shards`, and why the thread count is fixed for
a run and reused on resume, see :mod:`inpars.generation.backends.threads`.)

Log-probabilities are always those of the model itself (softmax of the raw logits, at
temperature 1), whatever temperature / top-k / top-p shaped the choice.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class SamplingSettings:
    """How tokens are chosen (``temperature`` 0: greedy)."""

    max_new_tokens: int = 48
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    greedy_first: bool = True
    stop: tuple[str, ...] = ("\n",)

    def for_sample(self, sample: int) -> SamplingSettings:
        """The settings of sample ``sample`` (sample 0 is greedy with ``greedy_first``)."""
        if sample == 0 and self.greedy_first and self.temperature > 0:
            return replace(self, temperature=0.0)
        return self

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


def derive_seed(seed: int, doc_id: str, sample: int) -> int:
    """A 31-bit seed for sample ``sample`` of document ``doc_id`` in a run seeded ``seed``."""
    digest = hashlib.sha256(f"{seed}\x00{doc_id}\x00{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class TokenSampler:
    """Chooses the next token of one sequence from its logits, reproducibly."""

    def __init__(self, settings: SamplingSettings, seed: int) -> None:
        import numpy

        self.settings = settings
        self._rng = numpy.random.default_rng(seed)

    def choose(self, logits: np.ndarray, log_norm: float) -> tuple[int, float]:
        """(token, model log-prob) for a row of logits whose log-sum-exp is ``log_norm``."""
        import numpy as np

        s = self.settings
        if s.greedy:
            token = int(np.argmax(logits))
            return token, float(logits[token] - log_norm)
        u = float(self._rng.random())
        k = s.top_k if 0 < s.top_k < logits.shape[0] else logits.shape[0]
        top = np.argpartition(logits, -k)[-k:] if k < logits.shape[0] else np.arange(logits.shape[0])
        values = logits[top].astype(np.float64)
        order = np.lexsort((top, -values))  # by logit, descending; ties by token id
        top, values = top[order], values[order]
        probs = np.exp((values - values[0]) / s.temperature)
        probs /= probs.sum()
        if s.top_p < 1.0:
            cum = np.cumsum(probs)
            keep = int(np.searchsorted(cum, s.top_p) + 1)
            probs = probs[:keep] / probs[:keep].sum()
            top = top[:keep]
        index = min(int(np.searchsorted(np.cumsum(probs), u, side="right")), len(top) - 1)
        token = int(top[index])
        return token, float(logits[token] - log_norm)


def log_normalizers(logits: np.ndarray) -> np.ndarray:
    """log-sum-exp of each row of a 2-D float array."""
    import numpy as np

    peak = logits.max(axis=1, keepdims=True)
    return (peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))).astype(np.float64)
