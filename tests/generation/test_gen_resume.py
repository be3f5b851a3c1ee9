"""A run killed mid-way and rerun writes exactly what an uninterrupted run writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from inpars.generation.shards import read_rejects, read_synthetic_queries

TOPICS = [
    ("Coral bleaching", "Corals expel their symbiotic algae when the water stays too warm for weeks."),
    ("Sourdough", "Wild yeast and lactic acid bacteria leaven sourdough bread and make it sour."),
    ("", "The Python global interpreter lock lets only one thread run bytecode at a time."),
    ("Honey", "Honey keeps for years because its sugar content is too high for microbes to grow."),
    ("Tides", "The moon's gravity pulls the oceans and causes two high tides a day."),
    ("", ""),  # an empty document: skipped, counted
    ("Vaccines", "Vaccines train the immune system with a harmless piece of a pathogen."),
    ("Bees", "Honey bees dance to tell their hive mates where the flowers are."),
    ("Rust", "Iron rusts when oxygen and water turn it into hydrated iron oxide."),
    ("Volcanoes", "Shield volcanoes form from runny lava that flows far before it cools."),
]

SCRIPT = """
import sys
from inpars.data import open_collection
from inpars.generation import PromptBuilder, RunSettings, SamplingSettings, generate_queries, load_template
from inpars.generation import iter_documents, select_doc_ids
from inpars.generation.backends.llamacpp import LlamaCppBackend

root, out, model = sys.argv[1:4]
collection = open_collection(root)
# 3 sequence slots for a batch of 4 documents x 2 samples: documents wait for free slots
backend = LlamaCppBackend(model, context_tokens=2048, max_sequences=4, threads=1)
builder = PromptBuilder(load_template("inpars"), truncate=backend.truncate, doc_max_tokens=48)
run = RunSettings(template="inpars", model="smollm2-135m", queries_per_doc=2, seed=5,
                  sampling=SamplingSettings(max_new_tokens=16), batch_docs=4, shard_docs=4)
ids = select_doc_ids(collection)
generate_queries(iter_documents(collection, ids), out, backend=backend, builder=builder, run=run,
                 total=len(ids), progress=False)
"""


def run_script(script: Path, root: Path, out: Path, model: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(out), str(model)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def records(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    kept = [q.__dict__ for q in read_synthetic_queries(out)]
    rejected = [r.__dict__ for r in read_rejects(out)]
    return kept, rejected


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_output(
    write_beir: Any, tmp_path: Path, smollm2_path: Path
) -> None:
    pytest.importorskip("llama_cpp")
    docs = [{"_id": f"doc{i}", "title": t, "text": x} for i, (t, x) in enumerate(TOPICS)]
    root = write_beir(docs=docs, queries=[], qrels={})
    script = tmp_path / "generate.py"
    script.write_text(SCRIPT, encoding="utf-8")

    reference = tmp_path / "reference"
    proc = run_script(script, root, reference, smollm2_path)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode() if proc.stderr else ""

    resumed = tmp_path / "resumed"
    proc = run_script(script, root, resumed, smollm2_path)
    progress = resumed / "part-00000.progress.jsonl"
    deadline = time.monotonic() + 300
    while not (progress.is_file() and progress.read_bytes().count(b"\n") >= 1):
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # a crash: no cleanup at all
    proc.wait(timeout=30)
    assert not (resumed / "part-00002.done.json").exists()
    partial, _ = records(resumed)
    assert 0 < len({q["doc_id"] for q in partial}) < 9

    proc = run_script(script, root, resumed, smollm2_path)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode() if proc.stderr else ""

    expected, expected_rejects = records(reference)
    got, got_rejects = records(resumed)
    assert got == expected
    assert got_rejects == expected_rejects
    pairs = Counter((q["doc_id"], q["sample"]) for q in got)
    pairs.update((r["doc_id"], int(r["query_id"].rsplit("#q", 1)[1])) for r in got_rejects)
    assert max(pairs.values()) == 1  # no (doc_id, sample) written twice
    assert len(pairs) == 2 * 9  # every sample of every non-empty document, kept or rejected
    markers = [json.loads(p.read_text()) for p in sorted(resumed.glob("part-*.done.json"))]
    assert [m["docs"] for m in markers] == [4, 4, 2]
    assert sum(m["empty_docs"] for m in markers) == 1
    # the markers add up the generation time of batches from both sessions
    assert all(m["seconds"] > 0 for m in markers)
