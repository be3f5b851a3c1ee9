"""report.md, report.html and metrics.json rendered from the crafted evaluation (built by hand;
scored by ranx in the slow variants)."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from inpars.config import EvaluateConfig
from inpars.evaluation import Evaluation, metrics_json, render_html, render_markdown, write_reports
from inpars.evaluation.markdown_html import markdown_to_html
from inpars.evaluation.tables import fmt_p
from inpars.records import SyntheticQuery

SCRIPT = "<script>alert('x')</script>"
COMMAND = "inpars run configs/scifact.toml --set experiment.name=demo"


def _synthetic() -> list[SyntheticQuery]:
    texts = [f"what causes {SCRIPT}", "effect of vitamin d on bone density",
             "how do t cells & b cells differ"]
    return [
        SyntheticQuery(query_id=SyntheticQuery.make_id(f"doc{i}", 0), doc_id=f"doc{i}", text=text,
                       template="inpars-v1", model="gemma3-270m", sample=0, seed=1,
                       token_logprobs=(-0.5, -1.0), mean_logprob=-0.75 - i / 10)
        for i, text in enumerate(texts)
    ]


def test_markdown_has_command_every_system_and_exclusions(evaluation: Evaluation) -> None:
    timings = "| stage | s |\n|---|---|\n| index | 3.2 |"
    md = render_markdown(evaluation, command=COMMAND, title="scifact",
                         synthetic=_synthetic(), extra_sections={"Timings": timings})
    lines = md.splitlines()
    assert lines[0] == "# scifact"
    assert COMMAND in md.split("## Results")[0]  # the command comes first
    table = md.split("## Results")[1].split("##")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3  # header + every system
    for system in ("bm25 (baseline)", "dense", "bm25+dense"):
        assert any(f"| {system} |" in row for row in rows), system
    # the ranx-style cell: mean rounded to 4 digits
    assert f"{evaluation.means['dense']['ndcg@10']:.4f}" in table
    assert "| dense | 2 / 1 / 1 |" in md  # wins/ties/losses of dense on nDCG@10 (first column)
    assert "1 queries excluded from evaluation" in md
    assert "2 ids were given" in md
    assert "dense: no results for 1 evaluated queries (counted as 0)" in md
    assert "## Synthetic queries" in md and "| queries | 3 |" in md
    assert md.rstrip().endswith("| index | 3.2 |")


def test_html_escapes_every_text_and_embeds_plots(evaluation: Evaluation) -> None:
    page = render_html(
        evaluation, command=f"inpars evaluate --title '{SCRIPT}'", title=SCRIPT,
        synthetic=_synthetic(), examples=10,
        extra_sections={
            SCRIPT: f"Note: {SCRIPT}\n\n- item `{SCRIPT}`\n\n| a | b |\n|---|---|\n| {SCRIPT} | 1 |"
        },
        query_texts={"q1": SCRIPT, "q3": "a <b>bold</b> query"},
        doc_texts={"doc0": f"document {SCRIPT} text"},
    )
    assert "<script" not in page.lower()
    assert "<b>bold" not in page
    escaped = html.escape(SCRIPT)
    assert page.count(escaped) >= 7  # title x2, command, query, document, synthetic query, extra section
    assert "a &lt;b&gt;bold&lt;/b&gt; query" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3  # metric bars, per-query deltas, synthetic distributions
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)
    for system in evaluation.systems:
        assert f"<td>{html.escape(system)}" in page


def test_markdown_to_html_converts_tables_and_escapes() -> None:
    out = markdown_to_html(
        f"# Timings\n\n| stage | seconds |\n|---|---:|\n| index | 1.5 |\n\n{SCRIPT} **done**"
    )
    assert "<table>" in out and "<td>index</td><td>1.5</td>" in out
    assert "<h3>Timings</h3>" in out
    assert "&lt;script&gt;" in out and "<strong>done</strong>" in out and "<script>" not in out
    assert markdown_to_html("| not a table\nplain") == "<p>| not a table plain</p>"
    assert markdown_to_html("### Counts\n\n#### Detail") == "<h3>Counts</h3>\n<h4>Detail</h4>"


def test_write_reports_writes_parseable_metrics_json(evaluation: Evaluation, tmp_path: Path) -> None:
    cfg = EvaluateConfig(plots=False)
    written = write_reports(evaluation, tmp_path, cfg, command=COMMAND)
    assert sorted(p.name for p in written.values()) == ["metrics.json", "per_query.json", "report.html",
                                                         "report.md"]
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data == json.loads(json.dumps(metrics_json(evaluation, command=COMMAND)))
    assert data["baseline"] == "bm25" and data["stat_test"] == "student" and data["excluded_queries"] == 1
    assert set(data["systems"]) == {"bm25", "dense", "bm25+dense"}
    assert set(data["p_values"]) == {"dense", "bm25+dense"}
    p_values = [p for by_metric in data["p_values"].values() for p in by_metric.values()]
    assert all(p is None or 0 <= p <= 1 for p in p_values)
    # Holm across the 3 pairwise tests of each metric: adjusted >= raw, marks from adjusted
    assert data["correction"] == {"method": "holm", "family": "per metric: every pairwise test of the report",
                                  "tests_per_family": 3}
    for system, by_metric in data["p_values"].items():
        for metric, raw in by_metric.items():
            adjusted = data["p_values_adjusted"][system][metric]
            assert (raw is None) == (adjusted is None)
            assert raw is None or raw <= adjusted <= min(1.0, 3 * raw)
            assert data["significance"][system][metric] == "" or adjusted <= data["max_p"]
            low, high = data["ci95_difference"][system][metric]
            means = evaluation.means
            assert low <= means[system][metric] - means["bm25"][metric] <= high
    assert "Holm-adjusted p ≤ 0.05" in (tmp_path / "report.md").read_text()
    assert data["win_tie_loss"]["dense"]["ndcg@10"] == {"wins": 2, "ties": 1, "losses": 1}
    per_query = json.loads((tmp_path / "per_query.json").read_text())
    assert per_query["scores"]["dense"]["mrr@10"]["q3"] == 0.5
    assert "data:image/png" not in (tmp_path / "report.html").read_text()  # plots = false
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes left no temporary files


def test_fmt_p_never_prints_a_rounded_zero() -> None:
    assert fmt_p(None) == "n/a"
    assert fmt_p(0.00004) == "<0.0001"
    assert fmt_p(0.0004, 3) == "<0.001"
    assert fmt_p(0.001, 3) == "0.001"
    assert fmt_p(0.04321, 3) == "0.043"
    assert fmt_p(0.04321) == "0.0432"
