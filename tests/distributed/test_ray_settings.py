"""The executor keys (checks, fingerprints), the error when Ray is missing, and the actor
pool's retry logic on a fake Ray (fast: no cluster starts)."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inpars.config import FilterConfig, GenerateConfig, RerankConfig, parse_config
from inpars.data import open_collection
from inpars.distributed.cluster import check_ray_installed
from inpars.distributed.pool import ActorPool
from inpars.distributed.settings import RaySettings, ray_settings
from inpars.errors import ConfigError, DataError, DependencyError, StageError
from inpars.filtering import critic
from inpars.generation import generate_stage
from inpars.generation.selection import fingerprint_settings
from inpars.manifest import run_stage
from inpars.reranking import stage_settings
from tests.distributed.fakes import EchoFactory


@pytest.mark.parametrize(("section", "values", "message"), [
    ("generate", {"executor": "dask"}, "expected one of 'local', 'ray'"),
    ("generate", {"ray_actors": 4}, "ray_actors set, but executor = 'local' does not use Ray. Fix: set"),
    ("generate", {"executor": "ray", "ray_address": "head-node"}, "is not an address. Fix: use ''"),
    ("generate", {"executor": "ray", "ray_actors": 0}, "ray_actors = 0: must be at least 1. Fix"),
    ("rerank", {"executor": "ray", "ray_actor_cpus": 0}, "ray_actor_cpus = 0.0: must be more than 0"),
    ("rerank", {"executor": "ray", "ray_actor_gpus": -1}, "ray_actor_gpus = -1.0: must be 0"),
    ("rerank", {"executor": "ray", "ray_workers": 2}, "key 'ray_workers' (did you mean 'ray_actors'?)"),
    ("filter", {"executor": "spark"}, "expected one of 'local', 'ray'"),
    ("filter", {"ray_actor_gpus": 1}, "ray_actor_gpus set, but executor = 'local' does not use Ray. Fix"),
    ("filter", {"executor": "ray", "ray_address": "10.0.0.5"}, "is not an address. Fix: use ''"),
    ("filter", {"executor": "ray", "ray_actors": -1}, "ray_actors = -1: must be at least 1. Fix"),
])
def test_bad_executor_keys_are_errors_with_the_fix(section: str, values: dict[str, Any],
                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        parse_config({section: values}, "x.toml")
    assert f"x.toml [{section}]" in str(caught.value)


def test_good_executor_keys_and_what_they_mean() -> None:
    config = parse_config({
        "generate": {"executor": "ray", "ray_address": "auto", "ray_actors": 4, "ray_actor_cpus": 2},
        "rerank": {"executor": "ray", "ray_address": "ray://10.0.0.5:10001", "ray_actor_gpus": 0.5},
        "filter": {"executor": "ray", "ray_actors": 3, "ray_actor_cpus": 0.5},
    })
    assert ray_settings(config.filter) == RaySettings("", 3, 0.5, 0.0)
    assert ray_settings(FilterConfig()) is None
    assert ray_settings(config.generate) == RaySettings("auto", 4, 2.0, 0.0)
    assert ray_settings(config.rerank) == RaySettings("ray://10.0.0.5:10001", 2, 1.0, 0.5)
    assert ray_settings(GenerateConfig()) is None
    assert RaySettings(actor_cpus=2.5).threads() == 2 and RaySettings(actor_cpus=0.5).threads() == 1
    parse_config({"generate": {"executor": "ray", "ray_address": "10.0.0.5:6379"}})


def test_where_a_stage_runs_is_not_in_its_fingerprint() -> None:
    ray = {"executor": "ray", "ray_address": "auto", "ray_actors": 8, "ray_actor_cpus": 4.0}
    assert fingerprint_settings(GenerateConfig(**ray)) == fingerprint_settings(GenerateConfig())
    assert "executor" not in fingerprint_settings(GenerateConfig())
    assert stage_settings(RerankConfig(**ray)) == stage_settings(RerankConfig())
    int8 = RerankConfig(quantize="int8")
    assert stage_settings(RerankConfig(quantize="int8", **ray)) == stage_settings(int8)


@pytest.mark.parametrize("steps", [["rules", "reranker"], ["rules", "reranker", "critic"]])
def test_where_the_reranker_filter_scores_is_not_in_the_filter_fingerprint(steps: list[Any]) -> None:
    """Nor do the new keys change the settings (so the fingerprints) of runs made before them."""
    from inpars.manifest import config_dict

    ray = {"executor": "ray", "ray_address": "auto", "ray_actors": 8, "ray_actor_gpus": 1.0}
    here = critic.stage_settings(FilterConfig(steps=steps), 50)
    assert critic.stage_settings(FilterConfig(steps=steps, **ray), 50) == here
    before = {k: v for k, v in config_dict(FilterConfig(steps=steps)).items()
              if k not in ("executor", "ray_address", "ray_actors", "ray_actor_cpus", "ray_actor_gpus")}
    if "critic" in steps:
        assert here == {"filter": before, "critic_dev_queries": 50}
    else:
        assert here == {k: v for k, v in before.items() if not k.startswith("critic_")}


def test_executor_ray_without_ray_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, write_beir: Any, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    with pytest.raises(DependencyError, match=r"\[generate\] executor = .ray. needs Ray.*Fix: install"):
        check_ray_installed("[generate]")
    cfg = GenerateConfig(template="inpars", model="echo", num_docs=2, threads=1, executor="ray")
    collection = open_collection(write_beir())
    with pytest.raises(DependencyError, match=r"pip install -e '\.\[ray\]'"):
        run_stage("generate", tmp_path / "out", cfg, {}, lambda ctx: generate_stage(
            ctx, cfg, collection, train_split="train", test_split="test", load=EchoFactory()))
    assert not list(tmp_path.rglob("part-*")), "nothing was generated"


def test_the_reranker_filter_on_ray_without_ray_names_the_extra_and_scores_nothing(
    monkeypatch: pytest.MonkeyPatch, write_beir: Any, tmp_path: Path
) -> None:
    from inpars.filtering import filter_stage
    from inpars.io import write_records
    from inpars.records import SyntheticQuery
    from tests.distributed.fakes import WordOverlapScorer

    monkeypatch.setitem(sys.modules, "ray", None)
    collection = open_collection(write_beir())
    doc_id = next(iter(collection.docs())).doc_id
    queries = tmp_path / "generated.jsonl"
    write_records(queries, [SyntheticQuery(f"s{i}", doc_id, f"query {i}", "inpars", "echo", i, 0)
                            for i in range(4)])
    cfg = FilterConfig(steps=["reranker"], executor="ray")
    with pytest.raises(DependencyError, match=r"\[filter\] executor = .ray. needs Ray.*Fix: install"):
        run_stage("filter", tmp_path / "out", cfg, {}, lambda ctx: filter_stage(
            ctx, cfg, queries, collection, eval_queries=[], roundtrip=None, scorer=WordOverlapScorer()))
    assert not any(p.stat().st_size for p in tmp_path.rglob("scores_reranker.jsonl")), "nothing scored"


def test_the_stage_checks_refuse_executor_ray_without_ray(
    monkeypatch: pytest.MonkeyPatch, write_beir: Any, tmp_path: Path
) -> None:
    """``inpars run`` stops before any stage runs (the checks), naming the key and the extra."""
    from inpars.config import Config, DataConfig
    from inpars.pipeline import Workspace
    from inpars.pipeline.generate import GenerateStage
    from inpars.pipeline.stages import FilterStage, RerankStage

    monkeypatch.setitem(sys.modules, "ray", None)
    config = Config(data=DataConfig(source=str(write_beir())), source_path="exp.toml",
                    generate=GenerateConfig(executor="ray"),
                    filter=FilterConfig(executor="ray", ray_actors=4),
                    rerank=RerankConfig(executor="ray", ray_actor_gpus=1, depth=10))
    ws = Workspace(dataclasses.replace(config, experiment=dataclasses.replace(
        config.experiment, run_dir=str(tmp_path / "r"))))
    for stage, key in ((GenerateStage(), "generate"), (FilterStage(), "filter"), (RerankStage(), "rerank")):
        with pytest.raises(DependencyError, match=rf"exp\.toml \[{key}\] executor = 'ray' needs Ray"):
            stage.check(ws, [])


# --------------------------------------------------------------------------- the pool, on a fake Ray
class Ref:
    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call


class Method:
    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def remote(self, *args: Any) -> Ref:
        return Ref(lambda: self.fn(*args))


class FakeRay:
    """``wait`` / ``get`` / ``kill`` over refs that run when fetched."""

    def __init__(self) -> None:
        self.killed = 0

    def wait(self, refs: list[Ref], num_returns: int = 1) -> tuple[list[Ref], list[Ref]]:
        return refs[:1], refs[1:]

    def get(self, ref: Ref) -> Any:
        return ref.call()

    def kill(self, actor: Any, no_restart: bool = True) -> None:
        self.killed += 1


def make_actor(plan: dict[str, list[str]], started: list[int]) -> Callable[[], Any]:
    """Actors whose tasks follow ``plan``: per task, what each attempt does ('ok', 'die', 'fail')."""
    exceptions = pytest.importorskip("ray.exceptions")

    def run(task: str) -> str:
        what = plan[task].pop(0)
        if what == "die":
            raise exceptions.ActorDiedError()
        if what == "fail":
            raise exceptions.RayTaskError("run", "traceback", DataError(f"{task}: bad. Fix: mend it"))
        return f"{task} done"

    def make() -> Any:
        started.append(1)
        actor = type("Actor", (), {})()
        actor.setup = Method(lambda: len(started))
        actor.run = Method(run)
        return actor

    return make


def run_pool(plan: dict[str, list[str]], size: int = 2) -> tuple[list[str], ActorPool[str], FakeRay, int]:
    started: list[int] = []
    fake = FakeRay()
    pool: ActorPool[str] = ActorPool(fake, make_actor(plan, started), size, where="[test]")
    pool.start()
    done = [value for _, value in pool.run(iter(plan), lambda actor, task: actor.run.remote(task), str)]
    return done, pool, fake, len(started)


def test_a_task_whose_actor_dies_runs_again_on_a_fresh_actor() -> None:
    done, pool, fake, started = run_pool({"a": ["ok"], "b": ["die", "die", "ok"], "c": ["ok"]})
    assert sorted(done) == ["a done", "b done", "c done"]
    assert started == 4 and fake.killed == 2
    assert [r["task"] for r in pool.restarts] == ["b", "b"] and pool.restarts[-1]["attempt"] == 3
    assert len(pool.infos) == 4


def test_a_task_that_kills_every_actor_stops_the_stage_and_an_error_is_not_retried() -> None:
    with pytest.raises(StageError, match=r"\[test\] b: its Ray actor died 3 times .* Fix: look at"):
        run_pool({"a": ["ok"], "b": ["die", "die", "die"]})
    with pytest.raises(DataError, match=r"c: bad\. Fix: mend it"):  # the actor's own error, as itself
        run_pool({"c": ["fail", "ok"]})
