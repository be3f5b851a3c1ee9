"""Index identity: indexes are found by the corpus they were built from, not by folder name;
leftovers of killed builds are cleared; an empty corpus is named before any qrels are blamed.

Fast with a fake encoder behind the real dense index (real manifests, real FAISS); the
same checks with Lucene are slow.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import inpars.indexing.dense as dense_module
import inpars.indexing.stage as stage_module
from inpars.config import IndexConfig
from inpars.data import Collection, open_collection
from inpars.errors import DataError, IndexStoreError
from inpars.indexing import INDEX_MANIFEST, corpus_index_root, ensure_dense_index, index_root, index_stage
from inpars.indexing.store import building, write_index_manifest
from inpars.manifest import run_stage
from inpars.records import Query
from inpars.trec import read_trec_run
from tests.conftest import BeirWriter
from tests.indexing.fakes import FakeBm25, FakeEncoder

GEOLOGY = [
    {"_id": "g1", "title": "Volcano", "text": "Lava and ash erupt from an active volcano."},
    {"_id": "g2", "title": "Glacier", "text": "Glaciers are slow rivers of ice that carve valleys."},
]
ANIMALS = [
    {"_id": "a1", "title": "Volcano rabbit", "text": "The volcano rabbit lives on Mexican volcanoes."},
    {"_id": "a2", "title": "Ice fish", "text": "Ice fish live in cold water under the glaciers."},
]
QUERIES = [{"_id": "q1", "text": "volcano"}, {"_id": "q2", "text": "glaciers ice"}]
QRELS = {"test": [("q1", "g1", 1)]}
ANIMAL_QRELS = {"test": [("q1", "a1", 1)]}


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local 'model' folder served by :class:`FakeEncoder` (no download, no weights)."""
    monkeypatch.setattr(dense_module, "load_encoder", lambda model, **kwargs: FakeEncoder())
    folder = tmp_path / "fake-encoder"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"fake")
    return str(folder)


@pytest.fixture
def two_tinies(write_beir: BeirWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Two different corpora in folders both named ``tiny``; the working folder is tmp_path."""
    monkeypatch.chdir(tmp_path)
    return (write_beir(GEOLOGY, QUERIES, QRELS, name="data/tiny"),
            write_beir(ANIMALS, QUERIES, ANIMAL_QRELS, name="data2/tiny"))


def test_index_folder_names_are_folder_safe() -> None:
    assert index_root("beir/scifact/test") == Path("index") / "beir-scifact-test"
    assert index_root("msmarco-passage/dev/small") == Path("index") / "msmarco-passage-dev-small"
    assert index_root(".hidden") == Path("index") / "hidden"
    assert index_root("../up") == Path("index") / "up"
    assert index_root("") == Path("index") / "collection"
    assert index_root("beir/scifact/test", "elsewhere") == Path("elsewhere")


def test_two_corpora_named_alike_keep_their_own_indexes(
    two_tinies: tuple[Path, Path], fake_model: str, caplog: pytest.LogCaptureFixture
) -> None:
    geology, animals = (open_collection(p) for p in two_tinies)
    assert geology.name == animals.name == "tiny"
    first, built = ensure_dense_index(geology, model=fake_model)
    assert built and first.folder.parent.parent == Path("index") / "tiny"
    stamp = (first.folder / INDEX_MANIFEST).stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="inpars.indexing"):
        second, built = ensure_dense_index(animals, model=fake_model)
    root = second.folder.parent.parent
    assert built and root != Path("index") / "tiny" and root.name.startswith("tiny-")
    assert "holds the indexes of another corpus" in caplog.text and "data/tiny/corpus.jsonl" in caplog.text
    query = [Query("q", "volcano")]
    assert {p.doc_id for p in second.search(query, k=2)["q"]} == {"a1", "a2"}  # its own documents
    assert {p.doc_id for p in first.search(query, k=2)["q"]} == {"g1", "g2"}
    assert (first.folder / INDEX_MANIFEST).stat().st_mtime_ns == stamp  # the other index is untouched
    # Each corpus finds its own indexes again, in either order; nothing is rebuilt.
    again, built = ensure_dense_index(animals, model=fake_model)
    assert not built and again.folder == second.folder
    again, built = ensure_dense_index(geology, model=fake_model)
    assert not built and again.folder == first.folder
    assert corpus_index_root(animals) == root and corpus_index_root(geology) == Path("index") / "tiny"


def test_the_index_stage_searches_the_corpus_it_was_given(
    two_tinies: tuple[Path, Path], fake_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bm25 = FakeBm25()
    monkeypatch.setattr(stage_module, "ensure_bm25_index", bm25.ensure)
    monkeypatch.setattr(stage_module, "Bm25Searcher", bm25.searcher)
    cfg = IndexConfig(depth=2, dense_model=fake_model, dense_device="cpu")
    runs, roots = [], []
    for number, source in enumerate(two_tinies):
        collection = open_collection(source)
        stage_dir = tmp_path / f"run{number}" / "index"
        result = run_stage("index", stage_dir, cfg, {},
                           lambda ctx, c=collection: index_stage(ctx, cfg, c, "test"))
        roots.append(result.manifest["extra"]["index_root"])
        runs.append(read_trec_run(stage_dir / "runs" / "dense.trec"))
    assert roots[0] == str(Path("index") / "tiny") and roots[1] != roots[0]
    assert {p.doc_id for p in runs[0]["q1"]} == {"g1", "g2"}
    assert {p.doc_id for p in runs[1]["q1"]} == {"a1", "a2"}


def test_an_edited_corpus_is_rebuilt_in_place_and_a_moved_one_is_reused(
    two_tinies: tuple[Path, Path], fake_model: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = two_tinies[0]
    first, _ = ensure_dense_index(open_collection(source), model=fake_model)
    moved = tmp_path / "moved" / "tiny"
    shutil.copytree(source, moved)
    reused, built = ensure_dense_index(open_collection(moved), model=fake_model)
    assert not built and reused.folder == first.folder  # same documents, another place: same index
    with open(source / "corpus.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"_id": "g3", "title": "", "text": "a new geyser document"}) + "\n")
    with caplog.at_level(logging.INFO, logger="inpars.indexing"):
        rebuilt, built = ensure_dense_index(open_collection(source), model=fake_model)
    assert built and rebuilt.folder == first.folder and rebuilt.num_docs == 3
    assert "the corpus changed since the index was built" in caplog.text
    assert sorted(p.name for p in Path("index").iterdir()) == ["tiny"]  # no sibling for an edit


def test_an_explicit_folder_of_another_corpus_is_refused_unless_forced(
    two_tinies: tuple[Path, Path], fake_model: str, tmp_path: Path
) -> None:
    geology, animals = (open_collection(p) for p in two_tinies)
    out = tmp_path / "mine" / "dense"
    ensure_dense_index(geology, out, fake_model)
    with pytest.raises(IndexStoreError, match=r"another corpus \(.*data/tiny/corpus\.jsonl\).*Fix: "):
        ensure_dense_index(animals, out, fake_model)
    replaced, built = ensure_dense_index(animals, out, fake_model, force=True)
    assert built and set(replaced.doc_ids) == {"a1", "a2"}


# --------------------------------------------------------------------------- killed builds
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_builds_folder_is_removed_by_the_next_build(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "index" / "tiny" / "bm25"
    folder.parent.mkdir(parents=True)
    dead = folder.parent / f".bm25.building-{_dead_pid()}"
    alive = folder.parent / f".bm25.building-{os.getppid()}"  # a running process: maybe a build
    other = folder.parent / f".dense.building-{_dead_pid()}"  # another index's: not this build's business
    for path in (dead, alive, other):
        path.mkdir()
        (path / "half-written").write_text("x")
    with caplog.at_level(logging.INFO, logger="inpars.indexing"), building(folder) as work:
        write_index_manifest(work, {"kind": "bm25"})
    assert (folder / INDEX_MANIFEST).is_file()
    assert not dead.exists() and alive.exists() and other.exists()
    assert f"removing {dead}" in caplog.text and "process" in caplog.text
    assert not (folder.parent / f".bm25.building-{os.getpid()}").exists()


# --------------------------------------------------------------------------- empty corpus
@pytest.fixture
def empty(write_beir: BeirWriter) -> Collection:
    return open_collection(write_beir([], QUERIES, QRELS, name="empty"))


def test_an_empty_corpus_is_named_before_the_qrels_are_blamed(empty: Collection, tmp_path: Path) -> None:
    expected = r"empty/corpus\.jsonl: the corpus file has 0 documents.*Fix: check \[data\]\.source"
    cfg = IndexConfig(output_dir=str(tmp_path / "idx"), dense=False)
    with pytest.raises(DataError, match=expected) as raised:
        run_stage("index", tmp_path / "run", cfg, {}, lambda ctx: index_stage(ctx, cfg, empty, "test"))
    assert type(raised.value) is DataError and "unknown document" not in str(raised.value)
    assert not (tmp_path / "idx").exists()


def test_qrels_of_an_empty_corpus_name_the_corpus(empty: Collection) -> None:
    with pytest.raises(DataError, match=r"empty/corpus\.jsonl: the corpus has 0 documents.*Fix: ") as raised:
        empty.qrels("test")
    assert type(raised.value) is DataError and "unknown document" not in str(raised.value)


# --------------------------------------------------------------------------- with Lucene
@pytest.mark.slow
def test_bm25_of_two_corpora_named_alike(two_tinies: tuple[Path, Path]) -> None:
    from inpars.indexing import Bm25Searcher, ensure_bm25_index

    hits: list[Any] = []
    folders = []
    for source in two_tinies:
        folder, built = ensure_bm25_index(open_collection(source))
        assert built
        folders.append(folder)
        with Bm25Searcher(folder) as searcher:
            hits.append({p.doc_id for p in searcher.search([Query("q", "volcano glaciers")], k=5)["q"]})
    assert folders[0] == Path("index") / "tiny" / "bm25" and folders[1] != folders[0]
    assert hits == [{"g1", "g2"}, {"a1", "a2"}]
    assert ensure_bm25_index(open_collection(two_tinies[0])) == (folders[0], False)
