from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from inpars.config import FilterConfig
from inpars.data import open_collection
from inpars.errors import ConfigError, DataError
from inpars.filtering import DROPPED, KEPT, filter_stage
from inpars.filtering.chain import SCORES_KEY
from inpars.io import read_records, write_records
from inpars.manifest import run_stage
from inpars.records import Dropped, ScoredPair, SyntheticQuery
from tests.filtering.filtercases import FakeRetriever, make_query


class WordOverlap:
    """A cheap scorer for the stage test (the real scorers are tested in tests/scoring)."""

    name = "word-overlap"

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [len(set(q.lower().split()) & set(d.lower().split())) / max(1, len(q.split()))
                for q, d in pairs]


def write_generated(folder: Path) -> Path:
    write_records(folder / "shards" / "part-00000.jsonl", [
        make_query("d1#q0", "d1", "why do cats purr so much", mean_logprob=-0.5),
        make_query("d1#q1", "d1", "Why do cats purr so much?", mean_logprob=-0.6),  # duplicate of d1#q0
        make_query("d1#q2", "d1", "", mean_logprob=-0.1),  # empty
        make_query("d2#q0", "d2", "where do dogs come from", mean_logprob=-0.4),  # a test query: leak
    ])
    write_records(folder / "shards" / "part-00001.jsonl", [
        make_query("d3#q0", "d3", "where is the eiffel tower", mean_logprob=-0.3),
        make_query("d3#q1", "d3", "eiffel tower paris france height", mean_logprob=-3.0),  # low log-prob
        make_query("d4#q0", "d4", "which river carries the most water", mean_logprob=-0.2),
        make_query("d4#q1", "d4", "rivers of the world", mean_logprob=-0.9),  # BM25 misses d4
    ])
    return folder


def test_stage_writes_kept_dropped_scores_and_counts(tmp_path: Path, write_beir: Any) -> None:
    collection = open_collection(write_beir())
    generated = write_generated(tmp_path / "generate")
    bm25 = FakeRetriever({
        "d1#q0": ["d1"], "d3#q0": ["d3", "d1"], "d3#q1": ["d3"], "d4#q0": ["d2", "d4"], "d4#q1": ["d2", "d1"],
    })
    cfg = FilterConfig(steps=["rules", "dedup", "logprob", "roundtrip", "reranker"], logprob_keep=4,
                       roundtrip_k=2, reranker_keep=1.0)
    eval_queries = collection.split_queries("test")

    def body(ctx: Any) -> None:
        filter_stage(ctx, cfg, generated, collection, eval_queries=eval_queries, roundtrip=bm25,
                     scorer=WordOverlap())

    result = run_stage("filter", tmp_path / "filter", cfg, {}, body, seed=3)
    out = result.out_dir
    kept = list(read_records(out / KEPT, SyntheticQuery))
    assert [q.query_id for q in kept] == ["d1#q0", "d3#q0", "d4#q0"]
    assert set(kept[0].settings[SCORES_KEY]) == {"logprob", "roundtrip", "reranker"}
    assert kept[2].settings[SCORES_KEY]["roundtrip"] == 2.0
    dropped = {d.query_id: (d.step, d.reason) for d in read_records(out / DROPPED, Dropped)}
    assert dropped == {
        "d2#q0": ("contamination", "equals_eval_query"),  # added first: evaluation queries are known
        "d1#q2": ("rules", "empty"),
        "d1#q1": ("dedup", "exact_duplicate"),
        "d3#q1": ("logprob", "below_cutoff"),
        "d4#q1": ("roundtrip", "source_not_retrieved"),
    }
    manifest = result.manifest
    assert manifest["counts"]["queries"] == 8 and manifest["counts"]["kept"] == 3
    assert manifest["counts"]["contamination_seen"] == 8 and manifest["counts"]["rules_kept"] == 6
    assert manifest["drops"]["dedup:exact_duplicate"] == 1
    assert manifest["extra"]["steps"][0] == "contamination"
    reranker_scores = list(read_records(out / "scores_reranker.jsonl", ScoredPair))
    assert sorted(p.query_id for p in reranker_scores) == ["d1#q0", "d3#q0", "d4#q0"]
    expected_outputs = {"kept", "dropped", "scores_logprob", "scores_roundtrip", "scores_reranker"}
    assert set(manifest["outputs"]) >= expected_outputs
    # the same config and inputs: the finished stage is skipped
    assert run_stage("filter", tmp_path / "filter", cfg, {}, body, seed=3).skipped


def test_stage_errors_name_the_fix(tmp_path: Path, write_beir: Any) -> None:
    collection = open_collection(write_beir())
    generated = write_generated(tmp_path / "generate")
    cfg = FilterConfig(steps=["roundtrip"], roundtrip_retriever="dense")
    with pytest.raises(ConfigError, match=r"no retriever was given\. Fix: build the index it needs"):
        run_stage("filter", tmp_path / "f1", cfg, {}, lambda ctx: filter_stage(
            ctx, cfg, generated, collection, eval_queries=[], roundtrip=None))
    write_records(tmp_path / "other.jsonl", [make_query("x#q0", "x", "a query for a missing document")])
    with pytest.raises(DataError, match="not in the collection"):
        run_stage("filter", tmp_path / "f2", FilterConfig(steps=["rules"]), {},
                  lambda ctx: filter_stage(ctx, FilterConfig(steps=["rules"]), tmp_path / "other.jsonl",
                                           collection, eval_queries=[], roundtrip=None))
