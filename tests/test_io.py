"""inpars.io: atomic writes, JSONL records, the resumable appender, bad lines in JSONL files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from inpars.bad_lines import LineReport
from inpars.errors import BadLineError, DataError
from inpars.io import (
    RecordAppender,
    atomic_open,
    chunked,
    from_dict,
    iter_json_lines,
    read_json,
    read_records,
    write_json,
    write_records,
    write_text,
)
from inpars.records import (
    RECORD_TYPES,
    Document,
    Dropped,
    Qrel,
    Query,
    ScoredPair,
    SyntheticQuery,
    TrainingExample,
)

EXAMPLES = [
    Document("d1", "Cats purr.", "Cats"),
    Document("d2", "No title, ünïcode ✓"),
    Query("q1", "do cats purr"),
    Qrel("q1", "d1", 2),
    SyntheticQuery("d1#q0", "d1", "why do cats purr", "inpars-v1", "gemma3-270m", 0, 42,
                   token_logprobs=(-0.5, -1.25), mean_logprob=-0.875, settings={"temperature": 0.0}),
    SyntheticQuery("d1#q1", "d1", "cat sounds", "inpars-v1", "gemma3-270m", 1, 42),
    ScoredPair("q1", "d1", 12.5),
    Dropped("d1#q1", "d1", "cat sounds", "consistency", "not in top-k", "rank 7"),
    TrainingExample("q1", "do cats purr", "d1", "Cats purr.", ("d2", "d3"), ("Dogs bark.", "Tea.")),
]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_leaves_original_on_exception(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_text(target, "original\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(target) as handle:
        handle.write("half of the new content")
        raise RuntimeError("boom")
    assert target.read_text() == "original\n"
    assert _files(tmp_path) == ["out.txt"]  # no temporary file left behind
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "new.txt") as handle:
        raise RuntimeError("boom")
    assert _files(tmp_path) == ["out.txt"]  # a file that did not exist is not created


def test_json_round_trip_and_errors(tmp_path: Path) -> None:
    data = {"a": [1, 2.5, "ü"], "b": {"c": None}}
    write_json(tmp_path / "x.json", data)
    assert read_json(tmp_path / "x.json") == data
    with pytest.raises(DataError, match=r"missing\.json: file not found"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match=r"bad\.json: not valid JSON .*Fix: "):
        read_json(tmp_path / "bad.json")


def test_every_record_type_round_trips(tmp_path: Path) -> None:
    assert {type(r) for r in EXAMPLES} == set(RECORD_TYPES)
    for cls in RECORD_TYPES:
        records = [r for r in EXAMPLES if type(r) is cls]
        path = tmp_path / f"{cls.__name__}.jsonl"
        assert write_records(path, records) == len(records)
        back = list(read_records(path, cls))
        assert back == records  # tuples come back as tuples, dicts as dicts
    example = next(read_records(tmp_path / "TrainingExample.jsonl", TrainingExample))
    assert isinstance(example.negative_ids, tuple)
    line = (tmp_path / "SyntheticQuery.jsonl").read_text().splitlines()[0]
    assert json.loads(line)["token_logprobs"] == [-0.5, -1.25]


def test_from_dict_checks_fields() -> None:
    assert from_dict(Qrel, {"query_id": "q", "doc_id": "d", "relevance": 1}) == Qrel("q", "d", 1)
    assert from_dict(ScoredPair, {"query_id": "q", "doc_id": "d", "score": 3}).score == 3.0
    with pytest.raises(BadLineError, match=r"f\.jsonl, line 4, field 'grade': unknown field for a Qrel"):
        from_dict(Qrel, {"query_id": "q", "doc_id": "d", "relevance": 1, "grade": 2}, path="f.jsonl", line=4)
    with pytest.raises(BadLineError, match=r"field 'relevance': missing required field of a Qrel"):
        from_dict(Qrel, {"query_id": "q", "doc_id": "d"})
    with pytest.raises(BadLineError, match=r"field 'relevance': must be an integer, got '1'"):
        from_dict(Qrel, {"query_id": "q", "doc_id": "d", "relevance": "1"})
    with pytest.raises(BadLineError, match=r"field 'score': must be a number, got True"):
        from_dict(ScoredPair, {"query_id": "q", "doc_id": "d", "score": True})
    with pytest.raises(BadLineError, match=r"field 'negative_ids': must be a list"):
        from_dict(TrainingExample, {"query_id": "q", "query": "x", "doc_id": "d", "positive": "p",
                                    "negative_ids": "d2"})
    synthetic = {"query_id": "q", "doc_id": "d", "text": "t", "template": "x", "model": "m",
                 "sample": 0, "seed": 1}
    with pytest.raises(BadLineError, match=r"'token_logprobs': must be a list whose items are each a number"):
        from_dict(SyntheticQuery, {**synthetic, "token_logprobs": [0.1, "x"]})
    assert from_dict(SyntheticQuery, {**synthetic, "mean_logprob": None}).mean_logprob is None


def test_read_records_skip_mode(tmp_path: Path) -> None:
    path = tmp_path / "qrels.jsonl"
    path.write_text(
        '{"query_id": "q1", "doc_id": "d1", "relevance": 1}\n'
        "{oops\n"
        '{"query_id": "q2", "doc_id": "d2"}\n'
        '{"query_id": "q3", "doc_id": "d3", "relevance": 0}\n'
    )
    with pytest.raises(BadLineError, match=r"qrels\.jsonl, line 2: malformed JSON"):
        list(read_records(path, Qrel))
    report = LineReport()
    assert [q.query_id for q in read_records(path, Qrel, report=report)] == ["q1", "q3"]
    assert report.skipped == {"malformed JSON": 1, "missing required field of a Qrel": 1}
    list(read_records(path, Qrel, report=report))  # the same lines again are not counted twice
    assert report.total == 2


def test_appender_resumes_after_a_torn_tail(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "queries.jsonl"
    with RecordAppender(path) as appender:
        assert appender.write(EXAMPLES[2:3]) == 1
        appender.write([Query("q2", "second")])
    with open(path, "a", encoding="utf-8") as handle:  # an interrupted write: half a line
        handle.write('{"query_id": "q3", "te')
    with caplog.at_level(logging.WARNING):
        assert [q.query_id for q in read_records(path, Query)] == ["q1", "q2"]  # readers skip it
    assert "torn last line" in caplog.text
    with RecordAppender(path) as appender:  # reopening drops it and appends on a clean line
        appender.write([Query("q3", "third")])
    assert [q.query_id for q in read_records(path, Query)] == ["q1", "q2", "q3"]
    assert path.read_text().endswith('"third"}\n')


def test_input_readers_refuse_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"_id": "1", "text": "a"}\n{"_id": "2", "te')
    assert [n for n, _ in iter_json_lines(path)] == [1]  # the BOM is ignored, the torn tail skipped
    with pytest.raises(BadLineError, match="line 2: malformed JSON"):
        list(iter_json_lines(path, allow_torn_tail=False))


def test_non_utf8_line_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "caf\xe9"}\n')
    with pytest.raises(BadLineError, match=r"line 2, field 'text': bytes that are not UTF-8 .*Fix: re-enc"):
        list(iter_json_lines(path))


def test_chunked_cuts_any_stream_into_batches_lazily() -> None:
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    assert list(chunked("ab", 5)) == [["a", "b"]]
    endless = chunked(iter(int, 1), 2)  # an endless stream: only what is asked for is read
    assert next(endless) == [0, 0]
    with pytest.raises(ValueError, match="at least 1"):
        list(chunked([1, 2], 0))
