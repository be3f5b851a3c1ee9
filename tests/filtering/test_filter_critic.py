"""The critic step: a real-vs-synthetic classifier keeps the most realistic synthetic queries."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inpars.config import FilterConfig, parse_config
from inpars.data import FileCollection, open_collection
from inpars.distributed.settings import EXECUTOR_KEYS
from inpars.errors import ConfigError
from inpars.filtering import DROPPED, CriticFilter, apply_filters, critic_real_queries, filter_stage
from inpars.filtering.critic import check_critic, load_encoder, stage_settings
from inpars.filtering.stage import read_queries
from inpars.io import read_records, write_records
from inpars.manifest import config_dict, run_stage
from inpars.records import Dropped, Query, SyntheticQuery
from tests.conftest import write_lines
from tests.filtering.filtercases import make_query

REAL_WORDS = ["protein", "expression", "increases", "risk", "cells", "reduces", "mortality", "tumor", "gene",
              "patients", "levels", "associated", "higher", "lower", "therapy", "mice", "induces", "loss"]
FAKE_WORDS = ["what", "is", "the", "role", "of", "how", "does", "why", "can", "which", "are", "there", "any",
              "do", "explain", "describe", "relationship", "between"]
REPO = Path(__file__).resolve().parents[2]


class FakeEncoder:
    """Deterministic features: the share of 'real' words, the share of 'synthetic' ones and
    four noise dimensions from a hash of the text (so no two texts are the same point)."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        rows = []
        for text in texts:
            words = text.split()
            real = sum(w in REAL_WORDS for w in words) / len(words)
            noise = [b / 255 - 0.5 for b in hashlib.sha256(text.encode()).digest()[:4]]
            rows.append([real, 1 - real, *noise])
        return np.asarray(rows, dtype=np.float32)


def text(seed: str, real_share: int, size: int = 6) -> str:
    """A query of ``size`` words drawn with ``seed``, ``real_share`` of them from the real vocabulary."""
    rng = random.Random(seed)
    return " ".join([*rng.sample(REAL_WORDS, real_share), *rng.sample(FAKE_WORDS, size - real_share)])


def real_queries(count: int = 60) -> list[Query]:
    return [Query(f"r{i}", text(f"r{i}", 6 if i % 3 else 5)) for i in range(count)]


def synthetic_queries(count: int = 80, doc_ids: Sequence[str] = ("d1", "d2", "d3")) -> list[SyntheticQuery]:
    """Synthetic queries whose realism (real words out of 6) runs 0..5 with the index."""
    return [make_query(f"s{i:03d}", doc_ids[i % len(doc_ids)], text(f"s{i}", i % 6)) for i in range(count)]


def test_critic_learns_keeps_the_most_realistic_and_reports() -> None:
    synthetic = synthetic_queries()
    critic = CriticFilter(real_queries(), FakeEncoder(), keep=0.5, seed=7)
    result = apply_filters(synthetic, [critic])

    assert len(result.kept) == 40 and len(result.dropped) == 40
    realism = {q.query_id: int(q.query_id[1:]) % 6 for q in synthetic}
    kept = [realism[q.query_id] for q in result.kept]
    dropped = [realism[d.query_id] for d in result.dropped]
    assert sum(kept) / len(kept) > 3 > sum(dropped) / len(dropped)
    assert min(kept) == 2 and max(dropped) == 2  # every query with 3+ real words of 6 (39) and one with 2
    assert {(d.step, d.reason) for d in result.dropped} == {("critic", "below_cutoff")}
    assert "P(real)" in result.dropped[0].detail
    assert result.steps[0].drops["below_cutoff"] == 40
    assert set(result.scores["critic"]) == {q.query_id for q in synthetic}
    assert all(0 <= s <= 1 for s in result.scores["critic"].values())
    report = critic.report
    assert report["accuracy"] >= 0.85 and report["roc_auc"] >= 0.9
    assert report["per_class"] == 60 and report["folds"] == 5 and report["real"] == 60


def test_critic_is_seeded_and_counts_keep_like_the_reranker() -> None:
    def kept(seed: int, keep: float) -> list[str]:
        critic = CriticFilter(real_queries(), FakeEncoder(), keep=keep, seed=seed)
        return [q.query_id for q in apply_filters(synthetic_queries(), [critic]).kept]

    assert kept(3, 0.5) == kept(3, 0.5)
    assert len(kept(3, 12)) == 12 and len(kept(3, 1.0)) == 80


def test_critic_without_real_queries_keeps_everything_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    def no_model() -> Any:
        raise AssertionError("the encoder must not load when the step is skipped")

    critic = CriticFilter([], loader=no_model)
    with caplog.at_level(logging.WARNING, logger="inpars.filtering.critic"):
        result = apply_filters(synthetic_queries(20), [critic])
    assert len(result.kept) == 20 and not result.dropped and "critic" not in result.scores
    assert "no real queries" in critic.report["skipped"]
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("filter step 'critic' skipped, every query kept")
    few = CriticFilter(real_queries(4), loader=no_model)
    assert len(apply_filters(synthetic_queries(20), [few]).kept) == 20
    assert "only 4 real" in few.report["skipped"]


def test_stage_runs_the_critic_and_writes_its_report(tmp_path: Path, write_beir: Any) -> None:
    collection = open_collection(write_beir())
    write_records(tmp_path / "generated.jsonl", synthetic_queries(40, ("d1", "d3", "d4")))
    cfg = FilterConfig(steps=["critic"], critic_keep=10)

    def body(real: list[Query]) -> Any:
        return lambda ctx: filter_stage(ctx, cfg, tmp_path / "generated.jsonl", collection, eval_queries=[],
                                        roundtrip=None, real_queries=real, real_source="split 'train'",
                                        encoder=FakeEncoder())

    manifest = run_stage("filter", tmp_path / "f1", cfg, {}, body(real_queries(30)), seed=1).manifest
    assert manifest["counts"]["kept"] == 10 and manifest["drops"]["critic:below_cutoff"] == 30
    assert manifest["extra"]["critic"]["accuracy"] >= 0.8
    assert manifest["extra"]["critic"]["model"] == "all-MiniLM-L6-v2"
    assert "scores_critic" in manifest["outputs"]
    dropped = list(read_records(tmp_path / "f1" / DROPPED, Dropped))
    assert {d.reason for d in dropped} == {"below_cutoff"}

    skipped = run_stage("filter", tmp_path / "f2", cfg, {}, body([]), seed=1).manifest
    assert skipped["counts"]["kept"] == 40 and "critic:below_cutoff" not in skipped["drops"]
    assert "no real queries" in skipped["extra"]["critic"]["skipped"]


def test_real_queries_leave_out_the_dev_set_and_evaluated_queries(tmp_path: Path, write_beir: Any) -> None:
    queries = [{"_id": f"q{i}", "text": f"question number {i}"} for i in range(6)]
    qrels = {"train": [(f"q{i}", "d1", 1) for i in range(4)], "test": [("q4", "d2", 1), ("q5", "d3", 1)]}
    collection = open_collection(write_beir(queries=queries, qrels=qrels))
    cfg = FilterConfig(steps=["critic"])
    held = [Query("q0", "question number 0"), Query("x9", "Question number 1!"),
            *collection.split_queries("test")]
    real, source = critic_real_queries(cfg, collection, "train", held_out=held)
    assert [q.query_id for q in real] == ["q2", "q3"] and source == "split 'train'"
    assert critic_real_queries(cfg, collection, "", held_out=held) == ([], "")
    assert critic_real_queries(cfg, collection, "dev") == ([], "")

    user = write_lines(tmp_path / "user.jsonl", [{"_id": "u1", "text": "my own query"},
                                                 {"_id": "q0", "text": "question number 0"}])
    from_file = FilterConfig(steps=["critic"], critic_real_queries=str(user))
    real, source = critic_real_queries(from_file, collection, "train", held_out=held)
    assert [q.text for q in real] == ["my own query"] and source == f"file {user}"
    missing = FilterConfig(steps=["critic"], critic_real_queries=str(tmp_path / "none.jsonl"))
    with pytest.raises(ConfigError, match=r"critic_real_queries = .*file not found\. Fix: "):
        critic_real_queries(missing, collection, "train")


def test_check_warns_without_real_queries_and_fails_on_a_missing_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="inpars.filtering.critic"):
        check_critic(FilterConfig(steps=["critic"]), ["test"], "train")
    assert "the step will keep every query. Fix: set [filter] critic_real_queries" in caplog.text
    check_critic(FilterConfig(steps=["critic"]), ["train", "test"], "train")
    check_critic(FilterConfig(steps=["rules"]), [], "train")
    missing = FilterConfig(steps=["critic"], critic_real_queries=str(tmp_path / "none.jsonl"))
    with pytest.raises(ConfigError, match=r"\[filter\] critic_real_queries = .*Fix: "):
        check_critic(missing, ["train"], "train")


def test_config_keys_are_validated() -> None:
    cfg = parse_config({"filter": {"steps": ["rules", "critic"], "critic_keep": 500,
                                   "critic_real_queries": "q.jsonl"}})
    assert cfg.filter.critic_keep == 500 and cfg.filter.critic_model == "all-MiniLM-L6-v2"
    for bad in ({"critic_keep": 0}, {"critic_keep": 2.5}, {"critic_model": ""}, {"steps": ["critics"]}):
        with pytest.raises(ConfigError, match="critic"):
            parse_config({"filter": bad})


def test_fingerprint_settings_ignore_the_critic_keys_until_it_runs() -> None:
    without = stage_settings(FilterConfig(critic_keep=0.3), 100)
    assert without == {k: v for k, v in config_dict(FilterConfig()).items()
                       if not k.startswith("critic") and k not in EXECUTOR_KEYS}  # where, not what
    assert stage_settings(FilterConfig(critic_keep=0.3), 100) == stage_settings(FilterConfig(), 50)
    with_critic = FilterConfig(steps=["critic"])
    assert stage_settings(with_critic, 100) != stage_settings(with_critic, 50)


def test_real_minilm_tells_scifact_train_queries_from_synthetic_ones(shared_data: Path) -> None:
    kept = REPO / "runs" / "scifact" / "filter" / "kept.jsonl"
    if not kept.is_file():
        pytest.skip(f"{kept}: no finished scifact filter run")
    real = FileCollection.from_beir(shared_data / "scifact").split_queries("train")[:300]
    synthetic = read_queries(kept)[:300]
    critic = CriticFilter(real, load_encoder(FilterConfig(device="cpu")), keep=0.5, seed=0)
    result = apply_filters(synthetic, [critic])
    assert critic.report["accuracy"] > 0.6 and critic.report["roc_auc"] > 0.65
    assert len(result.kept) == 150
