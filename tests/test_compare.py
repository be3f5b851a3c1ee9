"""``inpars compare``: run files of other tools read with their quirks, bad lines named by file
and line, qrels from TREC/BEIR files and ir_datasets, and (slow, ranx) two quirky runs compared
config-free with hand-checked nDCG@10."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from inpars.cli import main
from inpars.compare import (
    TIE_RULE,
    compare_config,
    default_out_dir,
    load_qrels,
    read_qrels_file,
    read_run,
    run_names,
    run_notes,
)
from inpars.errors import BadLineError, ConfigError, DataError
from inpars.records import Qrel
from tests.conftest import TINY_DOCS, TINY_QRELS, TINY_QUERIES, write_lines

QRELS = ["q1 0 d1 1", "q1 0 d2 2", "q2 0 d3 1", "q3 0 d9 1"]
# Tabs, scientific notation, a rank column that disagrees with the scores (q1: d2 scores
# highest), a tie (q2: dy and d3, broken by doc id descending: dy first), a query the qrels
# do not judge (qz) and a judged query it lacks (q3).
RUN_A = [
    "q1\tQ0\td1\t1\t1.5e-03\ttool-a",
    "q1\tQ0\td2\t2\t2.5E-3\ttool-a",
    "q1\tQ0\tdx\t3\t1e-4\ttool-a",
    "q2  Q0   d3   1   0.5   tool-a",
    "",
    "q2 Q0 dy 2 0.5 tool-a",
    "qz Q0 d1 1 1 tool-a",
]
# Spaces, a tie in q1 (d2 before d1 by doc id descending), negative scientific scores in q3.
RUN_B = [
    "q1 Q0 dx 1 3 tool-b",
    "q1 Q0 d1 2 2 tool-b",
    "q1 Q0 d2 3 2 tool-b",
    "q2 Q0 d3 1 1.0 tool-b",
    "q3 Q0 d8 2 -1E1 tool-b",  # listed first, ranked second: the ranks agree with the scores
    "q3 Q0 d9 1 -2.5e+00 tool-b",
]
L3 = math.log2(3)
# nDCG@10 by hand (linear gains, DCG = sum rel / log2(rank + 1)):
# A: q1 d2 d1 dx -> ideal = 1; q2 dy d3 -> (1 / L3) / 1; q3 missing -> 0
NDCG_A = {"q1": 1.0, "q2": 1 / L3, "q3": 0.0}
# B: q1 dx d2 d1 -> (2 / L3 + 1 / 2) / (2 + 1 / L3); q2 d3 -> 1; q3 d9 d8 -> 1
NDCG_B = {"q1": (2 / L3 + 1 / 2) / (2 + 1 / L3), "q2": 1.0, "q3": 1.0}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {"qrels": write_lines(tmp_path / "qrels.txt", QRELS),
            "a": write_lines(tmp_path / "tool-a.run", RUN_A),
            "b": write_lines(tmp_path / "tool-b.trec", RUN_B)}


def test_quirks_of_other_tools_are_read_ranked_by_score_with_ties_by_doc_id(files: dict[str, Path]) -> None:
    a = read_run(files["a"]).judge({"q1", "q2", "q3"})
    assert a.name == "tool-a" and a.lines == 6 and a.queries == 3
    assert [p.doc_id for p in a.pairs["q1"]] == ["d2", "d1", "dx"]  # by score, not by the rank column
    assert [p.score for p in a.pairs["q1"]] == [2.5e-3, 1.5e-3, 1e-4]  # untied scores kept exactly
    assert [p.doc_id for p in a.pairs["q2"]] == ["dy", "d3"]  # the tie: descending doc id (trec_eval)
    high, low = (p.score for p in a.pairs["q2"])
    assert high == 0.5 and low == math.nextafter(0.5, 0) and low < high  # moved apart by one float step
    assert (a.rank_disagreements, a.tied_queries, a.unjudged, a.missing) == (1, 1, 1, 1)
    assert run_notes(a) == ["1 queries without judgements (ignored)", "1 judged queries missing (scored 0)",
                            "rank column disagrees with the scores on 1 queries (ranked by score)",
                            "tied scores on 1 queries (broken by document id)"]
    b = read_run(files["b"], "b")
    assert [p.doc_id for p in b.pairs["q1"]] == ["dx", "d2", "d1"] and b.rank_disagreements == 0
    assert [p.doc_id for p in b.pairs["q3"]] == ["d9", "d8"]
    assert "descending string order, as trec_eval does" in TIE_RULE


@pytest.mark.parametrize(("line", "where", "problem"), [
    ("q1 Q0 d1 1 0.5", "line 2", "5 fields instead of 6"),
    ("q1\tQ0\td1\t1\t0.5\ttag\textra", "line 2", "7 fields instead of 6"),
    ("q1 Q0 d1 1 high tag", "line 2, field 'score (field 5)'", "not a number: 'high'"),
    ("q1 Q0 d1 1 nan tag", "line 2, field 'score (field 5)'", "'nan' is not a finite number"),
    ("q1 Q0 d0 1 0.5 tag", "line 2, field 'docid (field 3)'",
     "document 'd0' is listed twice for query 'q1' (first at line 1)"),
])
def test_a_malformed_line_is_named_by_file_and_line(
    tmp_path: Path, line: str, where: str, problem: str
) -> None:
    path = write_lines(tmp_path / "bad.trec", ["q1 Q0 d0 1 0.9 tag", line])
    with pytest.raises(BadLineError, match=re.escape(f"bad.trec, {where}: {problem}. Fix: ")) as caught:
        read_run(path)
    assert caught.value.path == path and caught.value.line == 2


def test_empty_and_missing_run_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no run entries\. Fix:"):
        read_run(write_lines(tmp_path / "empty.trec", ["", "  "]))
    with pytest.raises(DataError, match="run file not found"):
        read_run(tmp_path / "absent.trec")


def test_qrels_files_trec_and_beir(tmp_path: Path, files: dict[str, Path]) -> None:
    expected = [Qrel("q1", "d1", 1), Qrel("q1", "d2", 2), Qrel("q2", "d3", 1), Qrel("q3", "d9", 1)]
    assert read_qrels_file(files["qrels"]) == expected
    rows = ["\t".join((w[0], w[2], w[3])) for w in map(str.split, QRELS)]
    beir = write_lines(tmp_path / "test.tsv", ["query-id\tcorpus-id\tscore", *rows])
    assert load_qrels(beir).qrels == expected and load_qrels(str(beir)).label == str(beir)
    headless = write_lines(tmp_path / "headless.tsv", ["q1\td1\t1"])
    assert read_qrels_file(headless) == [Qrel("q1", "d1", 1)]
    bad = write_lines(tmp_path / "bad.txt", ["q1 0 d1 1", "q1 0 d2"])
    with pytest.raises(BadLineError, match=r"bad\.txt, line 2: 3 fields instead of 4\. Fix: "):
        read_qrels_file(bad)
    grade = write_lines(tmp_path / "grade.txt", ["q1 0 d1 yes"])
    with pytest.raises(BadLineError, match="line 1, field 'relevance': 'yes' is not an integer"):
        read_qrels_file(grade)
    twice = write_lines(tmp_path / "twice.txt", ["q1 0 d1 1", "q1 0 d1 0"])
    with pytest.raises(BadLineError, match=r"line 2, field 'doc id': second judgement .* at line 1\)"):
        read_qrels_file(twice)
    with pytest.raises(DataError, match=r"not an ir_datasets id\. Fix: pass a TREC or BEIR qrels file"):
        load_qrels(tmp_path / "nothing-here.txt")


@pytest.fixture
def dataset_id(tmp_path: Path) -> Iterator[str]:
    """A tiny ir_datasets dataset registered for the test (nothing is downloaded)."""
    import ir_datasets

    folder = tmp_path / "irds"
    docs = write_lines(folder / "docs.tsv", [f"{d['_id']}\t{d['text']}" for d in TINY_DOCS])
    queries = write_lines(folder / "queries.tsv", [f"{q['_id']}\t{q['text']}" for q in TINY_QUERIES])
    qrels = write_lines(folder / "qrels.txt", [f"{q} 0 {d} {r}" for q, d, r in TINY_QRELS["test"]])
    name = f"inpars-compare-{uuid.uuid4().hex[:8]}/tiny/test"
    ir_datasets.registry.register(name, ir_datasets.create_dataset(
        docs_tsv=str(docs), queries_tsv=str(queries), qrels_trec=str(qrels)))
    yield name
    ir_datasets.registry._registered.pop(name, None)


def test_qrels_of_an_ir_datasets_id_and_of_a_beir_folder(dataset_id: str, write_beir: object) -> None:
    source = load_qrels(dataset_id)
    assert source.qrels == [Qrel("q1", "d1", 1), Qrel("q2", "d2", 2)]
    assert source.label == f"ir_datasets {dataset_id}"
    assert source.query_texts == {"q1": "do cats purr", "q2": "where do dogs come from"}
    folder = write_beir()  # type: ignore[operator]
    assert [q.query_id for q in load_qrels(folder).qrels] == ["q1", "q2"]  # its test split


def test_names_and_settings_of_a_comparison(tmp_path: Path) -> None:
    a, b = Path("x/run.trec"), Path("y/run.trec")
    with pytest.raises(ConfigError, match=r"run name\(s\) run are used twice\. Fix: name the runs"):
        run_names([a, b])
    assert run_names([a, b], ["bm25", "splade"]) == ["bm25", "splade"]
    with pytest.raises(ConfigError, match="1 names for 2 run files"):
        run_names([a, b], ["bm25"])
    cfg = compare_config(["ndcg@10"], "bm25")
    assert cfg.fusion == [] and cfg.interpolate == {}
    assert cfg.metrics == ["ndcg@10"] and cfg.baseline == "bm25"
    assert compare_config().metrics == ["ndcg@10", "recall@100", "mrr@10", "map@100"]
    with pytest.raises(ConfigError, match="'ndgc@10' is not a ranx metric"):
        compare_config(["ndgc@10"])
    assert str(default_out_dir()).startswith("runs/compare-")


@pytest.mark.slow  # ranx (numba) scores the runs
def test_two_quirky_runs_compared_config_free_with_hand_checked_ndcg(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(["compare", "--qrels", str(files["qrels"]), str(files["a"]), str(files["b"]),
                 "--metrics", "ndcg@10", "recall@100", "--baseline", "tool-b", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| a | tool-b (baseline) |" in printed and "Holm" in printed
    assert "tool-a: " in printed and "tied scores on 1 queries (broken by document id)" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    per_query = json.loads((out / "per_query.json").read_text())["scores"]
    assert per_query["tool-a"]["ndcg@10"] == pytest.approx(NDCG_A)
    assert per_query["tool-b"]["ndcg@10"] == pytest.approx(NDCG_B)
    assert metrics["systems"]["tool-a"]["ndcg@10"] == pytest.approx(sum(NDCG_A.values()) / 3)
    assert metrics["missing_queries"] == {"tool-b": 0, "tool-a": 1}
    assert metrics["unjudged_queries"] == {"tool-b": 0, "tool-a": 1}
    assert metrics["baseline"] == "tool-b" and metrics["correction"]["method"] == "holm"
    report = (out / "report.md").read_text()
    assert "## Run files" in report and "rank column disagrees with the scores on 1 queries" in report
    assert TIE_RULE in report and (out / "report.html").is_file()
