"""Bi-encoder scoring: cosine similarity of sentence embeddings.

The default is the packaged all-MiniLM-L6-v2 (no MS MARCO cross-encoder is packaged);
its cosine separates relevant from unrelated (query, document) pairs well. Each distinct
text is encoded once per call, and recent embeddings are kept, so a document with many
synthetic queries costs one encoding. ``quantize="int8"`` runs the encoder's linear layers
in int8 on the CPU (:mod:`inpars.scoring.quantize`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from inpars.errors import ModelError
from inpars.models import resolve_model
from inpars.scoring.quantize import quantize_int8, resolve_quantize
from inpars.scoring.runtime import resolve_device, resolve_dtype, set_threads

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"


class BiEncoderScorer:
    """Scores (query, document) pairs by the cosine of their sentence-transformers embeddings."""

    kind = "bi-encoder"

    def __init__(
        self,
        model: str = DEFAULT_ENCODER,
        *,
        batch_size: int = 32,
        max_length: int = 256,
        device: str = "auto",
        dtype: str = "auto",
        threads: int = 0,
        cache_size: int = 50_000,
        show_progress: bool = False,
        quantize: str = "none",
    ) -> None:
        if batch_size < 1 or max_length < 8:
            raise ModelError(
                f"batch_size = {batch_size}, max_length = {max_length}. Fix: batch_size >= 1, max_length >= 8"
            )
        from sentence_transformers import SentenceTransformer

        self.name = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.show_progress = show_progress
        self.cache_size = cache_size
        self.quantize = quantize
        device, dtype = resolve_quantize(quantize, device, dtype)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if self.device == "cpu":
            self.threads = set_threads(threads)
        path = resolve_model(model)
        try:
            encoder = SentenceTransformer(path, device=self.device)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{model}: cannot load it as a sentence-transformers encoder ({exc}). "
                "Fix: give a packaged alias (all-MiniLM-L6-v2), a local folder or a reachable hub id"
            ) from exc
        encoder.max_seq_length = max_length
        self.encoder: Any = encoder.to(self.dtype).eval()
        if quantize == "int8":
            self.encoder = quantize_int8(self.encoder)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._given: dict[str, np.ndarray] = {}

    def add_documents(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Use ``vectors`` (unit-length rows, e.g. a dense index's built with this model and
        max length) as the embeddings of ``texts`` instead of encoding them; they are kept
        for the scorer's life, outside the cache's limit."""
        if len(texts) != len(vectors):
            raise ModelError(f"{len(texts)} texts but {len(vectors)} vectors. Fix: give one vector per text")
        for text, vector in zip(texts, np.asarray(vectors, dtype=np.float32), strict=True):
            self._given[text] = vector

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` (one row each): the given ones
        (:meth:`add_documents`), else from the cache where possible."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache and t not in self._given))
        if missing:
            vectors = self.encoder.encode(
                missing,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=self.show_progress and len(missing) > self.batch_size,
            )
            for text, vector in zip(missing, np.asarray(vectors, dtype=np.float32), strict=True):
                self._cache[text] = vector
        rows = []
        for text in texts:
            given = self._given.get(text)
            if given is not None:
                rows.append(given)
                continue
            rows.append(self._cache[text])
            self._cache.move_to_end(text)
        while len(self._cache) > max(self.cache_size, len(texts)):
            self._cache.popitem(last=False)
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(rows)

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Cosine similarity of each (query text, document text) pair, in input order."""
        if not pairs:
            return []
        queries = self.encode([p[0] for p in pairs])
        documents = self.encode([p[1] for p in pairs])
        return [float(v) for v in np.einsum("ij,ij->i", queries, documents)]
