"""Which documents get queries: all of them, the first N, N drawn with a seed, or N spread
over k-means clusters of their embeddings (``clusters``, :mod:`inpars.generation.clusters`).

The choice is a list of document ids in collection order, so that shards and batches
are the same on every run with the same settings (what resuming relies on).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from inpars.config import GenerateConfig
from inpars.data import Collection
from inpars.errors import DataError
from inpars.records import Document

DocSampling = Literal["random", "first", "clusters"]


def select_doc_ids(
    collection: Collection, *, num_docs: int = 0, how: DocSampling = "random", seed: int = 0
) -> list[str]:
    """Ids of the chosen documents in collection order (``num_docs`` 0: every document;
    ``clusters`` with the automatic k and the packaged MiniLM: see :func:`choose_documents`)."""
    if how == "clusters":
        return choose_documents(collection, num_docs=num_docs, how=how, seed=seed)[0]
    if num_docs <= 0:
        return [doc.doc_id for doc in collection.docs()]
    if how == "first":
        return [doc.doc_id for doc in islice(collection.docs(), num_docs)]
    ids = [doc.doc_id for doc in collection.docs()]
    if num_docs >= len(ids):
        return ids
    picked = sorted(random.Random(seed).sample(range(len(ids)), num_docs))
    return [ids[i] for i in picked]


def choose_documents(
    collection: Collection,
    *,
    num_docs: int = 0,
    how: DocSampling = "random",
    seed: int = 0,
    clusters: int = 0,
    dense_dir: Path | None = None,
    encoder: Any = None,
) -> tuple[list[str], dict[str, Any]]:
    """The chosen ids (collection order) and what the generate manifest records of the choice.

    ``clusters`` (k-means, 0: automatic) and the vectors matter to ``how="clusters"`` only:
    those a dense index stored in ``dense_dir``, else the corpus encoded with ``encoder``
    (default: the packaged MiniLM)."""
    if how != "clusters" or num_docs <= 0:
        ids = select_doc_ids(collection, num_docs=num_docs, how="first" if how == "first" else "random",
                             seed=seed)
        return ids, {"how": how if num_docs > 0 else "all", "docs": len(ids)}
    from inpars.generation.clusters import encode_documents, select_by_clusters, stored_vectors

    if dense_dir is not None:
        vectors = stored_vectors(dense_dir)
        corpus = collection.count_docs()
        if len(vectors.doc_ids) != corpus:
            raise DataError(
                f"{dense_dir}: the dense index holds {len(vectors.doc_ids)} documents, the collection "
                f"{corpus}. Fix: rerun `inpars index` so that the index matches [data] source"
            )
    else:
        vectors = encode_documents(collection.docs(), encoder=encoder)
    chosen = select_by_clusters(vectors, num_docs=num_docs, clusters=clusters, seed=seed)
    return chosen.doc_ids, chosen.record()


def iter_documents(collection: Collection, doc_ids: Sequence[str]) -> Iterator[Document]:
    """Stream the documents with these ids, in collection order (one pass)."""
    wanted = set(doc_ids)
    remaining = len(wanted)
    if not remaining:
        return
    for doc in collection.docs():
        if doc.doc_id in wanted:
            yield doc
            remaining -= 1
            if not remaining:
                return


# the openai backend's servers and how they are called: a run resumes after a server is added
TRANSPORT_KEYS = ("api_base", "api_key_env", "concurrency", "timeout_s", "retries")


def fingerprint_settings(cfg: GenerateConfig) -> dict[str, Any]:
    """The ``[generate]`` section as the stage is fingerprinted with it: less ``clusters``
    unless ``doc_sampling = "clusters"`` reads it (the fingerprints of runs finished before
    the key existed stay valid), less the executor keys (where it runs, not what it computes),
    and for the openai backend less :data:`TRANSPORT_KEYS` (the served model is ``model``)."""
    from inpars.distributed.settings import without_executor_keys
    from inpars.manifest import config_dict

    settings: dict[str, Any] = without_executor_keys(config_dict(cfg))
    if cfg.doc_sampling != "clusters":
        settings.pop("clusters")
    if cfg.backend == "openai":  # which servers, and how they are called, is not what they compute
        for key in TRANSPORT_KEYS:
            settings.pop(key)
    return settings
