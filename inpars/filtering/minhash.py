"""Near-duplicate search over short texts: MinHash signatures with banded LSH.

A text is a set of character 3-gram shingles of its normalized form (:mod:`.text`);
two texts are near-duplicates when the Jaccard similarity of their shingle sets reaches a
threshold. MinHash with 32 bands of 4 rows finds candidate pairs (a pair with Jaccard 0.7
is a candidate with probability > 0.9998, one with 0.5 with ~0.87), and every candidate
is checked with the exact Jaccard, so there are no false positives. Hashes are
seeded and process-independent (CRC32, not Python's salted ``hash``), so results are
the same on every run.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from inpars.filtering.text import jaccard, normalize, shingles

BANDS = 32
ROWS = 4
PRIME = np.uint64(4_294_967_311)  # the first prime above 2**32


def _permutations(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**32 - 1, size=count, dtype=np.uint64)
    b = rng.integers(0, 2**32 - 1, size=count, dtype=np.uint64)
    return a, b


def signature(grams: frozenset[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The MinHash signature of a shingle set (one minimum per hash function).

    ``a * x + b`` stays below 2**64 for 32-bit ``x``, ``a`` and ``b``, so uint64 never wraps.
    """
    if not grams:
        return np.full(len(a), np.iinfo(np.uint64).max, dtype=np.uint64)
    x = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in sorted(grams)), dtype=np.uint64, count=len(grams))
    hashed = (np.outer(x, a) + b) % PRIME
    return np.asarray(hashed.min(axis=0), dtype=np.uint64)


@dataclass(frozen=True)
class Match:
    """The closest indexed text to a probe: its key, the Jaccard similarity, and whether
    the normalized texts are equal."""

    key: str
    similarity: float
    exact: bool


@dataclass
class NearDuplicateIndex:
    """Texts indexed by normalized form (exact matches) and MinHash bands (near matches)."""

    seed: int = 0
    _exact: dict[str, str] = field(default_factory=dict)
    _shingles: dict[str, frozenset[str]] = field(default_factory=dict)
    _bands: list[dict[bytes, list[str]]] = field(default_factory=lambda: [{} for _ in range(BANDS)])

    def __post_init__(self) -> None:
        self._a, self._b = _permutations(BANDS * ROWS, self.seed)

    def __len__(self) -> int:
        return len(self._shingles)

    def _band_keys(self, grams: frozenset[str]) -> list[bytes]:
        sig = signature(grams, self._a, self._b)
        return [sig[i * ROWS : (i + 1) * ROWS].tobytes() for i in range(BANDS)]

    def add(self, key: str, text: str) -> None:
        """Index ``text`` under ``key`` (keys must be unique; empty texts are ignored)."""
        if key in self._shingles:
            raise ValueError(f"key {key!r} is already indexed")
        norm = normalize(text)
        if not norm:
            return
        grams = shingles(text)
        self._exact.setdefault(norm, key)
        self._shingles[key] = grams
        for band, band_key in zip(self._bands, self._band_keys(grams), strict=True):
            band.setdefault(band_key, []).append(key)

    def find(self, text: str, threshold: float) -> Match | None:
        """The indexed text most similar to ``text`` with Jaccard >= ``threshold``, if any.

        An equal normalized text is returned first (similarity 1.0, ``exact``); with
        ``threshold`` 1.0 only such matches count.
        """
        norm = normalize(text)
        if not norm:
            return None
        if norm in self._exact:
            return Match(self._exact[norm], 1.0, exact=True)
        if threshold >= 1.0:
            return None
        grams = shingles(text)
        candidates: set[str] = set()
        for band, band_key in zip(self._bands, self._band_keys(grams), strict=True):
            candidates.update(band.get(band_key, ()))
        best: Match | None = None
        for key in sorted(candidates):
            similarity = jaccard(grams, self._shingles[key])
            if similarity >= threshold and (best is None or similarity > best.similarity):
                best = Match(key, similarity, exact=False)
        return best
