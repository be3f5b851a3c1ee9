"""Every model a config names is checked before any stage runs: a packaged alias, an existing
file or folder, or a hub id; a path that names nothing is a ConfigError naming the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from inpars.config import (
    Config,
    DataConfig,
    FilterConfig,
    GenerateConfig,
    IndexConfig,
    RerankConfig,
    TrainConfig,
)
from inpars.errors import ConfigError, ModelError
from inpars.models import PACKAGED
from inpars.pipeline import Executor, Workspace
from inpars.pipeline.model_checks import looks_local
from tests.conftest import BeirWriter


def workspace(source: Path, tmp: Path, **sections: Any) -> Workspace:
    config = Config(data=DataConfig(source=str(source)), source_path="exp.toml")
    config = dataclasses.replace(config, **sections)
    experiment = dataclasses.replace(config.experiment, run_dir=str(tmp / "r"))
    index = dataclasses.replace(config.index, output_dir=str(tmp / "index"))
    return Workspace(dataclasses.replace(config, experiment=experiment, index=sections.get("index", index)))


@pytest.fixture(autouse=True)
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks never ask the hub (nor download)."""
    def refuse(*args: object, **kwargs: object) -> bool:
        raise AssertionError("the model hub was asked")

    monkeypatch.setattr("inpars.models.hub_reachable", refuse)
    monkeypatch.setattr("inpars.models.cached_snapshot", refuse)


MISSING = [
    ({"train": TrainConfig(model="./models/my-ce")}, r"\[train\] model = './models/my-ce': no such file"),
    ({"train": TrainConfig(dense=True, dense_model="runs/old/train/dense")},
     r"\[train\] dense_model = 'runs/old/train/dense': no such file"),
    ({"generate": GenerateConfig(model="~/models/gemma-missing.gguf")},
     r"\[generate\] model = '~/models/gemma-missing.gguf': no such file"),
    ({"generate": GenerateConfig(model="google/gemma-3-270m")},
     r"\[generate\] model = 'google/gemma-3-270m': the llama-cpp backend needs a local .gguf file"),
    ({"generate": GenerateConfig(model="all-MiniLM-L6-v2")},
     r"\[generate\] model = 'all-MiniLM-L6-v2': the llama-cpp backend needs a .gguf file \(got"),
    ({"generate": GenerateConfig(backend="hf-causal", model="smollm2-135m")},
     r"\[generate\] model = 'smollm2-135m': a GGUF file, which the transformers"),
    ({"filter": FilterConfig(steps=["rules", "reranker"], reranker_model="/nowhere/reranker")},
     r"\[filter\] reranker_model = '/nowhere/reranker'"),
    ({"index": IndexConfig(dense_model="./enc")}, r"\[index\] dense_model = './enc'"),
    ({"rerank": RerankConfig(extra_systems=["mine=cross-encoder:/m/ce"])},
     r"\[rerank\] extra_systems entry 'mine=cross-encoder:/m/ce': model = '/m/ce'"),
]


@pytest.mark.parametrize(("sections", "message"), MISSING)
def test_a_model_path_that_names_nothing_fails_before_anything_runs(
    write_beir: BeirWriter, tmp_path: Path, sections: dict[str, Any], message: str
) -> None:
    ws = workspace(write_beir(), tmp_path, **sections)
    with pytest.raises(ConfigError, match=r"^exp\.toml: " + message + r".*Fix: "):
        Executor(ws).run()
    assert not (tmp_path / "index").exists()  # nothing indexed
    assert not ws.run_dir.exists() or not [p for p in ws.run_dir.iterdir() if p.name != ".lock"]


def test_aliases_local_models_and_hub_ids_pass(write_beir: BeirWriter, tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    folder = tmp_path / "ce"
    folder.mkdir()
    ws = workspace(write_beir(), tmp_path, generate=GenerateConfig(model=str(gguf)),
                   train=TrainConfig(model=str(folder), dense=True, dense_model="BAAI/bge-small-en-v1.5"),
                   rerank=RerankConfig(extra_systems=["hub=cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"]))
    Executor(ws).validate()
    openai = GenerateConfig(backend="openai", api_base="http://127.0.0.1:9/v1", model="any-served-name",
                            tokenizer="./missing-tokenizer")
    with pytest.raises(ConfigError, match=r"\[generate\] tokenizer = './missing-tokenizer'"):
        Executor(workspace(write_beir(name="t2"), tmp_path, generate=openai)).validate()


def test_an_alias_whose_package_is_missing_names_the_key_and_the_install(
    write_beir: BeirWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> Path:
        raise ModelError("the packaged encoder 'x' is not installed. Fix: pip install x")

    monkeypatch.setitem(PACKAGED, "x-encoder", missing)
    ws = workspace(write_beir(), tmp_path, train=TrainConfig(model="x-encoder"))
    with pytest.raises(ConfigError, match=r"model = 'x-encoder': the packaged .*Fix: pip install x"):
        Executor(ws).validate()


def test_what_reads_as_a_path() -> None:
    assert looks_local("./ce") and looks_local("/abs/ce") and looks_local("~/ce") and looks_local("m.gguf")
    assert looks_local("runs/exp/train/cross-encoder") and looks_local("has space")
    assert not looks_local("BAAI/bge-small-en-v1.5") and not looks_local("bert-base-uncased")
