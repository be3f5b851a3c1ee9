"""The evaluate stage on the real SciFact test qrels, with runs written as TREC files.

The runs are built from the qrels (relevant documents planted at random ranks), so the
metrics can be recomputed here by their textbook definitions and compared with ranx (slow).
The stage's wiring is also checked fast, on the crafted runs with ranx faked out.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

import inpars.evaluation.stage as stage_module
from inpars.config import EvaluateConfig
from inpars.data import open_collection
from inpars.evaluation import Evaluation, evaluate_stage
from inpars.manifest import run_stage
from inpars.records import Qrel, ScoredPair
from inpars.trec import write_trec_run
from tests.evaluation.crafted import EXCLUDED, QRELS, RUNS, hand_evaluation


def _planted_run(qrels: list[Qrel], seed: int, depth: int = 100) -> dict[str, list[ScoredPair]]:
    """Each relevant document at a random rank in 1..150 (beyond ``depth``: not retrieved)."""
    rng = random.Random(seed)
    relevant: dict[str, list[str]] = {}
    for q in qrels:
        relevant.setdefault(q.query_id, []).append(q.doc_id)
    run: dict[str, list[ScoredPair]] = {}
    for query_id, docs in relevant.items():
        ranking = [f"filler-{query_id}-{i}" for i in range(depth)]
        for doc_id in docs:
            rank = rng.randint(1, 150)
            if rank <= depth:
                ranking.insert(rank - 1, doc_id)
        run[query_id] = [ScoredPair(query_id, d, 1000.0 - i) for i, d in enumerate(ranking[:depth])]
    return run


def _reference(qrels: list[Qrel], run: dict[str, list[ScoredPair]], query_ids: list[str]) -> dict[str, float]:
    """nDCG@10 (linear gains), recall@100 and MRR@10, by their definitions."""
    rel: dict[str, dict[str, int]] = {}
    for q in qrels:
        rel.setdefault(q.query_id, {})[q.doc_id] = q.relevance
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for query_id in query_ids:
        ranked = [p.doc_id for p in sorted(run.get(query_id, []), key=lambda p: -p.score)]
        judged = rel[query_id]
        dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
        ideal = sorted(judged.values(), reverse=True)[:10]
        totals["ndcg@10"] += dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        totals["recall@100"] += sum(1 for d in ranked[:100] if judged.get(d, 0) >= 1) / len(judged)
        first = next((i for i, d in enumerate(ranked[:10]) if judged.get(d, 0) >= 1), None)
        totals["mrr@10"] += 0.0 if first is None else 1 / (first + 1)
    return {m: v / len(query_ids) for m, v in totals.items()}


@pytest.mark.needs_data
def test_stage_on_scifact_matches_reference_and_publishes(
    shared_data: Path, tmp_path: Path, crafted_evaluation: Evaluation
) -> None:
    collection = open_collection(shared_data / "scifact")
    qrels = collection.qrels("test")
    query_ids = sorted({q.query_id for q in qrels})
    bm25 = _planted_run(qrels, seed=1)
    dense = _planted_run(qrels, seed=2)
    for query_id in query_ids[:10]:
        del dense[query_id]  # missing queries count as zero
    excluded = set(query_ids[-5:]) | {"not-a-test-query"}
    runs = {}
    for name, run in (("bm25", bm25), ("dense", dense)):
        runs[name] = tmp_path / f"{name}.trec"
        write_trec_run(runs[name], run, tag=name)

    cfg = EvaluateConfig(stat_test="fisher", n_permutations=200)
    command = "inpars evaluate configs/scifact.toml"
    out = tmp_path / "run" / "evaluate"
    texts = {q.query_id: q.text for q in collection.split_queries("test")}
    result = run_stage(
        "evaluate", out, cfg, runs,
        lambda ctx: evaluate_stage(ctx, cfg, qrels, runs, excluded_query_ids=excluded, command=command,
                                   query_texts=texts),
        seed=5,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    kept = [q for q in query_ids if q not in excluded]
    assert metrics["queries_evaluated"] == len(kept) == 295
    assert metrics["excluded_queries"] == 5 and metrics["excluded_query_ids_given"] == 6
    assert metrics["missing_queries"] == {"bm25": 0, "dense": 10}
    assert set(metrics["systems"]) == {"bm25", "dense", "bm25+dense"}
    for name, run in (("bm25", bm25), ("dense", dense)):
        for metric, value in _reference(qrels, run, kept).items():
            assert metrics["systems"][name][metric] == pytest.approx(value, abs=1e-9), (name, metric)
    assert all(0 <= p <= 1 for p in metrics["p_values"]["dense"].values())

    manifest = result.manifest
    assert manifest["counts"]["queries_evaluated"] == 295
    assert set(manifest["outputs"]) == {"report", "metrics", "per_query"}
    assert manifest["extra"]["baseline"] == "bm25"
    report = (out / "report.md").read_text()
    assert report.splitlines()[5] == command  # right below the title, in a code block
    assert "5 queries excluded" in report


def test_stage_reads_the_runs_writes_the_reports_and_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring, fast: TREC files in, reports and manifest out (ranx replaced by the
    hand-built evaluation of the crafted runs)."""
    seen: dict[str, object] = {}

    def fake_evaluate_runs(qrels: list[Qrel], runs: dict[str, dict[str, list[ScoredPair]]],
                           cfg: EvaluateConfig, **kwargs: object) -> Evaluation:
        seen.update(qrels=qrels, runs=runs, cfg=cfg, **kwargs)
        return hand_evaluation()

    monkeypatch.setattr(stage_module, "evaluate_runs", fake_evaluate_runs)
    runs = {}
    for name, run in RUNS.items():
        runs[name] = tmp_path / f"{name}.trec"
        write_trec_run(runs[name], run, tag=name)
    cfg = EvaluateConfig(plots=False)
    out = tmp_path / "run" / "evaluate"
    result = run_stage(
        "evaluate", out, cfg, runs,
        lambda ctx: evaluate_stage(ctx, cfg, QRELS, runs, excluded_query_ids=EXCLUDED, command="inpars run x",
                                   rescored_depth={"dense": 3}),
        seed=5,
    )
    # evaluate_runs got the runs as written, the exclusions, the seed and the rescored depths
    loaded = seen["runs"]
    assert isinstance(loaded, dict) and set(loaded) == {"bm25", "dense"}
    assert [p.doc_id for p in loaded["bm25"]["q1"]] == ["dx", "d2", "d1"]  # TREC files keep the ranking
    assert seen["excluded_query_ids"] == EXCLUDED and seen["seed"] == 5 and seen["cfg"] == cfg
    assert seen["rescored_depth"] == {"dense": 3}

    manifest = result.manifest
    assert set(manifest["outputs"]) == {"report", "metrics", "per_query"}
    assert manifest["counts"] == {"systems": 3, "queries_evaluated": 4, "excluded_queries": 1,
                                  "queries_without_relevant": 1}
    assert manifest["extra"]["baseline"] == "bm25" and manifest["extra"]["rescored_depth"] == {"dense": 3}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["command"] == "inpars run x" and metrics["queries_evaluated"] == 4
    assert "inpars run x" in (out / "report.md").read_text()
