from __future__ import annotations

import random

import numpy as np
import pytest

from inpars.scoring.batching import length_buckets, pad_rows, restore_order


def test_buckets_cover_every_input_once_longest_first() -> None:
    lengths = [5, 50, 7, 50, 1, 30, 30, 2, 9]
    batches = length_buckets(lengths, batch_size=2)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert all(len(b) <= 2 for b in batches)
    assert batches[0] == [1, 3]  # ties keep input order


def test_token_budget_packs_short_inputs_into_bigger_batches() -> None:
    lengths = [100] * 4 + [10] * 40
    batches = length_buckets(lengths, batch_size=4, max_tokens=400)
    assert batches[0] == [0, 1, 2, 3]
    assert max(len(b) for b in batches) == 16  # capped at 4 x batch_size
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 400 or len(batch) <= 4


def test_restore_order_inverts_the_bucketing() -> None:
    rng = random.Random(3)
    lengths = [rng.randint(1, 300) for _ in range(101)]
    batches = length_buckets(lengths, batch_size=8, max_tokens=8 * 300)
    per_batch = [[float(lengths[i]) for i in b] for b in batches]
    assert restore_order(batches, per_batch, len(lengths)) == [float(v) for v in lengths]


def test_restore_order_refuses_gaps_and_size_mismatches() -> None:
    with pytest.raises(ValueError, match="no score"):
        restore_order([[0]], [[1.0]], 2)
    with pytest.raises(ValueError, match="got 1 scores"):
        restore_order([[0, 1]], [[1.0]], 2)


def test_pad_rows() -> None:
    ids, mask = pad_rows([[1, 2, 3], [4]], pad_value=9)
    assert ids.tolist() == [[1, 2, 3], [4, 9, 9]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == np.int64
