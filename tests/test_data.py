"""The data layer on real collections, plain files, ir_datasets, open_collection and
DocumentLookup."""

from __future__ import annotations

import ast
import logging
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inpars.config import DataConfig
from inpars.data import (
    DocumentLookup,
    FileCollection,
    IrDatasetsCollection,
    open_collection,
    open_from_config,
)
from inpars.data.collection import __file__ as COLLECTION_MODULE
from inpars.errors import DataError
from inpars.records import Document, Qrel, Query
from tests.conftest import TINY_DOCS, TINY_QRELS, TINY_QUERIES, write_lines

# --------------------------------------------------------------------------- real collections


@pytest.mark.needs_data
def test_scifact_counts(shared_data: Path) -> None:
    scifact = open_collection(shared_data / "scifact")
    assert isinstance(scifact, FileCollection)
    assert scifact.name == "scifact"
    assert scifact.count_docs() == 5183
    assert scifact.splits() == ["test", "train"]
    assert len(list(scifact.queries())) == 1109
    assert len(scifact.split_queries("test")) == 300
    assert len(scifact.qrels("test")) == 339
    assert len(scifact.split_queries("train")) == 809
    assert len(scifact.qrels("train")) == 919
    assert scifact.empty_doc_ids() == ()
    first = next(scifact.docs())
    assert first.doc_id == "4983"
    assert first.title.startswith("Microstructural development of human newborn")
    names = [p.name for p in scifact.source_files()]
    assert names == ["corpus.jsonl", "queries.jsonl", "test.tsv", "train.tsv"]


@pytest.mark.needs_data
def test_cranfield_counts_and_empty_docs(shared_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    cranfield = open_collection(shared_data / "cranfield")
    with caplog.at_level(logging.WARNING):
        assert cranfield.count_docs() == 1400
    assert cranfield.empty_doc_ids() == ("471", "995")  # empty in the original, readable anyway
    assert "2 document(s) with an empty title and text" in caplog.text
    assert len(list(cranfield.queries())) == 225
    assert len(cranfield.qrels("test")) == 1612
    assert {q.relevance for q in cranfield.qrels("test")} == {1, 2, 3, 4}
    assert cranfield.summary() == {
        "docs": 1400, "empty_docs": 2, "queries": 225, "qrels_test": 1612, "queries_test": 225,
    }


@pytest.mark.needs_data
def test_cisi_counts(shared_data: Path) -> None:
    cisi = open_collection(shared_data / "cisi")
    assert cisi.count_docs() == 1460
    assert len(list(cisi.queries())) == 112
    assert len(cisi.qrels("test")) == 3114
    assert len(cisi.split_queries("test")) == 76  # 36 queries have no judgements


@pytest.mark.needs_data
def test_docs_are_streamed_anew_each_call(shared_data: Path) -> None:
    cisi = open_collection(shared_data / "cisi")
    first_pass = cisi.docs()
    assert next(first_pass).doc_id == next(cisi.docs()).doc_id  # two independent streams
    assert sum(1 for _ in cisi.docs()) == sum(1 for _ in cisi.docs()) == 1460


# --------------------------------------------------------------------------- tiny BEIR folders


def test_tiny_beir_folder(
    write_beir: Callable[..., Path], snapshot_files: Callable[[Path], dict[str, bytes]]
) -> None:
    root = write_beir()
    before = snapshot_files(root)
    tiny = FileCollection.from_beir(root)
    assert tiny.name == "tiny"
    docs = list(tiny.docs())
    assert docs[0] == Document("d1", TINY_DOCS[0]["text"], "Cats")
    assert docs[2] == Document("d3", TINY_DOCS[2]["text"], "")
    assert [q.query_id for q in tiny.queries()] == ["q1", "q2", "q3"]
    assert tiny.qrels("test") == [Qrel("q1", "d1", 1), Qrel("q2", "d2", 2)]
    assert tiny.split_queries("train") == [Query("q3", "largest river by volume")]
    assert tiny.summary()["qrels_train"] == 1
    assert snapshot_files(root) == before  # input is only read


def test_corpus_only_folder_and_file(write_beir: Callable[..., Path]) -> None:
    root = write_beir(queries=[], qrels={})
    bare = open_collection(root)
    assert bare.count_docs() == 4
    assert list(bare.queries()) == []
    assert bare.splits() == []
    with pytest.raises(DataError, match=r"no judgements .* for split 'test'"):
        bare.qrels("test")
    single = open_collection(root / "corpus.jsonl")
    assert single.name == "tiny"
    assert [d.doc_id for d in single.docs()] == ["d1", "d2", "d3", "d4"]


def test_unknown_split_names_the_available_ones(write_beir: Callable[..., Path]) -> None:
    tiny = FileCollection.from_beir(write_beir())
    with pytest.raises(DataError, match=r"split 'dev'.*\['test', 'train'\]"):
        tiny.split_queries("dev")


def test_missing_folder_and_missing_corpus(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere: folder not found\. Fix: .*BEIR folder"):
        FileCollection.from_beir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no corpus\.jsonl in this folder\. Fix: a BEIR folder holds"):
        open_collection(tmp_path / "empty")


def test_qrels_without_queries_file(write_beir: Callable[..., Path]) -> None:
    with pytest.raises(DataError, match=r"queries\.jsonl is missing"):
        FileCollection.from_beir(write_beir(queries=[]))


# --------------------------------------------------------------------------- plain files


def test_plain_jsonl_and_tsv_files_read_like_beir(tmp_path: Path, write_beir: Callable[..., Path]) -> None:
    reference = FileCollection.from_beir(write_beir())
    docs_jsonl = write_lines(tmp_path / "docs.jsonl", [
        {"doc_id": d["_id"], "title": d["title"], "text": d["text"]} for d in TINY_DOCS
    ])
    docs_tsv = write_lines(tmp_path / "docs.tsv", ["doc_id\ttitle\ttext"] + [
        f"{d['_id']}\t{d['title']}\t{d['text']}" for d in TINY_DOCS
    ])
    queries_tsv = write_lines(tmp_path / "queries.tsv", [f"{q['_id']}\t{q['text']}" for q in TINY_QUERIES])
    trec = write_lines(tmp_path / "test.qrels", [f"{q} 0 {d} {r}" for q, d, r in TINY_QRELS["test"]])
    beir_train = reference.source_files()[-1]
    for corpus in (docs_jsonl, docs_tsv):
        plain = FileCollection(corpus, queries_tsv, {"test": trec, "train": beir_train})
        assert plain.name == "docs"
        assert list(plain.docs()) == list(reference.docs())
        assert list(plain.queries()) == list(reference.queries())
        assert plain.qrels("test") == reference.qrels("test")
        assert plain.split_queries("train") == reference.split_queries("train")


def test_two_column_tsv_corpus_and_crlf(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.tsv"
    corpus.write_bytes(b"7\tfirst text\r\n8\tsecond text\r\n")
    plain = FileCollection(corpus)
    assert list(plain.docs()) == [Document("7", "first text"), Document("8", "second text")]


def test_integer_ids_and_utf8_bom_are_accepted(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    bom = b"\xef\xbb\xbf"
    corpus.write_bytes(bom + b'{"id": 12, "text": "caf\xc3\xa9"}\n{"id": 13, "text": "tea", "title": null}\n')
    assert list(FileCollection(corpus).docs()) == [Document("12", "café"), Document("13", "tea")]


def test_unknown_file_format(tmp_path: Path) -> None:
    corpus = write_lines(tmp_path / "corpus.csv", ["1,text"])
    with pytest.raises(DataError, match=r"corpus\.csv: cannot tell the format.*Fix: name it \.jsonl"):
        FileCollection(corpus)


# --------------------------------------------------------------------------- ir_datasets


def _local_irds_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    docs = write_lines(tmp_path / "docs.tsv", [f"{d['_id']}\t{d['text']}" for d in TINY_DOCS])
    queries = write_lines(tmp_path / "queries.tsv", [f"{q['_id']}\t{q['text']}" for q in TINY_QUERIES])
    qrels = write_lines(tmp_path / "qrels.txt", [f"{q} 0 {d} {r}" for q, d, r in TINY_QRELS["test"]])
    return docs, queries, qrels


def test_ir_datasets_local_dataset(tmp_path: Path) -> None:
    import ir_datasets

    docs, queries, qrels = _local_irds_files(tmp_path)
    dataset = ir_datasets.create_dataset(docs_tsv=str(docs), queries_tsv=str(queries), qrels_trec=str(qrels))
    local = IrDatasetsCollection(dataset, name="local")
    assert isinstance(local, IrDatasetsCollection)
    assert local.name == "local"
    assert local.splits() == ["test"]
    assert [d.doc_id for d in local.docs()] == ["d1", "d2", "d3", "d4"]
    assert local.count_docs() == 4
    assert next(local.docs()) == Document("d1", TINY_DOCS[0]["text"])
    assert [q.query_id for q in local.queries()] == ["q1", "q2", "q3"]
    assert local.qrels("test") == [Qrel("q1", "d1", 1), Qrel("q2", "d2", 2)]
    assert [q.query_id for q in local.split_queries("test")] == ["q1", "q2"]
    # the same files read directly give the same collection
    plain = FileCollection(docs, queries, {"test": qrels})
    assert list(plain.docs()) == list(local.docs())
    assert plain.qrels("test") == local.qrels("test")


def test_ir_datasets_checks_like_files(tmp_path: Path) -> None:
    import ir_datasets

    docs, _, qrels = _local_irds_files(tmp_path)
    queries = write_lines(tmp_path / "bad_queries.tsv", ["q1\tdo cats purr", "q2\t "])
    dataset = ir_datasets.create_dataset(docs_tsv=str(docs), queries_tsv=str(queries), qrels_trec=str(qrels))
    expected = r"irds:local/queries, line 2, field 'text': query 'q2' has an empty text"
    with pytest.raises(DataError, match=expected):
        list(IrDatasetsCollection(dataset, name="local").queries())


def test_ir_datasets_id_and_sibling_splits() -> None:
    scifact = open_collection("irds:beir/scifact/test")  # metadata only: nothing is downloaded
    assert isinstance(scifact, IrDatasetsCollection)
    assert scifact.name == "beir/scifact/test"
    assert scifact.splits() == ["test", "train"]
    with pytest.raises(DataError, match="'beir/nothing-here' is not an ir_datasets id"):
        IrDatasetsCollection("beir/nothing-here")


def _online(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def test_ir_datasets_offline_download_is_a_clear_error() -> None:
    if _online("public.ukp.informatik.tu-darmstadt.de"):
        pytest.skip("online: ir_datasets would download SciFact instead of failing")
    scifact = IrDatasetsCollection("beir/scifact/test")
    with pytest.raises(DataError, match=r"ir_datasets could not read the queries .*Fix: .*local BEIR folder"):
        list(scifact.queries())


# --------------------------------------------------------------------------- open_collection


def test_open_collection_fallback(
    tmp_path: Path, write_beir: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    root = write_beir()
    with caplog.at_level(logging.INFO, logger="inpars.data"):
        opened = open_collection(tmp_path / "missing", fallback=str(root))
    assert opened.name == "tiny"
    assert "missing not found; using the fallback" in caplog.text
    assert f"reading the BEIR folder {root}" in caplog.text
    via_id = open_collection(tmp_path / "missing", fallback="beir/scifact/test")
    assert isinstance(via_id, IrDatasetsCollection)
    assert via_id.name == "beir/scifact/test"


def test_open_collection_path_wins_over_id(
    tmp_path: Path, write_beir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_collection("beir/scifact/test"), IrDatasetsCollection)
    write_beir(name="beir/scifact/test")
    assert isinstance(open_collection("beir/scifact/test"), FileCollection)


def test_open_collection_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no such folder or file, and not an ir_datasets id\. Fix: "):
        open_collection(tmp_path / "missing")
    with pytest.raises(DataError, match=r"no data source given\. Fix: set \[data\]\.source"):
        open_collection("")


def test_open_from_config(write_beir: Callable[..., Path]) -> None:
    root = write_beir(docs=[*TINY_DOCS, "{broken"])
    lenient = open_from_config(DataConfig(source=str(root), skip_bad_lines=True))
    assert lenient.count_docs() == 4
    assert lenient.report is not None and lenient.report.total == 1
    strict = open_from_config(DataConfig(source=str(root)))
    with pytest.raises(DataError, match=r"corpus\.jsonl, line 5: malformed JSON"):
        strict.count_docs()


def test_the_base_class_imports_no_reader_and_the_package_imports_alone() -> None:
    tree = ast.parse(Path(COLLECTION_MODULE).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("inpars.data")}
    done = subprocess.run([sys.executable, "-c", "import inpars.data"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- DocumentLookup
class FakeStore:
    """An index that returns documents by id and counts the calls."""

    def __init__(self, docs: dict[str, Document]) -> None:
        self.table, self.calls = docs, 0

    def document(self, doc_id: str) -> Document:
        self.calls += 1
        if doc_id not in self.table:
            raise DataError(f"no document with id {doc_id!r} in this index. Fix: check the id")
        return self.table[doc_id]


class FakeStream:
    """A collection that streams its documents and counts the passes."""

    def __init__(self, docs: list[Document]) -> None:
        self.items, self.passes = docs, 0

    def docs(self) -> Iterator[Document]:
        self.passes += 1
        yield from self.items


DOCS = [Document("d1", "Cats purr.", "Cats"), Document("d2", "Dogs bark."), Document("d3", "Paris.")]


def test_lookup_over_a_mapping_a_function_and_a_store() -> None:
    by_id = DocumentLookup({d.doc_id: d for d in DOCS}, fix="use the same collection")
    assert by_id.get("d1") == DOCS[0]
    with pytest.raises(DataError, match=r"document 'zz' is not in the collection\. Fix: use the same"):
        by_id.get("zz")
    assert DocumentLookup({"d1": "Cats purr."}).get("d1") == Document("d1", "Cats purr.")
    assert DocumentLookup(str.upper).get("ab") == Document("ab", "AB")
    store = FakeStore({d.doc_id: d for d in DOCS})
    cached = DocumentLookup(store, cache_size=1)
    assert [cached.get(d).doc_id for d in ("d1", "d1", "d2", "d1")] == ["d1", "d1", "d2", "d1"]
    assert store.calls == 3  # d1 was asked again once d2 pushed it out of the cache of one
    with pytest.raises(DataError, match=r"'zz' in this index"):  # the store's own error
        cached.get("zz")
    with pytest.raises(DataError, match=r"cannot look documents up in a int"):
        DocumentLookup(42)  # type: ignore[arg-type]


def test_lookup_reads_a_stream_once_for_the_needed_ids() -> None:
    stream = FakeStream(DOCS)
    lookup = DocumentLookup(stream, needed={"d1", "d2"}, fix="filter with the right collection")
    assert stream.passes == 0  # read on the first lookup, not before
    assert (lookup.get("d1"), lookup.get("d2")) == (DOCS[0], DOCS[1])
    assert stream.passes == 1
    assert lookup.get("d3") == DOCS[2]  # not announced: one more pass
    with pytest.raises(DataError, match=r"document 'zz' is not in the collection\. Fix: filter with"):
        lookup.get("zz")
    with pytest.raises(DataError, match="'zz'"):
        lookup.get("zz")
    assert stream.passes == 3  # a missing id is looked for once
    fresh = FakeStream(DOCS)
    assert DocumentLookup(fresh).fetch(["d3", "d1"]) == {"d3": DOCS[2], "d1": DOCS[0]}
    assert fresh.passes == 1
    with pytest.raises(DataError, match=r"2 documents are not in the collection \(e\.g\. \['x', 'y'\]\)"):
        DocumentLookup(fresh).fetch(["d1", "y", "x"])


def test_lookup_over_a_real_collection(write_beir: Callable[..., Path]) -> None:
    found = DocumentLookup(open_collection(write_beir())).fetch(["d3", "d1"])
    assert found["d1"] == Document("d1", "Cats are small domesticated felines that purr.", "Cats")
    assert list(found) == ["d3", "d1"]
