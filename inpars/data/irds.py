"""Collections from ir_datasets: a registered id (``beir/scifact/test``) or a dataset object.

ir_datasets is imported only when such a collection is opened. For an id, the split is
its last part (``beir/scifact/test`` -> ``test``); registered siblings that share the same
corpus (``beir/scifact/train``) are offered as further splits, loaded only when asked for.
ir_datasets downloads a collection on first use; a failed download becomes a
:class:`~inpars.errors.DataError` that says how to work offline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from inpars.bad_lines import LineReport
from inpars.data.collection import Collection, Where
from inpars.errors import DataError, DependencyError, InparsError
from inpars.records import Document, Qrel, Query

log = logging.getLogger(__name__)

PREFIX = "irds:"
OFFLINE_FIX = (
    "ir_datasets downloads a collection on first use, which needs internet access; offline, point "
    "[data].source at a local BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)"
)


def _ir_datasets() -> Any:
    try:
        import ir_datasets
    except ImportError as exc:
        raise DependencyError("ir_datasets is not installed. Fix: pip install ir-datasets") from exc
    return ir_datasets


def strip_prefix(dataset_id: str) -> str:
    """``irds:beir/scifact/test`` -> ``beir/scifact/test``."""
    return dataset_id[len(PREFIX):] if dataset_id.startswith(PREFIX) else dataset_id


def is_registered(dataset_id: str) -> bool:
    """Whether ir_datasets knows ``dataset_id`` (no download)."""
    try:
        _ir_datasets().load(strip_prefix(dataset_id))
    except KeyError:
        return False
    return True


def _text(record: Any) -> str:
    text = getattr(record, "text", None)
    if isinstance(text, str):
        return text
    return str(record.default_text())


class IrDatasetsCollection(Collection):
    """A collection read through the ir_datasets API (``docs_iter``, ``queries_iter``,
    ``qrels_iter``)."""

    def __init__(
        self,
        dataset: Any,
        *,
        name: str = "",
        split: str = "",
        report: LineReport | None = None,
    ) -> None:
        self.dataset_id = ""
        if isinstance(dataset, str):
            self.dataset_id = strip_prefix(dataset)
            try:
                dataset = _ir_datasets().load(self.dataset_id)
            except KeyError:
                raise DataError(
                    f"'{self.dataset_id}' is not an ir_datasets id. Fix: pick one from "
                    "https://ir-datasets.com (e.g. beir/scifact/test), or give a local folder or file"
                ) from None
        if not all(hasattr(dataset, m) for m in ("has_docs", "has_queries", "has_qrels")):
            raise DataError(
                f"{dataset!r} is not an ir_datasets dataset. Fix: pass an id or ir_datasets.load(id)"
            )
        if not dataset.has_docs():
            raise DataError(f"{self.dataset_id or dataset!r}: this ir_datasets dataset has no documents. "
                            "Fix: use an id that includes a corpus, e.g. beir/scifact/test")
        self.dataset = dataset
        super().__init__(name or self.dataset_id or "ir_datasets", report=report)
        self._split_datasets: dict[str, Any] = {}
        if dataset.has_qrels():
            parts = self.dataset_id.split("/")
            primary = split or (parts[-1] if len(parts) > 1 else "test")
            self._split_datasets[primary] = dataset
            self._split_datasets.update(self._siblings(exclude=primary))
        log.info("%s: ir_datasets collection, splits %s", self.name, self.splits() or "none")

    def _siblings(self, exclude: str) -> dict[str, Any]:
        """Registered datasets beside this id with the same corpus and their own qrels."""
        if "/" not in self.dataset_id:
            return {}
        irds = _ir_datasets()
        parent = self.dataset_id.rsplit("/", 1)[0]
        found: dict[str, Any] = {}
        for other in sorted(irds.registry):
            rest = other[len(parent) + 1:] if other.startswith(parent + "/") else ""
            if not rest or "/" in rest or other == self.dataset_id or rest == exclude:
                continue
            candidate = irds.load(other)
            same_corpus = candidate.has_docs() and candidate.docs_handler() is self.dataset.docs_handler()
            if same_corpus and candidate.has_qrels() and candidate.has_queries():
                found[rest] = candidate
        return found

    # ------------------------------------------------------------------ Collection hooks
    def splits(self) -> list[str]:
        return list(self._split_datasets)

    def _queries_key(self, split: str) -> str | None:
        return None if self._split_datasets.get(split) is self.dataset else split

    def _label(self, part: str, split: str | None = None) -> str:
        dataset = self._split_datasets[split] if split is not None else self.dataset
        base = self.dataset_id if dataset is self.dataset else f"{self.dataset_id.rsplit('/', 1)[0]}/{split}"
        return f"{PREFIX}{base or self.name}/{part}"

    def _guard(self, items: Iterable[Any], what: str) -> Iterator[Any]:
        """Iterate an ir_datasets iterator, turning its failures (downloads) into DataError."""
        try:
            yield from items
        except InparsError:
            raise
        except Exception as exc:
            raise DataError(f"{self.name}: ir_datasets could not read the {what} ({exc}). "
                            f"Fix: {OFFLINE_FIX}") from exc

    def _read_docs(self) -> Iterator[tuple[Where, Document]]:
        label = self._label("docs")
        for number, doc in enumerate(self._guard(self.dataset.docs_iter(), "documents"), start=1):
            title = getattr(doc, "title", "") or ""
            yield Where(label, number, "doc_id", "text"), Document(str(doc.doc_id), _text(doc), str(title))

    def _read_queries(self, split: str | None) -> Iterator[tuple[Where, Query]]:
        dataset = self.dataset if split is None else self._split_datasets[split]
        if not dataset.has_queries():
            return
        label = self._label("queries", split)
        for number, query in enumerate(self._guard(dataset.queries_iter(), "queries"), start=1):
            yield Where(label, number, "query_id", "text"), Query(str(query.query_id), _text(query))

    def _read_qrels(self, split: str) -> Iterator[tuple[Where, Qrel]]:
        label = self._label("qrels", split)
        qrels = self._split_datasets[split].qrels_iter()
        for number, qrel in enumerate(self._guard(qrels, "qrels"), start=1):
            where = Where(label, number, "query_id", "doc_id")
            yield where, Qrel(str(qrel.query_id), str(qrel.doc_id), int(qrel.relevance))
