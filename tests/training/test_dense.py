"""Dense retriever fine-tuning (sentence-transformers' trainer): the losses learn, margins
are the teacher's, the folder loads, an interrupted run resumes. Fast tests start from a
tiny random BERT; the real packaged encoder runs in the slow ones."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inpars.config import TrainConfig
from inpars.errors import ConfigError, ModelError
from inpars.models import resolve_model
from inpars.records import TrainingExample
from inpars.training import dense as dense_module
from inpars.training import read_training_summary, train_dense
from inpars.training.dense import RUN_KEY, margin_rows, mnrl_rows
from tests.training.conftest import make_tiny_bert

pytest.importorskip("sentence_transformers")

# A retrieval task a bag of words cannot solve untrained: queries of topic k use words
# q{k}z*, documents w{k}z*, so only training can tie a topic's query words to its documents.
TOPICS_N, QUERY_WORDS, DOC_WORDS = 8, 6, 8


def _task(per_topic: int, rng: random.Random, prefix: str) -> list[tuple[int, str, str, str]]:
    """(topic, doc id, query, document) rows."""
    rows = []
    for k in range(TOPICS_N):
        for i in range(per_topic):
            query = " ".join(rng.sample([f"q{k}z{j}" for j in range(QUERY_WORDS)], 3))
            doc = " ".join(rng.sample([f"w{k}z{j}" for j in range(DOC_WORDS)], 5))
            rows.append((k, f"{prefix}{k}-{i}", query, doc))
    return rows


def _task_examples(rows: list[tuple[int, str, str, str]], rng: random.Random) -> list[TrainingExample]:
    """One example per row, two negatives from other topics, teacher scores (0.9, 0.1, 0.2)."""
    out = []
    for topic, doc_id, query, doc in rows:
        others = rng.sample([r for r in rows if r[0] != topic], 2)
        out.append(TrainingExample(
            query_id=f"q-{doc_id}", query=query, doc_id=doc_id, positive=doc,
            negative_ids=tuple(o[1] for o in others), negatives=tuple(o[3] for o in others),
            teacher_scores=(0.9, 0.1, 0.2),
        ))
    return out


def _pairwise_accuracy(model_dir: Path | str, rows: list[tuple[int, str, str, str]]) -> float:
    """Mean share of other topics' documents each query scores below its own document."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    queries = model.encode([r[2] for r in rows])
    docs = model.encode([r[3] for r in rows])
    scores = queries @ docs.T
    wins = [
        sum(scores[i, i] > scores[i, j] for j in range(len(rows)) if rows[j][0] != rows[i][0])
        / sum(rows[j][0] != rows[i][0] for j in range(len(rows)))
        for i in range(len(rows))
    ]
    return float(sum(wins) / len(wins))


@pytest.fixture(scope="module")
def task_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = [f"{kind}{k}z{j}" for k in range(TOPICS_N) for kind, n in (("q", QUERY_WORDS), ("w", DOC_WORDS))
             for j in range(n)]
    return make_tiny_bert(tmp_path_factory.mktemp("task-bert"), words)


def _tiny_cfg(model: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(dense_model=str(model), dense_batch_size=4, dense_max_length=32,
                                warmup_ratio=0.0, seed=1, log_every=1, threads=1, precision="float32")
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("loss", ["mnrl", "margin-mse"])
def test_each_loss_learns_a_separable_retrieval_task(tmp_path: Path, task_bert: Path, loss: str) -> None:
    rng = random.Random(0)
    train, held_out = _task(6, rng, "train"), _task(3, rng, "test")
    before = _pairwise_accuracy(task_bert, held_out)
    cfg = _tiny_cfg(task_bert, dense_loss=loss, dense_batch_size=8, dense_max_length=16, dense_epochs=10,
                    dense_learning_rate=3e-3, dense_negatives_per_example=2, log_every=5)
    out = train_dense(_task_examples(train, rng), tmp_path / "dense", cfg)
    after = _pairwise_accuracy(out, held_out)
    assert before < 0.7  # about chance (0.5): the untrained model cannot tell the topics apart
    assert after > 0.9, (before, after)  # a sign-flipped loss would drive this below chance
    summary = read_training_summary(out)
    assert summary["last_loss"] < summary["first_loss"]


def test_margin_rows_are_teacher_margins_and_unscored_negatives_are_dropped() -> None:
    def example(n: int, scores: tuple[float, ...]) -> TrainingExample:
        return TrainingExample(query_id=f"q{n}", query=f"query {n}", doc_id=f"d{n}", positive=f"pos {n}",
                               negative_ids=tuple(f"n{n}-{i}" for i in range(2)),
                               negatives=tuple(f"neg {n}-{i}" for i in range(2)), teacher_scores=scores)

    examples = [example(0, (0.9, 0.2, 0.5)), example(1, (0.4, 0.6)), example(2, ())]
    columns, unscored, unused = margin_rows(examples, negatives=3)
    assert list(columns) == ["query", "positive", "negative", "label"]  # the loss reads columns in order
    rows = list(zip(*columns.values(), strict=True))
    assert [(q, p, n) for q, p, n, _ in rows] == [
        ("query 0", "pos 0", "neg 0-0"), ("query 0", "pos 0", "neg 0-1"), ("query 1", "pos 1", "neg 1-0"),
    ]
    assert [round(label, 6) for *_, label in rows] == [0.7, 0.4, -0.2]  # teacher(pos) - teacher(neg)
    # 3 wanted per example: example 0 lacks a third (a random top-up would have no score),
    # example 1 has no score for its second, example 2 no scores at all
    assert (unscored, unused) == (1 + 2 + 3, 1)


def test_margin_mse_without_teacher_scores_is_a_config_error(
    tmp_path: Path, make_examples: Callable[..., list[TrainingExample]]
) -> None:
    cfg = TrainConfig(dense_loss="margin-mse", dense_model=str(tmp_path / "none"))
    with pytest.raises(ConfigError, match='teacher = "hybrid"'):  # before any model is loaded
        train_dense(make_examples(), tmp_path / "dense", cfg)
    with pytest.raises(ConfigError, match="dense_negatives_per_example"):
        train_dense(make_examples(), tmp_path / "dense", TrainConfig(dense_loss="margin-mse",
                                                                     dense_negatives_per_example=0))


def test_mnrl_batches_never_hold_one_document_twice(
    make_examples: Callable[..., list[TrainingExample]],
) -> None:
    from datasets import Dataset
    from sentence_transformers.base.sampler import BatchSamplers, NoDuplicatesBatchSampler

    base = make_examples(negatives=1)  # each example's negative is the next one's positive
    examples = [*base, *(TrainingExample(f"again-{e.query_id}", f"{e.query} again", e.doc_id, e.positive,
                                         e.negative_ids, e.negatives) for e in base)]
    columns, _ = mnrl_rows(examples, 1, random.Random(0))
    assert dense_module._arguments(_tiny_cfg(Path("m")), Path("out"), 16, "cpu", False, 0).batch_sampler \
        == BatchSamplers.NO_DUPLICATES
    sampler = NoDuplicatesBatchSampler(Dataset.from_dict(columns), batch_size=4, drop_last=False, seed=3)
    for batch in sampler:
        documents = [columns[c][i] for i in batch for c in ("positive", "negative_1")]
        assert len(documents) == len(set(documents)), batch


@pytest.mark.parametrize(("loss", "negatives"), [("mnrl", 0), ("mnrl", 2), ("margin-mse", 1)])
def test_the_folder_loads_as_a_sentence_transformer_with_the_summary_the_stage_reads(
    tmp_path: Path, tiny_bert: Path, make_examples: Callable[..., list[TrainingExample]], loss: str,
    negatives: int,
) -> None:
    from sentence_transformers import SentenceTransformer

    examples = [TrainingExample(e.query_id, e.query, e.doc_id, e.positive, e.negative_ids, e.negatives,
                                teacher_scores=(1.0, 0.5)) for e in make_examples(negatives=2)]
    cfg = _tiny_cfg(tiny_bert, dense_loss=loss, dense_negatives_per_example=negatives, max_steps=100)
    out = train_dense(examples, tmp_path / "dense", cfg)
    model = SentenceTransformer(str(out), device="cpu")
    assert model.encode(["do cats purr"]).shape == (1, 16) and model.max_seq_length == 32
    summary = read_training_summary(out)
    assert set(summary["data"]) >= {"examples_read", "examples_used", "random_negatives", "drops"}
    assert {"pairs", "steps", "loss_curve", "pairs_per_second", "first_loss", "last_loss"} <= set(summary)
    assert summary["data"]["examples_read"] == summary["data"]["examples_used"] == 8
    # max_steps caps the epochs and never extends them: 8 rows in batches of 4, one epoch
    # (a batch may hold fewer when no-duplicates defers a row, then one more is drawn)
    assert summary["steps"] == 2 and len(summary["loss_curve"]) == 2
    assert summary["pairs"] == summary["loss_curve"][-1]["pairs"] > 0
    assert summary["config"]["dense_loss"] == loss
    if loss == "margin-mse":  # one scored negative per example: rows of (query, positive, negative)
        assert summary["loss"] == "margin_mse" and summary["pairs"] == 2 * 8
        assert summary["data"]["drops"] == {}
    else:
        assert summary["pairs"] <= 8 * (1 + negatives)
    assert not list(tmp_path.glob(".dense*"))  # no checkpoints or temporary folders left


def _interrupt_at(step: int) -> Any:
    """A trainer callback that stops training with Ctrl-C at the end of ``step``."""
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == step:
                raise KeyboardInterrupt

    return Interrupt()


def test_an_interrupted_run_resumes_from_its_last_checkpoint(
    tmp_path: Path, tiny_bert: Path, make_examples: Callable[..., list[TrainingExample]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dense_module, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every step
    examples = make_examples(negatives=1)
    cfg = _tiny_cfg(tiny_bert, dense_epochs=3, dense_learning_rate=1e-3)
    with pytest.raises(KeyboardInterrupt):
        train_dense(examples, tmp_path / "dense", cfg, callbacks=[_interrupt_at(4)])
    checkpoints = tmp_path / ".dense.checkpoints"
    assert not (tmp_path / "dense").exists()
    assert [p.name for p in checkpoints.glob("checkpoint-*")] == ["checkpoint-3"]  # the save at 4 never ran

    resumed = read_training_summary(train_dense(examples, tmp_path / "dense", cfg))
    assert resumed["resumed_from"] == "checkpoint-3"
    assert not checkpoints.exists()
    straight = read_training_summary(train_dense(examples, tmp_path / "straight", cfg))
    assert straight["resumed_from"] is None
    # the whole run's curve, the first 3 steps from the checkpoint, and the same training
    assert [p["step"] for p in resumed["loss_curve"]] == list(range(1, straight["steps"] + 1))
    assert resumed["pairs"] == straight["pairs"]
    assert [p["loss"] for p in resumed["loss_curve"]] == pytest.approx(
        [p["loss"] for p in straight["loss_curve"]], abs=1e-4)


def test_checkpoints_of_other_settings_or_half_written_are_not_resumed(tmp_path: Path) -> None:
    folder = tmp_path / ".dense.checkpoints"
    (folder / "checkpoint-5").mkdir(parents=True)
    (folder / "checkpoint-5" / "trainer_state.json").write_text("{}")
    (folder / RUN_KEY).write_text(json.dumps({"key": "other"}))
    assert dense_module._resume_point(folder, "mine") is None
    assert not (folder / "checkpoint-5").exists()
    for step in (2, 3):
        (folder / f"checkpoint-{step}").mkdir()
    (folder / "checkpoint-2" / "trainer_state.json").write_text("{}")  # 3: killed while saving
    assert dense_module._resume_point(folder, "mine") == str(folder / "checkpoint-2")
    assert not (folder / "checkpoint-3").exists()


def test_a_model_that_is_not_there_is_a_model_error(
    tmp_path: Path, make_examples: Callable[..., list[TrainingExample]]
) -> None:
    with pytest.raises(ModelError, match="not found"):
        train_dense(make_examples(), tmp_path / "dense", TrainConfig(dense_model=str(tmp_path / "none")))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["mnrl", "margin-mse"])
def test_two_steps_of_the_real_encoder_change_its_embeddings(
    tmp_path: Path, make_examples: Callable[..., list[TrainingExample]], loss: str
) -> None:
    from sentence_transformers import SentenceTransformer

    examples = [TrainingExample(e.query_id, e.query, e.doc_id, e.positive, e.negative_ids, e.negatives,
                                teacher_scores=(0.9, 0.3)) for e in make_examples(negatives=1)]
    texts = [examples[0].query, examples[0].positive]
    before = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu").encode(texts)
    cfg = TrainConfig(dense_loss=loss, dense_batch_size=4, dense_max_length=48, max_steps=2,
                      dense_learning_rate=1e-4, warmup_ratio=0.0, seed=3, log_every=1)
    out = train_dense(examples, tmp_path / "dense", cfg)
    model = SentenceTransformer(str(out), device="cpu")
    after = model.encode(texts)
    assert after.shape == before.shape
    assert abs(after - before).max() > 1e-4  # the weights moved
    assert model.max_seq_length == 48
    summary = read_training_summary(out)
    assert summary["kind"] == "dense" and summary["steps"] == 2 and len(summary["loss_curve"]) == 2
    assert 0 < summary["pairs"] <= 2 * 4 * 2  # 2 batches of at most 4 queries, 2 documents each
