"""Tiny training sets for the trainers' tests (written by the tests, never read from disk), and
a tiny random-weight BERT start point for the fast variants (built offline, no real model)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

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


def make_tiny_bert(folder: Path, extra_words: Iterable[str] = ()) -> Path:
    """A random-weight 1-layer BERT with a word-piece tokenizer over the words of ``TOPICS``
    (and ``extra_words``)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w for _, q, t in TOPICS for w in re.findall(r"\w+|[^\w\s]", f"{q} {t}".lower())}
                   | set(extra_words))
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab.write_text("\n".join([*specials, *words]) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(specials) + len(words), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    BertTokenizerFast(str(vocab)).save_pretrained(folder)  # positional: `vocab_file` in v4, `vocab` in v5
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT folder: a start point for both trainers in the fast tests."""
    pytest.importorskip("transformers")
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
