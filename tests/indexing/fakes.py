"""Fakes for the index stage's fast tests: a hashed bag-of-words encoder behind the real
dense index, and a BM25 stand-in that ranks by shared words (no JVM, no model)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpars.records import Query, ScoredPair


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class FakeEncoder:
    """Hashed bags of words, normalized: texts sharing words are close."""

    dim = 64

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts: list[str], **kwargs: Any) -> Any:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _words(text):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


class FakeBm25:
    """Stands in for ensure_bm25_index and Bm25Searcher: ranks by shared words."""

    def __init__(self) -> None:
        self.docs: dict[str, str] = {}
        self.builds = 0

    def ensure(self, collection: Any, folder: Path, **kwargs: Any) -> tuple[Path, bool]:
        self.docs = {d.doc_id: d.contents for d in collection.docs()}
        if folder.is_dir():
            return folder, False
        folder.mkdir(parents=True)
        self.builds += 1
        return folder, True

    def searcher(self, folder: Path, *, k1: float, b: float) -> FakeBm25:
        self.manifest = {"docs": len(self.docs), "fingerprint": "fake", "lucene": None}
        self.num_docs = len(self.docs)
        return self

    def __enter__(self) -> FakeBm25:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def search(self, queries: Sequence[Query], k: int, *, threads: int = 1,
               remove_self_hits: bool = False) -> dict[str, list[ScoredPair]]:
        run = {}
        for q in queries:
            overlap = {d: len(set(_words(q.text)) & set(_words(text))) for d, text in self.docs.items()
                       if not (remove_self_hits and d == q.query_id)}
            ranked = sorted((d for d, n in overlap.items() if n), key=lambda d: (-overlap[d], d))[:k]
            run[q.query_id] = [ScoredPair(q.query_id, d, float(overlap[d])) for d in ranked]
        return run
