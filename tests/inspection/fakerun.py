"""A tiny finished generate + filter run on disk (shards, rejects, progress, kept, dropped and
the two manifests), written the way the stages write them, and its experiment config.

The numbers of :data:`SAMPLES` are checked by hand in ``test_quality.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpars.generation.shards import BatchDone
from inpars.io import write_json, write_records
from inpars.records import Dropped, SyntheticQuery
from tests.conftest import TINY_DOCS


@dataclass(frozen=True)
class Spec:
    """One sample: ``fate`` is ``kept``, ``filter:<step>:<reason>`` or ``generate:<reason>``."""

    query_id: str
    doc_id: str
    text: str
    fate: str
    logprob: float | None = None


SAMPLES: list[Spec] = [
    Spec("d1#q0", "d1", "do cats purr", "kept", -1.0),
    Spec("d1#q1", "d1", "Do cats purr?", "kept", -2.0),  # exact duplicate of d1#q0
    Spec("d1#q2", "d1", "do cats purrr", "kept", -1.5),  # near duplicate (Jaccard 12/13)
    Spec("d2#q0", "d2", "why are dogs loyal", "kept", -0.5),
    Spec("d2#q1", "d2", "dogs are loyal companions", "filter:rules:copied_from_document", -3.0),
    Spec("d3#q0", "d3", "the eiffel", "generate:unfinished"),
]
GENERATED_FOR = ["d1", "d2", "d3"]
COPY_NGRAM = 3

HOSTILE_DOC = {"_id": "d5", "title": "<img src=x onerror=alert(2)>", "text": "A page about </script> tags."}
HOSTILE: list[Spec] = [
    Spec("d3#q1", "d3", "<script>alert(1)</script>", "filter:dedup:near_duplicate", -2.5),
    Spec("d5#q0", "d5", "</script> is a heart of <b>bold</b> & more", "kept", -0.25),
    Spec("d5#q1", "d5", "what closes a script", "generate:too_short"),
]


def _query(spec: Spec) -> SyntheticQuery:
    number = int(spec.query_id.rpartition("#q")[2])
    logprobs = () if spec.logprob is None else (spec.logprob,)
    return SyntheticQuery(spec.query_id, spec.doc_id, spec.text, "inpars", "fake", number, 0,
                          logprobs, spec.logprob)


def write_generate(stage: Path, specs: Sequence[Spec], doc_ids: Sequence[str]) -> None:
    shards = stage / "shards"
    shards.mkdir(parents=True)
    generated = [_query(s) for s in specs if not s.fate.startswith("generate:")]
    write_records(shards / "part-00000.jsonl", generated)
    rejects = [Dropped(s.query_id, s.doc_id, s.text, "generate", s.fate.split(":", 1)[1], s.text)
               for s in specs if s.fate.startswith("generate:")]
    write_records(shards / "part-00000.rejects.jsonl", rejects)
    write_records(shards / "part-00000.progress.jsonl",
                  [BatchDone(0, tuple(doc_ids), len(specs) - len(rejects), len(rejects))])
    write_json(shards / "part-00000.done.json", {"docs": len(doc_ids)})
    write_json(stage / "manifest.json", {"stage": "generate", "status": "complete",
                                         "outputs": {"shards": {"path": "shards"}}})


def write_filter(stage: Path, specs: Sequence[Spec], copy_ngram: int) -> None:
    kept = [_query(s) for s in specs if s.fate == "kept"]
    dropped = []
    for s in specs:
        if s.fate.startswith("filter:"):
            _, step, reason = s.fate.split(":")
            dropped.append(Dropped(s.query_id, s.doc_id, s.text, step, reason, f"{reason} detail"))
    write_records(stage / "kept.jsonl", kept)
    write_records(stage / "dropped.jsonl", dropped)
    write_json(stage / "manifest.json", {
        "stage": "filter", "status": "complete",
        "config": {"max_copied_ngram": copy_ngram, "near_dup_threshold": 0.85},
        "outputs": {"kept": {"path": "kept.jsonl"}, "dropped": {"path": "dropped.jsonl"}},
    })


def write_config(root: Path, source: Path, name: str = "tiny") -> Path:
    path = root / f"{name}.toml"
    path.write_text(
        f'[experiment]\nname = "{name}"\nseed = 7\nrun_dir = "{(root / "run").as_posix()}"\n\n'
        f'[data]\nsource = "{source.as_posix()}"\ndev_queries = 0\n',
        encoding="utf-8",
    )
    return path


def fake_run(
    write_beir: Any,
    root: Path,
    specs: Sequence[Spec] = tuple(SAMPLES),
    doc_ids: Sequence[str] = tuple(GENERATED_FOR),
    *,
    docs: Sequence[dict[str, Any]] = tuple(TINY_DOCS),
    stages: Sequence[str] = ("generate", "filter"),
) -> Path:
    """Write the collection, the finished ``stages`` and the config; return the config path."""
    source = write_beir(docs=list(docs))
    run = root / "run"
    if "generate" in stages:
        write_generate(run / "generate", specs, doc_ids)
    if "filter" in stages:
        write_filter(run / "filter", specs, COPY_NGRAM)
    return write_config(root, source)
