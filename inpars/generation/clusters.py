"""Diverse document selection (DUQGen-style): k-means over document embeddings, then
documents picked across the clusters, so that queries are written for every topic of the
corpus rather than for its commonest ones.

- **Vectors**: with ``[index] dense = true``, the dense index's stored embeddings (read from
  ``embeddings.npy`` and ``doc_ids.json``: no encoding, no FAISS index loaded; the index
  stage must have run first), else the corpus encoded with the packaged MiniLM
  (:data:`CLUSTER_ENCODER`) through :mod:`inpars.indexing.encoder`. The choice follows the
  config, not what happens to be on disk, so a stage run alone cannot pick other vectors
  than ``inpars run`` would (and silently regenerate later).
- **Clusters**: ``faiss.Kmeans`` (spherical, seeded, :data:`KMEANS_ITERATIONS` iterations, started
  from k-means++ centroids: :func:`plus_plus_centroids`) with
  ``k`` = ``[generate] clusters``, or by default :func:`default_clusters`:
  ``min(num_docs, round(sqrt(corpus size)), 1000)``. The square root is the usual rule of
  thumb for k without labels (72 clusters for SciFact's 5,183 documents); at most
  ``num_docs`` so that every cluster can get a document, at most 1000 to bound the cost of
  k-means on large corpora.
- **Picking**: round-robin over the clusters (:func:`round_robin_quotas`): each cluster gets
  the same number of documents unless it has fewer, and the remainder of the last round
  goes to clusters in a seeded order; within a cluster the documents come in a seeded
  random order. Equal shares over-represent small clusters compared with the corpus, which
  is the point: rare topics get queries too.

Everything is seeded by the experiment seed, so the same vectors give the same documents
(FAISS computes with BLAS, whose rounding can depend on the thread count; a tie flipped
that way is the only source of variation). The picked ids come back in collection order.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from inpars.errors import DataError, DependencyError
from inpars.records import Document

log = logging.getLogger(__name__)

CLUSTER_ENCODER = "all-MiniLM-L6-v2"  # used when the run has no dense index
ENCODER_MAX_LENGTH = 256
ENCODER_BATCH = 32
MAX_AUTO_CLUSTERS = 1000
KMEANS_ITERATIONS = 20
ASSIGN_CHUNK = 65536  # rows assigned to their nearest centroid at once
ENCODE_CHUNK = 1024  # documents encoded at once
INIT_SAMPLE_PER_CLUSTER = 64  # rows per cluster that k-means++ draws its starts from


@dataclass(frozen=True)
class DocVectors:
    """Document embeddings (float32 rows, in collection order) and where they came from."""

    doc_ids: list[str]
    vectors: Any  # numpy array (n, dim), possibly memory-mapped
    source: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterSelection:
    """The chosen documents and the clusters they were drawn from."""

    doc_ids: list[str]  # collection order
    clusters: int
    cluster_sizes: list[int]  # corpus documents per cluster (cluster id order)
    picked_per_cluster: list[int]  # chosen documents per cluster
    source: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """What the generate manifest keeps of it."""
        return {"how": "clusters", "clusters": self.clusters, "cluster_sizes": self.cluster_sizes,
                "picked_per_cluster": self.picked_per_cluster, "vectors": self.source,
                "docs": len(self.doc_ids), "doc_ids": self.doc_ids}


def default_clusters(num_docs: int, corpus_docs: int) -> int:
    """k when ``[generate] clusters = 0``: ``min(num_docs, round(sqrt(corpus_docs)), 1000)``
    (at least 1); see the module docstring for why."""
    return max(1, min(num_docs, round(math.sqrt(corpus_docs)), MAX_AUTO_CLUSTERS))


def stored_vectors(folder: Path) -> DocVectors:
    """The embeddings a dense index stored (memory-mapped, no FAISS index loaded)."""
    import numpy as np

    from inpars.indexing.dense_build import DOC_IDS, EMBEDDINGS, KIND
    from inpars.indexing.store import read_index_manifest
    from inpars.io import read_json

    manifest = read_index_manifest(folder, KIND)
    doc_ids = [str(i) for i in read_json(folder / DOC_IDS)]
    vectors = np.load(folder / EMBEDDINGS, mmap_mode="r")
    if vectors.shape[0] != len(doc_ids):
        raise DataError(f"{folder}: {EMBEDDINGS} has {vectors.shape[0]} rows for {len(doc_ids)} ids in "
                        f"{DOC_IDS}. Fix: rebuild the dense index (`inpars index --force`)")
    source = {"dense_index": str(folder), "model": manifest.get("model", {}).get("name"),
              "fingerprint": manifest.get("fingerprint")}
    return DocVectors(doc_ids, vectors, source)


def encode_documents(
    docs: Iterator[Document], *, model: str = CLUSTER_ENCODER, encoder: Any = None
) -> DocVectors:
    """Encode the documents (title and text) with a sentence encoder, chunk by chunk
    (``encoder``: an already loaded sentence-transformers model, else ``model`` is loaded)."""
    import numpy as np

    from inpars.indexing.encoder import encode, load_encoder

    if encoder is None:
        encoder = load_encoder(model, max_length=ENCODER_MAX_LENGTH)
    ids: list[str] = []
    parts: list[Any] = []
    while chunk := list(islice(docs, ENCODE_CHUNK)):
        ids.extend(d.doc_id for d in chunk)
        parts.append(encode(encoder, [d.contents for d in chunk], batch_size=ENCODER_BATCH, queries=False))
    if not parts:
        raise DataError("no documents to cluster. Fix: check [data] source (the corpus is empty)")
    source = {"encoder": model, "max_length": ENCODER_MAX_LENGTH}
    return DocVectors(ids, np.concatenate(parts), source)


def kmeans_labels(vectors: Any, k: int, seed: int) -> Any:
    """The cluster of each row: seeded spherical k-means (FAISS) started from k-means++
    centroids, then each row assigned to its nearest centroid."""
    import numpy as np

    try:
        import faiss
    except ImportError as exc:
        raise DependencyError("[generate] doc_sampling = 'clusters' runs k-means with FAISS, which is "
                              "missing. Fix: pip install 'inpars[cpu]' (or 'inpars[gpu]' with CUDA)") from exc
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    # min_points_per_centroid=1: small corpora are fine here, FAISS would only warn about them
    kmeans = faiss.Kmeans(data.shape[1], k, niter=KMEANS_ITERATIONS, seed=seed, spherical=True,
                          min_points_per_centroid=1, verbose=False)
    kmeans.train(data, init_centroids=plus_plus_centroids(data, k, seed))
    labels = np.empty(data.shape[0], dtype=np.int64)
    for begin in range(0, data.shape[0], ASSIGN_CHUNK):
        _, nearest = kmeans.index.search(data[begin : begin + ASSIGN_CHUNK], 1)
        labels[begin : begin + ASSIGN_CHUNK] = nearest[:, 0]
    return labels


def plus_plus_centroids(data: Any, k: int, seed: int) -> Any:
    """k-means++ starting centroids (scikit-learn's), drawn from a seeded sample of at most
    ``INIT_SAMPLE_PER_CLUSTER * k`` rows. FAISS alone starts from k rows drawn uniformly,
    which on well-separated topics often puts two starts in one topic and merges two others
    into one cluster, a local optimum that no iteration leaves."""
    import numpy as np
    from sklearn.cluster import kmeans_plusplus

    size = min(data.shape[0], INIT_SAMPLE_PER_CLUSTER * k)
    rows = np.sort(np.random.default_rng(seed).choice(data.shape[0], size, replace=False))
    centers, _ = kmeans_plusplus(np.asarray(data[rows]), k, random_state=seed % 2**32)
    return np.ascontiguousarray(centers, dtype=np.float32)


def round_robin_quotas(sizes: Sequence[int], total: int, order: Sequence[int]) -> list[int]:
    """How many documents each cluster gives when ``total`` are taken one cluster at a time in
    ``order``, round after round, skipping exhausted clusters. Computed a round-share at a time
    rather than one document at a time (the same result, fast for large ``total``)."""
    quota = [0] * len(sizes)
    remaining = min(total, sum(sizes))
    open_clusters = [c for c in order if sizes[c] > 0]
    while remaining and open_clusters:
        share = remaining // len(open_clusters)
        if share == 0:  # the last, partial round: the first clusters in order get one more
            for c in open_clusters[:remaining]:
                quota[c] += 1
            break
        still_open = []
        for c in open_clusters:
            take = min(share, sizes[c] - quota[c])
            quota[c] += take
            remaining -= take
            if quota[c] < sizes[c]:
                still_open.append(c)
        open_clusters = still_open
    return quota


def spread_pick(labels: Sequence[int], k: int, num_docs: int, seed: int) -> tuple[list[int], list[int]]:
    """Rows picked round-robin over the ``k`` clusters (sorted), and the count per cluster."""
    rng = random.Random(seed)
    members: list[list[int]] = [[] for _ in range(k)]
    for row, label in enumerate(labels):
        members[int(label)].append(row)
    for rows in members:  # in cluster id order, so the draws are the same for a seed
        rng.shuffle(rows)
    order = list(range(k))
    rng.shuffle(order)
    quota = round_robin_quotas([len(m) for m in members], num_docs, order)
    picked = sorted(row for c in range(k) for row in members[c][: quota[c]])
    return picked, quota


def select_by_clusters(
    vectors: DocVectors, *, num_docs: int, clusters: int = 0, seed: int = 0
) -> ClusterSelection:
    """``num_docs`` documents spread over ``clusters`` k-means clusters of ``vectors``
    (0: :func:`default_clusters`); the ids in the order of ``vectors`` (collection order)."""
    total = len(vectors.doc_ids)
    k = clusters or default_clusters(num_docs, total)
    k = min(k, total)
    if num_docs >= total:
        log.info("generate: num_docs = %d covers the corpus (%d documents): no clustering", num_docs, total)
        return ClusterSelection(list(vectors.doc_ids), 1, [total], [total], vectors.source)
    labels = kmeans_labels(vectors.vectors, k, seed)
    picked, quota = spread_pick(labels, k, num_docs, seed)
    sizes = [0] * k
    for label in labels:
        sizes[int(label)] += 1
    log.info("generate: %d documents picked across %d clusters of %d documents (sizes %d to %d)",
             len(picked), k, total, min(sizes), max(sizes))
    return ClusterSelection([vectors.doc_ids[r] for r in picked], k, sizes, quota, vectors.source)
