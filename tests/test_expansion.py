"""Document expansion with synthetic queries (Doc2Query--): the expanded documents, the
``[expand]`` section, and the stage's library function (fast with a fake BM25, slow with Lucene)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import inpars.expansion as expansion
from inpars.config import ExpandConfig, IndexConfig, load_config, parse_config
from inpars.data import open_collection
from inpars.errors import ConfigError, DataError
from inpars.expansion import (
    ExpandedCorpus,
    bm25_params,
    count_test_copies,
    expand_document,
    expand_stage,
    group_expansions,
)
from inpars.indexing import Corpus
from inpars.manifest import run_stage
from inpars.records import Document, Query, SyntheticQuery
from inpars.trec import read_trec_run
from tests.indexing.fakes import FakeBm25

DOCS = [
    {"_id": "d1", "title": "Volcano", "text": "Lava and ash erupt from an active volcano."},
    {"_id": "d2", "title": "Glacier", "text": "Glaciers are slow rivers of ice that carve valleys."},
    {"_id": "d3", "title": "", "text": "The Eiffel tower stands in Paris, France."},
    {"_id": "d4", "title": "Ocean", "text": "Ocean currents move heat from the tropics toward the poles."},
]
# q1's words are in no document: only d3's expansion ("photographs of a famous landmark") has them
TEST_QUERIES = [{"_id": "q1", "text": "landmark photographs"}, {"_id": "q2", "text": "volcano lava"}]
QRELS = {"test": [("q1", "d3", 1), ("q2", "d1", 1)]}


def synthetic(doc_id: str, text: str, sample: int = 0) -> SyntheticQuery:
    return SyntheticQuery(SyntheticQuery.make_id(doc_id, sample), doc_id, text, "inpars", "toy", sample, 1)


SYNTHETIC = [synthetic("d3", "photographs of a famous landmark"), synthetic("d3", "paris tower", 1),
             synthetic("d2", "how do glaciers move")]


def test_documents_get_their_queries_appended() -> None:
    grouped = group_expansions(SYNTHETIC)
    assert grouped == {"d3": ["photographs of a famous landmark", "paris tower"],
                       "d2": ["how do glaciers move"]}
    doc = Document("d3", "The Eiffel tower.", "Tower")
    assert expand_document(doc, grouped["d3"]).contents == (
        "Tower\nThe Eiffel tower.\nphotographs of a famous landmark\nparis tower")
    assert expand_document(doc, []) is doc
    assert expand_document(Document("d9", ""), ["q"]).text == "q"


def test_expanded_corpus_counts_and_names_unknown_documents(write_beir: Callable[..., Path]) -> None:
    collection = open_collection(write_beir(DOCS, TEST_QUERIES, QRELS))
    corpus = ExpandedCorpus(collection, {"d3": ["a", "b"], "d7": ["c"]}, repeat=2)
    assert corpus.source_files() == [] and corpus.count_docs() == 4 and corpus.name == "tiny+expansion"
    assert corpus.unknown_ids() == {"d7"}  # reads the corpus once when nothing read it yet
    assert corpus.documents == 4 and corpus.expanded == {"d3"}
    texts = {d.doc_id: d.text for d in corpus.docs()}
    assert texts["d3"] == f"{DOCS[2]['text']}\na\nb\na\nb" and texts["d1"] == DOCS[0]["text"]
    with pytest.raises(ValueError, match="repeat = 0"):
        ExpandedCorpus(collection, {}, repeat=0)


def test_copies_of_test_queries_are_counted() -> None:
    tests = [Query("q1", "Landmark photographs?")]
    assert count_test_copies({"d1": ["landmark  photographs", "landmarks"], "d2": ["x"]}, tests) == 1


def test_expand_section_is_off_by_default_and_checked(tmp_path: Path) -> None:
    assert parse_config({}).expand == ExpandConfig() and not ExpandConfig().enabled
    path = tmp_path / "x.toml"
    path.write_text('[expand]\nenabled = true\nsource = "generated"\nrepeat = 2\nk1 = 1.2\n')
    cfg = load_config(path).expand
    assert (cfg.enabled, cfg.source, cfg.repeat, cfg.k1, cfg.b) == (True, "generated", 2, 1.2, None)
    assert bm25_params(cfg, IndexConfig(k1=0.9, b=0.4)) == (1.2, 0.4)
    path.write_text("[expand]\nrepet = 2\n")
    closest = r"\[expand\]: unknown key 'repet' \(did you mean 'repeat'\?\)\. Fix: use one of enabled"
    with pytest.raises(ConfigError, match=closest):
        load_config(path)
    with pytest.raises(ConfigError, match=r"\[expand\] source: expected one of 'kept', 'generated'"):
        parse_config({"expand": {"source": "all"}})
    for bad, message in (({"repeat": 0}, "repeat = 0"), ({"b": 1.5}, "b = 1.5"), ({"k1": -1}, "k1 = -1")):
        with pytest.raises(ConfigError, match=message):
            parse_config({"expand": bad})


def _stage(collection: Corpus, tmp: Path, cfg: ExpandConfig, index: IndexConfig,
           queries: list[SyntheticQuery], name: str = "expand") -> dict[str, Any]:
    tests = [Query(q["_id"], q["text"]) for q in TEST_QUERIES]
    result = run_stage("expand", tmp / name, cfg, {}, lambda ctx: expand_stage(
        ctx, cfg, index, collection, queries, tests, contamination_checked=True))
    return result.manifest


def test_stage_wiring_with_a_fake_bm25(
    write_beir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bm25 = FakeBm25()
    monkeypatch.setattr(expansion, "ensure_bm25_index", bm25.ensure)
    monkeypatch.setattr(expansion, "Bm25Searcher", bm25.searcher)
    collection = open_collection(write_beir(DOCS, TEST_QUERIES, QRELS))
    cfg, index = ExpandConfig(enabled=True, repeat=2), IndexConfig(depth=3)
    manifest = _stage(collection, tmp_path, cfg, index, SYNTHETIC)

    run = read_trec_run(tmp_path / "expand" / "runs" / "bm25-expanded.trec")
    assert [p.doc_id for p in run["q1"]] == ["d3"]  # found through its expansion only
    assert run["q2"][0].doc_id == "d1"
    assert "photographs of a famous landmark" in bm25.docs["d3"] and bm25.docs["d1"].endswith("volcano.")
    assert manifest["counts"] == {"documents": 4, "expanded_documents": 2, "appended_queries": 3,
                                  "test_queries": 2, "test_query_copies": 0, "bm25-expanded_hits": 2,
                                  "bm25-expanded_queries_without_hits": 0}
    extra = manifest["extra"]
    assert extra["appended_texts"] == 6 and extra["contamination_checked"]
    assert extra["bm25"]["k1"] == 0.9 and extra["bm25"]["index"].endswith("bm25")
    assert set(manifest["outputs"]) == {"run:bm25-expanded"}
    assert {"read", "bm25_index", "bm25_search"} <= set(manifest["timings"])

    with pytest.raises(DataError, match=r"for 1 document\(s\) not in the collection \(e\.g\. \['d9'\]\)"):
        _stage(collection, tmp_path, cfg, index, [synthetic("d9", "lost")], name="bad")


@pytest.mark.slow
def test_lucene_finds_a_document_through_its_expansion_only(
    write_beir: Callable[..., Path], tmp_path: Path
) -> None:
    from inpars.indexing import Bm25Searcher, build_bm25_index

    collection = open_collection(write_beir(DOCS, TEST_QUERIES, QRELS))
    query = [Query("q1", "landmark photographs")]
    with Bm25Searcher(build_bm25_index(collection, tmp_path / "plain")) as plain:
        assert plain.search(query, 3)["q1"] == []  # no document has these words

    manifest = _stage(collection, tmp_path, ExpandConfig(enabled=True), IndexConfig(depth=3), SYNTHETIC)
    run = read_trec_run(tmp_path / "expand" / "runs" / "bm25-expanded.trec")
    assert [p.doc_id for p in run["q1"]] == ["d3"] and run["q2"][0].doc_id == "d1"
    assert manifest["counts"]["expanded_documents"] == 2
    with Bm25Searcher(tmp_path / "expand" / "bm25") as expanded:  # built atomically in the stage folder
        assert expanded.num_docs == 4 and "paris tower" in expanded.document("d3").text
    assert not list((tmp_path / "expand").glob(".bm25.building-*"))
