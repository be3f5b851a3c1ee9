"""The rounds of iterative refinement, on fake steps: union of data, stop rule, resume."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from inpars.config_training import RefineConfig
from inpars.io import read_json, read_records, write_records
from inpars.manifest import StageContext
from inpars.records import SyntheticQuery
from inpars.refinement.failures import Failure
from inpars.refinement.rounds import ROUNDS_FILE, DevScore, Start, diversity, refine, round_query_id


def query(query_id: str, doc_id: str, text: str) -> SyntheticQuery:
    return SyntheticQuery(query_id, doc_id, text, "fake", "fake", 0, 0)


class FakeSteps:
    """Fails on the documents in ``failing``; a model's dev score is ``dev_by_examples`` of
    the number of examples it was trained on."""

    def __init__(self, failing: set[str], dev_by_examples: Mapping[int, float]) -> None:
        self.failing, self.dev_by_examples = failing, dev_by_examples
        self.calls: Counter[str] = Counter()
        self.generated_for: list[dict[str, tuple[str, ...]]] = []

    def probe(self, queries: Sequence[SyntheticQuery], model: Path) -> list[Failure]:
        self.calls["probe"] += 1
        return [Failure(q.query_id, q.doc_id, q.text, 4, ("X", "Y", "Z")) for q in queries
                if q.doc_id in self.failing]

    def generate(self, ctx: StageContext, docs: Mapping[str, Sequence[str]]) -> None:
        self.calls["generate"] += 1
        self.generated_for.append({d: tuple(n) for d, n in docs.items()})
        records = [query(f"{d}#q{i}", d, f"new query {i} about {d} unlike {' '.join(n)}")
                   for d, n in docs.items() for i in range(2)]
        write_records(ctx.out_dir / "generated.jsonl", records)
        ctx.counts["queries"] = len(records)

    def filter(self, ctx: StageContext, generated: Path) -> Path:
        self.calls["filter"] += 1
        generated_records = list(read_records(generated / "generated.jsonl", SyntheticQuery))
        records = [q for q in generated_records if not q.query_id.endswith("#q1")]  # drop each second sample
        ctx.drops["fake: second sample"] = len(generated_records) - len(records)
        write_records(ctx.out_dir / "kept.jsonl", records)
        return ctx.out_dir / "kept.jsonl"

    def negatives(self, ctx: StageContext, kept: Path) -> Path:
        self.calls["negatives"] += 1
        write_records(ctx.out_dir / "examples.jsonl", list(read_records(kept, SyntheticQuery)))
        return ctx.out_dir / "examples.jsonl"

    def train(self, examples: Path, kept: Path, model_dir: Path, seed: int) -> dict[str, Any]:
        self.calls["train"] += 1
        count = sum(1 for _ in examples.open())
        model_dir.mkdir(parents=True)
        (model_dir / "examples.txt").write_text(str(count))
        return {"steps": count}

    def dev(self, model: Path) -> DevScore:
        self.calls["dev"] += 1
        examples = int((model / "examples.txt").read_text())
        return DevScore("ndcg@10", {"ndcg@10": self.dev_by_examples[examples]})


@pytest.fixture
def start(tmp_path: Path) -> Start:
    kept = [query(f"{d}#q0", d, f"first query about {d}") for d in ("A", "B", "C", "D")]
    write_records(tmp_path / "kept.jsonl", kept)
    write_records(tmp_path / "examples.jsonl", kept)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "examples.txt").write_text("4")
    return Start(tmp_path / "kept.jsonl", tmp_path / "examples.jsonl", tmp_path / "model")


def context(tmp_path: Path) -> StageContext:
    out = tmp_path / "refine"
    out.mkdir(exist_ok=True)
    return StageContext(name="refine", out_dir=out, seed=5, config=None)


def test_rounds_add_data_for_failures_and_stop_when_dev_stops_rising(tmp_path: Path, start: Start) -> None:
    steps = FakeSteps({"A", "C"}, {4: 0.50, 6: 0.60, 8: 0.55})  # round 1 helps, round 2 does not
    ctx = context(tmp_path)
    cfg = RefineConfig(rounds=3, max_docs=5, neighbours=2)
    history = refine(ctx, cfg, steps, start, model_name="cross-encoder")

    assert [row["round"] for row in history] == [0, 1, 2]
    assert [row["dev"]["scores"]["ndcg@10"] for row in history] == [0.50, 0.60, 0.55]
    assert steps.generated_for[0] == {"A": ("X", "Y"), "C": ("X", "Y")}  # the preferred documents, 2 each
    # round 1's kept queries carry round ids; round 2 trains on round 0 + 1 + 2 (4 + 2 + 2)
    kept_file = ctx.out_dir / "round-1" / "filter" / "kept.jsonl"
    kept = [q.query_id for q in read_records(kept_file, SyntheticQuery)]
    assert kept == [round_query_id("A#q0", 1), round_query_id("C#q0", 1)] == ["A#q0@r1", "C#q0@r1"]
    assert history[1]["examples"] == 6 and history[2]["examples"] == 8
    assert history[1]["generated"] == 4 and history[1]["kept"] == 2
    assert history[1]["filter_drops"] == {"fake: second sample": 2}
    rounds = read_json(ctx.out_dir / ROUNDS_FILE)
    assert rounds["best_round"] == 1 and "did not raise dev ndcg@10" in rounds["stopped"]
    assert (ctx.out_dir / "cross-encoder" / "examples.txt").read_text() == "6"  # round 1's model
    assert ctx.counts == {"rounds_run": 2, "best_round": 1}
    assert set(ctx.outputs) == {"cross-encoder", "rounds", "rounds_page"}
    page = (ctx.out_dir / "rounds.md").read_text()
    assert "| 1 | 4 | 2 | 2 | 4 | 2 | 6 | 0.6429 | 0.0000 | 0.6000 |" in page
    assert "| 2 | 6 | 4 | 2 | 4 | 2 | 8 | 0.6429 | 1.0000 | 0.5500 |" in page  # the same texts again
    assert page.rstrip().endswith("(0.5500 against 0.6000).") and "Best round: 1 (by dev ndcg@10)" in page


def test_an_interrupted_refinement_resumes_from_its_finished_steps(tmp_path: Path, start: Start) -> None:
    cfg = RefineConfig(rounds=2, max_docs=5)
    first = FakeSteps({"A"}, {4: 0.5, 5: 0.6, 6: 0.7})
    refine(context(tmp_path), cfg, first, start, model_name="dense")
    assert first.calls == Counter(probe=2, generate=2, filter=2, negatives=2, train=2, dev=3)
    again = FakeSteps({"A"}, {4: 0.5, 5: 0.6, 6: 0.7})
    history = refine(context(tmp_path), cfg, again, start, model_name="dense")
    assert again.calls == Counter()  # every step of every round was finished
    assert [row["dev"]["scores"]["ndcg@10"] for row in history] == [0.5, 0.6, 0.7]


def test_no_failure_stops_with_the_start_model(tmp_path: Path, start: Start) -> None:
    ctx = context(tmp_path)
    steps = FakeSteps(set(), {4: 0.5})
    history = refine(ctx, RefineConfig(rounds=2), steps, start, model_name="cross-encoder")
    assert len(history) == 2 and history[1]["stopped"] == "round 1: no probed query failed"
    assert read_json(ctx.out_dir / ROUNDS_FILE)["best_round"] == 0
    assert (ctx.out_dir / "cross-encoder" / "examples.txt").read_text() == "4"


def test_a_gain_below_min_gain_stops(tmp_path: Path, start: Start) -> None:
    ctx = context(tmp_path)
    history = refine(ctx, RefineConfig(rounds=3, min_gain=0.05), FakeSteps({"B"}, {4: 0.5, 5: 0.52}), start,
                     model_name="cross-encoder")
    assert len(history) == 2 and read_json(ctx.out_dir / ROUNDS_FILE)["best_round"] == 0


def test_excluded_documents_are_never_probed(tmp_path: Path, start: Start) -> None:
    steps = FakeSteps({"A", "B"}, {4: 0.5, 5: 0.6})
    refine(context(tmp_path), RefineConfig(rounds=1), steps, start, model_name="cross-encoder",
           exclude_docs={"A"})
    assert steps.generated_for == [{"B": ("X", "Y")}]


def test_diversity_counts_repeats_of_earlier_rounds() -> None:
    div = diversity(["heart risk", "Heart  risk!", "solar panels"], ["heart risk"])
    assert div["repeats_earlier"] == pytest.approx(2 / 3)
    assert div["distinct_1"] == pytest.approx(4 / 6, abs=1e-4)
    assert diversity([], ["x"])["repeats_earlier"] is None
