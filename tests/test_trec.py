"""inpars.trec: TREC run files written ranked at full precision, read back checked line by line
(the quirks of other tools' run files: tests/test_compare.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inpars.errors import BadLineError, DataError
from inpars.records import ScoredPair
from inpars.trec import iter_trec_run, read_trec_run, write_trec_run


def test_trec_run_round_trip(tmp_path: Path) -> None:
    run = {
        "q1": [ScoredPair("q1", "d2", 1.5), ScoredPair("q1", "d1", 3.25), ScoredPair("q1", "d3", 1.5)],
        "q2": [ScoredPair("q2", "d9", -0.5)],
    }
    path = tmp_path / "run.trec"
    assert write_trec_run(path, run, tag="bm25") == 4
    lines = path.read_text().splitlines()
    assert lines[0] == "q1 Q0 d1 1 3.25 bm25"
    assert lines[1].startswith("q1 Q0 d2 2 ")  # ties keep the given order
    assert lines[3] == "q2 Q0 d9 1 -0.5 bm25"
    back = read_trec_run(path)
    assert back == {q: sorted(pairs, key=lambda p: -p.score) for q, pairs in run.items()}


def test_trec_run_keeps_full_precision_and_the_given_order_of_ties(tmp_path: Path) -> None:
    # saturated sigmoid scores: equal at 6 decimals, different in memory
    close = [ScoredPair("q", "low", 0.99999991), ScoredPair("q", "high", 0.99999998)]
    ties = [ScoredPair("q", d, 0.25) for d in ("z", "b", "m")]  # not in doc id order
    tiny = [ScoredPair("q", "tiny", 1.2345678901234567e-9), ScoredPair("q", "neg", -1e-12)]
    path = tmp_path / "run.trec"
    write_trec_run(path, {"q": [*close, *ties, *tiny]}, tag="ce")
    back = read_trec_run(path)["q"]
    assert [p.doc_id for p in back] == ["high", "low", "z", "b", "m", "tiny", "neg"]
    assert {p.doc_id: p.score for p in back} == {p.doc_id: p.score for p in [*close, *ties, *tiny]}
    ranks = [int(line.split()[3]) for line in path.read_text().splitlines()]
    assert ranks == list(range(1, 8))
    write_trec_run(path, {"q": back}, tag="ce")  # reading and writing again changes nothing
    assert read_trec_run(path)["q"] == back


def test_trec_run_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run file not found"):
        read_trec_run(tmp_path / "none.trec")
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 d1 1 2.0 tag\nq1 Q0 d2 2 tag\n")
    with pytest.raises(BadLineError, match=r"bad\.trec, line 2: 5 fields instead of 6\. Fix: write 'qid Q0"):
        read_trec_run(path)
    path.write_text("q1 Q0 d1 1 high tag\n")
    with pytest.raises(BadLineError, match=r"line 1, field 'score \(field 5\)': not a number: 'high'"):
        read_trec_run(path)
    path.write_bytes(b"q1 Q0 d1 1 2.0 tag\nq\xe9 Q0 d1 1 2.0 tag\n")
    with pytest.raises(BadLineError, match=r"line 2: bytes that are not UTF-8"):
        read_trec_run(path)
    path.write_text("q1 Q0 d1 1 2.0 tag\nq1 Q0 d1 2 1.0 tag\n")
    with pytest.raises(BadLineError, match=r"line 2, field 'docid \(field 3\)': document 'd1' is listed tw"):
        read_trec_run(path)
    path.write_text("q1 Q0 d1 1 inf tag\n")
    with pytest.raises(BadLineError, match=r"line 1, field 'score \(field 5\)': 'inf' is not a finite"):
        read_trec_run(path)


def test_run_entries_keep_the_file_order_rank_column_and_line(tmp_path: Path) -> None:
    path = tmp_path / "other-tool.run"
    path.write_text("q1\tQ0\td1\t2\t1.5E-3\ttool\n\nq1  Q0  d2  first  2.5e-3  tool\nq2 Q0 d1 1 -1e1 tool\n")
    entries = list(iter_trec_run(path))
    assert [(e.query_id, e.doc_id, e.score, e.rank, e.line) for e in entries] == [
        ("q1", "d1", 1.5e-3, 2, 1), ("q1", "d2", 2.5e-3, None, 3), ("q2", "d1", -10.0, 1, 4)]
    with pytest.raises(DataError, match=r"run file not found\. Fix: check the path$"):
        list(iter_trec_run(tmp_path / "absent.run"))
    with pytest.raises(DataError, match=r"Fix: check the path or run the stage that writes it$"):
        read_trec_run(tmp_path / "absent.run")
