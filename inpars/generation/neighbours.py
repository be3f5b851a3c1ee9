"""The neighbours a retrieval-augmented prompt shows (the ``neighbours`` template): the
documents BM25 ranks highest for the target document's own words.

:class:`Bm25Neighbours` is a :data:`~inpars.generation.prompts.NeighbourProvider` over the
run's BM25 index (``Workspace.bm25()``): the target's title and text (its first
``QUERY_WORDS`` words) as a bag-of-words query, the hits read back from the index. It asks for
a few more hits than it needs, as the target itself (normally the first hit) and copies of its
text are left out by :class:`~inpars.generation.prompts.PromptBuilder`. Deterministic: the same
index and document give the same neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from inpars.config import GenerateConfig, IndexConfig
from inpars.generation.prompts import join_title
from inpars.generation.templates import load_template
from inpars.records import Document, Query, ScoredPair

QUERY_WORDS = 100  # words of the target that make the query (bounded, as Lucene bounds clauses)
SPARE_HITS = 3  # hits asked for beyond ``count``: the target and copies of it are left out


class Searcher(Protocol):
    """What :class:`Bm25Neighbours` needs of :class:`inpars.indexing.Bm25Searcher`."""

    def search(self, queries: Sequence[Query], k: int) -> dict[str, list[ScoredPair]]: ...

    def document(self, doc_id: str) -> Document: ...


class Bm25Neighbours:
    """``doc -> its top BM25 neighbours``, best first (the target is dropped when it is hit)."""

    def __init__(self, searcher: Searcher, count: int) -> None:
        self.searcher = searcher
        self.count = count

    def __call__(self, doc: Document) -> list[Document]:
        words = join_title(doc.title, doc.text).split()[:QUERY_WORDS]
        if not words or self.count < 1:
            return []
        hits = self.searcher.search([Query(doc.doc_id, " ".join(words))], self.count + SPARE_HITS)
        return [self.searcher.document(hit.doc_id) for hit in hits.get(doc.doc_id, [])
                if hit.doc_id != doc.doc_id]


NEIGHBOUR_KEYS = ("neighbours", "neighbour_max_tokens")  # the [generate] keys of this module


def shows_neighbours(cfg: GenerateConfig) -> bool:
    """Whether ``generate.template`` shows the target's neighbours (``{neighbours}``)."""
    return load_template(cfg.template).uses_neighbours


def neighbour_settings(settings: Mapping[str, Any], cfg: GenerateConfig,
                       index: IndexConfig) -> dict[str, Any]:
    """The ``[generate]`` settings the stage is fingerprinted with (``settings``) less
    :data:`NEIGHBOUR_KEYS` when the template shows no neighbours (the fingerprints of runs
    finished before the keys existed stay valid); with the BM25 parameters that rank the
    neighbours when it does."""
    if not shows_neighbours(cfg):
        return {k: v for k, v in settings.items() if k not in NEIGHBOUR_KEYS}
    return {**settings, "neighbour_bm25": {"k1": index.k1, "b": index.b}}


@contextmanager
def neighbour_search(cfg: GenerateConfig, open_bm25: Callable[[], Any]) -> Iterator[Bm25Neighbours | None]:
    """The neighbour provider of ``cfg`` over the searcher ``open_bm25()`` opens (closed on
    exit), or ``None`` when the template shows no neighbours (nothing is opened)."""
    if not shows_neighbours(cfg):
        yield None
        return
    searcher = open_bm25()
    try:
        yield Bm25Neighbours(searcher, cfg.neighbours)
    finally:
        searcher.close()
