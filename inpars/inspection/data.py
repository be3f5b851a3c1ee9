"""What ``inpars inspect`` reads: every sample of a finished generate stage, what the
filter stage made of it, the documents they were written for, and the collection's real
train queries (the reference the synthetic ones are compared with).

A sample is one query the generator wrote: either kept by generation (``shards/part-*.jsonl``)
or rejected there (``part-*.rejects.jsonl``); a kept one is then kept or dropped by the
filter (``kept.jsonl``, ``dropped.jsonl``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpars.errors import StageError
from inpars.io import read_records
from inpars.records import Document, Dropped, SyntheticQuery

if TYPE_CHECKING:
    from inpars.pipeline import Workspace

log = logging.getLogger(__name__)

KEPT, DROPPED = "kept", "dropped"
GENERATE, FILTER = "generate", "filter"
MISSING_REASON = "inspect:not_in_filter_output"


@dataclass(frozen=True)
class Sample:
    """One generated query and its fate.

    ``status`` is ``kept`` (in the filter's output) or ``dropped``; ``stage`` says where a
    dropped one was dropped (``generate`` or ``filter``); ``reason`` is ``<step>:<reason>``
    (``generate:unfinished``, ``dedup:near_duplicate``), empty for a kept one.
    """

    query_id: str
    doc_id: str
    text: str
    status: str
    stage: str = ""
    reason: str = ""
    detail: str = ""
    mean_logprob: float | None = None


@dataclass(frozen=True)
class Settings:
    """The measures' parameters (taken from the filter stage's manifest)."""

    copy_ngram: int = 8
    near_dup_threshold: float = 0.85
    seed: int = 42


@dataclass
class RunData:
    """Everything the report is made of, held in memory (a generate run is small)."""

    name: str
    samples: list[Sample]
    doc_ids: list[str]  # the documents generation ran on, in its order
    documents: dict[str, Document]  # those documents, and the judged documents of ``real``
    real: list[tuple[str, str, str]] = field(default_factory=list)  # (query id, text, judged doc)
    real_note: str = ""  # why ``real`` is empty, when it is
    settings: Settings = field(default_factory=Settings)

    def kept(self) -> list[Sample]:
        return [s for s in self.samples if s.status == KEPT]

    def generated(self) -> list[Sample]:
        """The samples generation kept (what the filter stage read)."""
        return [s for s in self.samples if s.stage != GENERATE]


def join_samples(
    generated: Iterable[SyntheticQuery],
    rejects: Iterable[Dropped],
    kept: Iterable[SyntheticQuery],
    dropped: Iterable[Dropped],
) -> list[Sample]:
    """The samples of a run, in shard order: generation's output joined with the filter's
    verdicts (log-probs come from the generated records; rejects have none)."""
    kept_by_id = {q.query_id: q for q in kept}
    dropped_by_id = {d.query_id: d for d in dropped}
    samples: list[Sample] = []
    seen: set[str] = set()
    missing = 0
    for q in generated:
        seen.add(q.query_id)
        if q.query_id in kept_by_id:
            samples.append(Sample(q.query_id, q.doc_id, q.text, KEPT, mean_logprob=q.mean_logprob))
        elif q.query_id in dropped_by_id:
            d = dropped_by_id[q.query_id]
            samples.append(Sample(q.query_id, q.doc_id, q.text, DROPPED, FILTER, f"{d.step}:{d.reason}",
                                  d.detail, q.mean_logprob))
        else:
            missing += 1
            samples.append(Sample(q.query_id, q.doc_id, q.text, DROPPED, FILTER, MISSING_REASON,
                                  "the filter stage's output has no record of this query",
                                  q.mean_logprob))
    for q in kept_by_id.values():  # kept queries generation did not write (another generate run)
        if q.query_id not in seen:
            samples.append(Sample(q.query_id, q.doc_id, q.text, KEPT, mean_logprob=q.mean_logprob))
    if missing:
        log.warning("%d generated queries are neither kept nor dropped by the filter stage "
                    "(filtered another generate run?); counted as '%s'", missing, MISSING_REASON)
    samples.extend(Sample(r.query_id, r.doc_id, r.text, DROPPED, GENERATE, f"{r.step}:{r.reason}", r.detail)
                   for r in rejects)
    return samples


def generated_doc_ids(shards: Path, samples: Iterable[Sample]) -> list[str]:
    """The documents generation ran on: the progress lines' documents in order (a document
    whose every sample was empty has no sample), then any other document of a sample."""
    from inpars.generation.shards import BatchDone

    ids: dict[str, None] = {}
    for progress in sorted(shards.glob("part-*.progress.jsonl")):
        for batch in read_records(progress, BatchDone):
            ids.update(dict.fromkeys(batch.doc_ids))
    ids.update(dict.fromkeys(s.doc_id for s in samples))
    return list(ids)


def read_documents(docs: Iterable[Document], wanted: set[str]) -> dict[str, Document]:
    """The documents of ``wanted`` (one streamed pass over the corpus)."""
    found: dict[str, Document] = {}
    for doc in docs:
        if doc.doc_id in wanted:
            found[doc.doc_id] = doc
            if len(found) == len(wanted):
                break
    return found


def _require(ws: Workspace, stage: str, config: str) -> dict[str, Any]:
    if not ws.finished(stage):
        raise StageError(
            f"{ws.stage_dir(stage)}: the '{stage}' stage has not finished, so there is nothing to inspect. "
            f"Fix: run `inpars run {config} --until filter` first"
        )
    return ws.manifest(stage)


def real_train_pairs(ws: Workspace) -> tuple[list[tuple[str, str, str]], str]:
    """The collection's train queries with their judged-relevant documents, or a note why none."""
    split = ws.config.data.train_split
    collection = ws.collection
    if split not in collection.splits():
        return [], f"the collection has no judged '{split}' split, so there are no real train queries"
    texts = {q.query_id: q.text for q in collection.split_queries(split)}
    pairs = [(r.query_id, texts[r.query_id], r.doc_id)
             for r in collection.qrels(split) if r.relevance > 0 and r.query_id in texts]
    if not pairs:
        return [], f"the collection's '{split}' split judges no document relevant"
    return pairs, ""


def load_run(ws: Workspace, config_path: str) -> RunData:
    """Read a finished generate and filter stage of ``ws`` (a :class:`StageError` with the
    command to run when either has not finished)."""
    from inpars.generation.shards import read_rejects, read_synthetic_queries

    _require(ws, GENERATE, config_path)
    filter_manifest = _require(ws, FILTER, config_path)
    shards = ws.stage_dir(GENERATE) / "shards"
    log.info("reading %s and %s", shards, ws.stage_dir(FILTER))
    samples = join_samples(
        read_synthetic_queries(shards),
        read_rejects(shards),
        read_records(ws.output(FILTER, "kept"), SyntheticQuery),
        read_records(ws.output(FILTER, "dropped"), Dropped),
    )
    doc_ids = generated_doc_ids(shards, samples)
    real, note = real_train_pairs(ws)
    wanted = set(doc_ids) | {doc_id for _, _, doc_id in real}
    log.info("reading %d documents from the collection", len(wanted))
    documents = read_documents(ws.collection.docs(), wanted)
    used = filter_manifest.get("config", {})
    settings = Settings(
        copy_ngram=int(used.get("max_copied_ngram", ws.config.filter.max_copied_ngram)),
        near_dup_threshold=float(used.get("near_dup_threshold", ws.config.filter.near_dup_threshold)),
        seed=ws.config.experiment.seed,
    )
    return RunData(ws.name, samples, doc_ids, documents, real, note, settings)
