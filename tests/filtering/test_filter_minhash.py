from __future__ import annotations

import random

from inpars.filtering.minhash import NearDuplicateIndex
from inpars.filtering.text import jaccard, shingles


def test_exact_and_near_matches() -> None:
    index = NearDuplicateIndex(seed=1)
    index.add("a", "What causes coral bleaching?")
    index.add("b", "role of p53 in apoptosis")
    exact = index.find("what causes CORAL bleaching", 0.9)
    assert exact is not None and exact.key == "a" and exact.exact
    near = index.find("what causes coral bleachings", 0.8)
    assert near is not None and near.key == "a" and not near.exact and 0.8 <= near.similarity < 1.0
    assert index.find("what causes coral bleachings", 1.0) is None  # exact only
    assert index.find("how do python threads share the interpreter", 0.5) is None
    assert index.find("   ", 0.5) is None


def test_lsh_finds_every_pair_above_the_threshold_in_a_random_set() -> None:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(60)]
    texts = [" ".join(rng.choice(vocab) for _ in range(8)) for _ in range(300)]
    texts += [t + "s" for t in texts[:50]]  # 50 near copies (one more letter)
    index = NearDuplicateIndex(seed=2)
    for i, text in enumerate(texts[:300]):
        index.add(str(i), text)
    for j, text in enumerate(texts[300:]):
        match = index.find(text, 0.7)
        assert match is not None
        assert jaccard(shingles(text), shingles(texts[int(match.key)])) >= 0.7
        assert match.similarity >= jaccard(shingles(text), shingles(texts[j]))  # the best one is returned
