"""Sentence encoders for dense retrieval: loading (cached per process), naming, encoding.

A model setting is a packaged alias (``all-MiniLM-L6-v2``), a local sentence-transformers
folder (e.g. one fine-tuned by ``inpars train``) or a hub id; see :mod:`inpars.models`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from inpars.errors import ModelError
from inpars.fingerprint import path_sha256
from inpars.indexing.store import slug
from inpars.models import PACKAGED, resolve_model


def model_slug(model: str) -> str:
    """The folder name of a model's dense index: the alias or hub id, or for a local
    folder its name plus a short hash of its absolute path (two ``model/`` folders of
    different runs do not collide)."""
    if model in PACKAGED:
        return slug(model.split("/")[-1])
    path = Path(model).expanduser()
    if path.exists():
        resolved = str(path.resolve())
        return f"{slug(path.resolve().name)}-{hashlib.sha1(resolved.encode()).hexdigest()[:8]}"
    return slug(model.replace("/", "--"))


def model_identity(model: str) -> dict[str, Any]:
    """The model as given, what it resolves to, and for local weights a content hash."""
    resolved = resolve_model(model)
    local = Path(resolved).exists()
    return {"name": model, "resolved": resolved, "sha256": path_sha256(resolved) if local else None}


_ENCODERS: dict[tuple[str, int, str, int], Any] = {}


def _stamp(resolved: str) -> int:
    """Latest modification time of a local model's files (a retrained folder is reloaded)."""
    path = Path(resolved)
    if path.is_file():
        return path.stat().st_mtime_ns
    if path.is_dir():
        return max((p.stat().st_mtime_ns for p in path.iterdir() if p.is_file()), default=0)
    return 0


def load_encoder(model: str, *, max_length: int, device: str = "") -> Any:
    """A sentence-transformers model (packaged alias, local folder or hub id); loaded once
    per process for the same model, max length and device."""
    resolved = resolve_model(model)
    key = (resolved, max_length, device, _stamp(resolved))
    if key in _ENCODERS:
        return _ENCODERS[key]
    try:
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(resolved, device=device or None)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"{model}: cannot load it as a sentence-transformers encoder ({exc}). Fix: give a packaged alias "
            "(all-MiniLM-L6-v2), a local sentence-transformers folder, or a hub id when online"
        ) from exc
    encoder.max_seq_length = max_length
    _ENCODERS[key] = encoder
    return encoder


def encode(encoder: Any, texts: list[str], *, batch_size: int, queries: bool) -> Any:
    """Normalized float32 embeddings (query/document prompts of the model applied)."""
    import numpy as np

    method = getattr(encoder, "encode_query" if queries else "encode_document", None) or encoder.encode
    vectors = method(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)
