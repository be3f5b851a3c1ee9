"""Plain records shared by every stage, in the ir_datasets vocabulary.

Every stage reads and writes these through :mod:`inpars.io`; a field has the same name
everywhere (``doc_id``, ``query_id``, ``text``, ``title``, ``score``, ``relevance``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A document of a corpus."""

    doc_id: str
    text: str
    title: str = ""

    @property
    def contents(self) -> str:
        """Title and text joined, as Pyserini's BEIR "flat" indexes store them."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class Query:
    """A search query (a real one from a collection, or a few-shot example)."""

    query_id: str
    text: str


@dataclass(frozen=True)
class Qrel:
    """A relevance judgement."""

    query_id: str
    doc_id: str
    relevance: int


@dataclass(frozen=True)
class SyntheticQuery:
    """A query a language model wrote for a document (the output of ``generate``).

    ``token_logprobs`` are the log-probabilities of the query's tokens under the model;
    ``mean_logprob`` their mean (``None`` only when the backend gives no log-probs).
    ``sample`` numbers the queries generated for one document (0, 1, ...).
    """

    query_id: str
    doc_id: str
    text: str
    template: str
    model: str
    sample: int
    seed: int
    token_logprobs: tuple[float, ...] = ()
    mean_logprob: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def make_id(doc_id: str, sample: int) -> str:
        """The query id of sample ``sample`` for ``doc_id`` (unique within a run)."""
        return f"{doc_id}#q{sample}"


@dataclass(frozen=True)
class ScoredPair:
    """A (query, document) pair with a score: a run entry, or a relevance-model score."""

    query_id: str
    doc_id: str
    score: float


@dataclass(frozen=True)
class Dropped:
    """A synthetic query removed by a filter step, with the reason."""

    query_id: str
    doc_id: str
    text: str
    step: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class TrainingExample:
    """A training example for a reranker or a dense retriever: a query, its positive
    document and mined hard negatives (ids and texts, in the same order).

    ``teacher_scores`` (GPL-style soft labels) are a teacher's relevance scores for
    ``(positive, *negatives)`` in that order, empty when no teacher labelled the example;
    distillation losses train on their margins."""

    query_id: str
    query: str
    doc_id: str
    positive: str
    negative_ids: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    teacher_scores: tuple[float, ...] = ()


RECORD_TYPES: tuple[type, ...] = (
    Document,
    Query,
    Qrel,
    SyntheticQuery,
    ScoredPair,
    Dropped,
    TrainingExample,
)
