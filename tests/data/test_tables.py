"""Corpora from tables: Parquet files and folders, Hugging Face ``save_to_disk`` folders
(a Dataset, a DatasetDict), column mapping, their errors, and a fingerprint that follows
the documents, not the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from inpars.bad_lines import LineReport
from inpars.config import parse_config
from inpars.data import FileCollection, open_collection, open_from_config
from inpars.errors import BadLineError, ConfigError, DataError, DependencyError
from inpars.indexing.store import corpus_fingerprint, fingerprint_of
from inpars.records import Document
from tests.conftest import TINY_QUERIES, write_lines

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS: dict[str, list[Any]] = {
    "_id": ["d1", "d2", "d3", "d4"],
    "title": ["Cats", "Dogs", None, "Rivers"],
    "text": ["Cats purr.", "Dogs bark.", "The Eiffel tower.", None],
    "extra": [1, 2, 3, 4],
}
DOCS = [Document("d1", "Cats purr.", "Cats"), Document("d2", "Dogs bark.", "Dogs"),
        Document("d3", "The Eiffel tower.", ""), Document("d4", "", "Rivers")]


def write_parquet(path: Path, rows: dict[str, list[Any]] = ROWS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)
    return path


def save_to_disk(path: Path, rows: dict[str, list[Any]] = ROWS, *, split: str | None = None) -> Path:
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict(rows)
    (datasets.DatasetDict({split: dataset}) if split else dataset).save_to_disk(str(path))
    return path


def test_parquet_file(tmp_path: Path) -> None:
    collection = open_collection(write_parquet(tmp_path / "scifact" / "corpus.parquet"))
    assert isinstance(collection, FileCollection) and collection.name == "scifact"
    assert list(collection.docs()) == DOCS
    assert collection.splits() == [] and list(collection.queries()) == []
    assert collection.source_files() == [tmp_path / "scifact" / "corpus.parquet"]


def test_folder_of_parquet_shards_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    write_parquet(folder / "part-1.parquet", {k: v[2:] for k, v in ROWS.items()})
    write_parquet(folder / "part-0.parquet", {k: v[:2] for k, v in ROWS.items()})
    (folder / "README.md").write_text("not data")
    collection = open_collection(folder)
    assert collection.name == "shards"
    assert list(collection.docs()) == DOCS
    assert [p.name for p in collection.source_files()] == ["part-0.parquet", "part-1.parquet"]


def test_integer_ids_and_no_title_column(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "nums.parquet", {"id": [7, 8], "text": ["seven", "eight"]})
    assert list(open_collection(path).docs()) == [Document("7", "seven"), Document("8", "eight")]


def test_save_to_disk_dataset(tmp_path: Path) -> None:
    folder = save_to_disk(tmp_path / "hf")
    collection = open_collection(folder)
    assert collection.name == "hf"
    assert list(collection.docs()) == DOCS
    assert [p.suffix for p in collection.source_files()] == [".arrow"]


def test_save_to_disk_dataset_dict(tmp_path: Path) -> None:
    assert list(open_collection(save_to_disk(tmp_path / "one", split="train")).docs()) == DOCS
    datasets = pytest.importorskip("datasets")
    both = datasets.DatasetDict({"queries": datasets.Dataset.from_dict({"_id": ["q"], "text": ["x"]}),
                                 "corpus": datasets.Dataset.from_dict(ROWS)})
    both.save_to_disk(str(tmp_path / "both"))
    assert list(open_collection(tmp_path / "both").docs()) == DOCS  # the "corpus" split
    other = datasets.DatasetDict({name: datasets.Dataset.from_dict(ROWS) for name in ("a", "b")})
    other.save_to_disk(str(tmp_path / "other"))
    with pytest.raises(DataError, match=r"splits a, b, and none is 'corpus'\. Fix: point \[data\]\.source "
                                        r"at the corpus split's folder, e.g\. .*other/a"):
        open_collection(tmp_path / "other")


def test_column_mapping_from_the_config(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "marco.parquet",
                         {"pid": ["p1", "p2"], "passage": ["one", "two"], "heading": ["H", "I"]})
    columns = {"doc_id": "pid", "text": "passage", "title": "heading"}
    toml = {"data": {"source": str(path), "columns": columns}}
    collection = open_from_config(parse_config(toml, "x.toml").data)
    assert list(collection.docs()) == [Document("p1", "one", "H"), Document("p2", "two", "I")]
    with pytest.raises(ConfigError, match=r"x.toml \[data\]: columns.body = 'text': map doc_id, title or "
                                          r"text.*Fix: "):
        parse_config({"data": {"source": str(path), "columns": {"body": "text"}}}, "x.toml")


def test_beir_folder_with_a_parquet_corpus(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    write_parquet(root / "corpus.parquet")
    write_lines(root / "queries.jsonl", TINY_QUERIES)
    write_lines(root / "qrels" / "test.tsv", ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td9\t1"])
    collection = open_collection(root)
    assert collection.name == "tiny" and collection.splits() == ["test"]
    with pytest.raises(BadLineError, match=r"test.tsv, line 3, field 'corpus-id': judgement for unknown "
                                           r"document 'd9'"):
        collection.qrels("test")
    assert [p.name for p in collection.source_files()] == ["corpus.parquet", "queries.jsonl", "test.tsv"]


def test_mapping_applies_to_a_jsonl_corpus_and_is_refused_for_tsv(tmp_path: Path) -> None:
    jsonl = write_lines(tmp_path / "c.jsonl", [{"pid": "p1", "body": "hello"}])
    got = open_collection(jsonl, columns={"doc_id": "pid", "text": "body"})
    assert list(got.docs()) == [Document("p1", "hello")]
    with pytest.raises(BadLineError, match=r'c.jsonl, line 1, field \'doc\': no document id. Fix: give '
                                           r'each document an "doc", '):
        list(open_collection(jsonl, columns={"doc_id": "doc"}).docs())
    tsv = write_lines(tmp_path / "c.tsv", ["p1\thello"])
    with pytest.raises(DataError, match=r"c.tsv: \[data\] columns .* Fix: remove \[data\] columns"):
        open_collection(tsv, columns={"text": "body"})


# --------------------------------------------------------------------------- errors


def test_missing_text_column_names_the_file_the_columns_and_the_fix(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "c.parquet", {"_id": ["a"], "passage": ["x"]})
    with pytest.raises(DataError) as caught:
        open_collection(path)
    assert str(caught.value) == (
        f"{path}: no text column ('text'); the columns are: _id, passage. Fix: rename the column to "
        "'text' or map it in the config: [data] columns = {text = \"<column>\"}"
    )


def test_missing_id_and_mapped_columns(tmp_path: Path) -> None:
    folder = save_to_disk(tmp_path / "hf", {"pid": ["a"], "text": ["x"]})
    with pytest.raises(DataError, match=r"data-00000-of-00001.arrow: no doc_id column \('_id' or 'doc_id' or "
                                        r"'id'\); the columns are: pid, text\. Fix: .*columns = \{doc_id"):
        open_collection(folder)
    with pytest.raises(DataError, match=r"no column 'heading' \(\[data\] columns.title\); the columns are: "
                                        r"pid, text\. Fix: set \[data\] columns.title"):
        open_collection(folder, columns={"doc_id": "pid", "title": "heading"})


def test_one_bad_shard_among_good_ones_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    write_parquet(folder / "a.parquet")
    write_parquet(folder / "b.parquet", {"_id": ["z"], "body": ["x"]})
    with pytest.raises(DataError, match=r"b.parquet: no text column"):
        open_collection(folder)


def test_columns_of_the_wrong_type(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "c.parquet", {"_id": [1.5], "text": ["x"]})
    with pytest.raises(DataError, match=r"c.parquet: column '_id' \(document id\) holds double values, not "
                                        r"text or integers .*Fix: cast the column to strings"):
        open_collection(path)
    path = write_parquet(tmp_path / "d.parquet", {"_id": ["a"], "text": [[1, 2]]})
    with pytest.raises(DataError, match=r"column 'text' \(document text\) holds list<.*> values, not text"):
        open_collection(path)


def test_null_ids_raise_or_are_skipped_and_duplicates_are_caught(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "c.parquet", {"_id": ["a", None, "a"], "text": ["x", "y", "z"]})
    with pytest.raises(BadLineError, match=r"c.parquet, line 2, field '_id': no document id \(null\)"):
        list(open_collection(path).docs())
    report = LineReport()
    collection = open_collection(path, report=report)
    assert [d.doc_id for d in collection.docs()] == ["a"]
    assert report.skipped == {"missing document id": 1, "duplicate document id": 1}


def test_not_a_parquet_file_and_a_broken_dataset_folder(tmp_path: Path) -> None:
    bad = tmp_path / "c.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match=r"c.parquet: not a readable Parquet file .*Fix: "):
        open_collection(bad)
    folder = save_to_disk(tmp_path / "hf")
    next(folder.glob("*.arrow")).unlink()
    with pytest.raises(DataError, match=r"state.json: the dataset's data files are missing .*Fix: write"):
        open_collection(folder)


def test_without_pyarrow_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from inpars.data import tables

    path = write_parquet(tmp_path / "c.parquet")

    def no_pyarrow(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(tables.importlib, "import_module", no_pyarrow)
    with pytest.raises(DependencyError, match=r"needs pyarrow\. Fix: pip install datasets"):
        open_collection(path)
    monkeypatch.setattr(tables.importlib, "import_module", importlib.import_module)


# --------------------------------------------------------------------------- fingerprints


def test_the_corpus_fingerprint_follows_the_documents(tmp_path: Path) -> None:
    first = open_collection(save_to_disk(tmp_path / "a" / "hf"))
    again = open_collection(save_to_disk(tmp_path / "b" / "hf"))  # written anew elsewhere
    moved = tmp_path / "c" / "hf"
    shutil.copytree(tmp_path / "a" / "hf", moved)
    state = json.loads((moved / "state.json").read_text())
    state["_fingerprint"] = "0123456789abcdef"  # datasets' own fingerprint is not the content
    (moved / "state.json").write_text(json.dumps(state))
    changed = open_collection(save_to_disk(tmp_path / "d" / "hf", {**ROWS, "text": ["x", "y", "z", "w"]}))
    prints = [fingerprint_of(corpus_fingerprint(c)) for c in (first, again, open_collection(moved), changed)]
    assert prints[0] == prints[1] == prints[2] != prints[3]
    parquet = [fingerprint_of(corpus_fingerprint(open_collection(write_parquet(tmp_path / n / "c.parquet"))))
               for n in ("p", "q")]
    assert parquet[0] == parquet[1]
