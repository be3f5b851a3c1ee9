"""Dense indexes with the packaged all-MiniLM-L6-v2: build, search a paraphrase, reload
without encoding, resume an interrupted encoding, re-encode with another model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import inpars.indexing.dense_build as build_module
from inpars.data import Collection, open_collection
from inpars.errors import DataError, IndexStoreError
from inpars.indexing import INDEX_MANIFEST, DenseIndex, dense_index_dir, ensure_dense_index, model_slug
from inpars.models import resolve_model
from inpars.records import Query

MODEL = "all-MiniLM-L6-v2"
REAL_ENCODE = build_module.encode
DOCS = [
    {
        "_id": "heart",
        "title": "Cardiology",
        "text": "A heart attack happens when blood flow to the heart is blocked.",
    },
    {
        "_id": "python",
        "title": "Programming",
        "text": "Python is a programming language with dynamic typing.",
    },
    {"_id": "paris", "title": "Travel", "text": "The Eiffel Tower is the most visited monument in Paris."},
    {
        "_id": "bread",
        "title": "Baking",
        "text": "Knead the dough, let it rise, then bake the loaf in a hot oven.",
    },
    {
        "_id": "orbit",
        "title": "Space",
        "text": "The moon circles the earth roughly once every twenty-seven days.",
    },
    {"_id": "empty", "title": "", "text": ""},
    {"_id": "tax", "title": "Finance", "text": "Income tax returns must be filed before the April deadline."},
]


@pytest.fixture
def tiny(write_beir: Callable[..., Path]) -> Collection:
    return open_collection(
        write_beir(DOCS, [{"_id": "q", "text": "myocardial infarction"}], {"test": [("q", "heart", 1)]})
    )


class SimulatedCrash(RuntimeError):
    pass


class EncodeSpy:
    """Counts the documents the real encoder is asked to encode; can fail after a budget."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.docs = 0
        self.fail_after = fail_after

    def __call__(self, encoder: Any, texts: list[str], *, batch_size: int, queries: bool) -> Any:
        if not queries:
            if self.fail_after is not None and self.docs + len(texts) > self.fail_after:
                raise SimulatedCrash("simulated interruption")
            self.docs += len(texts)
        return REAL_ENCODE(encoder, texts, batch_size=batch_size, queries=queries)


@pytest.mark.slow
def test_build_search_and_reload_without_encoding(
    tiny: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = EncodeSpy()
    monkeypatch.setattr(build_module, "encode", spy)
    folder = dense_index_dir(tmp_path / "index" / "tiny", MODEL)
    assert folder == tmp_path / "index" / "tiny" / "dense" / "all-MiniLM-L6-v2"
    index, built = ensure_dense_index(tiny, folder, MODEL, batch_size=4)
    assert built and spy.docs == len(DOCS) and index.num_docs == len(DOCS)
    assert {p.name for p in folder.iterdir()} == {
        "embeddings.npy",
        "doc_ids.json",
        "faiss.index",
        INDEX_MANIFEST,
    }
    vectors = np.load(folder / "embeddings.npy")
    assert vectors.shape == (len(DOCS), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[[0, 1, 2]], axis=1), 1.0, atol=1e-4)

    paraphrases = [
        Query("q1", "myocardial infarction caused by a blocked artery"),
        Query("q2", "a famous landmark in the French capital"),
        Query("q3", "how long does a lunar cycle take"),
        Query("q4", "deadline to submit your tax declaration"),
    ]
    run = index.search(paraphrases, k=3)
    assert [run[q.query_id][0].doc_id for q in paraphrases] == ["heart", "paris", "orbit", "tax"]
    assert all(len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score for hits in run.values())

    stamp = (folder / "embeddings.npy").stat().st_mtime_ns
    again, built = ensure_dense_index(tiny, folder, MODEL)
    assert again.doc_ids == index.doc_ids
    assert not built and spy.docs == len(DOCS)  # nothing encoded again
    assert (folder / "embeddings.npy").stat().st_mtime_ns == stamp
    loaded = DenseIndex.load(folder)
    assert loaded.doc_ids == index.doc_ids and loaded._encoder is None  # the model loads only to search
    assert loaded.search(paraphrases, k=1) == {qid: hits[:1] for qid, hits in run.items()}
    assert spy.docs == len(DOCS)

    self_query = [Query("paris", "Eiffel Tower monument Paris")]
    assert index.search(self_query, k=2)["paris"][0].doc_id == "paris"
    without = index.search(self_query, k=2, remove_self_hits=True)["paris"]
    assert "paris" not in {p.doc_id for p in without} and len(without) == 2


@pytest.mark.slow
def test_interrupted_encoding_resumes(
    tiny: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "dense"
    monkeypatch.setattr(build_module, "encode", EncodeSpy(fail_after=4))
    with pytest.raises(SimulatedCrash):
        ensure_dense_index(tiny, folder, MODEL, chunk_size=2)
    assert not folder.exists() and (tmp_path / ".dense.partial" / "progress.json").is_file()
    spy = EncodeSpy()
    monkeypatch.setattr(build_module, "encode", spy)
    index, built = ensure_dense_index(tiny, folder, MODEL, chunk_size=2)
    assert built and spy.docs == len(DOCS) - 4  # only what the first run had not finished
    assert not (tmp_path / ".dense.partial").exists()
    fresh, _ = ensure_dense_index(tiny, tmp_path / "fresh", MODEL)
    assert np.allclose(index.embeddings(), fresh.embeddings(), atol=1e-5)


@pytest.mark.slow
def test_reencode_with_another_model_goes_to_its_own_folder(
    tiny: Collection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "index" / "tiny"
    index, _ = ensure_dense_index(tiny, dense_index_dir(root, MODEL), MODEL)
    stamp = (index.folder / "embeddings.npy").stat().st_mtime_ns
    tuned = tmp_path / "runs" / "train" / "encoder"  # stands in for a fine-tuned model folder
    tuned.parent.mkdir(parents=True)
    tuned.symlink_to(resolve_model(MODEL), target_is_directory=True)
    other = DenseIndex.load(index.folder).reencode(str(tuned), tiny)
    assert other.folder == root / "dense" / model_slug(str(tuned)) and other.folder != index.folder
    assert other.model == str(tuned) and other.num_docs == index.num_docs
    assert (index.folder / "embeddings.npy").stat().st_mtime_ns == stamp
    with pytest.raises(IndexStoreError, match="pass the collection"):
        DenseIndex.load(index.folder).reencode(str(tuned))


@pytest.mark.slow
def test_errors(write_beir: Callable[..., Path], tiny: Collection, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty/corpus\.jsonl: the corpus file has 0 documents"):
        ensure_dense_index(open_collection(write_beir([], [], {}, name="empty")), tmp_path / "e", MODEL)
    with pytest.raises(IndexStoreError, match="no dense index there"):
        DenseIndex.load(tmp_path / "missing")
    index, _ = ensure_dense_index(tiny, tmp_path / "dense", MODEL)
    (index.folder / "faiss.index").unlink()
    with pytest.raises(IndexStoreError, match=r"faiss\.index is missing"):
        DenseIndex.load(index.folder)
    with pytest.raises(IndexStoreError, match="not a 'dense' one"):
        (tmp_path / "bm25").mkdir()
        (tmp_path / "bm25" / INDEX_MANIFEST).write_text('{"kind": "bm25"}')
        DenseIndex.load(tmp_path / "bm25")
