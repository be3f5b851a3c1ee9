"""A refinement round on the smoke config, with real models (slow): the probe finds failures,
new queries are written for them with the preferred documents in the prompt, filtered,
mined and trained on with round 0's data, and ``bm25+ce-refined`` is reranked and reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.test_smoke_run import run_cli, smoke_config

REFINE: dict[str, Any] = {"rounds": 1, "probe_queries": 30, "candidates": 10, "top_k": 1, "max_docs": 6,
          "queries_per_doc": 2, "dev_depth": 10}


@pytest.mark.slow
@pytest.mark.needs_data
def test_a_refinement_round_on_the_smoke_config(tmp_path: Path, shared_data: Path) -> None:
    summary = run_cli(smoke_config(tmp_path, shared_data, sections={"refine": REFINE}), tmp_path)
    stages = summary["stages"]
    assert isinstance(stages, dict) and "refine" in stages
    refined = tmp_path / "run" / "refine"
    rounds = json.loads((refined / "rounds.json").read_text())
    zero, first = rounds["rounds"][:2]
    assert zero["round"] == 0 and set(zero["dev"]["scores"]) == {"ndcg@10", "ndcg@10+interp"}
    assert first["probed"] == min(30, zero["kept"]) and 0 < first["docs"] <= 6
    assert first["failures"] >= first["docs"]
    assert first["generated"] > 0 and first["kept"] > 0, first
    assert first["examples"] == zero["examples"] + first["kept"]  # round 0's data is kept
    assert first["diversity"]["distinct_2"] is not None
    generated = json.loads((refined / "round-1" / "generate" / "manifest.json").read_text())
    assert generated["extra"]["doc_selection"] == {"how": "given", "docs": first["docs"]}
    assert generated["extra"]["template"] == "neighbours"
    kept = [json.loads(line) for line in (refined / "round-1" / "filter" / "kept.jsonl").open()]
    assert kept and all(q["query_id"].endswith("@r1") for q in kept)
    assert (refined / "cross-encoder" / "config.json").is_file()
    manifest = json.loads((refined / "manifest.json").read_text())
    assert manifest["extra"]["best_round"] == rounds["best_round"] in (0, 1)
    metrics = json.loads((tmp_path / "run" / "evaluate" / "metrics.json").read_text())
    assert "bm25+ce-refined" in metrics["systems"]
