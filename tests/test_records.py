"""inpars.records: the shared record types."""

from __future__ import annotations

import dataclasses

import pytest

from inpars.records import (
    RECORD_TYPES,
    Document,
    Dropped,
    Qrel,
    Query,
    ScoredPair,
    SyntheticQuery,
    TrainingExample,
)


def test_document_contents_joins_title_and_text() -> None:
    assert Document("d1", "Cats purr.", "Cats").contents == "Cats\nCats purr."
    assert Document("d2", "No title.").contents == "No title."


def test_synthetic_query_ids_are_unique_per_document_and_sample() -> None:
    ids = {SyntheticQuery.make_id(doc, sample) for doc in ("d1", "d2") for sample in range(3)}
    assert len(ids) == 6
    assert SyntheticQuery.make_id("d1", 0) == "d1#q0"


def test_records_are_frozen_and_hashable() -> None:
    qrel = Qrel("q1", "d1", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        qrel.relevance = 2  # type: ignore[misc]
    assert len({qrel, Qrel("q1", "d1", 1), ScoredPair("q1", "d1", 1.0)}) == 2


def test_defaults_do_not_share_state() -> None:
    a = SyntheticQuery("a#q0", "a", "x", "t", "m", 0, 1)
    b = SyntheticQuery("b#q0", "b", "y", "t", "m", 0, 1)
    assert a.settings == {} and a.settings is not b.settings
    assert a.token_logprobs == () and a.mean_logprob is None
    assert TrainingExample("q", "x", "d", "p").negatives == ()


def test_record_types_use_the_shared_field_names() -> None:
    assert set(RECORD_TYPES) == {Document, Query, Qrel, SyntheticQuery, ScoredPair, Dropped, TrainingExample}
    names = {f.name for cls in RECORD_TYPES for f in dataclasses.fields(cls)}
    assert {"doc_id", "query_id", "text", "score", "relevance"} <= names
    assert not {"docid", "qid", "id", "_id"} & names
