"""Few-shot examples come from the train split only; test queries never reach a prompt;
documents are cut by tokens of the generator's tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inpars.data import open_collection
from inpars.errors import ConfigError, DataError, StageError
from inpars.generation.prompts import (
    FewShotExample,
    PromptBuilder,
    check_no_test_queries,
    join_title,
    select_examples,
)
from inpars.generation.templates import load_template, parse_template
from inpars.records import Document, Query

DOCS = [
    {"_id": "d1", "title": "Cats", "text": "Cats are small domesticated felines that purr."},
    {"_id": "d2", "title": "Dogs", "text": "Dogs are loyal companions and descend from wolves."},
    {"_id": "d3", "title": "", "text": "The Eiffel tower stands in Paris, France."},
    {"_id": "d4", "title": "Rivers", "text": "The Amazon carries more water than any other river."},
    {"_id": "d5", "title": "", "text": ""},
]
QUERIES = [
    {"_id": "q1", "text": "do cats purr"},
    {"_id": "q2", "text": "where do dogs come from"},
    {"_id": "q3", "text": "largest river by volume"},
    {"_id": "q4", "text": "how tall is the eiffel tower"},
    {"_id": "q5", "text": "an empty document"},
    {"_id": "q6", "text": "Do cats PURR?"},
]


def tiny(write_beir: Any, qrels: dict[str, list[tuple[str, str, int]]]) -> Path:
    return write_beir(docs=DOCS, queries=QUERIES, qrels=qrels)


def test_examples_are_drawn_from_train_never_from_test(write_beir: Any) -> None:
    root = tiny(
        write_beir,
        {
            "test": [("q1", "d1", 1), ("q2", "d2", 1)],
            # q2 is judged in both splits; q6 is q1's text under another id; q5's document is empty
            "train": [
                ("q2", "d2", 1),
                ("q3", "d4", 1),
                ("q4", "d3", 2),
                ("q4", "d1", 1),
                ("q5", "d5", 1),
                ("q6", "d1", 1),
            ],
        },
    )
    collection = open_collection(root)
    for seed in range(6):
        examples = select_examples(collection, train_split="train", test_split="test", k=4, seed=seed)
        assert {ex.query_id for ex in examples} == {"q3", "q4"}
    by_id = {ex.query_id: ex for ex in examples}
    assert by_id["q4"].doc_id == "d3"  # the most relevant judged document
    assert by_id["q3"].text == "The Amazon carries more water than any other river."
    # seeded: the same seed gives the same order, another seed may differ
    again = select_examples(collection, train_split="train", test_split="test", k=4, seed=5)
    assert [e.query_id for e in again] == [e.query_id for e in examples]


def test_examples_need_a_train_split(write_beir: Any) -> None:
    collection = open_collection(tiny(write_beir, {"test": [("q1", "d1", 1)]}))
    with pytest.raises(ConfigError, match="train_split"):
        select_examples(collection, train_split="train", test_split="test", k=2, seed=0)
    with pytest.raises(ConfigError, match="both 'test'"):
        select_examples(collection, train_split="test", test_split="test", k=2, seed=0)
    only_leaky = open_collection(tiny(write_beir, {"test": [("q1", "d1", 1)], "train": [("q6", "d1", 1)]}))
    with pytest.raises(DataError, match="no judged 'train' query"):
        select_examples(only_leaky, train_split="train", test_split="test", k=2, seed=0)


@pytest.mark.needs_data
def test_scifact_examples_never_include_test_queries(shared_data: Path) -> None:
    collection = open_collection(shared_data / "scifact")
    test = collection.split_queries("test")
    test_ids = {q.query_id for q in test}
    train_ids = {q.query_id for q in collection.split_queries("train")}
    for seed in (0, 1, 42):
        examples = select_examples(collection, train_split="train", test_split="test", k=8, seed=seed)
        assert len(examples) == 8
        assert all(ex.query_id in train_ids and ex.query_id not in test_ids for ex in examples)
        builder = PromptBuilder(
            load_template("promptagator"), truncate=lambda t, n: t, doc_max_tokens=10, examples=examples
        )
        check_no_test_queries(builder.prefix, examples, test)  # raises on a leak


def test_leak_check_raises_on_a_test_query_in_the_prompt() -> None:
    test = [Query("t1", "0-dimensional biomaterials show inductive properties."), Query("t2", "cancer")]
    template = parse_template(
        "Example: 0-dimensional biomaterials show inductive properties\n\nDocument: {document}\nQuery:",
        name="leaky",
    )
    builder = PromptBuilder(template, truncate=lambda t, n: t, doc_max_tokens=10)
    with pytest.raises(StageError, match="'t1'"):
        check_no_test_queries(builder.prefix, [], test)
    example = FewShotExample("t2", "something else", "d", "", "text")
    with pytest.raises(StageError, match="is test query 't2'"):
        check_no_test_queries("", [example], test)
    same_text = FewShotExample("x9", "Cancer", "d", "", "text")
    with pytest.raises(StageError, match="is test query 't2'"):
        check_no_test_queries("", [same_text], test)
    # a one-word test query inside an ordinary word of the prompt is no leak
    check_no_test_queries("Document: cancer cells divide\nQuery:", [], test)


@pytest.mark.slow
def test_documents_are_cut_by_tokens_of_the_generator(smollm2_backend: Any) -> None:
    backend = smollm2_backend
    text = " ".join(f"Sentence {i} talks about protein folding and chaperones." for i in range(60))
    cut = backend.truncate(text, 50)
    assert text.startswith(cut)
    assert 45 <= backend.count_tokens(cut) <= 50
    assert backend.truncate("short text", 50) == "short text"
    builder = PromptBuilder(load_template("zero-shot"), truncate=backend.truncate, doc_max_tokens=50)
    prompt = builder.build(Document("x", text, "Folding"))
    body = prompt.suffix.split("Document: ", 1)[1].rsplit("\nQuery:", 1)[0]
    assert body.startswith("Folding. Sentence 0")
    assert backend.count_tokens(body) <= 50
    assert join_title("A title?", "text") == "A title? text"
