"""Length-bucketed batches: pure functions, no torch.

Sorting inputs by token length before batching means each batch is padded only to
the longest input among similar lengths; a token budget lets short inputs form larger
batches. :func:`restore_order` puts the scores back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def length_buckets(lengths: Sequence[int], batch_size: int, max_tokens: int = 0) -> list[list[int]]:
    """Indices of the inputs grouped into batches of similar length, longest first.

    A batch holds at most ``batch_size`` inputs and, when ``max_tokens`` > 0, as many more
    short inputs as fit in ``max_tokens`` padded tokens (rows x longest row), up to
    ``4 * batch_size``. Ties keep input order, so the grouping is deterministic.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    limit = 4 * batch_size if max_tokens > 0 else batch_size
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for index in order:
        if current:
            rows = len(current) + 1
            over_budget = rows > batch_size and (max_tokens <= 0 or rows * width > max_tokens)
            if over_budget or rows > limit:
                batches.append(current)
                current = []
        if not current:
            width = max(1, lengths[index])  # the first (longest) input sets the width
        current.append(index)
    if current:
        batches.append(current)
    return batches


def restore_order(
    batches: Sequence[Sequence[int]], scores: Sequence[Sequence[float]], total: int
) -> list[float]:
    """Scores in input order, from per-batch scores of :func:`length_buckets` batches."""
    out = np.full(total, np.nan, dtype=np.float64)
    for indices, values in zip(batches, scores, strict=True):
        if len(indices) != len(values):
            raise ValueError(f"a batch of {len(indices)} inputs got {len(values)} scores")
        out[list(indices)] = values
    if np.isnan(out).any():
        raise ValueError("some inputs got no score: the batches do not cover every input")
    return [float(v) for v in out]


def pad_rows(rows: Sequence[Sequence[int]], pad_value: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id rows to the longest; returns ``(ids, attention_mask)`` as int64."""
    width = max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), width), pad_value, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask
