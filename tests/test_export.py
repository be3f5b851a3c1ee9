"""``inpars export``: a finished run's examples as a Hugging Face dataset (save_to_disk) and as
Parquet, in the sentence-transformers column layout with a dataset card, and its kept queries as
a BEIR folder that inpars reads back. Upstream stages are faked; the training step uses a tiny
random BERT (slow: sentence-transformers' import alone takes seconds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inpars.cli import main
from inpars.config import Config, DataConfig, ExperimentConfig, NegativesConfig
from inpars.data import open_collection
from inpars.errors import ConfigError, StageError
from inpars.export import export_run, training_columns
from inpars.io import write_records
from inpars.manifest import StageContext, run_stage
from inpars.pipeline import Workspace
from inpars.records import Qrel, SyntheticQuery, TrainingExample
from tests.conftest import TINY_DOCS, BeirWriter

TEXTS = {d["_id"]: (f"{d['title']}\n{d['text']}" if d["title"] else d["text"]) for d in TINY_DOCS}
QUERIES = (("d1", "do cats purr"), ("d2", "where do dogs come from"), ("d3", "eiffel tower city"))
KEPT = [SyntheticQuery(f"{d}#q0", d, text, "inpars", "toy-model", 0, 1, mean_logprob=-1.5)
        for d, text in QUERIES]


def example(query: SyntheticQuery, negatives: list[str], teacher: bool = True) -> TrainingExample:
    scores = tuple(float(10 - i) for i in range(len(negatives) + 1)) if teacher else ()
    return TrainingExample(query.query_id, query.text, query.doc_id, TEXTS[query.doc_id], tuple(negatives),
                           tuple(TEXTS[d] for d in negatives), scores)


EXAMPLES = [example(KEPT[0], ["d2", "d4"]), example(KEPT[1], ["d3", "d1"]), example(KEPT[2], ["d4"])]


def finished_run(source: Path, tmp: Path, examples: list[TrainingExample] = EXAMPLES) -> Workspace:
    """A workspace whose generate, filter and negatives stages 'finished' (fake bodies)."""
    ws = Workspace(Config(experiment=ExperimentConfig(name="toy-export", run_dir=str(tmp / "run"), seed=7),
                          data=DataConfig(source=str(source)), negatives=NegativesConfig(count=2)))

    def generate(ctx: StageContext) -> None:
        write_records(ctx.out_dir / "shards" / "part-00000.jsonl", KEPT)
        ctx.output("shards", ctx.out_dir / "shards")
        ctx.extra.update(model="toy-model", template="inpars", backend="llama-cpp")
        ctx.counts.update(docs=3, queries=4)

    def filtered(ctx: StageContext) -> None:
        ctx.output("kept", ctx.out_dir / "kept.jsonl")
        write_records(ctx.out_dir / "kept.jsonl", KEPT)
        ctx.extra["steps"] = ["rules", "dedup"]
        ctx.counts.update(kept=3, dropped=1)
        ctx.drops["rules:too_short"] = 1

    def negatives(ctx: StageContext) -> None:
        ctx.output("examples", ctx.out_dir / "examples.jsonl")
        write_records(ctx.out_dir / "examples.jsonl", examples)
        ctx.counts["examples"] = len(examples)

    run_stage("generate", ws.stage_dir("generate"), {"generate": {"model": "toy-model"}}, {}, generate)
    run_stage("filter", ws.stage_dir("filter"), {}, {}, filtered)
    run_stage("negatives", ws.stage_dir("negatives"), ws.config.negatives, {}, negatives)
    return ws


@pytest.fixture
def ws(write_beir: BeirWriter, tmp_path: Path) -> Workspace:
    return finished_run(write_beir(), tmp_path)


def test_columns_in_the_sentence_transformers_layout() -> None:
    columns, counts = training_columns(EXAMPLES)
    assert list(columns) == ["query", "positive", "negative_1", "negative_2", "teacher_positive",
                             "teacher_negative_1", "teacher_negative_2"]
    assert counts == {"rows": 2, "negatives": 2, "short": 1}  # the third has one negative only
    assert columns["negative_2"] == [TEXTS["d4"], TEXTS["d1"]] and columns["teacher_negative_2"] == [8.0, 8.0]
    columns, counts = training_columns(EXAMPLES, negatives=1)
    assert counts["rows"] == 3 and "negative_2" not in columns and columns["teacher_negative_1"] == [9.0] * 3
    untaught = [example(KEPT[0], ["d2"], teacher=False), *EXAMPLES[:1]]
    assert "teacher_positive" not in training_columns(untaught, negatives=1)[0]  # not every row has scores


def test_hf_export_loads_from_disk_with_the_columns_and_a_card(ws: Workspace, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "hf"
    result = export_run(ws, "hf", out)
    loaded = datasets.load_from_disk(str(out))
    assert loaded.column_names == result.columns and len(loaded) == result.rows == 2
    assert loaded[0]["query"] == "do cats purr" and loaded[0]["positive"] == TEXTS["d1"]
    assert loaded[1]["negative_1"] == TEXTS["d3"] and loaded[1]["teacher_positive"] == 10.0
    card = (out / "README.md").read_text()
    for fact in ("toy-export", "toy-model (llama-cpp)", "| template | inpars |", "rules → dedup",
                 "| kept / dropped queries | 3 / 1 |", "rules:too_short 1", "| seed | 7 |",
                 "1 examples with fewer than 2 negatives left out", "teacher_negative_2", "load_from_disk"):
        assert fact in card, fact
    assert card.startswith("---\npretty_name: ")


def test_parquet_round_trip(ws: Workspace, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    result = export_run(ws, "parquet", tmp_path / "pq", negatives=1)
    table = pq.read_table(tmp_path / "pq" / "train.parquet").to_pydict()
    expected, _ = training_columns(EXAMPLES, negatives=1)
    assert table == expected and result.columns == list(expected)
    assert "path: train.parquet" in (tmp_path / "pq" / "README.md").read_text()


def test_beir_export_opens_with_open_collection(ws: Workspace, tmp_path: Path) -> None:
    result = export_run(ws, "beir", tmp_path / "beir")
    collection = open_collection(tmp_path / "beir")
    assert collection.splits() == ["train"] and result.rows == 3
    assert collection.qrels("train") == [Qrel(q.query_id, q.doc_id, 1) for q in KEPT]
    assert [q.text for q in collection.split_queries("train")] == [q.text for q in KEPT]
    assert [(d.doc_id, d.contents) for d in collection.docs()] == list(TEXTS.items())
    assert not (tmp_path / "beir" / "corpus.jsonl").is_symlink()  # copied: the folder stands alone
    metadata = json.loads((tmp_path / "beir" / "queries.jsonl").read_text().splitlines()[0])["metadata"]
    assert metadata == {"doc_id": "d1", "template": "inpars", "model": "toy-model", "mean_logprob": -1.5}
    export_run(ws, "beir", tmp_path / "linked", corpus="link")
    assert (tmp_path / "linked" / "corpus.jsonl").is_symlink()
    assert open_collection(tmp_path / "linked").count_docs() == 4


def test_refusals(ws: Workspace, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"taken: already exists and is not an empty folder\. Fix: "):
        export_run(ws, "hf", taken)
    assert (taken / "mine.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="export format 'csv'"):
        export_run(ws, "csv", tmp_path / "csv")
    examples = ws.stage_dir("negatives") / "examples.jsonl"
    examples.write_text(examples.read_text()[:-20])
    with pytest.raises(StageError, match=r"'negatives' stage changed .* Fix: rerun `inpars negatives"):
        export_run(ws, "hf", tmp_path / "damaged")
    assert not (tmp_path / "damaged").exists()


def test_the_cli(ws: Workspace, tmp_path: Path, write_beir: BeirWriter, capsys: pytest.CaptureFixture[str]
                 ) -> None:
    config = tmp_path / "toy.toml"
    config.write_text(f'[experiment]\nname = "toy-export"\nrun_dir = "{ws.run_dir}"\nseed = 7\n\n'
                      f'[data]\nsource = "{ws.config.data.source}"\n')
    assert main(["export", str(config), "--format", "beir", "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert f"export: beir, 3 rows -> {tmp_path / 'cli'}" in printed and "corpus.jsonl copied" in printed


@pytest.mark.slow  # ranx (numba) scores the run
def test_the_beir_export_evaluates_with_evaluate_runs(ws: Workspace, tmp_path: Path) -> None:
    from inpars.config import EvaluateConfig
    from inpars.evaluation import evaluate_runs
    from inpars.records import ScoredPair

    export_run(ws, "beir", tmp_path / "beir")
    collection = open_collection(tmp_path / "beir")
    # each query's source document first, except d3's query, which ranks it second
    run = {q.query_id: [ScoredPair(q.query_id, q.doc_id, 1.0 if q.doc_id != "d3" else 0.5),
                        ScoredPair(q.query_id, "d4", 0.7)] for q in KEPT}
    ev = evaluate_runs(collection.qrels("train"), {"source-first": run}, EvaluateConfig(
        metrics=["mrr@10"], baseline="source-first", fusion=[]))
    assert ev.means["source-first"]["mrr@10"] == pytest.approx((1 + 1 + 0.5) / 3)


@pytest.mark.slow  # sentence-transformers and a trainer, on a tiny random BERT
def test_one_sentence_transformers_training_step_on_the_hf_export(ws: Workspace, tmp_path: Path) -> None:
    import datasets
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses

    from tests.training.conftest import make_tiny_bert

    export_run(ws, "hf", tmp_path / "hf", negatives=1)
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    dataset = loaded.select_columns(["query", "positive", "negative_1"])  # the teacher's are not texts
    model = SentenceTransformer(str(make_tiny_bert(tmp_path / "bert")), device="cpu")  # + mean pooling
    before = [p.detach().clone() for p in model.parameters()]
    args: Any = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=3, report_to=[],
        use_cpu=True, save_strategy="no", disable_tqdm=True, learning_rate=1e-2)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=losses.MultipleNegativesRankingLoss(model))
    trainer.train()
    assert trainer.state.global_step == 1
    assert any(not (a == b).all() for a, b in zip(before, model.parameters(), strict=True))
