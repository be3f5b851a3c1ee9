"""The refine stage's declaration: off by default, its system and checks, its config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from inpars.config import Config, DataConfig, RefineConfig, TrainConfig, parse_config
from inpars.errors import ConfigError
from inpars.pipeline import Executor, Workspace
from inpars.pipeline.refine import RefineStage, dev_weight, refined_system
from inpars.pipeline.stages import RerankStage
from inpars.reranking import SystemSpec
from tests.conftest import BeirWriter


def workspace(source: Path, tmp: Path, **sections: Any) -> Workspace:
    config = dataclasses.replace(Config(data=DataConfig(source=str(source))), **sections)
    experiment = dataclasses.replace(config.experiment, run_dir=str(tmp / "r"))
    return Workspace(dataclasses.replace(config, experiment=experiment))


def test_off_by_default_and_before_rerank_when_on(write_beir: BeirWriter, tmp_path: Path) -> None:
    source = write_beir()
    off = workspace(source, tmp_path)
    assert not off.graph["refine"].enabled(off)
    assert "bm25+ce-refined" not in off.graph.systems(off)
    names = off.graph.names
    assert names.index("train") < names.index("refine") < names.index("rerank")

    on = workspace(source, tmp_path, refine=RefineConfig(rounds=2))
    assert on.graph["refine"].enabled(on)
    assert refined_system(on) == "bm25+ce-refined"
    assert on.graph.systems(on) == ("bm25", "dense", "bm25+ce-synthetic", "bm25+ce-refined",
                                    "bm25+bi-zero-shot")
    assert RerankStage().specs(on)["bm25+ce-refined"] == SystemSpec(
        "cross-encoder", str(tmp_path / "r" / "refine" / "cross-encoder"))


def test_the_dense_encoder_can_be_refined(write_beir: BeirWriter, tmp_path: Path) -> None:
    ws = workspace(write_beir(), tmp_path, refine=RefineConfig(rounds=1, model="dense"),
                   train=TrainConfig(dense=True))
    assert RerankStage().specs(ws)["bm25+bi-refined"] == SystemSpec(
        "bi-encoder", str(tmp_path / "r" / "refine" / "dense"))
    assert dev_weight(ws) is None
    with_weight = dataclasses.replace(ws.config, evaluate=dataclasses.replace(
        ws.config.evaluate, interpolate={"bm25+bi-synthetic": 0.3}))
    assert dev_weight(Workspace(with_weight)) == 0.3


@pytest.mark.parametrize(("sections", "message"), [
    ({"refine": RefineConfig(rounds=1, template="promptagator")},
     "has no \\{neighbours\\}.*template = 'neighbours'"),
    ({"refine": RefineConfig(rounds=1, model="dense")}, "refines the dense .* trains none.*dense_labels"),
    ({"refine": RefineConfig(rounds=1), "train": TrainConfig(labels=["real"])},
     "trains none. Fix: add 'synthetic' to \\[train\\] labels"),
])
def test_a_refinement_it_cannot_do_is_refused_before_anything_runs(
    write_beir: BeirWriter, tmp_path: Path, sections: dict[str, object], message: str
) -> None:
    ws = workspace(write_beir(), tmp_path, **sections)
    with pytest.raises(ConfigError, match=message):
        Executor(ws).run()
    assert not (tmp_path / "r" / "index").exists()


def test_refinement_switched_off_does_not_check_what_it_would_refine(
    write_beir: BeirWriter, tmp_path: Path
) -> None:
    ws = workspace(write_beir(), tmp_path, train=TrainConfig(labels=["real"]))  # [refine] rounds = 0
    RefineStage().check(ws, ())  # a cross-encoder trained on real labels only is fine then


@pytest.mark.parametrize(("table", "message"), [
    ({"rounds": 1, "top_k": 20}, "top_k = 20 must be below candidates = 20"),
    ({"rounds": -1}, "rounds = -1: must be 0 or more"),
    ({"rounds": 1, "round": 2}, "round"),
    ({"model": "colbert"}, "colbert"),
])
def test_the_section_is_validated(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"refine": table}, "x.toml")
