"""Dense retrieval: a sentence-transformers encoder and an exact FAISS inner-product index.

:func:`build_dense_index` encodes every document (title and text) into a normalized
embedding, streamed chunk by chunk into ``embeddings.npy`` on disk (memory stays flat),
then builds a FAISS ``IndexFlatIP`` (cosine). ``index/<collection>/dense/<model>/`` holds
``embeddings.npy`` (float32 rows in ``doc_ids.json`` order), ``doc_ids.json``,
``faiss.index`` (moved to the GPU on load when FAISS has GPUs) and the manifest.

An interrupted encoding resumes from its last finished chunk (the partial build waits in
a hidden sibling folder; :mod:`inpars.indexing.dense_build` writes it).
:meth:`DenseIndex.load` reopens an index without encoding; :meth:`DenseIndex.reencode`
encodes the corpus with another (e.g. fine-tuned) model into its own folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpars.errors import DataError, IndexStoreError
from inpars.indexing.dense_build import DOC_IDS, EMBEDDINGS, FAISS_INDEX, KIND, build_index_folder, load_faiss
from inpars.indexing.encoder import encode, load_encoder, model_identity, model_slug
from inpars.indexing.identity import corpus_index_root, previous_index
from inpars.indexing.store import (
    Corpus,
    base_manifest,
    corpus_fingerprint,
    empty_corpus_error,
    fingerprint_of,
    read_index_manifest,
)
from inpars.io import read_json
from inpars.records import Query, ScoredPair

log = logging.getLogger(__name__)

QUERY_CHUNK = 4096


def dense_index_dir(root: Path | str, model: str) -> Path:
    """Where the dense index of ``model`` goes under an index root (``index/<collection>``)."""
    return Path(root) / "dense" / model_slug(model)


def build_dense_index(
    collection: Corpus,
    out_dir: Path | str | None = None,
    model: str = "all-MiniLM-L6-v2",
    *,
    batch_size: int = 32,
    max_length: int = 256,
    device: str = "",
    force: bool = False,
    chunk_size: int = 1024,
) -> DenseIndex:
    """Encode ``collection`` with ``model`` into a FAISS index in ``out_dir`` (default
    ``index/<collection name>/dense/<model>``, or under a sibling of ``index/<collection name>``
    when that holds another corpus's indexes; reused when
    the corpus, model weights and max length are unchanged, unless ``force``)."""
    index, _ = ensure_dense_index(
        collection,
        out_dir,
        model,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        force=force,
        chunk_size=chunk_size,
    )
    return index


def ensure_dense_index(
    collection: Corpus,
    out_dir: Path | str | None = None,
    model: str = "all-MiniLM-L6-v2",
    *,
    batch_size: int = 32,
    max_length: int = 256,
    device: str = "",
    force: bool = False,
    chunk_size: int = 1024,
) -> tuple[DenseIndex, bool]:
    """:func:`build_dense_index`, also saying whether it encoded (``True``) or reused."""
    start = time.perf_counter()
    corpus_id = corpus_fingerprint(collection)
    root = corpus_index_root(collection, "", corpus_id) if not out_dir else None
    folder = dense_index_dir(root, model) if root is not None else Path(str(out_dir))
    identity = model_identity(model)
    settings = {"max_length": max_length, "normalized": True, "text": "title + newline + text",
                "faiss": "IndexFlatIP"}
    fingerprint = fingerprint_of(
        {"kind": KIND, "corpus": corpus_id, "model": {**identity, "resolved": None}, "settings": settings}
    )
    if previous_index(folder, KIND, fingerprint, collection, corpus_id, force=force) is not None:
        log.info("dense: reusing %s (same corpus, model and settings)", folder)
        dense = DenseIndex.load(folder, device=device, batch_size=batch_size)
        dense.collection = collection
        return dense, False

    total = collection.count_docs()
    if total == 0:
        raise empty_corpus_error(collection)
    encoder = load_encoder(model, max_length=max_length, device=device)
    dim = int(
        (getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension)()
    )
    manifest = base_manifest(KIND, fingerprint, collection, corpus_id)
    manifest.update({"model": identity, "dim": dim, "docs": total, "settings": settings,
                     "batch_size": batch_size})
    build_index_folder(collection, encoder, folder, manifest, force=force, chunk_size=chunk_size, start=start)
    log.info("dense: %s encoded with %s -> %s (%.1f s)", collection.name, model, folder,
             time.perf_counter() - start)
    dense = DenseIndex.load(folder, device=device, batch_size=batch_size, encoder=encoder)
    dense.collection = collection
    return dense, True


class DenseIndex:
    """A dense index on disk: document embeddings, their ids and a FAISS index."""

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        doc_ids: list[str],
        index: Any,
        *,
        device: str = "",
        batch_size: int = 32,
        encoder: Any = None,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.doc_ids = doc_ids
        self.index = index
        self.device = device
        self.batch_size = batch_size
        self._encoder = encoder
        self._gpu_resources: Any = None
        self.collection: Corpus | None = None  # the corpus, when this process built or checked the index

    @classmethod
    def load(
        cls, folder: Path | str, *, device: str = "", batch_size: int = 32, encoder: Any = None
    ) -> DenseIndex:
        """Open a built index without encoding anything (the encoder loads on first search)."""
        path = Path(folder)
        manifest = read_index_manifest(path, KIND)
        for name in (EMBEDDINGS, DOC_IDS, FAISS_INDEX):
            if not (path / name).is_file():
                raise IndexStoreError(
                    f"{path}: {name} is missing. Fix: delete the folder and build the index again"
                )
        try:
            doc_ids = read_json(path / DOC_IDS)
            index = load_faiss().read_index(str(path / FAISS_INDEX))
        except (DataError, RuntimeError) as exc:
            raise IndexStoreError(
                f"{path}: unreadable dense index ({exc}). Fix: delete the folder and rebuild"
            ) from exc
        if (
            not isinstance(doc_ids, list)
            or index.ntotal != len(doc_ids)
            or len(doc_ids) != manifest.get("docs")
        ):
            raise IndexStoreError(
                f"{path}: {FAISS_INDEX}, {DOC_IDS} and the manifest disagree on the number of documents. "
                "Fix: delete the folder and build the index again"
            )
        dense = cls(
            path,
            manifest,
            [str(i) for i in doc_ids],
            index,
            device=device,
            batch_size=batch_size,
            encoder=encoder,
        )
        dense._to_gpu()
        return dense

    def _to_gpu(self) -> None:
        faiss = load_faiss()
        if self.device == "cpu" or not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
            return
        self._gpu_resources = faiss.StandardGpuResources()
        self.index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self.index)
        log.info("dense: FAISS index of %s moved to the GPU", self.folder)

    @property
    def num_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def model(self) -> str:
        """The model setting the index was encoded with (alias, path or hub id)."""
        return str(self.manifest["model"]["name"])

    @property
    def encoder(self) -> Any:
        """The encoder of the index's model (loaded on first use)."""
        if self._encoder is None:
            max_length = int(self.manifest["settings"]["max_length"])
            self._encoder = load_encoder(self.model, max_length=max_length, device=self.device)
        return self._encoder

    def embeddings(self) -> Any:
        """The document embeddings, memory-mapped read-only (rows in ``doc_ids`` order)."""
        import numpy as np

        return np.load(self.folder / EMBEDDINGS, mmap_mode="r")

    def vectors(self, doc_ids: Sequence[str]) -> Any:
        """The embeddings of ``doc_ids``, one row each in that order (float32)."""
        import numpy as np

        rows = {doc_id: row for row, doc_id in enumerate(self.doc_ids)}
        missing = [d for d in doc_ids if d not in rows]
        if missing:
            raise IndexStoreError(f"{self.folder}: {len(missing)} documents are not in the index, e.g. "
                                  f"{missing[:3]}. Fix: rebuild it from the same collection")
        return np.asarray(self.embeddings()[[rows[d] for d in doc_ids]], dtype=np.float32)

    def search(
        self, queries: Sequence[Query], k: int, *, remove_self_hits: bool = False
    ) -> dict[str, list[ScoredPair]]:
        """Top-``k`` documents by cosine similarity for each query, best first."""
        if k < 1:
            raise IndexStoreError(f"search depth k={k}. Fix: ask for at least 1 hit")
        depth = min(k + 1 if remove_self_hits else k, self.num_docs)
        run: dict[str, list[ScoredPair]] = {}
        for begin in range(0, len(queries), QUERY_CHUNK):
            part = queries[begin : begin + QUERY_CHUNK]
            vectors = encode(
                self.encoder, [q.text for q in part], batch_size=max(self.batch_size, 64), queries=True
            )
            scores, rows = self.index.search(vectors, depth)
            for query, row_scores, row_ids in zip(part, scores, rows, strict=True):
                pairs = [
                    ScoredPair(query.query_id, self.doc_ids[int(r)], float(s))
                    for s, r in zip(row_scores, row_ids, strict=True)
                    if r >= 0
                ]
                if remove_self_hits:
                    pairs = [p for p in pairs if p.doc_id != query.query_id]
                run[query.query_id] = pairs[:k]
        return run

    def reencode(
        self,
        model: str,
        collection: Corpus | None = None,
        *,
        out_dir: Path | str | None = None,
        force: bool = False,
        max_length: int | None = None,
    ) -> DenseIndex:
        """Encode the same corpus with another model (e.g. a fine-tuned one) into its own
        folder (default: a sibling named after the model); this index is left as it is.

        ``collection`` defaults to the one this index was built from in this process; an
        index opened with :meth:`load` needs it passed.
        """
        corpus = collection or self.collection
        if corpus is None:
            raise IndexStoreError(
                f"{self.folder}: re-encoding needs the documents. Fix: pass the collection "
                "(inpars.data.open_collection(source)) to reencode()"
            )
        target = Path(out_dir) if out_dir is not None else self.folder.parent / model_slug(model)
        if target.resolve() == self.folder.resolve() and model != self.model:
            raise IndexStoreError(
                f"{target}: re-encoding would overwrite this index. Fix: give another out_dir"
            )
        length = max_length or int(self.manifest["settings"]["max_length"])
        return build_dense_index(
            corpus,
            target,
            model,
            batch_size=self.batch_size,
            max_length=length,
            device=self.device,
            force=force,
        )
