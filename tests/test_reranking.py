"""Reranking a crafted first-stage run with a real scorer (the packaged MiniLM, cosine; slow)
and with a fake one (shared words; fast)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from inpars import reranking
from inpars.config import RerankConfig, parse_config
from inpars.errors import BackendError, ConfigError, DataError
from inpars.manifest import run_stage
from inpars.records import Document, Query, ScoredPair
from inpars.reranking import SystemSpec, rerank, rerank_stage
from inpars.scoring import Scorer, load_scorer
from inpars.trec import read_trec_run, write_trec_run
from tests.conftest import BeirWriter

DOCS = {
    "cats": Document("cats", "Cats are small domesticated felines that purr when content.", "Cats"),
    "dogs": Document("dogs", "Dogs descend from wolves and were domesticated long ago.", "Dogs"),
    "paris": Document("paris", "The Eiffel tower is a wrought-iron tower in Paris, France.", "Eiffel tower"),
    "amazon": Document("amazon", "The Amazon carries more water than any other river.", "Amazon"),
}
QUERIES = [
    Query("q1", "do cats purr"), Query("q2", "where is the eiffel tower"), Query("q3", "nothing found"),
]


def crafted_run() -> dict[str, list[ScoredPair]]:
    """A first stage that ranks the relevant document third, above one below depth."""
    first = {
        "q1": (("paris", 9.0), ("dogs", 8.0), ("cats", 7.0), ("amazon", 1.0)),
        "q2": (("amazon", 5.0), ("cats", 4.0), ("paris", 3.0)),
        "q3": (),
    }
    return {qid: [ScoredPair(qid, d, s) for d, s in ranked] for qid, ranked in first.items()}


class WordOverlap:
    """A fake scorer: the share of the query's words found in the document."""

    name = "word-overlap"

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        def words(text: str) -> set[str]:
            return set(re.findall(r"\w+", text.lower()))

        return [len(words(q) & words(d)) / max(1, len(words(q))) for q, d in pairs]


@pytest.fixture(scope="module", params=["word-overlap", pytest.param("minilm", marks=pytest.mark.slow)])
def scorer(request: pytest.FixtureRequest) -> Scorer:
    """The fake scorer (fast) or the packaged MiniLM bi-encoder (slow: a real model)."""
    if request.param == "word-overlap":
        return WordOverlap()
    return load_scorer("bi-encoder", "all-MiniLM-L6-v2", max_length=64)


class Broken:
    """A scorer that misbehaves, to check that rerank refuses bad scores."""

    name = "broken"

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return self.scores


def test_rerank_puts_the_relevant_document_first_and_keeps_the_tail(scorer: Scorer) -> None:
    out = rerank(crafted_run(), QUERIES, DOCS, scorer, depth=3)
    assert list(out) == ["q1", "q2", "q3"] and out["q3"] == []
    assert out["q1"][0].doc_id == "cats" and out["q1"][-1].doc_id == "amazon"
    assert out["q2"][0].doc_id == "paris"
    for pairs in out.values():  # ranked by the new score, strictly above the kept tail
        assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)
    assert out["q1"][-1].score < out["q1"][-2].score
    expected = scorer.score([("do cats purr", DOCS["cats"].contents)])[0]
    assert out["q1"][0].score == pytest.approx(expected, abs=1e-5)


def test_dropping_below_depth_and_other_document_sources(scorer: Scorer) -> None:
    texts = {d.doc_id: d.contents for d in DOCS.values()}
    dropped = rerank(crafted_run(), {q.query_id: q.text for q in QUERIES}, texts.__getitem__, scorer,
                     depth=2, below_depth="drop")
    assert [len(p) for p in dropped.values()] == [2, 2, 0]
    assert [p.doc_id for p in dropped["q1"]] == ["dogs", "paris"]  # only the top 2 were rescored
    same = rerank(crafted_run(), QUERIES, texts, scorer, depth=2, below_depth="drop")
    assert same == dropped


def test_rerank_refuses_bad_input(scorer: Scorer) -> None:
    with pytest.raises(DataError, match="no text"):
        rerank(crafted_run(), QUERIES[:1], DOCS, scorer)
    with pytest.raises(DataError, match="not in the collection"):
        rerank(crafted_run(), QUERIES, {"cats": DOCS["cats"]}, scorer)
    with pytest.raises(ConfigError, match="depth"):
        rerank(crafted_run(), QUERIES, DOCS, scorer, depth=0)
    with pytest.raises(BackendError, match="one score per pair"):
        rerank(crafted_run(), QUERIES, DOCS, Broken([1.0]))
    with pytest.raises(BackendError, match="NaN"):
        rerank({"q1": crafted_run()["q1"][:1]}, QUERIES, DOCS, Broken([float("nan")]))
    with pytest.raises(ConfigError, match="depth"):
        parse_config({"rerank": {"depth": 0}})
    with pytest.raises(ConfigError, match="below_depth"):
        parse_config({"rerank": {"below_depth": "hide"}})
    with pytest.raises(ConfigError, match="name=kind:model"):
        parse_config({"rerank": {"extra_systems": ["just-a-model"]}})


def test_rerank_stage_writes_one_trec_run_per_system(
    tmp_path: Path, scorer: Scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(scorer, WordOverlap):  # the fast variant: the spec loads the fake too
        monkeypatch.setattr(reranking, "load_scorer", lambda kind, model, **kwargs: WordOverlap())
    first = tmp_path / "bm25.trec"
    write_trec_run(first, crafted_run(), tag="bm25")
    cfg = RerankConfig(depth=3, max_length=64)
    systems = {"minilm": scorer, "minilm-spec": SystemSpec("bi-encoder", "all-MiniLM-L6-v2")}
    out = tmp_path / "rerank"

    def body(ctx: object) -> None:
        rerank_stage(ctx, cfg, first, QUERIES, DOCS, systems)  # type: ignore[arg-type]

    manifest = run_stage("rerank", out, cfg, {"run": first}, body).manifest
    assert run_stage("rerank", out, cfg, {"run": first}, body).skipped
    assert set(manifest["outputs"]) == {"run:minilm", "run:minilm-spec"}
    written = read_trec_run(out / "runs" / "minilm.trec")
    assert written.keys() == {"q1", "q2"}  # TREC files cannot hold a query without documents
    assert max(written["q1"], key=lambda p: p.score).doc_id == "cats"
    assert (out / "runs" / "minilm-spec.trec").read_bytes().replace(b"minilm-spec", b"minilm") == (
        out / "runs" / "minilm.trec").read_bytes()
    assert manifest["counts"] == {"queries": 2, "queries_not_in_run": 1, "pairs_per_system": 6}
    assert manifest["extra"]["systems"]["minilm"]["pairs_per_second"] > 0


def test_reranking_systems_score_with_raw_logits(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_load_scorer(kind: str, model: str, **kwargs: object) -> object:
        seen.update(kwargs, kind=kind, model=model)
        return object()

    monkeypatch.setattr(reranking, "load_scorer", fake_load_scorer)
    reranking.load_system(SystemSpec("cross-encoder", "my-ce"), RerankConfig())
    assert seen["kind"] == "cross-encoder" and seen["raw"] is True  # no saturating sigmoid


@pytest.mark.slow
def test_a_bi_encoder_reuses_the_embeddings_of_its_dense_index(
    tmp_path: Path, write_beir: BeirWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system whose spec names a dense index of its model scores the documents with the
    index's embeddings (no document encoded) and ranks as encoding them would."""
    from inpars.data import open_collection
    from inpars.indexing import build_dense_index
    from inpars.scoring.bi_encoder import BiEncoderScorer

    beir = write_beir([{"_id": d.doc_id, "title": d.title, "text": d.text} for d in DOCS.values()],
                      [{"_id": q.query_id, "text": q.text} for q in QUERIES], {})
    index = build_dense_index(open_collection(beir), tmp_path / "dense", "all-MiniLM-L6-v2", max_length=64)
    encoded: dict[str, list[str]] = {}  # model load -> the texts its encoder encoded

    def spied(kind: str, model: str, **kwargs: object) -> BiEncoderScorer:
        scorer = load_scorer(kind, model, max_length=64, dtype="float32")
        assert isinstance(scorer, BiEncoderScorer)
        texts = encoded.setdefault(f"load {len(encoded)}", [])
        encode = scorer.encoder.encode

        def spy(batch: list[str], **kw: object) -> object:
            texts.extend(batch)
            return encode(batch, **kw)

        scorer.encoder.encode = spy
        return scorer

    monkeypatch.setattr(reranking, "load_scorer", spied)
    first = tmp_path / "bm25.trec"
    write_trec_run(first, crafted_run(), tag="bm25")
    cfg = RerankConfig(depth=3, max_length=64)
    spec = SystemSpec("bi-encoder", "all-MiniLM-L6-v2", index=str(index.folder))
    systems = {"reused": spec, "encoded": SystemSpec("bi-encoder", "all-MiniLM-L6-v2")}

    def body(ctx: object) -> None:
        rerank_stage(ctx, cfg, first, QUERIES, DOCS, systems)  # type: ignore[arg-type]

    manifest = run_stage("rerank", tmp_path / "rerank", cfg, {"run": first}, body).manifest
    reused, again = (read_trec_run(tmp_path / "rerank" / "runs" / f"{n}.trec") for n in ("reused", "encoded"))
    assert manifest["extra"]["systems"]["reused"]["reused_document_embeddings"] == len(DOCS)
    assert manifest["extra"]["systems"]["encoded"]["reused_document_embeddings"] == 0
    documents = {d.contents for d in DOCS.values()}
    first_texts, second_texts = encoded.values()
    assert first_texts and not documents & set(first_texts)  # the queries only
    assert documents <= set(second_texts)  # without the index: the documents too
    for qid, pairs in reused.items():
        assert [p.doc_id for p in pairs] == [p.doc_id for p in again[qid]]
        assert [p.score for p in pairs] == pytest.approx([p.score for p in again[qid]], abs=1e-5)
    other = SystemSpec("bi-encoder", "all-MiniLM-L6-v2", index=str(index.folder))
    scorer = spied("bi-encoder", "all-MiniLM-L6-v2")
    assert reranking.reuse_index(scorer, other, RerankConfig(max_length=128), None, []) == 0  # type: ignore[arg-type]
