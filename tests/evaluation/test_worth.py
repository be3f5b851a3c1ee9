"""The worth table: rows and columns from system names, means over seeds, paired tests with Holm."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from scipy import stats

from inpars.errors import DataError
from inpars.evaluation.metrics import Evaluation, _fill_comparisons, holm
from inpars.evaluation.report_md import render_markdown
from inpars.evaluation.worth import data_used, parse_system, worth_section, worth_table

QUERIES = [f"q{i}" for i in range(8)]
BM25 = [0.5, 0.4, 0.6, 0.3, 0.5, 0.2, 0.7, 0.4]


def shifted(base: list[float], shift: float, wobble: float = 0.0) -> list[float]:
    """``base`` + ``shift`` + a zero-mean per-query pattern scaled by ``wobble`` (a
    different scale per system keeps every per-query difference from being constant)."""
    pattern = [1, -1, 2, -2, 0.5, -0.5, 1.5, -1.5]
    return [round(v + shift + wobble * p, 6) for v, p in zip(base, pattern, strict=True)]


def evaluation(scores: dict[str, list[float]]) -> Evaluation:
    systems = list(scores)
    per_query = {s: {"ndcg@10": dict(zip(QUERIES, v, strict=True))} for s, v in scores.items()}
    ev = Evaluation(
        metrics=["ndcg@10"], systems=systems, baseline="bm25", stat_test="student", max_p=0.05,
        query_ids=QUERIES, means={s: {"ndcg@10": statistics.fmean(v)} for s, v in scores.items()},
        per_query=per_query, p_values={}, marks={}, better_than={}, win_tie_loss={},
    )
    pairs = [(a, b) for i, a in enumerate(systems) for b in systems[i + 1:]]
    _fill_comparisons(ev, {pair: {"ndcg@10": {"p_value": 0.5}} for pair in pairs})  # not under test
    return ev


def scores(seed_shift: float = 0.0) -> dict[str, list[float]]:
    return {
        "bm25": BM25,
        "dense": shifted(BM25, -0.1, 0.05),
        "bm25+ce-synthetic": shifted(BM25, 0.05 + seed_shift, 0.011),
        "bm25+ce-real": shifted(BM25, 0.15, 0.012),
        "bm25+bi-zero-shot": shifted(BM25, 0.02, 0.03),
        "bm25+bi-synthetic": shifted(BM25, 0.03 + seed_shift, 0.031),
        "bm25+bi-real": shifted(BM25, 0.06, 0.032),
        "bm25+bi-both": shifted(BM25, 0.07, 0.033),
        "dense-synthetic": shifted(BM25, -0.08, 0.051),
        "bm25+dense": shifted(BM25, 0.01, 0.02),  # a fusion, not learnable
    }


def test_rows_and_columns_come_from_the_system_names() -> None:
    names = list(scores())
    assert parse_system("bm25+bi-synthetic+interp", names) == ("bm25+bi+interp", "synthetic")
    assert parse_system("bm25+bi-zero-shot", names) == ("bm25+bi", "zero-shot")
    assert parse_system("dense", names) == ("dense", "zero-shot")
    assert parse_system("bm25+dense", names) is None and parse_system("bm25", names) is None
    table = worth_table([evaluation(scores())])
    assert [row.family for row in table.rows] == ["dense", "bm25+ce", "bm25+bi"]
    bi = table.rows[2]
    assert set(bi.cells) == {"zero-shot", "synthetic", "real", "both"}
    assert bi.cells["synthetic"].mean == pytest.approx(statistics.fmean(BM25) + 0.03)
    assert bi.recovered() == pytest.approx(0.01 / 0.04)
    assert table.rows[1].recovered() is None  # the cross-encoder has no zero-shot twin


def test_paired_tests_are_holm_corrected_over_the_table() -> None:
    ev = evaluation(scores())
    table = worth_table([ev])
    cells = [(row, label, cell) for row in table.rows for label, cell in row.cells.items()
             if label != "zero-shot"]
    # each trained cell: vs its zero-shot twin where there is one, and vs bm25; and the headline
    assert table.tests == 1 + sum(1 + ("zero-shot" in row.cells) for row, _, _ in cells)
    headline = table.headline
    assert headline is not None and headline.vs_baseline is not None
    raw = [headline.vs_baseline.p_raw]
    for _, _, cell in cells:
        for comparison in (cell.vs_zero_shot, cell.vs_baseline):
            if comparison is not None:
                mine = list(ev.per_query[cell.system]["ndcg@10"].values())
                other = list(ev.per_query[comparison.other]["ndcg@10"].values())
                expected = stats.ttest_rel(mine, other).pvalue
                assert comparison.p_raw == pytest.approx(expected)
                raw.append(comparison.p_raw)
    adjusted = [c.p_adjusted for _, _, cell in cells for c in (cell.vs_zero_shot, cell.vs_baseline) if c]
    assert [headline.vs_baseline.p_adjusted, *adjusted] == pytest.approx(holm(raw))
    real_ce = table.rows[1].cells["real"].vs_baseline
    assert real_ce is not None and real_ce.difference == pytest.approx(0.15)
    assert real_ce.p_adjusted is not None and real_ce.p_adjusted < 0.05


def test_the_headline_sets_the_best_synthetic_system_against_the_best_label_free() -> None:
    assert data_used("bm25+bi-zero-shot+interp", {}) == set()
    assert data_used("bm25-expanded", {}) == {"synthetic"}
    assert data_used("bm25+bi-both+interp", {}) == {"synthetic", "real"}
    assert data_used("bm25+ce-real", {}) == {"real"}
    assert data_used("mine", {"mine": ["bm25", "bm25+ce-synthetic"]}) == {"synthetic"}
    table = worth_table([evaluation(scores())])
    headline = table.headline
    assert headline is not None and headline.system == "bm25+ce-synthetic"
    comparison = headline.vs_baseline
    # bm25+ce-real (+0.15) and bm25+bi-both (+0.07) use real labels: neither side takes them
    assert comparison is not None and comparison.other == "bm25+bi-zero-shot"
    assert comparison.difference == pytest.approx(0.03)
    note = worth_section(table).note
    assert "Best with synthetic data: bm25+ce-synthetic" in note and "+0.0300" in note


def test_seeds_give_mean_and_spread_and_the_report_shows_the_table() -> None:
    seeds = [evaluation(scores(shift)) for shift in (0.0, 0.02, 0.04)]
    table = worth_table(seeds)
    synthetic = table.rows[1].cells["synthetic"]
    assert synthetic.means == pytest.approx([statistics.fmean(BM25) + 0.05 + s for s in (0.0, 0.02, 0.04)])
    assert synthetic.sd == pytest.approx(0.02)
    assert synthetic.vs_baseline is not None and synthetic.vs_baseline.difference == pytest.approx(0.07)
    text = worth_section(table).rows[1][2]
    assert text.startswith(f"{synthetic.mean:.4f} ± 0.0200 (+0.0700 b, p ")
    report = render_markdown(seeds[0], command="inpars run x.toml")
    assert "## What the synthetic data is worth" in report and "real + synthetic" in report
    with pytest.raises(DataError, match="no evaluations"):
        worth_table([])


def test_metrics_json_carries_the_worth_table() -> None:
    import json

    from inpars.evaluation import metrics_json

    data = json.loads(json.dumps(metrics_json(evaluation(scores()))))
    worth = data["worth"]
    assert worth["rows"]["bm25+bi"]["real"]["system"] == "bm25+bi-real"
    assert worth["rows"]["bm25+bi"]["recovered"] == pytest.approx(0.25)
    assert worth["correction"]["tests"] == 11  # dense 2, ce 2 (no zero-shot twin), bi 3 x 2, headline
    assert worth["headline"]["system"] == "bm25+ce-synthetic"
    assert worth["headline"]["vs_best_label_free"]["other"] == "bm25+bi-zero-shot"


def test_a_finished_evaluation_reads_back_for_the_worth_table(tmp_path: Path) -> None:
    from inpars.config import EvaluateConfig
    from inpars.evaluation import write_reports
    from inpars.evaluation.worth import load_evaluation, worth_json

    ev = evaluation(scores())
    write_reports(ev, tmp_path, EvaluateConfig(plots=False), command="inpars run x.toml")
    back = load_evaluation(tmp_path)
    assert back.query_ids == ev.query_ids and back.per_query == ev.per_query
    assert worth_json(worth_table([back])) == worth_json(worth_table([ev]))
    (tmp_path / "per_query.json").write_text("{")
    with pytest.raises(DataError, match=r"not a finished evaluation.*inpars evaluate CONFIG --force"):
        load_evaluation(tmp_path)
