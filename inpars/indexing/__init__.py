"""Indexing and first-stage retrieval: BM25 (Pyserini/Lucene) and dense (FAISS).

- :func:`build_bm25_index` / :class:`Bm25Searcher`: Pyserini BEIR-"flat" BM25 indexes.
- :func:`build_dense_index` / :class:`DenseIndex`: sentence-transformers embeddings in a
  FAISS inner-product index, reloadable without re-encoding.
- :func:`index_stage`: the pipeline's ``index`` stage (indexes + first-stage runs).

Indexes go to ``index/<collection>/`` (``bm25/``, ``dense/<model>/``) by default, each with
an ``inpars-index.json`` manifest that records the corpus it was built from; a corpus whose
name is taken by another corpus's indexes gets ``index/<collection>-<fingerprint>/``
(:func:`corpus_index_root`). Heavy libraries load only when used.
"""

from __future__ import annotations

from inpars.indexing.bm25 import Bm25Searcher, build_bm25_index, ensure_bm25_index
from inpars.indexing.dense import DenseIndex, build_dense_index, dense_index_dir, ensure_dense_index
from inpars.indexing.encoder import load_encoder, model_slug
from inpars.indexing.identity import corpus_index_root
from inpars.indexing.stage import index_stage
from inpars.indexing.store import INDEX_MANIFEST, Corpus, index_root, read_index_manifest

__all__ = [
    "INDEX_MANIFEST",
    "Bm25Searcher",
    "Corpus",
    "DenseIndex",
    "build_bm25_index",
    "build_dense_index",
    "corpus_index_root",
    "dense_index_dir",
    "ensure_bm25_index",
    "ensure_dense_index",
    "index_root",
    "index_stage",
    "load_encoder",
    "model_slug",
    "read_index_manifest",
]
