"""A document collection: documents (streamed), queries and relevance judgements by split.

:class:`Collection` holds the checks every source shares (unique ids, ids that fit a TREC
run file, non-empty queries, judgements that point at known queries and documents). The
readers in :mod:`inpars.data.files` and :mod:`inpars.data.irds` subclass it and only parse
their format; this module imports neither (:func:`inpars.data.sources.open_collection`
picks the reader for a source).

A bad record raises :class:`~inpars.errors.BadLineError` naming the file, line, field and
the fix; with a :class:`~inpars.bad_lines.LineReport` (``--skip-bad-lines``) it is counted by
reason and skipped instead. Input files are only ever read.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from inpars.bad_lines import SKIP_HINT, LineReport, handle_bad_line
from inpars.errors import BadLineError, DataError
from inpars.records import Document, Qrel, Query

log = logging.getLogger(__name__)


class Where(NamedTuple):
    """Where a record was read: file (or ``irds:<id>/<part>``), line, and the names its
    two checked fields have in that format (id and text, or query id and doc id)."""

    path: str
    line: int
    first_field: str
    second_field: str


class Collection(ABC):
    """Documents, queries and qrels of one collection, read lazily and checked.

    ``docs()`` streams the corpus anew on each call (a big corpus is never held in
    memory); queries and qrels are small and kept after the first read.
    """

    def __init__(self, name: str, *, report: LineReport | None = None) -> None:
        self.name = name
        self.report = report
        self._doc_ids: frozenset[str] | None = None
        self._empty_doc_ids: tuple[str, ...] = ()
        self._queries: dict[str, dict[str, Query]] = {}
        self._qrels: dict[str, list[Qrel]] = {}

    # ------------------------------------------------------------------ what readers provide
    @abstractmethod
    def _read_docs(self) -> Iterator[tuple[Where, Document]]:
        """Parsed documents (bad lines already raised or reported)."""

    @abstractmethod
    def _read_queries(self, split: str | None) -> Iterator[tuple[Where, Query]]:
        """Parsed queries: all of them (``None``), or those that go with ``split``."""

    @abstractmethod
    def _read_qrels(self, split: str) -> Iterator[tuple[Where, Qrel]]:
        """Parsed judgements of ``split``."""

    @abstractmethod
    def splits(self) -> list[str]:
        """The names of the splits that have judgements (``test``, ``train``...)."""

    def source_files(self) -> list[Path]:
        """The local files this collection reads (for input hashes in manifests)."""
        return []

    def _queries_key(self, split: str) -> str | None:
        """Which query set the judgements of ``split`` refer to (``None``: all queries)."""
        return None

    # ------------------------------------------------------------------ public API
    def docs(self) -> Iterator[Document]:
        """Stream the documents, checked; every call reads the source again."""
        seen: set[str] = set()
        empty: list[str] = []
        for where, doc in self._read_docs():
            if not self._id_ok(where, where.first_field, doc.doc_id, "document"):
                continue
            if doc.doc_id in seen:
                self._bad(BadLineError(
                    where.path, where.line, where.first_field,
                    f"duplicate document id {doc.doc_id!r}{self._first_seen(doc.doc_id)}",
                    f"give every document its own id, {SKIP_HINT} (the first one is kept)",
                    reason="duplicate document id",
                ))
                continue
            seen.add(doc.doc_id)
            if not doc.text.strip() and not doc.title.strip():
                empty.append(doc.doc_id)
            yield doc
        if self._doc_ids is None:
            self._doc_ids = frozenset(seen)
            self._empty_doc_ids = tuple(empty)
            if empty:
                shown = ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else "")
                log.warning("%s: %d document(s) with an empty title and text (kept; nothing can match "
                            "them by content): %s", self.name, len(empty), shown)

    def count_docs(self) -> int:
        """The number of documents (one streamed pass the first time)."""
        return len(self._doc_id_set())

    def empty_doc_ids(self) -> tuple[str, ...]:
        """Ids of documents whose title and text are both empty (allowed, but worth knowing)."""
        self._doc_id_set()
        return self._empty_doc_ids

    def queries(self) -> Iterator[Query]:
        """The queries of the collection, checked (kept in memory after the first read)."""
        return iter(list(self._query_map(None).values()))

    def qrels(self, split: str) -> list[Qrel]:
        """The judgements of ``split``, checked against the queries and the corpus."""
        if split not in self._qrels:
            self._qrels[split] = self._load_qrels(split)
        return list(self._qrels[split])

    def split_queries(self, split: str) -> list[Query]:
        """The queries that have judgements in ``split``, in query-file order."""
        judged = {qrel.query_id for qrel in self.qrels(split)}
        return [q for q in self._query_map(self._queries_key(split)).values() if q.query_id in judged]

    def summary(self) -> dict[str, int]:
        """Counts for a manifest: docs, empty docs, queries, and per split qrels and queries."""
        counts = {
            "docs": self.count_docs(),
            "empty_docs": len(self._empty_doc_ids),
            "queries": len(self._query_map(None)),
        }
        for split in self.splits():
            counts[f"qrels_{split}"] = len(self.qrels(split))
            counts[f"queries_{split}"] = len(self.split_queries(split))
        if self.report is not None:
            counts["skipped_lines"] = self.report.total
        return counts

    def line_drops(self) -> dict[str, int]:
        """The lines skipped so far (``--skip-bad-lines``) by file and reason, as drops for a
        stage manifest: ``{"skipped line: corpus.jsonl: malformed JSON": 2, ...}``; empty
        when bad lines raise. Call :meth:`summary` first to have every file read."""
        if self.report is None:
            return {}
        return {f"skipped line: {key}": n for key, n in self.report.by_reason(per_file=True).items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, splits={self.splits()!r})"

    # ------------------------------------------------------------------ checks
    def _bad(self, error: BadLineError) -> None:
        handle_bad_line(error, self.report)

    def _id_ok(self, where: Where, field: str, value: str, kind: str) -> bool:
        if not value:
            self._bad(BadLineError(where.path, where.line, field, f"empty {kind} id",
                                   f"give every {kind} a non-empty id, {SKIP_HINT}",
                                   reason=f"empty {kind} id"))
            return False
        if any(ch.isspace() for ch in value):
            self._bad(BadLineError(
                where.path, where.line, field, f"{kind} id {value!r} contains whitespace",
                f"use ids without spaces or tabs (TREC run files cannot hold them), {SKIP_HINT}",
                reason=f"{kind} id with whitespace",
            ))
            return False
        return True

    def _first_seen(self, doc_id: str) -> str:
        """Where a duplicate id first appeared (only looked up when about to raise)."""
        if self.report is not None:
            return ""
        for where, doc in self._read_docs():
            if doc.doc_id == doc_id:
                return f" (first at line {where.line})"
        return ""

    def _doc_id_set(self) -> frozenset[str]:
        if self._doc_ids is None:
            log.info("%s: reading the corpus once to count and check document ids", self.name)
            for _ in self.docs():
                pass
        return self._doc_ids or frozenset()  # set by the complete pass of docs() above

    def _query_map(self, key: str | None) -> dict[str, Query]:
        cache_key = "" if key is None else key
        if cache_key not in self._queries:
            self._queries[cache_key] = self._check_queries(self._read_queries(key))
        return self._queries[cache_key]

    def _check_queries(self, items: Iterable[tuple[Where, Query]]) -> dict[str, Query]:
        queries: dict[str, Query] = {}
        lines: dict[str, int] = {}
        for where, query in items:
            if not self._id_ok(where, where.first_field, query.query_id, "query"):
                continue
            if query.query_id in queries:
                self._bad(BadLineError(
                    where.path, where.line, where.first_field,
                    f"duplicate query id {query.query_id!r} (first at line {lines[query.query_id]})",
                    f"give every query its own id, {SKIP_HINT} (the first one is kept)",
                    reason="duplicate query id",
                ))
                continue
            if not query.text.strip():
                self._bad(BadLineError(where.path, where.line, where.second_field,
                                       f"query {query.query_id!r} has an empty text",
                                       f"write the query text or remove the query, {SKIP_HINT}",
                                       reason="empty query text"))
                continue
            queries[query.query_id] = query
            lines[query.query_id] = where.line
        return queries

    def _load_qrels(self, split: str) -> list[Qrel]:
        available = self.splits()
        if split not in available:
            raise DataError(
                f"{self.name}: no judgements (qrels) for split '{split}'. "
                f"Fix: use one of {available or 'none: this collection has no qrels'}"
                + (" (set [data].test_split / train_split)" if available else "")
            )
        known_docs = self._doc_id_set()
        if not known_docs:  # say so once, instead of blaming every judgement
            corpus = [str(p) for p in self.source_files()[:1]] or [self.name]
            raise DataError(f"{corpus[0]}: the corpus has 0 documents, so no judgement of split "
                            f"'{split}' can point at one. Fix: check [data].source (a corpus holds one "
                            "document a line)")
        known_queries = self._query_map(self._queries_key(split))
        qrels: list[Qrel] = []
        pairs: set[tuple[str, str]] = set()
        for where, qrel in self._read_qrels(split):
            if qrel.query_id not in known_queries:
                self._bad(BadLineError(
                    where.path, where.line, where.first_field,
                    f"judgement for unknown query {qrel.query_id!r}",
                    f"add the query to the queries file or remove the judgement, {SKIP_HINT}",
                    reason="judgement for an unknown query",
                ))
                continue
            if qrel.doc_id not in known_docs:
                self._bad(BadLineError(
                    where.path, where.line, where.second_field,
                    f"judgement for unknown document {qrel.doc_id!r}",
                    f"add the document to the corpus or remove the judgement, {SKIP_HINT}",
                    reason="judgement for an unknown document",
                ))
                continue
            if (qrel.query_id, qrel.doc_id) in pairs:
                self._bad(BadLineError(
                    where.path, where.line, where.second_field,
                    f"second judgement of document {qrel.doc_id!r} for query {qrel.query_id!r}",
                    f"keep one judgement per query and document, {SKIP_HINT}",
                    reason="duplicate judgement",
                ))
                continue
            pairs.add((qrel.query_id, qrel.doc_id))
            qrels.append(qrel)
        return qrels
