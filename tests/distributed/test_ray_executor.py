"""The Ray executor on a real local cluster (a head and two actor processes on this
machine): the smoke generation and a scoring stage give what a local run gives, an actor
killed mid-shard loses and duplicates nothing, and a failed run resumes.

Slow: a Ray cluster takes seconds to start, and the first test runs real models."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inpars.config import FilterConfig, GenerateConfig, RerankConfig, load_config
from inpars.data import open_collection
from inpars.errors import StageError
from inpars.filtering.stage import filter_stage
from inpars.generation import generate_stage
from inpars.io import write_records
from inpars.manifest import run_stage
from inpars.records import SyntheticQuery
from inpars.reranking import SystemSpec, rerank_stage
from tests.distributed.fakes import EchoFactory, WordOverlapScorer
from tests.pipeline.test_smoke_run import REPO, cut_scifact

pytestmark = pytest.mark.slow

RAY = {"executor": "ray", "ray_actors": 2, "ray_actor_cpus": 1.0}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local cluster: the head, and room for two one-CPU actors (two worker processes)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def generate(out: Path, cfg: GenerateConfig, root: Path, load: Any = None, seed: int = 3) -> dict[str, Any]:
    collection = open_collection(root)
    return run_stage("generate", out, cfg, {}, lambda ctx: generate_stage(
        ctx, cfg, collection, train_split="train", test_split="test", load=load), seed=seed).manifest


def shard_files(out: Path) -> dict[str, Any]:
    """The generate stage's shard files: records as bytes, the rest without its timings."""
    files: dict[str, Any] = {}
    for path in sorted((out / "shards").iterdir()):
        if path.name.endswith(".progress.jsonl"):
            files[path.name] = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                                for line in path.read_text().splitlines()]
        elif path.name.endswith(".done.json"):
            files[path.name] = {k: v for k, v in json.loads(path.read_text()).items() if k != "seconds"}
        else:
            files[path.name] = path.read_bytes()
    return files


def test_smoke_generation_and_scoring_on_ray_equal_the_local_run(
    ray_cluster: Any, tmp_path: Path, shared_data: Path
) -> None:
    pytest.importorskip("llama_cpp")
    root = cut_scifact(shared_data, tmp_path / "collection", test_queries=8, train_queries=10, other_docs=20)
    smoke = load_config(REPO / "configs" / "smoke.toml")
    local = dataclasses.replace(smoke.generate, num_docs=8, shard_docs=2, batch_docs=2, threads=1)
    here = generate(tmp_path / "local", local, root)
    there = generate(tmp_path / "ray", dataclasses.replace(local, **RAY), root)

    assert shard_files(tmp_path / "ray") == shard_files(tmp_path / "local")
    assert (tmp_path / "ray" / "prompt_prefix.txt").read_bytes() == (
        tmp_path / "local" / "prompt_prefix.txt").read_bytes()
    assert there["counts"] == here["counts"] and there["counts"]["docs"] == 8
    assert there["extra"]["executor"]["kind"] == "ray" and here["extra"]["executor"] == {"kind": "local"}
    assert there["extra"]["executor"]["shards_run"] == 4
    assert len(there["extra"]["executor"]["shards_per_actor"]) == 2, "both actor processes generated"
    assert not (tmp_path / "ray" / ".ray-work").exists()

    collection = open_collection(root)
    queries = collection.split_queries("test")
    first = tmp_path / "first.trec"  # every test query against the same 12 documents
    doc_ids = [d.doc_id for d in collection.docs()][:12]
    first.write_text("".join(f"{q.query_id} Q0 {d} {r + 1} {12 - r} bm25\n" for q in queries
                             for r, d in enumerate(doc_ids)))
    systems = {"bm25+bi-zero-shot": SystemSpec("bi-encoder", "all-MiniLM-L6-v2")}
    runs = {}
    for name, cfg in (("local", RerankConfig(depth=10, max_length=128, threads=1)),
                      ("ray", RerankConfig(depth=10, max_length=128, threads=1, **RAY))):
        manifest = run_stage("rerank", tmp_path / f"rerank-{name}", cfg, {"run": first}, lambda ctx, cfg=cfg:
                             rerank_stage(ctx, cfg, first, queries, collection, systems)).manifest
        assert manifest["extra"]["executor"]["kind"] == name
        runs[name] = (tmp_path / f"rerank-{name}" / "runs" / "bm25+bi-zero-shot.trec").read_bytes()
    assert runs["ray"] == runs["local"] and len(runs["ray"].splitlines()) == 12 * len(queries)


def tiny_docs(count: int) -> list[dict[str, str]]:
    return [{"_id": f"doc{i:02d}", "title": f"Topic {i}",
             "text": f"Document number {i} tells how protein {i} changes the cells of organ {i % 5}."}
            for i in range(count)]


def test_an_actor_killed_mid_shard_loses_and_duplicates_nothing(
    ray_cluster: Any, write_beir: Any, tmp_path: Path
) -> None:
    root = write_beir(docs=tiny_docs(12), queries=[], qrels={})
    cfg = GenerateConfig(template="inpars", model="echo", num_docs=12, queries_per_doc=3, shard_docs=4,
                         batch_docs=1, threads=1)
    generate(tmp_path / "local", cfg, root, EchoFactory())
    calls = tmp_path / "calls.log"
    killer = EchoFactory(calls_log=str(calls), kill_marker=str(tmp_path / "killed"), kill_at_call=2)
    manifest = generate(tmp_path / "ray", dataclasses.replace(cfg, **RAY), root, killer)

    assert (tmp_path / "killed").exists(), "an actor killed itself on its second batch"
    restarts = manifest["extra"]["executor"]["actor_restarts"]
    assert len(restarts) == 1 and restarts[0]["task"].startswith("shard ")
    assert shard_files(tmp_path / "ray") == shard_files(tmp_path / "local")
    assert manifest["counts"]["docs"] == 12 and manifest["counts"]["samples"] == 36
    # every document generated once, but the one batch in flight when the actor died (its
    # first batch was finished and kept in the scratch shard, so the retry resumed after it)
    asked = Counter(calls.read_text().splitlines())
    assert len(asked) == 12 and sorted(asked.values()) == [1] * 11 + [2]


def test_a_failed_ray_run_resumes_from_its_finished_shards(
    ray_cluster: Any, write_beir: Any, tmp_path: Path
) -> None:
    root = write_beir(docs=tiny_docs(12), queries=[], qrels={})
    cfg = GenerateConfig(template="inpars", model="echo", num_docs=12, queries_per_doc=2, shard_docs=3,
                         batch_docs=3, threads=1)
    generate(tmp_path / "local", cfg, root, EchoFactory())
    on_ray = dataclasses.replace(cfg, **RAY)
    # shard 2 (doc06-doc08) kills its actor every time: the stage gives up after 3 attempts
    with pytest.raises(StageError, match="died 3 times"):
        generate(tmp_path / "ray", on_ray, root, EchoFactory(die_on="Document number 7 "))
    kept = sorted(p.name for p in tmp_path.glob(".ray.next/shards/*.done.json"))
    assert "part-00002.done.json" not in kept
    assert {"part-00000.done.json", "part-00001.done.json"} <= set(kept)

    calls = tmp_path / "calls.log"
    manifest = generate(tmp_path / "ray", on_ray, root, EchoFactory(calls_log=str(calls)))
    assert shard_files(tmp_path / "ray") == shard_files(tmp_path / "local")
    assert manifest["counts"]["docs"] == 12
    assert len(calls.read_text().splitlines()) == 12 - 3 * len(kept), "finished shards are not redone"


def test_the_neighbours_template_on_ray_shows_what_the_driver_found(
    ray_cluster: Any, write_beir: Any, tmp_path: Path
) -> None:
    """The driver searches the neighbours (its BM25 index stays on the driver) and sends them
    with the shard; the prompts, so the queries, are those of the local run."""
    docs = tiny_docs(8)
    root = write_beir(docs=docs, queries=[], qrels={})
    collection = open_collection(root)
    every = {d.doc_id: d for d in collection.docs()}

    def neighbours(doc: Any) -> list[Any]:
        number = int(doc.doc_id[3:])
        return [every[f"doc{(number + k) % 8:02d}"] for k in (1, 2, 3)]

    cfg = GenerateConfig(template="neighbours", model="echo", num_docs=8, queries_per_doc=2, shard_docs=2,
                         batch_docs=2, threads=1)
    for name, section in (("local", cfg), ("ray", dataclasses.replace(cfg, **RAY))):
        load = EchoFactory(calls_log=str(tmp_path / f"{name}.log"))
        run_stage("generate", tmp_path / name, section, {}, lambda ctx, c=section, f=load: generate_stage(
            ctx, c, collection, train_split="train", test_split="test", neighbours=neighbours, load=f))
    assert shard_files(tmp_path / "ray") == shard_files(tmp_path / "local")
    assert sorted((tmp_path / "ray.log").read_text().splitlines()) == sorted(
        (tmp_path / "local.log").read_text().splitlines())


def test_a_scoring_actor_killed_mid_run_gives_the_local_run(
    ray_cluster: Any, write_beir: Any, tmp_path: Path
) -> None:
    collection = open_collection(write_beir(docs=tiny_docs(12), queries=[], qrels={}))
    # 200 queries x 12 documents: 5 chunks of 512 pairs, 2 tasks (4 chunks, then 1), one per actor
    queries = {f"q{i}": f"how does protein {i} change cells" for i in range(200)}
    first = tmp_path / "first.trec"
    first.write_text("".join(f"q{i} Q0 doc{d:02d} {d + 1} {20 - d} bm25\n"
                             for i in range(200) for d in range(12)))
    runs = {}
    for name, scorer, cfg in (
        ("local", WordOverlapScorer(), RerankConfig(depth=12)),
        ("ray", WordOverlapScorer(kill_marker=str(tmp_path / "killed")), RerankConfig(depth=12, **RAY)),
    ):
        manifest = run_stage("rerank", tmp_path / name, cfg, {"run": first}, lambda ctx, c=cfg, s=scorer:
                             rerank_stage(ctx, c, first, queries, collection, {"overlap": s})).manifest
        runs[name] = (tmp_path / name / "runs" / "overlap.trec").read_bytes()
    assert (tmp_path / "killed").exists()
    assert len(manifest["extra"]["executor"]["actor_restarts"]) == 1
    assert runs["ray"] == runs["local"]


def filter_outputs(out: Path) -> dict[str, bytes]:
    names = ("kept.jsonl", "dropped.jsonl", "scores_reranker.jsonl")
    return {name: (out / name).read_bytes() for name in names}


def run_filter(out: Path, cfg: FilterConfig, queries: Path, root: Path, scorer: Any = None) -> dict[str, Any]:
    collection = open_collection(root)
    return run_stage("filter", out, cfg, {}, lambda ctx: filter_stage(
        ctx, cfg, queries, collection, eval_queries=[], roundtrip=None, scorer=scorer)).manifest


def synthetic_queries(path: Path, count: int, docs: int) -> Path:
    words = ["protein", "cells", "organ", "changes", "topic", "number", "what", "how"]
    write_records(path, [SyntheticQuery(f"s{i}", f"doc{i % docs:02d}", f"{words[i % 8]} {words[i * 7 % 8]} "
                                        f"{i % 13} {words[i * 3 % 8]}", "inpars", "echo", i // docs, 0)
                         for i in range(count)])
    return path


def test_the_reranker_filter_on_ray_keeps_and_scores_what_the_local_run_does(
    ray_cluster: Any, write_beir: Any, tmp_path: Path
) -> None:
    """The packaged bi-encoder, loaded on each actor from the step's settings."""
    root = write_beir(docs=tiny_docs(12), queries=[], qrels={})
    queries = synthetic_queries(tmp_path / "generated.jsonl", 60, 12)
    local = FilterConfig(steps=["rules", "reranker"], reranker_keep=0.5, reranker_max_length=64, threads=1)
    here = run_filter(tmp_path / "local", local, queries, root)
    there = run_filter(tmp_path / "ray", dataclasses.replace(local, **RAY), queries, root)

    assert filter_outputs(tmp_path / "ray") == filter_outputs(tmp_path / "local")
    assert there["counts"] == here["counts"] and here["counts"]["reranker_kept"] == 30
    assert here["extra"]["reranker"]["executor"] == {"kind": "local"}
    executor = there["extra"]["reranker"]["executor"]
    assert executor["kind"] == "ray" and executor["threads"] == 1 and executor["actor_restarts"] == []
    assert there["extra"]["reranker"]["model"] == "all-MiniLM-L6-v2"


def test_a_reranker_filter_actor_killed_mid_run_gives_the_local_run(
    ray_cluster: Any, write_beir: Any, tmp_path: Path
) -> None:
    # 4500 queries: 5 chunks of 1024 pairs, 2 tasks (4 chunks, then 1), one per actor
    root = write_beir(docs=tiny_docs(12), queries=[], qrels={})
    queries = synthetic_queries(tmp_path / "generated.jsonl", 4500, 12)
    cfg = FilterConfig(steps=["reranker"], reranker_keep=1000)
    run_filter(tmp_path / "local", cfg, queries, root, WordOverlapScorer())
    manifest = run_filter(tmp_path / "ray", dataclasses.replace(cfg, **RAY), queries, root,
                          WordOverlapScorer(kill_marker=str(tmp_path / "killed")))

    assert (tmp_path / "killed").exists()
    assert len(manifest["extra"]["reranker"]["executor"]["actor_restarts"]) == 1
    assert filter_outputs(tmp_path / "ray") == filter_outputs(tmp_path / "local")
    assert manifest["counts"]["kept"] == 1000
