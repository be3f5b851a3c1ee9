"""The generate stage end to end (SmolLM2 GGUF, slow; a tiny random-weight GPT-2, fast), its
shards, and its configuration errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inpars.config import GenerateConfig, parse_config
from inpars.data import open_collection
from inpars.errors import ConfigError, ModelError, StageError
from inpars.generation import generate_stage, read_rejects, read_synthetic_queries
from inpars.generation.shards import BatchDone, ShardFiles, check_run_file
from inpars.io import write_records
from inpars.manifest import run_stage
from inpars.records import Dropped, SyntheticQuery


def stage(out: Path, cfg: GenerateConfig, root: Path, seed: int = 3) -> dict[str, Any]:
    collection = open_collection(root)
    result = run_stage(
        "generate",
        out,
        cfg,
        {},
        lambda ctx: generate_stage(ctx, cfg, collection, train_split="train", test_split="test"),
        seed=seed,
    )
    return {"manifest": result.manifest, "skipped": result.skipped}


@pytest.mark.slow
def test_stage_writes_shards_counts_and_example_ids(
    write_beir: Any, tmp_path: Path, smollm2_path: Path
) -> None:
    pytest.importorskip("llama_cpp")
    root = write_beir()  # 4 docs; test queries q1, q2; train query q3
    cfg = GenerateConfig(
        template="promptagator",
        model=str(smollm2_path),
        num_docs=3,
        queries_per_doc=2,
        num_examples=2,
        batch_docs=2,
        shard_docs=2,
        max_new_tokens=16,
        threads=1,
    )
    out = tmp_path / "generate"
    first = stage(out, cfg, root)
    manifest = first["manifest"]
    assert manifest["counts"]["docs"] == 3
    assert (
        manifest["counts"]["samples"] == manifest["counts"]["queries"] + manifest["counts"]["rejected"] == 6
    )
    assert sum(manifest["drops"].values()) == manifest["counts"]["rejected"]
    assert manifest["extra"]["example_query_ids"] == ["q3"]  # the only train query; never q1 or q2
    assert manifest["extra"]["prompt_prefix_tokens"] > 10
    assert "shards" in manifest["outputs"]
    prefix = (out / "prompt_prefix.txt").read_text(encoding="utf-8")
    assert "Query: largest river by volume" in prefix
    assert "do cats purr" not in prefix and "where do dogs come from" not in prefix

    queries = list(read_synthetic_queries(out))
    rejects = list(read_rejects(out))
    assert len(queries) + len(rejects) == 6
    assert len({q.doc_id for q in queries} | {r.doc_id for r in rejects}) == 3
    for q in queries:
        assert q.template == "promptagator" and q.model == str(smollm2_path)
        assert q.query_id == f"{q.doc_id}#q{q.sample}"
        assert q.settings["max_new_tokens"] == 16
        assert q.mean_logprob is not None and q.mean_logprob <= 0
    assert all(r.reason and r.step == "generate" for r in rejects)
    assert sorted(p.name for p in (out / "shards").glob("*.done.json")) == [
        "part-00000.done.json",
        "part-00001.done.json",
    ]
    again = stage(out, cfg, root)
    assert again["skipped"]


@pytest.mark.slow
def test_stage_refuses_a_prompt_that_shows_a_test_query(
    write_beir: Any, tmp_path: Path, smollm2_path: Path
) -> None:
    pytest.importorskip("llama_cpp")
    template = tmp_path / "leaky.txt"
    template.write_text(
        "Example query: where do dogs come from\n\nDocument: {document}\nQuery:\n", encoding="utf-8"
    )
    cfg = GenerateConfig(template=str(template), model=str(smollm2_path), num_docs=1, threads=1)
    with pytest.raises(StageError, match="test query 'q2'"):
        stage(tmp_path / "generate", cfg, write_beir())
    assert not list((tmp_path / "generate").glob("shards/*"))


def test_stage_wiring_on_a_tiny_random_model(write_beir: Any, tmp_path: Path, tiny_gpt2: Path) -> None:
    """The stage's wiring, fast: the transformers backend on a random-weight GPT-2 (its
    queries are nonsense, but every sample is written, counted and resumable)."""
    root = write_beir()  # 4 docs; test queries q1, q2; train query q3
    cfg = GenerateConfig(
        template="promptagator", backend="hf-causal", model=str(tiny_gpt2), device="cpu", num_docs=3,
        queries_per_doc=2, num_examples=2, batch_docs=2, shard_docs=2, max_new_tokens=6, threads=1,
    )
    out = tmp_path / "generate"
    first = stage(out, cfg, root)
    manifest = first["manifest"]
    assert manifest["counts"]["docs"] == 3
    counts = manifest["counts"]
    assert counts["samples"] == counts["queries"] + counts["rejected"] == 6
    assert sum(manifest["drops"].values()) == counts["rejected"]
    assert manifest["extra"]["example_query_ids"] == ["q3"]  # the only train query; never q1 or q2
    assert manifest["extra"]["backend"] == "hf-causal"
    assert {"shards", "prompt_prefix"} <= set(manifest["outputs"])
    prefix = (out / "prompt_prefix.txt").read_text(encoding="utf-8")
    assert "Query: largest river by volume" in prefix
    assert "do cats purr" not in prefix and "where do dogs come from" not in prefix
    queries, rejects = list(read_synthetic_queries(out)), list(read_rejects(out))
    assert len(queries) + len(rejects) == 6
    assert len({q.doc_id for q in queries} | {r.doc_id for r in rejects}) == 3
    assert all(q.query_id == f"{q.doc_id}#q{q.sample}" and q.model == str(tiny_gpt2) for q in queries)
    assert sorted(p.name for p in (out / "shards").glob("*.done.json")) == [
        "part-00000.done.json",
        "part-00001.done.json",
    ]
    assert stage(out, cfg, root)["skipped"]

    template = tmp_path / "leaky.txt"
    template.write_text(
        "Example query: where do dogs come from\n\nDocument: {document}\nQuery:\n", encoding="utf-8"
    )
    leaky = GenerateConfig(template=str(template), backend="hf-causal", model=str(tiny_gpt2), device="cpu",
                           num_docs=1, threads=1)
    with pytest.raises(StageError, match="test query 'q2'"):
        stage(tmp_path / "leaky", leaky, root)
    assert not list((tmp_path / "leaky").glob("shards/*"))


def test_bad_configs_fail_before_any_work(write_beir: Any, tmp_path: Path) -> None:
    root = write_beir()
    with pytest.raises(ConfigError, match="not a built-in template"):
        stage(tmp_path / "a", GenerateConfig(template="inpars-v3", model=str(tmp_path / "none.gguf")), root)
    with pytest.raises(ModelError, match="not found"):
        stage(tmp_path / "b", GenerateConfig(model=str(tmp_path / "none.gguf")), root)
    with pytest.raises(ConfigError, match="train_split"):
        stage(
            tmp_path / "c", GenerateConfig(template="promptagator"), write_beir(qrels={"test": []}, name="t2")
        )
    with pytest.raises(ConfigError, match="backend: expected one of"):
        parse_config({"generate": {"backend": "vllm"}})
    with pytest.raises(ConfigError, match="unknown key 'temprature'"):
        parse_config({"generate": {"temprature": 0.5}})
    with pytest.raises(ConfigError, match="top_p"):
        parse_config({"generate": {"top_p": 1.5}})


def test_shard_prepare_drops_records_of_unfinished_batches(tmp_path: Path) -> None:
    files = ShardFiles(tmp_path, 0)

    def query(doc: str) -> SyntheticQuery:
        return SyntheticQuery(f"{doc}#q0", doc, "q", "inpars", "m", 0, 1)

    write_records(files.queries, [query("a"), query("b"), query("c")])
    write_records(files.rejects, [Dropped("c#q1", "c", "", "generate", "empty")])
    write_records(files.progress, [BatchDone(0, ("a", "b"), 2, 0)])
    with open(files.progress, "a", encoding="utf-8") as handle:
        handle.write('{"batch": 1, "doc_ids": ["c"')  # torn: batch 1 never finished
    finished = files.prepare()
    files.close()
    assert list(finished) == [0]
    assert [q.doc_id for q in read_synthetic_queries(tmp_path)] == ["a", "b"]
    assert list(read_rejects(tmp_path)) == []


def test_a_folder_keeps_one_run_layout(tmp_path: Path) -> None:
    check_run_file(tmp_path, {"seed": 1, "template": "inpars"})
    check_run_file(tmp_path, {"seed": 1, "template": "inpars"})
    with pytest.raises(StageError, match="seed"):
        check_run_file(tmp_path, {"seed": 2, "template": "inpars"})
    assert json.loads((tmp_path / "run.json").read_text())["seed"] == 1
