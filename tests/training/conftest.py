"""Tiny training sets for the trainers' tests (written by the tests, never read from disk)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from inpars.records import TrainingExample

TOPICS: list[tuple[str, str, str]] = [
    ("d1", "do cats purr", "Cats are small domesticated felines that purr when content."),
    ("d2", "where do dogs come from", "Dogs descend from wolves and were domesticated long ago."),
    ("d3", "where is the eiffel tower", "The Eiffel tower is a wrought-iron tower in Paris, France."),
    ("d4", "largest river by volume", "The Amazon carries more water than any other river on Earth."),
    ("d5", "what causes coral bleaching", "Warm ocean water makes corals expel their algae and bleach."),
    ("d6", "why does python have a gil", "CPython's global interpreter lock lets one thread run at a time."),
    ("d7", "how do vaccines work", "Vaccines train the immune system to recognise a pathogen."),
    ("d8", "what is photosynthesis", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
]


def _make_examples(negatives: int = 2) -> list[TrainingExample]:
    """One example per topic; its negatives are the next topics' documents."""
    out = []
    for i, (doc_id, query, text) in enumerate(TOPICS):
        others = [TOPICS[(i + k) % len(TOPICS)] for k in range(1, negatives + 1)]
        out.append(TrainingExample(
            query_id=f"q{i}", query=query, doc_id=doc_id, positive=text,
            negative_ids=tuple(o[0] for o in others), negatives=tuple(o[2] for o in others),
        ))
    return out


@pytest.fixture(scope="session")
def make_examples() -> Callable[..., list[TrainingExample]]:
    """Builds the tiny set (one example per topic, ``negatives`` mined negatives each)."""
    return _make_examples


@pytest.fixture
def tiny_examples() -> list[TrainingExample]:
    return _make_examples()
