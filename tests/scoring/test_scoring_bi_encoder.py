"""The bi-encoder scorer on the packaged all-MiniLM-L6-v2 (slow: a real model)."""

from __future__ import annotations

import numpy as np
import pytest

from inpars.models import resolve_model
from inpars.scoring import load_scorer
from inpars.scoring.bi_encoder import BiEncoderScorer

pytestmark = pytest.mark.slow  # every test scores with the packaged MiniLM

CORAL = "Coral bleaching happens when warm water makes corals expel the algae living in their tissue."
GIL = "The global interpreter lock lets only one thread execute Python bytecode at a time."


@pytest.fixture(scope="module")
def scorer() -> BiEncoderScorer:
    made = load_scorer("bi-encoder", "all-MiniLM-L6-v2", dtype="float32")
    assert isinstance(made, BiEncoderScorer)
    return made


def test_relevant_pairs_score_above_unrelated(scorer: BiEncoderScorer) -> None:
    scores = scorer.score([
        ("what causes coral bleaching", CORAL),
        ("what causes coral bleaching", GIL),
        ("why can python threads not run in parallel", GIL),
        ("why can python threads not run in parallel", CORAL),
    ])
    assert scores[0] > 0.5 > 0.2 > scores[1]
    assert scores[2] > scores[3] + 0.3


def test_cosine_equals_sentence_transformers(scorer: BiEncoderScorer) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    reference.max_seq_length = 256
    q, d = reference.encode(["what causes coral bleaching", CORAL], normalize_embeddings=True)
    assert scorer.score([("what causes coral bleaching", CORAL)])[0] == pytest.approx(float(q @ d), abs=1e-5)


def test_each_text_is_encoded_once_and_cached(scorer: BiEncoderScorer) -> None:
    calls: list[int] = []
    encode = scorer.encoder.encode

    def counting(texts: list[str], **kwargs: object) -> np.ndarray:
        calls.append(len(texts))
        return np.asarray(encode(texts, **kwargs))

    scorer._cache.clear()
    scorer.encoder.encode = counting
    try:
        first = scorer.score([("q one", CORAL), ("q two", CORAL), ("q one", GIL)])
        again = scorer.score([("q two", CORAL)])
    finally:
        del scorer.encoder.encode
    assert calls == [2, 2]  # two distinct queries, two distinct documents; the repeat hit the cache
    assert again[0] == first[1]
    assert scorer.score([]) == []
