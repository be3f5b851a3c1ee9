"""Bad input: every malformed line raises BadLineError naming file, line, field and fix;
with a LineReport (--skip-bad-lines) it is counted by reason and skipped instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from inpars.bad_lines import LineReport
from inpars.data import FileCollection
from inpars.errors import BadLineError
from tests.conftest import TINY_DOCS, TINY_QUERIES, write_lines

D1, D2, D3, D4 = TINY_DOCS
Q1, Q2, Q3 = TINY_QUERIES
ONLY_Q1_D1 = {"test": [("q1", "d1", 1)]}


@dataclass(frozen=True)
class Case:
    """A tiny BEIR folder with one planted bad line, and what reading it must say."""

    name: str
    folder: dict[str, Any]
    file: str
    line: int
    field: str | None
    reason: str
    counts: dict[str, int]  # summary() in skip mode
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("malformed JSON", {"docs": [D1, '{"_id": "d2", "text": "broken', D3, D4], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 2, None, "malformed JSON", {"docs": 3, "qrels_test": 1}),
    Case("truncated last line", {"docs": [D1, D2, D3, '{"_id": "d4", "te'], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 4, None, "malformed JSON", {"docs": 3}),
    Case("not a JSON object", {"docs": [D1, '["d2", "text"]', D3, D4], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 2, None, "not a JSON object", {"docs": 3}),
    Case("missing _id", {"docs": [D1, {"title": "x", "text": "no id"}, D3, D4], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 2, "_id", "missing document id", {"docs": 3, "qrels_test": 1}),
    Case("bad id type", {"docs": [D1, {"_id": ["d2"], "text": "x"}, D3, D4], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 2, "_id", "bad id type", {"docs": 3, "qrels_test": 1}),
    Case("duplicate doc id", {"docs": [D1, D2, {**D3, "_id": "d1"}, D4]},
         "corpus.jsonl", 3, "_id", "duplicate document id", {"docs": 3, "qrels_test": 2},
         message="duplicate document id 'd1' (first at line 1)"),
    Case("non-UTF-8 bytes",
         {"docs": [D1, b'{"_id": "d2", "title": "Dogs", "text": "caf\xe9"}', D3, D4], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 2, "text", "not UTF-8", {"docs": 3, "qrels_test": 1}),
    Case("id with whitespace", {"docs": [D1, {**D2, "_id": "d 2"}, D3, D4], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 2, "_id", "document id with whitespace", {"docs": 3, "qrels_test": 1}),
    Case("missing text", {"docs": [D1, {"_id": "d2", "title": "Dogs"}, D3, D4], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 2, "text", "missing text", {"docs": 3, "qrels_test": 1}),
    Case("text not a string", {"docs": [D1, {"_id": "d2", "text": 5}, D3, D4], "qrels": ONLY_Q1_D1},
         "corpus.jsonl", 2, "text", "text not a string", {"docs": 3, "qrels_test": 1}),
    Case("empty query text", {"queries": [Q1, {"_id": "q2", "text": "  "}, Q3], "qrels": ONLY_Q1_D1},
         "queries.jsonl", 2, "text", "empty query text", {"queries": 2, "qrels_test": 1},
         message="query 'q2' has an empty text"),
    Case("duplicate query id", {"queries": [Q1, Q2, {**Q3, "_id": "q1"}], "qrels": ONLY_Q1_D1},
         "queries.jsonl", 3, "_id", "duplicate query id", {"queries": 2}),
    Case("qrels: unknown document", {"qrels": {"test": [("q1", "d1", 1), ("q1", "d9", 1)]}},
         "qrels/test.tsv", 3, "corpus-id", "judgement for an unknown document", {"qrels_test": 1},
         message="judgement for unknown document 'd9'"),
    Case("qrels: unknown query", {"qrels": {"test": [("q9", "d1", 1), ("q1", "d1", 1)]}},
         "qrels/test.tsv", 2, "query-id", "judgement for an unknown query", {"qrels_test": 1}),
    Case("qrels: bad score", {"qrels": {"test": [("q1", "d1", 1), ("q2", "d2", "high")]}},
         "qrels/test.tsv", 3, "score", "bad relevance score", {"qrels_test": 1},
         message="relevance 'high' is not an integer"),
    Case("qrels: float score", {"qrels": {"test": [("q1", "d1", "1.0")]}},
         "qrels/test.tsv", 2, "score", "bad relevance score", {"qrels_test": 0}),
    Case("qrels: no header", {"qrels": {"test": [("q1", "d1", 1), ("q2", "d2", 1)]}, "qrels_header": False},
         "qrels/test.tsv", 1, None, "missing qrels header", {"qrels_test": 2},
         message="no header line. Fix: start the file with the line 'query-id\tcorpus-id\tscore'"),
    Case("qrels: columns", {"qrels": {"test": ["q1\td1", ("q2", "d2", 1)]}},
         "qrels/test.tsv", 2, None, "wrong number of columns", {"qrels_test": 1}),
    Case("qrels: duplicate judgement", {"qrels": {"test": [("q1", "d1", 1), ("q1", "d1", 0)]}},
         "qrels/test.tsv", 3, "corpus-id", "duplicate judgement", {"qrels_test": 1}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_line_raises_with_location_and_fix(case: Case, write_beir: Callable[..., Path]) -> None:
    root = write_beir(**case.folder)
    with pytest.raises(BadLineError) as caught:
        FileCollection.from_beir(root).summary()
    error = caught.value
    where = f"{root / case.file}, line {case.line}" + (f", field '{case.field}'" if case.field else "")
    assert str(error).startswith(where + ": ")
    assert (error.path, error.line) == (root / case.file, case.line)
    assert (error.field, error.reason) == (case.field, case.reason)
    assert ". Fix: " in str(error)
    assert case.message in str(error)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_skip_mode_counts_bad_lines(
    case: Case, write_beir: Callable[..., Path], snapshot_files: Callable[[Path], dict[str, bytes]]
) -> None:
    root = write_beir(**case.folder)
    before = snapshot_files(root)
    report = LineReport()
    tiny = FileCollection.from_beir(root, report=report)
    counts = tiny.summary()
    for key, expected in case.counts.items():
        assert counts[key] == expected, key
    list(tiny.docs())  # a second pass over the corpus does not count its bad lines again
    assert dict(report.skipped) == report.by_reason() == {case.reason: 1}
    assert counts["skipped_lines"] == report.total == 1
    assert tiny.line_drops() == {f"skipped line: {Path(case.file).name}: {case.reason}": 1}
    assert len(report.examples) == 1 and case.file in report.examples[0]
    assert "--skip-bad-lines" not in report.examples[0]  # the line is already skipped
    assert snapshot_files(root) == before


def test_skip_mode_warnings_and_counts_by_reason(
    write_beir: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    root = write_beir(
        docs=[D1, {**D2, "_id": "d1"}, {**D3, "_id": "d 3"}, {**D4, "_id": "d1"}],
        queries=[Q1, Q2, {**Q3, "_id": "q1"}],
        qrels={"test": [("q1", "d1", 1), ("q1", "d9", 1)]},
    )
    with pytest.raises(BadLineError, match="or pass --skip-bad-lines"):  # the hint where it helps
        FileCollection.from_beir(root).summary()
    report = LineReport()
    tiny = FileCollection.from_beir(root, report=report)
    with caplog.at_level("WARNING", logger="inpars.io"):
        counts = tiny.summary()
    assert report.by_reason() == {
        "duplicate document id": 2, "document id with whitespace": 1,
        "duplicate query id": 1, "judgement for an unknown document": 1,
    }
    assert report.by_reason(per_file=True) == {
        "corpus.jsonl: duplicate document id": 2, "corpus.jsonl: document id with whitespace": 1,
        "queries.jsonl: duplicate query id": 1, "test.tsv: judgement for an unknown document": 1,
    }
    assert counts["skipped_lines"] == sum(tiny.line_drops().values()) == 5
    assert tiny.line_drops()["skipped line: corpus.jsonl: duplicate document id"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped bad line")]
    assert len(warnings) == 5
    assert not any("skip-bad-lines" in w for w in warnings)
    assert "Fix: give every document its own id (the first one is kept)" in warnings[0]
    assert FileCollection.from_beir(root, report=None).line_drops() == {}


def test_empty_documents_are_kept(write_beir: Callable[..., Path]) -> None:
    empty = {"_id": "d5", "title": "", "text": ""}
    tiny = FileCollection.from_beir(write_beir(docs=[*TINY_DOCS, empty]))
    assert tiny.count_docs() == 5
    assert tiny.empty_doc_ids() == ("d5",)
    assert tiny.summary()["empty_docs"] == 1


def test_tsv_bad_lines(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.tsv"
    corpus.write_bytes(b"d1\tCats\tCats purr.\nd2\ttoo\tmany\tcolumns\nd3\tTea\tcaf\xe9\n")
    expected = r"corpus\.tsv, line 2: 4 tab-separated column\(s\)\. Fix: write id, text"
    with pytest.raises(BadLineError, match=expected):
        list(FileCollection(corpus).docs())
    report = LineReport()
    assert [d.doc_id for d in FileCollection(corpus, report=report).docs()] == ["d1"]
    assert report.skipped == {"wrong number of columns": 1, "not UTF-8": 1}
    assert "line 3, field 'column 3'" in report.examples[1]


def test_trec_qrels_bad_lines(tmp_path: Path, write_beir: Callable[..., Path]) -> None:
    root = write_beir()
    qrels = write_lines(tmp_path / "test.qrels", ["q1 0 d1 1", "q2 0 d2", "q2 0 d2 x"])
    corpus, queries = FileCollection.from_beir(root).source_files()[:2]
    files = FileCollection(corpus, queries, {"test": qrels})
    with pytest.raises(BadLineError, match=r"test\.qrels, line 2: 3 columns instead of 4"):
        files.qrels("test")
    report = LineReport()
    files = FileCollection(corpus, queries, {"test": qrels}, report=report)
    assert len(files.qrels("test")) == 1
    assert report.skipped == {"wrong number of columns": 1, "bad relevance score": 1}
    assert "field 'column 4 (relevance)'" in report.examples[1]
