from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from inpars.config import NegativesConfig
from inpars.errors import BadLineError, ConfigError
from inpars.io import read_records, write_records
from inpars.manifest import StageContext, run_stage
from inpars.negatives import (
    EXAMPLES,
    ST_TRIPLES,
    TSV_TRIPLES,
    Triple,
    export_sentence_transformers,
    export_tsv_triples,
    iter_triples,
    mine_negatives,
    negatives_stage,
    pick_negatives,
    read_st_triples,
    read_tsv_triples,
    tsv_field,
)
from inpars.records import Document, Qrel, Query, ScoredPair, SyntheticQuery, TrainingExample

DOC_IDS = [f"d{i:02d}" for i in range(30)]


class FakeIndex:
    """BM25 stand-in with fixed rankings (the index is not under test here)."""

    def __init__(self, rankings: dict[str, list[str]], docs: dict[str, Document]) -> None:
        self.rankings = rankings
        self.docs = docs

    def search(self, queries: Sequence[Query], k: int, threads: int = 1) -> dict[str, list[ScoredPair]]:
        run = {}
        for q in queries:
            ranked = self.rankings[q.query_id][:k]
            run[q.query_id] = [ScoredPair(q.query_id, d, 100.0 - r) for r, d in enumerate(ranked)]
        return run

    def document(self, doc_id: str) -> Document:
        return self.docs[doc_id]


def corpus() -> dict[str, Document]:
    docs = {d: Document(d, f"text of document {d}\twith a tab\nand a newline", f"Title {d}") for d in DOC_IDS}
    docs["d05"] = Document("d05", docs["d00"].text, docs["d00"].title)  # same text as d00 under another id
    docs["d06"] = Document("d06", "", "")  # empty
    return docs


def queries(n: int = 12) -> list[SyntheticQuery]:
    return [SyntheticQuery(f"q{i}", "d00" if i % 2 == 0 else "d01", f"query number {i}", "inpars", "m", 0, 0)
            for i in range(n)]


def rankings(qs: list[SyntheticQuery], seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)
    out = {}
    for q in qs:
        ranked = list(DOC_IDS)
        rng.shuffle(ranked)
        ranked.remove(q.doc_id)
        out[q.query_id] = [q.doc_id, "d05", "d06", *ranked]  # positive, its copy, an empty doc on top
    return out


@pytest.mark.parametrize("sampling", ["top", "window"])
def test_never_the_positive_a_copy_of_it_or_a_judged_relevant_doc(sampling: str) -> None:
    qs = queries()
    index = FakeIndex(rankings(qs), corpus())
    qrels = [Qrel(q.query_id, rankings(qs)[q.query_id][3], 1) for q in qs]  # the best true negative is judged
    qrels += [Qrel("q0", "d29", 0)]  # relevance 0: not relevant, may be a negative
    cfg = NegativesConfig(depth=20, count=5, sampling=sampling, window_start=2)
    examples = list(mine_negatives(qs, index, cfg, qrels=qrels, seed=1))
    assert [e.query_id for e in examples] == [q.query_id for q in qs]
    judged = {(r.query_id, r.doc_id) for r in qrels if r.relevance > 0}
    for example in examples:
        assert len(example.negative_ids) == 5
        assert example.doc_id not in example.negative_ids
        copies = {"d05", "d06"} if example.doc_id == "d00" else {"d06"}  # d05 has d00's text
        assert not copies & set(example.negative_ids)
        assert not any((example.query_id, d) in judged for d in example.negative_ids)
        assert set(example.negative_ids) <= set(rankings(qs)[example.query_id][:20])
        assert example.negatives == tuple(index.document(d).contents for d in example.negative_ids)
        assert example.positive == index.document(example.doc_id).contents
    if sampling == "top":  # the best-ranked allowed ones, in rank order
        ranked = rankings(qs)[examples[0].query_id]
        assert list(examples[0].negative_ids) == [d for d in ranked if d not in {"d00", "d05", "d06"}
                                                  and ("q0", d) not in judged][:5]


def test_window_sampling_is_seeded_and_stays_in_the_window() -> None:
    qs = queries(6)
    ranks = rankings(qs)
    index = FakeIndex(ranks, corpus())
    cfg = NegativesConfig(depth=25, count=3, sampling="window", window_start=10)
    first = [e.negative_ids for e in mine_negatives(qs, index, cfg, seed=5)]
    again = [e.negative_ids for e in mine_negatives(list(reversed(qs)), index, cfg, seed=5)]
    other = [e.negative_ids for e in mine_negatives(qs, index, cfg, seed=6)]
    assert first == list(reversed(again))  # a query's sample depends on the seed and its id only
    assert first != other
    for q, picked in zip(qs, first, strict=True):
        window = ranks[q.query_id][9:25]
        assert set(picked) <= set(window)
        assert list(picked) == [d for d in window if d in picked]  # in rank order
    assert pick_negatives(["a", "b"], exclude={"a"}, count=3, sampling="window", window_start=1,
                          rng=random.Random(0)) == ["b"]


def test_dense_negatives_come_after_and_differ_from_bm25_ones() -> None:
    qs = queries(4)
    index = FakeIndex(rankings(qs), corpus())
    dense = FakeIndex(rankings(qs, seed=9), corpus())
    cfg = NegativesConfig(depth=10, count=2, sampling="top", dense_count=2)
    for example in mine_negatives(qs, index, cfg, dense=dense):
        assert len(example.negative_ids) == 4 and len(set(example.negative_ids)) == 4
        unusable = {example.doc_id, "d06"} | ({"d05"} if example.doc_id == "d00" else set())
        dense_ranked = [d for d in rankings(qs, seed=9)[example.query_id] if d not in unusable]
        assert example.doc_id not in example.negative_ids
        assert set(example.negative_ids[2:]) <= set(dense_ranked[:4])  # the dense top, minus BM25's picks
    with pytest.raises(ConfigError, match="need the dense index, but none was given"):
        list(mine_negatives(qs, index, cfg))


def test_exporters_round_trip(tmp_path: Path) -> None:
    examples = [
        TrainingExample("q1", "a query", "d1", "Title\tpositive\ntext", ("d2", "d3"),
                        ("neg  one", "neg\ttwo")),
        TrainingExample("q2", "another\nquery", "d4", "positive two", ("d5",), ("neg three",)),
        TrainingExample("q3", "no negatives", "d6", "positive three"),
    ]
    path = tmp_path / "examples.jsonl"
    write_records(path, examples)
    expected = list(iter_triples(examples))
    assert len(expected) == 3
    assert export_sentence_transformers(path, tmp_path / "st.jsonl") == 3
    assert list(read_st_triples(tmp_path / "st.jsonl")) == expected
    assert export_tsv_triples(path, tmp_path / "t.tsv") == 3
    back = list(read_tsv_triples(tmp_path / "t.tsv"))
    assert back == [Triple(*(tsv_field(f) for f in (t.query, t.positive, t.negative))) for t in expected]
    assert back[0] == Triple("a query", "Title positive text", "neg one")
    (tmp_path / "bad.tsv").write_text("only\ttwo\n")
    with pytest.raises(BadLineError, match="2 tab-separated fields"):
        list(read_tsv_triples(tmp_path / "bad.tsv"))


def test_stage_streams_examples_resumes_and_exports(tmp_path: Path) -> None:
    qs = queries(10)
    kept = tmp_path / "kept.jsonl"
    write_records(kept, qs)
    index = FakeIndex(rankings(qs), corpus())
    cfg = NegativesConfig(depth=15, count=2, batch_size=3)

    def body(ctx: Any) -> None:
        negatives_stage(ctx, cfg, kept, index)

    fresh = run_stage("negatives", tmp_path / "fresh", cfg, {"kept": kept}, body, seed=4)
    examples = list(read_records(fresh.out_dir / EXAMPLES, TrainingExample))
    assert [e.query_id for e in examples] == [q.query_id for q in qs]
    assert fresh.manifest["counts"]["examples"] == 10 and fresh.manifest["counts"]["negatives"] == 20
    assert fresh.manifest["counts"]["rows_tsv"] == 20
    assert len(list(read_st_triples(fresh.out_dir / ST_TRIPLES))) == 20
    assert len(list(read_tsv_triples(fresh.out_dir / TSV_TRIPLES))) == 20

    # an interrupted run left 4 examples and a torn line: resuming gives the same file as a fresh run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    lines = (fresh.out_dir / EXAMPLES).read_text().splitlines(keepends=True)
    (resumed / EXAMPLES).write_text("".join(lines[:4]) + lines[4][:20])
    ctx = StageContext(name="negatives", out_dir=resumed, seed=4, config=cfg)
    negatives_stage(ctx, cfg, kept, index)
    assert (resumed / EXAMPLES).read_text() == (fresh.out_dir / EXAMPLES).read_text()
    assert (resumed / TSV_TRIPLES).read_text() == (fresh.out_dir / TSV_TRIPLES).read_text()


@pytest.mark.slow
def test_mining_with_a_real_bm25_index(tmp_path: Path, write_beir: Any) -> None:
    from inpars.data import open_collection
    from inpars.indexing import Bm25Searcher, build_bm25_index

    docs = [{"_id": f"c{i}", "title": "Cats", "text": f"Cats purr and sleep, note {i}."} for i in range(6)]
    docs += [{"_id": "dog", "title": "Dogs", "text": "Dogs bark; some cats purr near dogs."}]
    collection = open_collection(write_beir(docs=docs, queries=[{"_id": "q1", "text": "do cats purr"}],
                                            qrels={"test": [("q1", "c1", 1)]}))
    index = build_bm25_index(collection, tmp_path / "bm25")
    with Bm25Searcher(index) as bm25:
        kept = [SyntheticQuery("c0#q0", "c0", "do cats purr", "inpars", "m", 0, 0),
                SyntheticQuery("q1", "c2", "do cats purr", "inpars", "m", 0, 0)]  # a real query id with qrels
        cfg = NegativesConfig(depth=10, count=10, sampling="top")
        examples = list(mine_negatives(kept, bm25, cfg, qrels=collection.qrels("test")))
    assert set(examples[0].negative_ids) == {"c1", "c2", "c3", "c4", "c5", "dog"}
    assert set(examples[1].negative_ids) == {"c0", "c3", "c4", "c5", "dog"}  # c1 is judged relevant to q1
    assert examples[0].positive == "Cats\nCats purr and sleep, note 0."


def test_real_examples_never_take_a_judged_relevant_document(tmp_path: Path) -> None:
    """The worth table's real-label examples: every document judged relevant to the query
    (under the pair's id, as ``Workspace.real_training_queries`` gives them) stays out."""
    from inpars.negatives import REAL_EXAMPLES, real_examples_stage

    pairs = [SyntheticQuery(f"r1#{d}", d, "a real query", "real", "qrels", 0, 0) for d in ("d00", "d01")]
    judged = [Qrel(p.query_id, d, rel) for p in pairs for d, rel in (("d00", 1), ("d01", 2), ("d02", 0))]
    index = FakeIndex({p.query_id: DOC_IDS for p in pairs}, corpus())
    ctx = StageContext(name="negatives", out_dir=tmp_path, seed=1, config=None)
    real_examples_stage(ctx, NegativesConfig(depth=10, count=8, sampling="top"), pairs, judged, index)
    examples = list(read_records(tmp_path / REAL_EXAMPLES, TrainingExample))
    assert [e.query_id for e in examples] == ["r1#d00", "r1#d01"]
    for example in examples:
        assert not {"d00", "d01"} & set(example.negative_ids)
        assert "d02" in example.negative_ids  # judged, but not relevant
    assert ctx.counts["real_examples"] == 2 and "real_examples" in ctx.outputs


def test_held_out_dev_queries_are_left_out_of_the_examples(tmp_path: Path) -> None:
    qs = queries(6)
    kept = tmp_path / "kept.jsonl"
    write_records(kept, qs)
    ctx = StageContext(name="negatives", out_dir=tmp_path / "out", seed=1, config=None)
    (tmp_path / "out").mkdir()
    index = FakeIndex(rankings(qs), corpus())
    negatives_stage(ctx, NegativesConfig(depth=10, count=2, export=[]), kept, index, held_out={"q1", "q4"})
    examples = list(read_records(tmp_path / "out" / EXAMPLES, TrainingExample))
    assert [e.query_id for e in examples] == ["q0", "q2", "q3", "q5"]
    assert ctx.counts["held_out_dev"] == 2 and ctx.counts["examples"] == 4
