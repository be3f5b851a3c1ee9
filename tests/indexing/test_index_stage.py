"""The ``index`` stage: indexes built once and reused, first-stage runs in the stage folder.

With Lucene and the packaged MiniLM (slow), and fast with a fake BM25 index and a fake
encoder (hashed bags of words) behind the real dense index.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import inpars.indexing.dense as dense_module
import inpars.indexing.stage as stage_module
from inpars.config import IndexConfig, parse_config
from inpars.data import open_collection
from inpars.errors import ConfigError, DataError
from inpars.indexing import index_stage
from inpars.manifest import run_stage
from inpars.trec import read_trec_run
from tests.indexing.fakes import FakeBm25, FakeEncoder

DOCS = [
    {"_id": "d1", "title": "Volcano", "text": "Lava and ash erupt from an active volcano."},
    {"_id": "d2", "title": "Glacier", "text": "Glaciers are slow rivers of ice that carve valleys."},
    {"_id": "d3", "title": "Desert", "text": "Deserts receive very little rain and have sparse plants."},
    {"_id": "d4", "title": "Ocean", "text": "Ocean currents move heat from the tropics toward the poles."},
]
QUERIES = [
    {"_id": "q1", "text": "volcanic eruption"},
    {"_id": "q2", "text": "ice carving valleys"},
    {"_id": "q3", "text": "unjudged query"},
]


@pytest.mark.slow
def test_stage_writes_runs_and_reuses_indexes(write_beir: Callable[..., Path], tmp_path: Path) -> None:
    collection = open_collection(write_beir(DOCS, QUERIES, {"test": [("q1", "d1", 1), ("q2", "d2", 1)]}))
    cfg = IndexConfig(output_dir=str(tmp_path / "index" / "tiny"), depth=3)
    stage_dir = tmp_path / "run" / "index"

    result = run_stage("index", stage_dir, cfg, {}, lambda ctx: index_stage(ctx, cfg, collection, "test"))
    manifest = result.manifest
    bm25 = read_trec_run(stage_dir / "runs" / "bm25.trec")
    dense = read_trec_run(stage_dir / "runs" / "dense.trec")
    assert set(bm25) == set(dense) == {"q1", "q2"}  # only the split's judged queries
    assert bm25["q1"][0].doc_id == "d1" and dense["q2"][0].doc_id == "d2"
    assert all(len(hits) == 3 for hits in dense.values())
    assert manifest["counts"]["queries"] == 2 and manifest["counts"]["docs"] == 4
    assert manifest["counts"]["dense_hits"] == 6 and manifest["counts"]["bm25_hits"] == sum(
        map(len, bm25.values())
    )
    assert set(manifest["outputs"]) == {"run:bm25", "run:dense"}
    extra = manifest["extra"]
    assert extra["bm25"]["built"] and extra["dense"]["built"] and extra["split"] == "test"
    assert Path(extra["bm25"]["index"]) == tmp_path / "index" / "tiny" / "bm25"
    assert Path(extra["dense"]["index"]) == tmp_path / "index" / "tiny" / "dense" / "all-MiniLM-L6-v2"
    assert {"bm25_index", "bm25_search", "dense_index", "dense_search"} <= set(manifest["timings"])

    # A new run folder over the same indexes reuses them (nothing rebuilt or re-encoded).
    again = run_stage(
        "index", tmp_path / "run2" / "index", cfg, {}, lambda ctx: index_stage(ctx, cfg, collection, "test")
    )
    assert not again.manifest["extra"]["bm25"]["built"] and not again.manifest["extra"]["dense"]["built"]
    assert read_trec_run(tmp_path / "run2" / "index" / "runs" / "dense.trec") == dense


@pytest.mark.slow
def test_stage_without_dense_and_with_self_hit_removal(
    write_beir: Callable[..., Path], tmp_path: Path
) -> None:
    queries = [{"_id": "d1", "text": "Volcano lava and ash erupt"}]  # ArguAna-style: a query is a document
    collection = open_collection(write_beir(DOCS, queries, {"test": [("d1", "d2", 1)]}))
    cfg = IndexConfig(output_dir=str(tmp_path / "idx"), dense=False, remove_self_hits=True, depth=2)
    result = run_stage(
        "index", tmp_path / "s", cfg, {}, lambda ctx: index_stage(ctx, cfg, collection, "test")
    )
    assert set(result.manifest["outputs"]) == {"run:bm25"}
    assert "d1" not in {p.doc_id for p in read_trec_run(tmp_path / "s" / "runs" / "bm25.trec").get("d1", [])}
    with pytest.raises(DataError, match="no judgements"):
        run_stage("index", tmp_path / "s2", cfg, {}, lambda ctx: index_stage(ctx, cfg, collection, "train"))


def test_config_section_checks_ranges() -> None:
    cfg = parse_config({"index": {"output_dir": "idx", "docvectors": True, "dense_device": "cpu"}})
    assert cfg.index.output_dir == "idx" and cfg.index.docvectors
    with pytest.raises(ConfigError, match=r"\[index\]|index"):
        parse_config({"index": {"b": 2.0}})
    with pytest.raises(ConfigError, match="depth"):
        parse_config({"index": {"depth": 0}})


def test_stage_wiring_with_a_fake_bm25_and_a_fake_encoder(
    write_beir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bm25 = FakeBm25()
    monkeypatch.setattr(stage_module, "ensure_bm25_index", bm25.ensure)
    monkeypatch.setattr(stage_module, "Bm25Searcher", bm25.searcher)
    loads: list[str] = []

    def load_encoder(model: str, **kwargs: Any) -> FakeEncoder:
        loads.append(model)
        return FakeEncoder()

    monkeypatch.setattr(dense_module, "load_encoder", load_encoder)
    model = tmp_path / "fake-encoder"  # a local model folder: its files are hashed into the fingerprint
    model.mkdir()
    (model / "weights.bin").write_bytes(b"fake")
    queries = [{"_id": "q1", "text": "lava volcano"}, {"_id": "q2", "text": "glaciers carve valleys"},
               {"_id": "q3", "text": "unjudged query"}]
    collection = open_collection(write_beir(DOCS, queries, {"test": [("q1", "d1", 1), ("q2", "d2", 1)]}))
    cfg = IndexConfig(output_dir=str(tmp_path / "index" / "tiny"), depth=3, dense_model=str(model),
                      dense_device="cpu")

    result = run_stage("index", tmp_path / "run" / "index", cfg, {},
                       lambda ctx: index_stage(ctx, cfg, collection, "test"))
    manifest = result.manifest
    runs = {name: read_trec_run(tmp_path / "run" / "index" / "runs" / f"{name}.trec")
            for name in ("bm25", "dense")}
    assert set(runs["bm25"]) == set(runs["dense"]) == {"q1", "q2"}  # only the split's judged queries
    assert runs["bm25"]["q1"][0].doc_id == "d1" and runs["dense"]["q2"][0].doc_id == "d2"
    assert all(len(hits) == 3 for hits in runs["dense"].values())
    assert manifest["counts"]["queries"] == 2 and manifest["counts"]["docs"] == 4
    assert manifest["counts"]["dense_hits"] == 6
    assert manifest["counts"]["bm25_hits"] == sum(map(len, runs["bm25"].values()))
    assert set(manifest["outputs"]) == {"run:bm25", "run:dense"}
    extra = manifest["extra"]
    assert extra["bm25"]["built"] and extra["dense"]["built"] and extra["split"] == "test"
    assert extra["dense"]["dim"] == FakeEncoder.dim and extra["dense"]["model"] == str(model)
    assert Path(extra["dense"]["index"]).parent == tmp_path / "index" / "tiny" / "dense"

    # A new run folder over the same indexes reuses them: nothing rebuilt or re-encoded.
    again = run_stage("index", tmp_path / "run2" / "index", cfg, {},
                      lambda ctx: index_stage(ctx, cfg, collection, "test"))
    assert not again.manifest["extra"]["bm25"]["built"] and not again.manifest["extra"]["dense"]["built"]
    assert bm25.builds == 1 and set(loads) == {str(model)}
    assert read_trec_run(tmp_path / "run2" / "index" / "runs" / "dense.trec") == runs["dense"]
