"""Sampling settings, per-(document, sample) seeds, and a seeded token sampler.

Every query is drawn with its own seed, derived from (run seed, doc id, sample number),
so the random draws of a document never depend on the order documents are processed in,
on the batch it is decoded in, on the thread count, nor on whether the run was interrupted
and resumed. (The logits themselves can differ in the last digits with the batch a
document is decoded in and with the thread count, which is why batches are fixed groups
of documents, see :mod:`inpars.generation.shards`, and why the thread count is fixed for
a run and reused on resume, see :mod:`inpars.generation.backends.threads`.)

Log-probabilities are always those of the model itself (softmax of the raw logits, at
temperature 1), whatever temperature / top-k / top-p shaped the choice. Both are cheap on
a large vocabulary (Gemma's 262,144 tokens): the normalizer of every row of a step is one
vectorised pass (:func:`choose_tokens`), and the top-k candidates come from the tokens
within a margin of the row's best logit instead of a partition of the whole row; the
top-k set is exact (ties at its edge go to the smaller token id).
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
    max_sentences: int = 0  # cut after this many sentences once another starts (0: no cut)

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
        if not self.max_sentences:  # only when set, so that runs from before the setting still resume
            data.pop("max_sentences")
        return data


def derive_seed(seed: int, doc_id: str, sample: int) -> int:
    """A 31-bit seed for sample ``sample`` of document ``doc_id`` in a run seeded ``seed``."""
    digest = hashlib.sha256(f"{seed}\x00{doc_id}\x00{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


CANDIDATE_MARGIN = 4.0  # first look for the top-k among the logits within this of the best (then 8, 16...)


class TokenSampler:
    """Chooses the next token of one sequence from its logits, reproducibly."""

    def __init__(self, settings: SamplingSettings, seed: int) -> None:
        import numpy

        self.settings = settings
        self._rng = numpy.random.default_rng(seed)

    def choose(self, logits: np.ndarray, log_norm: float, peak: float | None = None) -> tuple[int, float]:
        """(token, model log-prob) for a row of logits whose log-sum-exp is ``log_norm``
        (``peak``: the row's largest logit, when already known)."""
        import numpy as np

        s = self.settings
        if s.greedy:
            token = int(np.argmax(logits))
            return token, float(logits[token] - log_norm)
        u = float(self._rng.random())
        top = top_k_tokens(logits, s.top_k, float(logits.max()) if peak is None else peak)
        values = logits[top].astype(np.float64)
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


def top_k_tokens(logits: np.ndarray, k: int, peak: float) -> np.ndarray:
    """The ``k`` tokens of largest logit (``k`` 0: every token), best first, ties by token
    id. Looks among the tokens within a margin of ``peak`` (the row's maximum), widened
    until at least ``k`` are there, so that a short list is sorted instead of the row."""
    import numpy as np

    size = logits.shape[0]
    if not 0 < k < size:
        candidates = np.arange(size)
    else:
        margin = CANDIDATE_MARGIN
        while True:
            candidates = np.flatnonzero(logits >= peak - margin)
            if len(candidates) >= k or margin > 1e30:
                break
            margin *= 2
    values = logits[candidates]
    if 0 < k < len(candidates):  # keep the k largest and every tie of the k-th
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= kth
        candidates, values = candidates[keep], values[keep]
    order = np.lexsort((candidates, -values.astype(np.float64)))  # by logit, descending; ties by id
    return candidates[order[:k] if 0 < k < size else order]


class LogitRows:
    """Scratch space for :func:`choose_tokens` (one row per sequence, reused every step)."""

    def __init__(self) -> None:
        import numpy as np

        self.buffer = np.empty((0, 0), dtype=np.float32)

    def normalizers(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log-sum-exp, maximum) of each row."""
        import numpy as np

        rows, width = logits.shape
        if self.buffer.shape[0] < rows or self.buffer.shape[1] != width:
            self.buffer = np.empty((max(rows, 2 * self.buffer.shape[0]), width), dtype=np.float32)
        scratch = self.buffer[:rows]
        peak = logits.max(axis=1, keepdims=True)
        np.subtract(logits, peak, out=scratch)
        np.exp(scratch, out=scratch)
        norms = (peak[:, 0] + np.log(scratch.sum(axis=1))).astype(np.float64)
        return norms, peak[:, 0]


def choose_tokens(
    samplers: list[TokenSampler], logits: np.ndarray, rows: LogitRows | None = None
) -> list[tuple[int, float]]:
    """(token, model log-prob) for each row of ``logits`` (a 2-D float32 array, read in
    place), chosen by the sampler of that row."""
    if not samplers:
        return []
    norms, peaks = (rows or LogitRows()).normalizers(logits)
    return [s.choose(logits[i], float(norms[i]), float(peaks[i])) for i, s in enumerate(samplers)]


def log_normalizers(logits: np.ndarray) -> np.ndarray:
    """log-sum-exp of each row of a 2-D float array."""
    return LogitRows().normalizers(logits)[0]
