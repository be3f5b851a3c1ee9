"""Documents by id, from whatever holds them: the one document lookup of every stage.

A :class:`DocumentLookup` answers ``get(doc_id) -> Document`` over

- a mapping id -> :class:`~inpars.records.Document` (or id -> text),
- a store that returns a document by id (``document(doc_id)``, like
  ``inpars.indexing.Bm25Searcher``); the most recent ``cache_size`` are kept in memory,
- a collection that streams its documents (``docs()``, like :class:`inpars.data.Collection`):
  read once for the ``needed`` ids (a big corpus is never held whole in memory), or
- a function id -> text.

An id that a mapping or a collection lacks raises :class:`~inpars.errors.DataError` naming
the id and the ``fix`` the caller gives (a store and a function raise their own errors).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, cast, runtime_checkable

from inpars.errors import DataError
from inpars.records import Document

DEFAULT_FIX = "use the collection the ids come from"


@runtime_checkable
class DocumentStore(Protocol):
    """Anything that returns a document by id (``inpars.indexing.Bm25Searcher`` does)."""

    def document(self, doc_id: str) -> Document: ...


@runtime_checkable
class DocumentStream(Protocol):
    """A collection that streams its documents (:class:`inpars.data.Collection` does)."""

    def docs(self) -> Iterable[Document]: ...


DocumentSource = (
    Callable[[str], str] | Mapping[str, str] | Mapping[str, Document] | DocumentStore | DocumentStream
)


class DocumentLookup:
    """Documents by id from any :data:`DocumentSource` (see the module doc).

    ``needed``: the ids a streamed collection is read for (once, on the first lookup);
    asking for another id reads it again. ``fix`` ends the error about a missing id.
    """

    def __init__(
        self,
        source: DocumentSource,
        needed: Iterable[str] = (),
        *,
        fix: str = DEFAULT_FIX,
        cache_size: int = 100_000,
    ) -> None:
        if not isinstance(source, DocumentStore | Mapping | DocumentStream) and not callable(source):
            raise DataError(f"cannot look documents up in a {type(source).__name__}. "
                            "Fix: pass a mapping, a function, a Bm25Searcher or a Collection")
        self.source = source
        self.fix = fix
        self._stream: DocumentStream | None = None  # a store or a mapping is asked directly instead
        if isinstance(source, DocumentStream) and not isinstance(source, DocumentStore | Mapping):
            self._stream = source
        self.cache_size = cache_size
        self._needed = set(needed)
        self._searched: set[str] = set()  # ids a pass over a stream looked for
        self._streamed: dict[str, Document] = {}
        self._recent: OrderedDict[str, Document] = OrderedDict()  # store lookups, least recent first

    def get(self, doc_id: str) -> Document:
        """The document ``doc_id``; a missing one raises :class:`DataError` with the fix."""
        source = self.source
        if isinstance(source, DocumentStore):
            return self._from_store(source, doc_id)
        if isinstance(source, Mapping):
            try:
                value = source[doc_id]
            except KeyError:
                raise self._missing([doc_id]) from None
            return value if isinstance(value, Document) else Document(doc_id, str(value))
        if self._stream is not None:
            if doc_id not in self._streamed and doc_id not in self._searched:
                self._read_stream(self._stream, {doc_id})
            if doc_id not in self._streamed:
                raise self._missing([doc_id])
            return self._streamed[doc_id]
        return Document(doc_id, cast(Callable[[str], str], source)(doc_id))  # callable, checked on init

    def fetch(self, doc_ids: Iterable[str]) -> dict[str, Document]:
        """The documents with these ids, all at once (a stream is read once for all of them);
        the ones missing raise one :class:`DataError` that names them."""
        wanted = dict.fromkeys(doc_ids)
        if self._stream is not None:
            unread = {d for d in wanted if d not in self._streamed and d not in self._searched}
            if unread:
                self._read_stream(self._stream, unread)
            missing = [d for d in wanted if d not in self._streamed]
            if missing:
                raise self._missing(missing)
        return {doc_id: self.get(doc_id) for doc_id in wanted}

    # ------------------------------------------------------------------ helpers
    def _from_store(self, store: DocumentStore, doc_id: str) -> Document:
        doc = self._recent.get(doc_id)
        if doc is not None:
            self._recent.move_to_end(doc_id)
            return doc
        doc = store.document(doc_id)
        self._recent[doc_id] = doc
        if len(self._recent) > self.cache_size:
            self._recent.popitem(last=False)
        return doc

    def _read_stream(self, stream: DocumentStream, ids: set[str]) -> None:
        """One pass over the stream keeping ``ids`` and the ``needed`` ones not read yet."""
        wanted = (ids | self._needed) - self._searched
        for doc in stream.docs():
            if doc.doc_id in wanted:
                self._streamed[doc.doc_id] = doc
        self._searched |= wanted

    def _missing(self, doc_ids: list[str]) -> DataError:
        missing = sorted(set(doc_ids))
        if len(missing) == 1:
            return DataError(f"document {missing[0]!r} is not in the collection. Fix: {self.fix}")
        return DataError(f"{len(missing)} documents are not in the collection (e.g. {missing[:3]}). "
                         f"Fix: {self.fix}")
