"""inpars.bad_lines: skipped lines counted once, by reason (the readers that skip them:
tests/test_io.py, tests/test_data_checks.py)."""

from __future__ import annotations

from inpars.bad_lines import LineReport
from inpars.errors import BadLineError


def test_line_report_counts_each_line_once() -> None:
    report = LineReport()
    error = BadLineError("f.tsv", 3, "score", "relevance 'x' is not an integer", "fix it", reason="bad score")
    report.add(error)
    report.add(error)
    report.add(BadLineError("f.tsv", 4, "score", "relevance 'y' is bad", "fix it", reason="bad score"))
    assert report.skipped == {"bad score": 2}
    assert report.total == 2
    assert report.examples[0].startswith("f.tsv, line 3, field 'score': relevance 'x'")
