"""Document expansion with synthetic queries (docT5query; Doc2Query--, Gospodinov et al. 2023).

The ``expand`` stage indexes every document again, its title and text followed by the
synthetic queries written for it (each ``repeat`` times; documents without queries are
indexed unchanged), in a second BM25 index of the run (the stage folder's ``bm25/``, never
the shared ``index/``: it depends on this run's queries), and searches the test queries in
it: the run ``bm25-expanded``, which the evaluate stage reports beside ``bm25``.

Doc2Query-- is this with the queries filtered first (``[expand] source = "kept"``, the
filter stage's output); ``"generated"`` expands with every generated query, to compare.

Leakage: only the collection's documents and the synthetic queries go into the index;
the test queries are only searched. The filter's contamination step (run whenever
evaluation queries are known) has dropped the synthetic queries too close to them; the
manifest says whether it ran on the queries used, and counts appended queries that are
still exact copies of a test query (``test_query_copies``; 0 expected).

The expanded corpus has no source files of its own, so its index is identified by a
digest of the expanded documents (:func:`inpars.indexing.store.corpus_fingerprint`): the
same queries rebuild nothing, other queries rebuild it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from inpars.config import ExpandConfig, IndexConfig
from inpars.errors import DataError
from inpars.indexing.bm25 import Bm25Searcher, ensure_bm25_index
from inpars.indexing.store import Corpus, empty_corpus_error
from inpars.manifest import StageContext
from inpars.records import Document, Query, SyntheticQuery
from inpars.trec import write_trec_run

log = logging.getLogger(__name__)

SYSTEM = "bm25-expanded"  # the run's system name (runs/bm25-expanded.trec)
INDEX_DIR = "bm25"  # the expanded index, in the stage folder


def bm25_params(cfg: ExpandConfig, index: IndexConfig) -> tuple[float, float]:
    """``k1`` and ``b`` of the expanded index's search: ``[expand]``'s, else ``[index]``'s."""
    return (index.k1 if cfg.k1 is None else cfg.k1, index.b if cfg.b is None else cfg.b)


def group_expansions(queries: Iterable[SyntheticQuery]) -> dict[str, list[str]]:
    """Document id -> the texts of its queries, in the order the queries come (read once:
    only the texts are kept)."""
    grouped: dict[str, list[str]] = {}
    for query in queries:
        grouped.setdefault(query.doc_id, []).append(query.text)
    return grouped


def expand_document(doc: Document, texts: Sequence[str]) -> Document:
    """``doc`` with ``texts`` appended to its text, one a line (unchanged without texts)."""
    if not texts:
        return doc
    return Document(doc.doc_id, "\n".join(part for part in (doc.text, *texts) if part), doc.title)


class ExpandedCorpus:
    """A corpus whose documents carry their expansion texts, each ``repeat`` times (what
    :func:`ensure_bm25_index` indexes). Each full pass over :meth:`docs` records the
    documents it saw, so that :meth:`unknown_ids` can name expansions that point at none."""

    def __init__(self, corpus: Corpus, expansions: Mapping[str, Sequence[str]], repeat: int = 1) -> None:
        if repeat < 1:
            raise ValueError(f"repeat = {repeat}: must be at least 1")
        self.base = corpus
        self.expansions = expansions
        self.repeat = repeat
        self.name = f"{corpus.name}+expansion"
        self.documents = 0
        self.expanded: set[str] = set()
        self._passes = 0

    def docs(self) -> Iterator[Document]:
        seen, expanded = 0, set()
        for doc in self.base.docs():
            texts = self.expansions.get(doc.doc_id, ())
            if texts:
                expanded.add(doc.doc_id)
            seen += 1
            yield expand_document(doc, list(texts) * self.repeat)
        self.documents, self.expanded = seen, expanded
        self._passes += 1

    def source_files(self) -> list[Path]:
        return []  # identified by a digest of the expanded documents, not by the corpus files

    def count_docs(self) -> int:
        return self.base.count_docs()

    def unknown_ids(self) -> set[str]:
        """Expansion document ids that are not in the corpus (reads it once if not read yet)."""
        if not self._passes:
            for _ in self.docs():
                pass
        return set(self.expansions) - self.expanded


def _normalized(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def count_test_copies(expansions: Mapping[str, Sequence[str]], test_queries: Sequence[Query]) -> int:
    """How many expansion texts are, case and punctuation aside, a test query's text."""
    tests = {_normalized(q.text) for q in test_queries}
    return sum(1 for texts in expansions.values() for text in texts if _normalized(text) in tests)


def build_expanded_index(corpus: ExpandedCorpus, folder: Path, *, threads: int = 1) -> tuple[Path, bool]:
    """Build (or reuse) the BM25 index of the expanded ``corpus`` in ``folder`` (atomically:
    :func:`ensure_bm25_index`); says whether it built. Every expansion must name a document."""
    base = corpus.base
    if base.count_docs() == 0:
        raise empty_corpus_error(base)
    unknown = corpus.unknown_ids()
    if unknown:
        raise DataError(
            f"{base.name}: synthetic queries were written for {len(unknown)} document(s) not in the "
            f"collection (e.g. {sorted(unknown)[:3]}). Fix: expand with the collection the queries were "
            "generated from ([data] source), or rerun generate and filter"
        )
    return ensure_bm25_index(corpus, folder, threads=threads)


def expand_stage(
    ctx: StageContext,
    cfg: ExpandConfig,
    index: IndexConfig,
    collection: Corpus,
    queries: Iterable[SyntheticQuery],
    test_queries: Sequence[Query],
    *,
    contamination_checked: bool = False,
    index_path: Path | None = None,
) -> None:
    """Index ``collection`` with ``queries`` appended to their documents (``cfg.repeat``
    times each) into ``ctx.out_dir/bm25`` and write the top-``index.depth`` run of
    ``test_queries`` to ``runs/bm25-expanded.trec``.

    ``contamination_checked``: whether the filter's contamination step ran on ``queries``
    (recorded); ``index_path``: where the index will be once the stage folder is in place
    (recorded; default: where it is built).
    """
    if not test_queries:
        raise DataError(f"{collection.name}: no test queries to search the expanded index with. "
                        "Fix: set [data] test_split to a split that has qrels")
    with ctx.timed("read"):
        expansions = group_expansions(queries)
        corpus = ExpandedCorpus(collection, expansions, cfg.repeat)
    appended = sum(map(len, expansions.values()))
    k1, b = bm25_params(cfg, index)
    with ctx.timed("bm25_index"):
        folder, built = build_expanded_index(corpus, ctx.out_dir / INDEX_DIR, threads=index.threads)
    with ctx.timed("bm25_search"), Bm25Searcher(folder, k1=k1, b=b) as searcher:
        run = searcher.search(test_queries, index.depth, threads=index.threads,
                              remove_self_hits=index.remove_self_hits)
        info = {"fingerprint": searcher.manifest["fingerprint"], "lucene": searcher.manifest.get("lucene")}
    path = ctx.out_dir / "runs" / f"{SYSTEM}.trec"
    ctx.counts.update({
        "documents": corpus.documents,
        "expanded_documents": len(corpus.expanded),
        "appended_queries": appended,
        "test_queries": len(test_queries),
        "test_query_copies": count_test_copies(expansions, test_queries),
        f"{SYSTEM}_hits": write_trec_run(path, run, tag=SYSTEM),
        f"{SYSTEM}_queries_without_hits": sum(1 for pairs in run.values() if not pairs),
    })
    ctx.output(f"run:{SYSTEM}", path)
    ctx.extra.update({
        "bm25": {"index": str(index_path or folder), "built": built, "k1": k1, "b": b, **info},
        "source": cfg.source, "repeat": cfg.repeat, "appended_texts": appended * cfg.repeat,
        "contamination_checked": contamination_checked,
    })
    if ctx.counts["test_query_copies"]:
        log.warning("expand: %d appended synthetic queries are copies of test queries (contamination "
                    "checked: %s)", ctx.counts["test_query_copies"], contamination_checked)
    log.info("expand: %d of %d documents expanded with %d queries (x%d) -> %s", len(corpus.expanded),
             corpus.documents, appended, cfg.repeat, path)
