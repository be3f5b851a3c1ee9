"""The ``index`` stage: build or reuse the indexes, write the first-stage runs of a split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from inpars.config import IndexConfig
from inpars.errors import DataError
from inpars.indexing.bm25 import Bm25Searcher, ensure_bm25_index
from inpars.indexing.dense import dense_index_dir, ensure_dense_index
from inpars.indexing.identity import corpus_index_root
from inpars.indexing.store import Corpus, empty_corpus_error
from inpars.manifest import StageContext
from inpars.records import Query, ScoredPair
from inpars.trec import write_trec_run

log = logging.getLogger(__name__)


class SplitCorpus(Corpus, Protocol):
    """A corpus with judged queries by split (what the stage needs from a Collection)."""

    def split_queries(self, split: str) -> list[Query]: ...


def index_stage(ctx: StageContext, cfg: IndexConfig, collection: SplitCorpus, split: str) -> None:
    """Build (or reuse) the BM25 and, with ``cfg.dense``, the dense index of ``collection``,
    and write the top-``cfg.depth`` runs of the ``split`` queries to
    ``runs/bm25.trec`` and ``runs/dense.trec`` in the stage folder.

    The indexes go to ``cfg.output_dir`` or ``index/<collection name>``, or to a sibling of
    that folder when it holds the indexes of another corpus (see
    :mod:`inpars.indexing.identity`); the folders used are recorded in ``ctx.extra``.
    """
    if collection.count_docs() == 0:  # before the judgements, which would all point nowhere
        raise empty_corpus_error(collection)
    root = corpus_index_root(collection, cfg.output_dir)
    queries = collection.split_queries(split)
    if not queries:
        raise DataError(
            f"{collection.name}: no queries with judgements in split '{split}'. "
            "Fix: set [data].test_split to a split that has qrels"
        )
    ctx.counts["queries"] = len(queries)

    with ctx.timed("bm25_index"):
        bm25_dir, built = ensure_bm25_index(
            collection, root / "bm25", threads=cfg.threads, force=cfg.force, docvectors=cfg.docvectors
        )
    with ctx.timed("bm25_search"), Bm25Searcher(bm25_dir, k1=cfg.k1, b=cfg.b) as searcher:
        ctx.counts["docs"] = int(searcher.manifest["docs"])
        ctx.counts["bm25_indexed_docs"] = searcher.num_docs
        run = searcher.search(queries, cfg.depth, threads=cfg.threads, remove_self_hits=cfg.remove_self_hits)
        ctx.extra["bm25"] = {
            "index": str(bm25_dir),
            "built": built,
            "fingerprint": searcher.manifest["fingerprint"],
            "lucene": searcher.manifest.get("lucene"),
            "k1": cfg.k1,
            "b": cfg.b,
        }
    _write_run(ctx, "bm25", run)

    if cfg.dense:
        with ctx.timed("dense_index"):
            dense, built = ensure_dense_index(
                collection,
                dense_index_dir(root, cfg.dense_model),
                cfg.dense_model,
                batch_size=cfg.dense_batch_size,
                max_length=cfg.dense_max_length,
                device=cfg.dense_device,
                force=cfg.force,
            )
        with ctx.timed("dense_search"):
            run = dense.search(queries, cfg.depth, remove_self_hits=cfg.remove_self_hits)
        ctx.extra["dense"] = {
            "index": str(dense.folder),
            "built": built,
            "model": cfg.dense_model,
            "fingerprint": dense.manifest["fingerprint"],
            "dim": dense.manifest["dim"],
        }
        _write_run(ctx, "dense", run)
    ctx.extra["split"] = split
    ctx.extra["index_root"] = str(root)


def _write_run(ctx: StageContext, name: str, run: dict[str, list[ScoredPair]]) -> Path:
    path = ctx.out_dir / "runs" / f"{name}.trec"
    hits = write_trec_run(path, run, tag=name)
    ctx.counts[f"{name}_hits"] = hits
    ctx.counts[f"{name}_queries_without_hits"] = sum(1 for pairs in run.values() if not pairs)
    ctx.output(f"run:{name}", path)
    log.info("index: %s run of %d queries -> %s", name, len(run), path)
    return path
