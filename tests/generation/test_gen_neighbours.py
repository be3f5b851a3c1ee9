"""Retrieval-augmented prompts: the ``neighbours`` template shows the target's nearest other
documents (BM25 of the run's index), in order, each cut to its budget, never the target."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from inpars.config import GenerateConfig, IndexConfig
from inpars.errors import ConfigError
from inpars.generation.neighbours import (
    QUERY_WORDS,
    SPARE_HITS,
    Bm25Neighbours,
    neighbour_search,
    neighbour_settings,
)
from inpars.generation.prompts import PromptBuilder
from inpars.generation.selection import fingerprint_settings
from inpars.generation.templates import load_template, parse_template
from inpars.records import Document, Query, ScoredPair

GOLDEN = Path(__file__).parent / "golden" / "template-neighbours.txt"
UPDATE = os.environ.get("INPARS_UPDATE_GOLDEN") == "1"

TARGET = Document(
    "d1", "Deep-sea vents release hot mineral water; microbes there fix carbon by chemosynthesis.", "Vents"
)
NEAR = [
    TARGET,  # a search for the target's own words finds the target first
    Document("d2", "Tube worms near hydrothermal vents host bacteria that oxidize sulfide for energy and "
                   "share the carbon with their host.", "Tube worms"),
    Document("d3", "Black smokers are chimneys of sulfide minerals built up where vent water meets the sea.",
             ""),
    Document("d4", "Kelp forests grow in cold shallow water near the coast.", "Kelp"),
]


def words(text: str, budget: int) -> str:
    """One word = one token."""
    return " ".join(text.split()[:budget])


def provider(docs: Sequence[Document]) -> Callable[[Document], list[Document]]:
    return lambda doc: list(docs)


def builder(docs: Sequence[Document] = NEAR, count: int = 2, budget: int = 6) -> PromptBuilder:
    return PromptBuilder(load_template("neighbours"), truncate=words, doc_max_tokens=12,
                         neighbours=provider(docs), neighbour_count=count, neighbour_max_tokens=budget)


def test_neighbours_render_in_order_cut_to_budget_without_the_target() -> None:
    prompt = builder().build(TARGET)
    if UPDATE:
        GOLDEN.write_text(prompt.text, encoding="utf-8")
    assert prompt.text == GOLDEN.read_text(encoding="utf-8")
    assert prompt.prefix.endswith("Query: SIRT6 overexpression extends lifespan in male mice\n\n"
                                  "Similar documents:\n")
    assert prompt.suffix == (
        "1. Tube worms. Tube worms near hydrothermal\n"  # 6 words
        "2. Black smokers are chimneys of sulfide\n"
        "Target document: Vents. Deep-sea vents release hot mineral water; microbes there fix carbon by\n"
        "Query:"
    )
    assert "Kelp" not in prompt.text  # only the first two neighbours
    # the worked examples are the shared prefix; every document's neighbours are in its suffix
    assert "{neighbours}" not in prompt.prefix and "Similar documents:\n1. Lithium" in prompt.prefix
    assert builder().build(TARGET) == prompt  # deterministic


def test_the_target_is_never_its_own_neighbour_nor_a_copy_of_it() -> None:
    copy = Document("d9", TARGET.text, TARGET.title)  # the same text under another id
    empty = Document("d8", "", "")
    block = builder([TARGET, copy, empty, NEAR[3], NEAR[3], NEAR[1]], count=3).neighbours_block(TARGET)
    assert block == "1. Kelp. Kelp forests grow in cold\n2. Tube worms. Tube worms near hydrothermal"
    assert builder([TARGET], count=2).neighbours_block(TARGET) == "(none)"


def test_a_neighbours_template_without_a_search_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\{neighbours\}.*Fix: ") as err:
        PromptBuilder(load_template("neighbours"), truncate=words, doc_max_tokens=12)
    assert "'neighbours'" in str(err.value)
    with pytest.raises(ConfigError, match=r"generate\.neighbours = 0"):
        PromptBuilder(load_template("neighbours"), truncate=words, doc_max_tokens=12,
                      neighbours=provider(NEAR), neighbour_count=0)
    # templates without {neighbours} need no search, and ignore one
    plain = PromptBuilder(load_template("zero-shot"), truncate=words, doc_max_tokens=12,
                          neighbours=provider(NEAR))
    assert "Tube worms" not in plain.build(TARGET).text


def test_custom_templates_may_show_neighbours_before_the_target(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("Write a query.\nOthers:\n{neighbours}\nThis one: {title}\nQuery:\n", encoding="utf-8")
    template = load_template(str(path))
    assert template.uses_neighbours and template.split_at_target()[0] == "Write a query.\nOthers:\n"
    prompt = PromptBuilder(template, truncate=words, doc_max_tokens=5, neighbours=provider(NEAR),
                           neighbour_count=1, neighbour_max_tokens=2).build(TARGET)
    assert prompt.suffix == "1. Tube worms.\nThis one: Vents\nQuery:"
    with pytest.raises(ConfigError, match="after the target document"):
        parse_template("{neighbours}\n{examples}\nD: {document}\n--- example ---\nQ: {query}", name="x")
    with pytest.raises(ConfigError, match="unknown placeholder"):
        parse_template("{examples}\nD: {document}\n--- example ---\nQ: {query} {neighbours}", name="x")


class FakeSearcher:
    """A BM25 searcher over fixed hits; records the queries it was asked."""

    def __init__(self, ranked: Sequence[Document]) -> None:
        self.docs = {d.doc_id: d for d in ranked}
        self.ranked = [d.doc_id for d in ranked]
        self.asked: list[tuple[str, str, int]] = []
        self.closed = False

    def search(self, queries: Sequence[Query], k: int) -> dict[str, list[ScoredPair]]:
        self.asked.extend((q.query_id, q.text, k) for q in queries)
        return {q.query_id: [ScoredPair(q.query_id, d, 10.0 - i) for i, d in enumerate(self.ranked[:k])]
                for q in queries}

    def document(self, doc_id: str) -> Document:
        return self.docs[doc_id]

    def close(self) -> None:
        self.closed = True


def test_bm25_neighbours_search_with_the_targets_words_and_drop_the_target() -> None:
    searcher = FakeSearcher(NEAR)
    long_doc = Document("d1", " ".join(f"w{i}" for i in range(300)), "Title")
    found = Bm25Neighbours(searcher, 2)(long_doc)
    assert [d.doc_id for d in found] == ["d2", "d3", "d4"]  # the builder keeps the first two
    query_id, text, k = searcher.asked[0]
    assert query_id == "d1" and k == 2 + SPARE_HITS
    assert text.split() == ["Title.", *(f"w{i}" for i in range(QUERY_WORDS - 1))]
    assert Bm25Neighbours(searcher, 2)(Document("e", "", "")) == []


def test_the_search_opens_only_for_a_neighbours_template_and_closes() -> None:
    opened: list[FakeSearcher] = []

    def open_bm25() -> FakeSearcher:
        opened.append(FakeSearcher(NEAR))
        return opened[-1]

    with neighbour_search(GenerateConfig(template="inpars"), open_bm25) as none:
        assert none is None
    assert not opened
    with neighbour_search(GenerateConfig(template="neighbours", neighbours=3), open_bm25) as found:
        assert found is not None and found.count == 3
    assert len(opened) == 1 and opened[0].closed


def test_fingerprints_of_other_templates_do_not_see_the_neighbour_keys() -> None:
    index = IndexConfig()
    plain = neighbour_settings(fingerprint_settings(GenerateConfig()), GenerateConfig(), index)
    assert "neighbours" not in plain and "neighbour_max_tokens" not in plain and "neighbour_bm25" not in plain
    assert plain == neighbour_settings(fingerprint_settings(GenerateConfig(neighbours=5)),
                                       GenerateConfig(neighbours=5), index)
    cfg = GenerateConfig(template="neighbours")
    shown = neighbour_settings(fingerprint_settings(cfg), cfg, IndexConfig(k1=1.2))
    assert shown["neighbours"] == 2 and shown["neighbour_bm25"] == {"k1": 1.2, "b": 0.4}


@pytest.mark.slow
def test_real_bm25_neighbours_of_a_tiny_index(write_beir: Callable[..., Path], tmp_path: Path) -> None:
    """The real searcher (JVM): neighbours sharing the target's words, best first, never the target."""
    from inpars.data import open_collection
    from inpars.indexing import Bm25Searcher, build_bm25_index

    docs = [{"_id": d.doc_id, "title": d.title, "text": d.text} for d in NEAR[::-1]]
    root = write_beir(docs, [{"_id": "q", "text": "vents"}], {"test": [("q", "d1", 1)]})
    collection = open_collection(root)
    with Bm25Searcher(build_bm25_index(collection, tmp_path / "bm25")) as searcher:
        found = Bm25Neighbours(searcher, 2)(TARGET)
        again = Bm25Neighbours(searcher, 2)(TARGET)
    ids = [d.doc_id for d in found]
    assert "d1" not in ids and set(ids[:2]) == {"d2", "d3"} and found == again  # d4 shares only "water"
    assert {d.doc_id: d for d in found}["d2"] == NEAR[1]  # read back from the index


def test_the_stage_hands_the_search_to_the_prompts(write_beir: Callable[..., Path], tmp_path: Path,
                                                   tiny_gpt2: Path) -> None:
    """generate_stage with the neighbours template, fast: every chosen document is searched for
    once; without a search the stage stops with the ConfigError."""
    from inpars.data import open_collection
    from inpars.generation import generate_stage
    from inpars.manifest import run_stage

    collection = open_collection(write_beir())  # 4 docs
    cfg = GenerateConfig(template="neighbours", backend="hf-causal", model=str(tiny_gpt2), device="cpu",
                         num_docs=2, queries_per_doc=1, max_new_tokens=4, threads=1)
    searched: list[str] = []

    def search(doc: Document) -> list[Document]:
        searched.append(doc.doc_id)
        return [doc, Document("other", "Kelp forests grow in cold water.", "Kelp")]

    def body(neighbours: Callable[[Document], list[Document]] | None) -> Callable[[Any], None]:
        return lambda ctx: generate_stage(ctx, cfg, collection, train_split="train", test_split="test",
                                          neighbours=neighbours)

    result = run_stage("generate", tmp_path / "generate", cfg, {}, body(search), seed=1)
    assert result.manifest["counts"]["docs"] == 2 and len(set(searched)) == 2
    with pytest.raises(ConfigError, match="no neighbour search"):
        run_stage("generate", tmp_path / "none", cfg, {}, body(None), seed=1)
