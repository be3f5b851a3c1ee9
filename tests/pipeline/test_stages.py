"""The built-in stage declarations: systems they promise, and config checks before anything runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from inpars.config import Config, DataConfig, EvaluateConfig, RerankConfig, TrainConfig
from inpars.errors import ConfigError
from inpars.pipeline import STAGES, Executor, Workspace, stages_until
from inpars.pipeline.negatives import NegativesStage
from inpars.pipeline.stages import RerankStage
from inpars.reranking import SystemSpec
from tests.conftest import BeirWriter


def workspace(source: Path, tmp: Path, **sections: object) -> Workspace:
    config = dataclasses.replace(Config(data=DataConfig(source=str(source))), **sections)
    experiment = dataclasses.replace(config.experiment, run_dir=str(tmp / "r"))
    config = dataclasses.replace(config, experiment=experiment)
    return Workspace(config)


def test_builtin_order_and_until() -> None:
    assert STAGES == ("index", "generate", "filter", "expand", "negatives", "train", "refine", "rerank",
                      "evaluate")
    assert stages_until("filter") == ("index", "generate", "filter")
    assert stages_until(None) == STAGES
    with pytest.raises(ConfigError, match="unknown stage 'fine-tune'"):
        stages_until("fine-tune")


def test_systems_follow_the_config(write_beir: BeirWriter, tmp_path: Path) -> None:
    source = write_beir()
    ws = workspace(source, tmp_path)
    assert ws.graph.systems(ws) == ("bm25", "dense", "bm25+ce-synthetic", "bm25+bi-zero-shot")
    tuned = workspace(source, tmp_path, train=TrainConfig(dense=True),
                      rerank=RerankConfig(zero_shot=False, extra_systems=["mine=cross-encoder:/m/ce"]))
    assert tuned.graph.systems(tuned) == (
        "bm25", "dense", "bm25+ce-synthetic", "bm25+bi-synthetic", "mine", "dense-synthetic")
    specs = RerankStage().specs(tuned)
    assert specs["mine"] == SystemSpec("cross-encoder", "/m/ce")
    assert specs["bm25+bi-synthetic"] == SystemSpec("bi-encoder", str(tmp_path / "r" / "train" / "dense"))



def test_bi_encoder_systems_reuse_the_corpus_embeddings_of_their_index(
    write_beir: BeirWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The untuned encoder reuses the index stage's dense index; the fine-tuned one the corpus
    that dense-synthetic re-encodes with it (so that runs first); the others encode."""
    from contextlib import nullcontext

    import inpars.pipeline.stages as stages_module
    import inpars.reranking as reranking_module
    from inpars.manifest import StageContext

    ws = workspace(write_beir(), tmp_path, train=TrainConfig(dense=True, dense_labels=["synthetic", "real"]))
    order: list[str] = []
    seen: dict[str, SystemSpec] = {}

    def dense_tuned(ctx: object, ws: object) -> Path:
        order.append("dense")
        return Path("/i/tuned")

    def rerank_stage(ctx: object, cfg: object, run: object, queries: object, docs: object,
                     systems: dict[str, SystemSpec]) -> None:
        order.append("rerank")
        seen.update(systems)

    monkeypatch.setattr(stages_module, "dense_tuned", dense_tuned)
    monkeypatch.setattr(reranking_module, "rerank_stage", rerank_stage)
    monkeypatch.setattr(ws, "manifest", lambda stage: {"extra": {"dense": {"index": "/i/zero"}}})
    monkeypatch.setattr(ws, "bm25", lambda: nullcontext(None))
    monkeypatch.setattr(ws, "runs", lambda stage: {"bm25": tmp_path / "bm25.trec"})
    monkeypatch.setattr(ws, "test_queries", list)
    RerankStage().run(StageContext(name="rerank", out_dir=tmp_path / "rerank", seed=0, config=None), ws)
    assert order == ["dense", "rerank"]
    assert seen["bm25+bi-zero-shot"].index == "/i/zero" and seen["bm25+bi-synthetic"].index == "/i/tuned"
    assert seen["bm25+bi-real"].index == seen["bm25+ce-synthetic"].index == ""


@pytest.mark.parametrize(("evaluate", "message"), [
    (EvaluateConfig(interpolate={"bm25+ce-synthetc": 0.5}),
     "interpolate names 'bm25\\+ce-synthetc', which this run will not produce "
     "\\(did you mean 'bm25\\+ce-synthetic'\\?\\)\\. Fix: use one of bm25, dense"),
    (EvaluateConfig(fusion=[["bm25", "dense-synthetic"]]), "fusion group .* names \\['dense-synthetic'\\]"),
    (EvaluateConfig(baseline="BM25"), "baseline = 'BM25' is not a system of this run"),
    (EvaluateConfig(mix={"all": {"bm25": 0.5, "bm25+ce-synthetc": 0.5}}),
     "mix 'all' names \\['bm25\\+ce-synthetc'\\], which this run will not produce"),
    (EvaluateConfig(mix={"dense": {"bm25": 0.5, "bm25+ce-synthetic": 0.5}}), "mix 'dense' is already"),
])
def test_names_in_evaluate_are_checked_before_anything_runs(
    write_beir: BeirWriter, tmp_path: Path, evaluate: EvaluateConfig, message: str
) -> None:
    ws = workspace(write_beir(), tmp_path, evaluate=evaluate)
    with pytest.raises(ConfigError, match=message):
        Executor(ws).run()
    assert not ws.run_dir.exists() or not any(ws.run_dir.glob("*/manifest.json"))


def test_an_interpolated_system_can_be_fused(write_beir: BeirWriter, tmp_path: Path) -> None:
    ws = workspace(write_beir(), tmp_path, evaluate=EvaluateConfig(
        interpolate={"bm25+ce-synthetic": 0.5},
        fusion=[["bm25+ce-synthetic+interp", "dense"], ["all", "bm25"]],
        mix={"all": {"bm25+ce-synthetic+interp": 0.5, "bm25+bi-zero-shot": 0.5}}))
    Executor(ws).validate()


def test_rerank_deeper_than_the_first_stage_is_an_error(write_beir: BeirWriter, tmp_path: Path) -> None:
    ws = workspace(write_beir(), tmp_path, rerank=RerankConfig(depth=200))
    with pytest.raises(ConfigError, match=r"\[rerank\] depth = 200 is deeper than the first-stage run"):
        Executor(ws).validate()


def test_reranked_runs_carry_their_depth_to_the_interpolation() -> None:
    from inpars.pipeline.evaluate import reranked_depths

    rerank = {"extra": {"depth": 10, "systems": {"bm25+ce-synthetic": {}, "bm25+bi-zero-shot": {}}}}
    assert reranked_depths(rerank) == {"bm25+ce-synthetic": 10, "bm25+bi-zero-shot": 10}
    assert reranked_depths({"extra": {"bm25": {"index": "x"}}}) == {}  # the index stage reranks nothing


def test_worth_labels_add_systems_and_real_examples(write_beir: BeirWriter, tmp_path: Path) -> None:
    """``[train] labels`` / ``dense_labels``: one reranked system per trained label set; the
    real-label pairs are the judged train queries minus the dev set, each with its judgements."""
    train = [("q1", "d1", 1), ("q1", "d2", 1), ("q2", "d3", 0), ("q2", "d4", 2), ("q3", "d4", 1)]
    source = write_beir(queries=[{"_id": f"q{i}", "text": f"query {i}"} for i in (1, 2, 3)],
                        qrels={"test": [("q3", "d1", 1)], "train": train})
    ws = workspace(source, tmp_path, train=TrainConfig(labels=["synthetic", "real"], dense=True,
                                                       dense_labels=["both"]))
    assert ws.graph.systems(ws) == ("bm25", "dense", "bm25+ce-synthetic", "bm25+ce-real", "bm25+bi-both",
                                    "bm25+bi-zero-shot")  # no dense-synthetic: no synthetic encoder
    assert RerankStage().specs(ws)["bm25+bi-both"].model == str(tmp_path / "r" / "train" / "dense-both")
    ws = workspace(source, tmp_path, data=DataConfig(source=str(source), dev_queries=1))
    dev, dev_qrels = ws.dev_queries()
    assert len(dev) == 1 and {r.query_id for r in dev_qrels} == {dev[0].query_id}
    pairs, judged = ws.real_training_queries()
    expected = {f"{q}#{d}" for q, d, rel in train if rel > 0 and q != dev[0].query_id}
    assert {p.query_id for p in pairs} == expected
    assert all(p.text == f"query {p.query_id[1]}" for p in pairs)
    assert {(r.query_id, r.doc_id) for r in judged} >= {(p.query_id, p.doc_id) for p in pairs}


def test_a_collection_without_train_queries_gets_a_held_out_synthetic_dev_set(
    write_beir: BeirWriter, tmp_path: Path
) -> None:
    """Label-free model selection: kept synthetic queries, each judged relevant to its own
    document, are the dev set (at most a quarter of them) and are held out of training."""
    from inpars.io import write_records
    from inpars.manifest import StageContext, run_stage
    from inpars.records import SyntheticQuery

    source = write_beir(qrels={"test": [("q1", "d1", 1)]})
    ws = workspace(source, tmp_path, data=DataConfig(source=str(source), dev_queries=3))
    kept = [SyntheticQuery(f"d{i % 4 + 1}#q{i}", f"d{i % 4 + 1}", f"query {i}", "inpars", "m", 0, 0)
            for i in range(16)]

    def body(ctx: StageContext) -> None:
        write_records(ctx.out_dir / "kept.jsonl", kept)
        ctx.output("kept", ctx.out_dir / "kept.jsonl")

    run_stage("filter", ws.stage_dir("filter"), {}, {}, body, seed=1)
    assert not ws.has_judged_train() and ws.dev_set_kind().startswith("held-out synthetic queries")
    queries, qrels = ws.dev_queries()
    assert len(queries) == 3 and queries == ws.dev_queries()[0]  # seeded
    by_id = {q.query_id: q for q in kept}
    assert all(by_id[r.query_id].doc_id == r.doc_id and r.relevance == 1 for r in qrels)
    assert ws.held_out_ids() == {q.query_id for q in queries}
    settings = NegativesStage().settings(ws)
    assert settings["held_out_dev"] == {"dev_queries": 3, "seed": 42}
    real = workspace(source, tmp_path, train=TrainConfig(labels=["real"]))
    with pytest.raises(ConfigError, match="no judged split 'train'"):
        NegativesStage().check(real, ())


def test_a_corpus_column_mapping_is_fingerprinted_only_when_set(write_beir: BeirWriter,
                                                                tmp_path: Path) -> None:
    """Mapping other column names changes the documents read, so the stages that read the
    corpus re-run; without a mapping their settings are what they were before the key existed."""
    from inpars.pipeline.generate import GenerateStage
    from inpars.pipeline.stages import IndexStage

    source = write_beir()
    plain = workspace(source, tmp_path)
    mapped = workspace(source, tmp_path, data=DataConfig(source=str(source), columns={"text": "body"}))
    for stage in (IndexStage(), GenerateStage()):
        assert "columns" not in stage.settings(plain)
        assert stage.settings(mapped)["columns"] == {"text": "body"}


def test_a_cross_encoder_teacher_is_an_input_of_negatives_and_checked(write_beir: BeirWriter,
                                                                      tmp_path: Path) -> None:
    """teacher_model and teacher_logits are fingerprinted (with how the teacher scores) only
    with a cross-encoder teacher, so runs finished before the keys existed stay valid; a local
    teacher's weights are a fingerprinted input; a missing one, or one without a trained head,
    is named before anything runs."""
    import json

    from inpars.config import NegativesConfig
    from inpars.manifest import config_dict
    from inpars.pipeline.negatives import TEACHER_KEYS, negatives_settings

    source = write_beir()
    hybrid = workspace(source, tmp_path, negatives=NegativesConfig(teacher="hybrid"))
    assert negatives_settings(hybrid) == {k: v for k, v in config_dict(hybrid.config.negatives).items()
                                          if k not in TEACHER_KEYS}

    def teacher(folder: Path, architecture: str) -> Workspace:
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"architectures": [architecture]}), encoding="utf-8")
        return workspace(source, tmp_path, negatives=NegativesConfig(
            teacher="cross-encoder", teacher_model=str(folder), teacher_logits=True))

    ce = teacher(tmp_path / "ce", "BertForSequenceClassification")
    settings = negatives_settings(ce)
    assert settings["teacher_model"] == str(tmp_path / "ce") and settings["teacher_logits"] is True
    assert settings["teacher_scoring"]["max_length"] == ce.config.rerank.max_length
    assert NegativesStage().inputs(ce) == {f"model:teacher:{tmp_path / 'ce'}": tmp_path / "ce"}
    NegativesStage().check(ce, ())
    encoder = teacher(tmp_path / "encoder", "BertModel")
    with pytest.raises(ConfigError, match=r"teacher_model = .*no trained relevance head"):
        NegativesStage().check(encoder, ())
    missing = workspace(source, tmp_path, negatives=NegativesConfig(teacher="cross-encoder",
                                                                    teacher_model=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match=r"\[negatives\] teacher_model = .*no such file or folder"):
        NegativesStage().check(missing, ())


def test_the_encoder_can_train_alone(write_beir: BeirWriter, tmp_path: Path) -> None:
    """GPL's set-up: [train] labels = [] with dense = true trains no cross-encoder."""
    from inpars.pipeline.stages import trained_models

    with pytest.raises(ValueError, match=r"labels = \[\].*at least one"):
        TrainConfig(labels=[])
    ws = workspace(write_beir(), tmp_path, train=TrainConfig(labels=[], dense=True))
    assert trained_models(ws) == {"bm25+bi-synthetic": "dense"}
    assert "bm25+ce-synthetic" not in ws.graph.systems(ws)
    assert "bm25+bi-synthetic" in ws.graph.systems(ws)
    Executor(ws).validate()
