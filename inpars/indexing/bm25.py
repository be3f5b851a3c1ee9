"""BM25 with Pyserini (Lucene): build an index of a collection, search it, read documents.

The index is the same as Pyserini's BEIR "flat" indexes: each document's title and text
are joined into one ``contents`` field (Anserini's ``BeirFlatCollection``), analysed with
Lucene's default English analyzer (Porter stemming, stopwords), and the document's JSON
(``_id``, ``title``, ``text``) is stored raw so :meth:`Bm25Searcher.document` gives the
:class:`~inpars.records.Document` back. With k1=0.9, b=0.4 this reproduces Pyserini's
published SciFact number (nDCG@10 0.6789; BEIR's own Elasticsearch BM25 reports 0.665).

The corpus is streamed into a few JSONL shards in the build folder and indexed by
Anserini's ``IndexCollection`` inside this process's JVM (no second JVM start, no Python
import of Pyserini's search stack).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from inpars.errors import DataError, IndexStoreError
from inpars.indexing.identity import corpus_index_root, previous_index
from inpars.indexing.store import (
    Corpus,
    base_manifest,
    building,
    corpus_fingerprint,
    empty_corpus_error,
    fingerprint_of,
    read_index_manifest,
    write_index_manifest,
)
from inpars.java import pyserini_import
from inpars.records import Document, Query, ScoredPair

log = logging.getLogger(__name__)

KIND = "bm25"
COLLECTION_CLASS = "BeirFlatCollection"
SEARCH_CHUNK = 10_000  # queries per Java batch call (bounds memory on huge query sets)


def indexer_args(input_dir: Path, index_dir: Path, *, threads: int, docvectors: bool) -> list[str]:
    """The ``IndexCollection`` arguments inpars uses (also what the benchmark gives the raw CLI).

    Paths go to Java absolute: the JVM resolves relative ones against the folder it was
    started in, which is not this process's working folder after a ``chdir``.
    """
    args = [
        "-collection",
        COLLECTION_CLASS,
        "-input",
        str(Path(input_dir).absolute()),
        "-index",
        str(Path(index_dir).absolute()),
        "-generator",
        "DefaultLuceneDocumentGenerator",
        "-threads",
        str(max(1, threads)),
        "-storeRaw",
    ]
    if docvectors:
        args += ["-storePositions", "-storeDocvectors"]
    return args


def write_shards(docs: Iterator[Document], folder: Path, shards: int) -> tuple[int, list[str]]:
    """Stream documents into ``shards`` JSONL files in Anserini's BEIR layout.

    Returns the number of documents and the ids of those with no title and no text
    (Lucene does not index an empty document; "empty" as Java's ``String.trim`` sees it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    empty: list[str] = []
    with ExitStack() as stack:
        handles = [
            stack.enter_context(open(folder / f"docs{i:02d}.jsonl", "w", encoding="utf-8"))
            for i in range(max(1, shards))
        ]
        for doc in docs:
            line = json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}, ensure_ascii=False)
            handles[count % len(handles)].write(line + "\n")
            if all(ord(ch) <= 32 for ch in doc.title + doc.text):
                empty.append(doc.doc_id)
            count += 1
    return count, empty


_QUIET: list[Any] = []  # java.util.logging keeps loggers weakly: hold the one we configured


def _java() -> Any:
    """Pyserini's pyjnius ``autoclass``, with the INFO chatter of Anserini (log4j) and of
    Lucene's directory setup (java.util.logging) turned down once per process."""
    pyclass = pyserini_import("pyserini.pyclass")
    if not _QUIET:
        configurator = pyclass.autoclass("org.apache.logging.log4j.core.config.Configurator")
        configurator.setLevel("io.anserini", pyclass.autoclass("org.apache.logging.log4j.Level").WARN)
        lucene = pyclass.autoclass("java.util.logging.Logger").getLogger("org.apache.lucene.store")
        lucene.setLevel(pyclass.autoclass("java.util.logging.Level").WARNING)
        _QUIET.append(lucene)
    return pyclass.autoclass


def lucene_version() -> str:
    """The Lucene version of the Anserini jar Pyserini bundles."""
    return str(_java()("org.apache.lucene.util.Version").LATEST.toString())


def run_indexer(args: list[str]) -> None:
    """Run Anserini's ``IndexCollection`` with ``args`` in this process's JVM."""
    autoclass = _java()
    from jnius import JavaException

    try:
        autoclass("io.anserini.index.IndexCollection").main(args)
    except JavaException as exc:
        raise IndexStoreError(
            f"Lucene indexing failed: {exc}. Fix: check disk space and the index folder"
        ) from exc


def lucene_doc_count(index_dir: Path) -> int:
    """How many documents the Lucene index in ``index_dir`` holds."""
    autoclass = _java()
    from jnius import JavaException

    paths = autoclass("java.nio.file.Paths")
    directory = autoclass("org.apache.lucene.store.FSDirectory").open(paths.get(str(index_dir.absolute())))
    try:
        reader = autoclass("org.apache.lucene.index.DirectoryReader").open(directory)
    except JavaException as exc:
        raise IndexStoreError(
            f"{index_dir}: the Lucene index cannot be opened ({exc.classname}: {exc.innermessage}). "
            "Fix: delete the folder and build the index again"
        ) from exc
    try:
        return int(reader.numDocs())
    finally:
        reader.close()
        directory.close()


def bm25_settings(docvectors: bool) -> dict[str, Any]:
    """The settings that shape a BM25 index's content (part of its fingerprint)."""
    return {
        "collection": COLLECTION_CLASS,
        "contents": "title + newline + text",
        "analyzer": "default (en)",
        "store_raw": True,
        "docvectors": docvectors,
    }


def build_bm25_index(
    collection: Corpus,
    out_dir: Path | str | None = None,
    *,
    threads: int = 1,
    force: bool = False,
    docvectors: bool = False,
) -> Path:
    """Build (or reuse) the BM25 index of ``collection`` in ``out_dir`` (default
    ``index/<collection name>/bm25``, or a sibling of that folder when it holds another
    corpus's indexes: see :mod:`inpars.indexing.identity`); returns the folder.

    An index built from the same corpus (same source files, same sha256) with the same
    settings is reused unless ``force``; an ``out_dir`` that holds another corpus's index
    raises unless ``force``. ``threads`` indexing threads (one JSONL shard each);
    ``docvectors`` also stores positions and document vectors (for RM3 and term
    statistics; bigger and slower to build).
    """
    folder, _ = ensure_bm25_index(collection, out_dir, threads=threads, force=force, docvectors=docvectors)
    return folder


def ensure_bm25_index(
    collection: Corpus,
    out_dir: Path | str | None = None,
    *,
    threads: int = 1,
    force: bool = False,
    docvectors: bool = False,
) -> tuple[Path, bool]:
    """:func:`build_bm25_index`, also saying whether it built (``True``) or reused the index."""
    start = time.perf_counter()
    corpus_id = corpus_fingerprint(collection)
    folder = Path(out_dir) if out_dir else corpus_index_root(collection, corpus_id=corpus_id) / "bm25"
    settings = bm25_settings(docvectors)
    fingerprint = fingerprint_of({"kind": KIND, "corpus": corpus_id, "settings": settings})
    previous = previous_index(folder, KIND, fingerprint, collection, corpus_id, force=force)
    if previous is not None:
        log.info("bm25: reusing %s (%s docs, same corpus and settings)", folder, previous.get("docs"))
        return folder, False
    with building(folder) as work:
        shards = work / "_corpus"
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        count, empty = write_shards(collection.docs(), shards, threads)
        timings["write_shards"] = time.perf_counter() - t0
        if count == 0:
            raise empty_corpus_error(collection)
        t0 = time.perf_counter()
        log.info("bm25: indexing %d documents of %s with %d thread(s)", count, collection.name, threads)
        run_indexer(indexer_args(shards, work, threads=threads, docvectors=docvectors))
        timings["lucene"] = time.perf_counter() - t0
        shutil.rmtree(shards)
        indexed = lucene_doc_count(work)
        if indexed != count - len(empty):
            raise IndexStoreError(
                f"{collection.name}: Lucene indexed {indexed} of {count - len(empty)} non-empty documents. "
                "Fix: look for indexing errors in the log above, then rebuild with force"
            )
        manifest = base_manifest(KIND, fingerprint, collection, corpus_id)
        manifest.update(
            {
                "docs": count,
                "indexed": indexed,
                "empty_doc_ids": empty,
                "settings": settings,
                "threads": threads,
                "lucene": lucene_version(),
                "timings": {k: round(v, 3) for k, v in timings.items()},
                "build_seconds": round(time.perf_counter() - start, 3),
            }
        )
        write_index_manifest(work, manifest)
    log.info("bm25: %s -> %s (%d docs, %.1f s)", collection.name, folder, count, time.perf_counter() - start)
    return folder, True


class Bm25Searcher:
    """BM25 search over an index made by :func:`build_bm25_index`."""

    def __init__(self, index_dir: Path | str, k1: float = 0.9, b: float = 0.4) -> None:
        self.index_dir = Path(index_dir)
        if k1 < 0 or not 0 <= b <= 1:
            raise IndexStoreError(
                f"BM25 parameters k1={k1}, b={b} are out of range. Fix: k1 >= 0 and 0 <= b <= 1"
            )
        self.manifest = read_index_manifest(self.index_dir, KIND)
        self.k1 = k1
        self.b = b
        self._empty = set(self.manifest.get("empty_doc_ids", []))
        autoclass = _java()
        from jnius import JavaException

        try:
            self._searcher = autoclass("io.anserini.search.SimpleSearcher")(str(self.index_dir.absolute()))
        except JavaException as exc:
            raise IndexStoreError(
                f"{self.index_dir}: the Lucene index is corrupt or incomplete ({exc.classname}: "
                f"{exc.innermessage}). Fix: delete the folder and build the index again"
            ) from exc
        self._searcher.set_bm25(float(k1), float(b))
        self._array_list = autoclass("java.util.ArrayList")

    @property
    def num_docs(self) -> int:
        """Documents in the index (empty documents are not indexed)."""
        return int(self._searcher.get_total_num_docs())

    def search(
        self, queries: Sequence[Query], k: int, threads: int = 1, *, remove_self_hits: bool = False
    ) -> dict[str, list[ScoredPair]]:
        """Top-``k`` documents for each query, best first.

        ``remove_self_hits`` drops a hit whose document id equals the query id (ArguAna,
        where the queries are documents of the corpus). Every query gets an entry, empty
        when nothing matches.
        """
        if k < 1:
            raise IndexStoreError(f"search depth k={k}. Fix: ask for at least 1 hit")
        ids = [q.query_id for q in queries]
        if len(set(ids)) != len(ids):
            raise DataError(
                "queries with the same query_id were given to one search. Fix: make query ids unique"
            )
        depth = k + 1 if remove_self_hits else k
        run: dict[str, list[ScoredPair]] = {}
        from tqdm import tqdm

        chunks = range(0, len(queries), SEARCH_CHUNK)
        for begin in tqdm(chunks, desc="bm25 search", unit="chunk", disable=len(chunks) < 2):
            part = queries[begin : begin + SEARCH_CHUNK]
            texts, qids = self._array_list(), self._array_list()
            for query in part:
                texts.add(query.text)
                qids.add(query.query_id)
            found = self._searcher.batch_search(texts, qids, depth, max(1, threads))
            hits = {entry.getKey(): entry.getValue() for entry in found.entrySet().toArray()}
            for query in part:
                pairs = [
                    ScoredPair(query.query_id, h.docid, float(h.score)) for h in hits.get(query.query_id, [])
                ]
                if remove_self_hits:
                    pairs = [p for p in pairs if p.doc_id != query.query_id]
                run[query.query_id] = pairs[:k]
        return run

    def document(self, doc_id: str) -> Document:
        """The stored document ``doc_id`` (title and text as they were indexed)."""
        raw = self._searcher.doc_raw(doc_id)
        if raw is None:
            if doc_id in self._empty:
                return Document(doc_id=doc_id, text="", title="")
            raise DataError(
                f"{self.index_dir}: no document with id {doc_id!r} in this index. Fix: check the id"
            )
        try:
            data = json.loads(raw)
            return Document(
                doc_id=str(data["_id"]), text=str(data.get("text", "")), title=str(data.get("title", ""))
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise IndexStoreError(
                f"{self.index_dir}: document {doc_id!r} has no readable stored JSON ({exc}). "
                "Fix: rebuild the index with inpars (it stores every document raw)"
            ) from exc

    def close(self) -> None:
        """Release the Lucene searcher."""
        self._searcher.close()

    def __enter__(self) -> Bm25Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
