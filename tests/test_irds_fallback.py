"""The documented ``[data] fallback``: when ``source`` is missing, an ir_datasets id is opened
instead, and its indexes go to a folder named after the id (``beir/scifact/test`` ->
``index/beir-scifact-test``). A tiny dataset registered with ir_datasets stands in for
SciFact (nothing is downloaded); fast with the fake BM25 and encoder, slow with Lucene.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import inpars.indexing.dense as dense_module
import inpars.indexing.stage as stage_module
from inpars.config import load_config
from inpars.data import IrDatasetsCollection, open_from_config
from inpars.indexing import ensure_dense_index, index_root
from inpars.pipeline import Executor, Workspace
from inpars.records import Query
from inpars.trec import read_trec_run
from tests.conftest import TINY_DOCS, TINY_QRELS, TINY_QUERIES, write_lines
from tests.indexing.fakes import FakeBm25, FakeEncoder


@pytest.fixture
def dataset_id(tmp_path: Path) -> Iterator[str]:
    """A tiny ir_datasets dataset (local TSV docs and queries, TREC qrels), registered under
    a fresh id for the test and unregistered after it."""
    import ir_datasets

    files = tmp_path / "irds-files"
    docs = write_lines(files / "docs.tsv", [f"{d['_id']}\t{d['text']}" for d in TINY_DOCS])
    queries = write_lines(files / "queries.tsv", [f"{q['_id']}\t{q['text']}" for q in TINY_QUERIES])
    qrels = write_lines(files / "qrels.txt", [f"{q} 0 {d} {r}" for q, d, r in TINY_QRELS["test"]])
    name = f"inpars-test-{uuid.uuid4().hex[:8]}/tiny/test"
    dataset = ir_datasets.create_dataset(docs_tsv=str(docs), queries_tsv=str(queries), qrels_trec=str(qrels))
    ir_datasets.registry.register(name, dataset)
    yield name
    ir_datasets.registry._registered.pop(name, None)


@pytest.fixture
def config_file(tmp_path: Path, dataset_id: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config whose ``source`` folder does not exist, with the fake dataset as fallback."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "fallback.toml"
    path.write_text(
        f'[experiment]\nname = "fallback"\nrun_dir = "runs/fallback"\n\n'
        f'[data]\nsource = "data/not-here"\nfallback = "{dataset_id}"\n\n'
        '[index]\ndense = false\ndepth = 3\n\n[rerank]\ndepth = 3\n\n[evaluate]\nfusion = []\n',
        encoding="utf-8",
    )
    return path


def folder_of(dataset_id: str) -> Path:
    return Path("index") / dataset_id.replace("/", "-")


def test_the_fallback_opens_and_indexes(
    config_file: Path, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = open_from_config(load_config(config_file).data)
    assert isinstance(collection, IrDatasetsCollection) and collection.name == dataset_id
    assert [q.query_id for q in collection.split_queries("test")] == ["q1", "q2"]
    assert index_root(collection.name) == folder_of(dataset_id)
    monkeypatch.setattr(dense_module, "load_encoder", lambda model, **kwargs: FakeEncoder())
    model = Path("fake-encoder").resolve()  # a local model folder (its files are fingerprinted)
    model.mkdir()
    (model / "weights.bin").write_bytes(b"fake")
    dense, built = ensure_dense_index(collection, model=str(model))
    assert built and dense.folder.parent == folder_of(dataset_id) / "dense"
    assert dense.search([Query("q", "cats purr")], k=1)["q"][0].doc_id == "d1"
    assert dense.manifest["corpus"]["kind"] == "documents"
    again, built = ensure_dense_index(open_from_config(load_config(config_file).data), model=str(model))
    assert not built and again.folder == dense.folder


def test_the_index_stage_of_the_pipeline_opens_the_fallback(
    config_file: Path, dataset_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bm25 = FakeBm25()
    monkeypatch.setattr(stage_module, "ensure_bm25_index", bm25.ensure)
    monkeypatch.setattr(stage_module, "Bm25Searcher", bm25.searcher)
    ws = Workspace(load_config(config_file), command="pytest")
    result = Executor(ws).run_single("index")
    extra = result.manifest["extra"]
    assert extra["index_root"] == str(folder_of(dataset_id))
    assert extra["bm25"]["index"] == str(folder_of(dataset_id) / "bm25")
    run = read_trec_run(ws.stage_dir("index") / "runs" / "bm25.trec")
    assert set(run) == {"q1", "q2"} and run["q1"][0].doc_id == "d1"


@pytest.mark.slow
def test_the_fallback_with_lucene(config_file: Path, dataset_id: str) -> None:
    ws = Workspace(load_config(config_file), command="pytest")
    result = Executor(ws).run_single("index")
    assert result.manifest["extra"]["bm25"]["index"] == str(folder_of(dataset_id) / "bm25")
    run = read_trec_run(ws.stage_dir("index") / "runs" / "bm25.trec")
    assert run["q1"][0].doc_id == "d1" and run["q2"][0].doc_id == "d2"
