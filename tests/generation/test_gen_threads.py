"""Generation is reproducible: the thread count a run starts with is recorded and reused when
it resumes, seeds do not depend on batches or threads, and a query id never appears twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from inpars.config import GenerateConfig
from inpars.data import open_collection
from inpars.errors import StageError
from inpars.generation import generate_stage
from inpars.generation.backends.base import Backend, Completion, GenerationRequest
from inpars.generation.backends.threads import fastest
from inpars.generation.prompts import PromptBuilder
from inpars.generation.runner import RunSettings, generate_queries
from inpars.generation.sampling import SamplingSettings, derive_seed
from inpars.generation.selection import iter_documents, select_doc_ids
from inpars.generation.shards import (
    THREADS_FILE,
    check_run_ids,
    read_rejects,
    read_synthetic_queries,
    record_threads,
)
from inpars.generation.stage import resume_threads
from inpars.generation.templates import load_template
from inpars.manifest import run_stage
from inpars.stage_folders import work_dir
from tests.conftest import BeirWriter

DOCS = [{"_id": f"d{i}", "title": f"Topic {i}", "text": f"Document number {i} is about topic {i}."}
        for i in range(6)]
WORDS = ["river", "cells", "energy", "water", "protein", "city"]


class ThreadBound(Backend):
    """A fake model whose samples depend on the thread count, as llama.cpp's do."""

    kind = "fake"

    def __init__(self, threads: int, fail_on_call: int = 0) -> None:
        super().__init__("fake")
        self.threads, self.fail_on_call = threads, fail_on_call
        self.calls = 0
        self.seeds: dict[str, tuple[int, ...]] = {}  # document prompt -> the seeds asked for

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])

    def generate(self, requests: Sequence[GenerationRequest], settings: SamplingSettings
                 ) -> list[list[Completion]]:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt  # stopped mid-run
        for r in requests:
            self.seeds[r.prompt.suffix] = r.seeds
        return [[Completion(f"which {WORDS[seed % 6]} facts {WORDS[(seed + self.threads) % 6]} threads",
                            (-0.5, -0.25), True) for seed in r.seeds] for r in requests]

    def thread_count(self) -> int:
        return self.threads


class Loader:
    """Stands in for ``load_backend``: an automatic count is what the load allows *now*."""

    def __init__(self, automatic: int, fail_on_call: int = 0) -> None:
        self.automatic, self.fail_on_call = automatic, fail_on_call
        self.asked: list[int] = []

    def __call__(self, cfg: GenerateConfig) -> ThreadBound:
        self.asked.append(cfg.threads)
        return ThreadBound(cfg.threads or self.automatic, self.fail_on_call)


def generate(out: Path, root: Path, loader: Loader, monkeypatch: pytest.MonkeyPatch,
             cfg: GenerateConfig | None = None) -> dict[str, Any]:
    monkeypatch.setattr("inpars.generation.stage.load_backend", loader)
    cfg = cfg or GenerateConfig(template="zero-shot", model="fake", queries_per_doc=2, batch_docs=1,
                                shard_docs=2)
    collection = open_collection(root)
    return run_stage("generate", out, cfg, {}, lambda ctx: generate_stage(
        ctx, cfg, collection, train_split="train", test_split="test"), seed=3).manifest


def texts(folder: Path) -> list[str]:
    return sorted([q.text for q in read_synthetic_queries(folder)] + [r.detail for r in read_rejects(folder)])


def test_a_resumed_run_computes_with_the_thread_count_it_started_with(
    write_beir: BeirWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="inpars.generation.stage")
    root = write_beir(docs=DOCS)
    reference = generate(tmp_path / "reference", root, Loader(automatic=2), monkeypatch)
    assert reference["extra"]["threads"] == 2

    out = tmp_path / "generate"
    with pytest.raises(KeyboardInterrupt):  # two threads were fastest, then the run stopped
        generate(out, root, Loader(automatic=2, fail_on_call=4), monkeypatch)
    shards = work_dir(out) / "shards"
    assert json.loads((shards / THREADS_FILE).read_text()) == {"threads": 2, "backend": "fake"}
    assert len(texts(shards)) == 2 * 3  # three documents done before it stopped

    busy = Loader(automatic=1)  # the machine is busy now: one thread would be faster
    resumed = generate(out, root, busy, monkeypatch)
    assert busy.asked == [2]  # the backend was loaded with the recorded count, not tuned again
    assert resumed["extra"]["threads"] == 2
    assert "resuming with the 2 threads this run started with" in caplog.text
    assert texts(out / "shards") == texts(tmp_path / "reference" / "shards")
    generate(tmp_path / "one", root, Loader(automatic=1), monkeypatch)
    assert texts(tmp_path / "one" / "shards") != texts(out / "shards")  # what a count change would do


def test_an_explicit_thread_count_wins_with_a_warning(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="inpars.generation.stage")
    shards = tmp_path / "shards"
    assert resume_threads(GenerateConfig(threads=0), shards).threads == 0  # nothing recorded yet
    record_threads(shards, 2, "llama-cpp")
    record_threads(shards, 1, "llama-cpp")  # recorded once, by the session that started the run
    assert resume_threads(GenerateConfig(threads=0), shards).threads == 2
    assert resume_threads(GenerateConfig(threads=2), shards).threads == 2
    assert resume_threads(GenerateConfig(threads=3), shards).threads == 3
    assert "[generate] threads = 3, but the queries in" in caplog.text
    (shards / THREADS_FILE).write_text('{"threads": "many"}')
    with pytest.raises(StageError, match=r"threads.json: 'threads' is 'many'.*Fix:"):
        resume_threads(GenerateConfig(), shards)


def run_generation(root: Path, out: Path, backend: ThreadBound, batch_docs: int) -> list[dict[str, Any]]:
    collection = open_collection(root)
    builder = PromptBuilder(load_template("zero-shot"), truncate=backend.truncate, doc_max_tokens=64)
    run = RunSettings(template="zero-shot", model="fake", queries_per_doc=3, seed=9, batch_docs=batch_docs,
                      shard_docs=4)
    ids = select_doc_ids(collection)
    generate_queries(iter_documents(collection, ids), out, backend=backend, builder=builder, run=run,
                     progress=False)
    return [q.__dict__ for q in read_synthetic_queries(out)]


def test_seeds_depend_on_the_document_and_sample_only(write_beir: BeirWriter, tmp_path: Path) -> None:
    root = write_beir(docs=DOCS)
    one, three = ThreadBound(1), ThreadBound(2)
    alone = run_generation(root, tmp_path / "a", one, batch_docs=1)
    batched = run_generation(root, tmp_path / "b", three, batch_docs=4)
    assert one.seeds == three.seeds and len(one.seeds) == len(DOCS)  # same seeds, whatever the batch
    assert [(q["query_id"], q["seed"]) for q in alone] == [(q["query_id"], q["seed"]) for q in batched]
    assert all(q["seed"] == derive_seed(9, q["doc_id"], q["sample"]) for q in alone)


def test_a_query_id_twice_is_an_error_naming_the_file(write_beir: BeirWriter, tmp_path: Path) -> None:
    root = write_beir(docs=DOCS)
    out = tmp_path / "shards"
    run_generation(root, out, ThreadBound(1), batch_docs=2)
    assert check_run_ids(out) == 3 * len(DOCS)
    first = (out / "part-00000.jsonl").read_text().splitlines()[0]
    with (out / "part-00001.jsonl").open("a") as handle:  # across shards
        handle.write(first + "\n")
    query_id = json.loads(first)["query_id"]
    message = (rf"part-00001.jsonl, line \d+: query id '{query_id}' appears twice "
               r"\(first at .*part-00000.jsonl, line 1\).*Fix: .*`inpars generate CONFIG --force`")
    with pytest.raises(StageError, match=message):
        run_generation(root, out, ThreadBound(1), batch_docs=2)  # checked when the run completes


def test_a_shard_with_a_query_id_twice_is_not_marked_done(write_beir: BeirWriter, tmp_path: Path) -> None:
    root = write_beir(docs=DOCS)
    out = tmp_path / "shards"
    with pytest.raises(KeyboardInterrupt):
        run_generation(root, out, ThreadBound(1, fail_on_call=2), batch_docs=2)
    shard = out / "part-00000.jsonl"
    assert shard.read_text()
    shard.write_text(shard.read_text() * 2)  # the finished batch written twice
    with pytest.raises(StageError, match=r"part-00000.jsonl, line \d+: query id .* appears twice"):
        run_generation(root, out, ThreadBound(1), batch_docs=2)
    assert not (out / "part-00000.done.json").exists()


def test_the_fastest_thread_count_is_timed_in_interleaved_rounds() -> None:
    calls: list[int] = []

    def timer(cost: dict[int, float]) -> Any:
        def time_it(threads: int) -> float:
            calls.append(threads)
            return cost[threads]
        return time_it

    assert fastest([1, 2], timer({1: 0.02, 2: 0.2})) == 1  # two threads collapse on a busy core
    assert calls == [1, 1, 2]  # a warm-up, one round; two threads, far slower, are not timed again
    calls.clear()
    assert fastest([2, 1, 2], timer({1: 0.010, 2: 0.008})) == 2
    assert calls == [1, 1, 2, 1, 2, 1, 2]  # close: every round times both
    assert fastest([1, 2], timer({1: 0.02, 2: 0.005})) == 2
    calls.clear()
    assert fastest([4], timer({})) == 4 and calls == []  # one candidate: nothing to time


@pytest.mark.slow
def test_llama_cpp_keeps_the_thread_count_it_timed(smollm2_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from inpars.generation.backends.llamacpp import LlamaCppBackend
    from inpars.generation.backends.threads import usable_cores
    from inpars.generation.templates import Prompt

    reqs = [GenerationRequest(Prompt("Document: Honey bees dance to show where flowers are.\n", "Query:"),
                              (derive_seed(1, "d", 0), derive_seed(1, "d", 1)))]
    settings = SamplingSettings(max_new_tokens=8)
    tuned = LlamaCppBackend(smollm2_path, context_tokens=1024, max_sequences=8)
    try:
        chosen = tuned.thread_count()
        assert chosen in {1, usable_cores()}
        first = tuned.generate(reqs, settings)
        assert tuned.thread_count() == chosen  # never changed while generating
    finally:
        tuned.close()
    again = LlamaCppBackend(smollm2_path, context_tokens=1024, max_sequences=8, threads=chosen)
    try:  # what a resumed run does: the recorded count, set
        assert again.thread_count() == chosen
        assert again.generate(reqs, settings) == first
    finally:
        again.close()
