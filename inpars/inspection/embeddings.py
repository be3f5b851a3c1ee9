"""Optional: how alike the queries are in meaning, as the mean pairwise cosine similarity
of their embeddings under the packaged MiniLM encoder, on a seeded sample.

Skipped with a note (never an error) when the encoder or its packages are missing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inpars.errors import InparsError

log = logging.getLogger(__name__)

MODEL = "all-MiniLM-L6-v2"
SAMPLE = 500

Encode = Callable[[list[str]], Any]
"""Texts -> an (n, d) array of L2-normalized embeddings."""


def seeded_sample(texts: Sequence[str], size: int, seed: int) -> list[str]:
    """At most ``size`` of ``texts``, drawn with ``seed`` (all of them, in order, when fewer)."""
    if len(texts) <= size:
        return list(texts)
    return random.Random(seed).sample(list(texts), size)


def mean_pairwise_cosine(vectors: Any) -> float:
    """Mean cosine similarity over distinct pairs of L2-normalized rows (at least two)."""
    import numpy as np

    v = np.asarray(vectors, dtype=np.float64)
    n = len(v)
    sims = v @ v.T
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def minilm_encoder() -> Encode:
    """The packaged MiniLM as an :data:`Encode` (a :class:`~inpars.errors.InparsError` or an
    ``ImportError`` when it cannot be loaded)."""
    from inpars.indexing.encoder import encode, load_encoder

    encoder = load_encoder(MODEL, max_length=64)
    return lambda texts: encode(encoder, texts, batch_size=64, queries=True)


def embedding_similarity(
    groups: Mapping[str, Sequence[str]], *, seed: int, size: int = SAMPLE, encoder: Encode | None = None
) -> dict[str, Any]:
    """``{"model", "sample_size", <group>: {"queries", "mean_pairwise_cosine"}}`` for each
    group of texts with two or more, or ``{"skipped": why}`` when the encoder is missing."""
    try:
        encode = encoder or minilm_encoder()
    except (ImportError, InparsError) as exc:
        log.warning("embedding similarity skipped: %s", exc)
        return {"skipped": f"the encoder {MODEL} could not be loaded ({exc})"}
    out: dict[str, Any] = {"model": MODEL if encoder is None else "given", "sample_size": size, "seed": seed}
    for name, texts in groups.items():
        sample = seeded_sample(texts, size, seed)
        if len(sample) < 2:
            out[name] = {"queries": len(sample), "mean_pairwise_cosine": None}
            continue
        log.info("embedding %d %s queries", len(sample), name)
        similarity = round(mean_pairwise_cosine(encode(sample)), 4)
        out[name] = {"queries": len(sample), "mean_pairwise_cosine": similarity}
    return out
