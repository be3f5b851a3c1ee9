"""The generation loop: documents in, sharded SyntheticQuery records out, resumable.

:func:`generate_queries` works without a pipeline (any iterable of documents, any
backend); :func:`inpars.generation.stage.generate_stage` wraps it for ``inpars run``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.generation.backends.base import Backend, Completion, GenerationRequest
from inpars.generation.parsing import (
    QueryCheck,
    QueryWatch,
    check_query,
    clean_query,
    content_stems,
    few_shot_ngrams,
    normalized,
)
from inpars.generation.prompts import PromptBuilder, join_title
from inpars.generation.sampling import SamplingSettings, derive_seed
from inpars.generation.shards import BatchDone, ShardFiles, check_run_file, check_run_ids, read_done_markers
from inpars.io import chunked
from inpars.records import Document, Dropped, SyntheticQuery

log = logging.getLogger(__name__)


@dataclass
class GenerationResult:
    """Totals of a run (all sessions of a resumed run) and this session's throughput."""

    docs: int = 0
    empty_docs: int = 0
    queries: int = 0
    rejected: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    session_docs: int = 0
    session_queries: int = 0
    session_samples: int = 0
    seconds: float = 0.0
    batch_seconds: float = 0.0  # generation time of every finished batch, over all sessions
    backend_stats: dict[str, int] = field(default_factory=dict)

    @property
    def docs_per_s(self) -> float:
        return self.session_docs / self.seconds if self.seconds else 0.0

    @property
    def queries_per_s(self) -> float:
        return self.session_queries / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.backend_stats.get("generated_tokens", 0) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "docs": self.docs,
            "empty_docs": self.empty_docs,
            "queries": self.queries,
            "rejected": self.rejected,
            "rejects": dict(sorted(self.rejects.items())),
            "session_docs": self.session_docs,
            "session_queries": self.session_queries,
            "seconds": round(self.seconds, 2),
            "batch_seconds_all_sessions": round(self.batch_seconds, 2),
            "docs_per_s": round(self.docs_per_s, 3),
            "queries_per_s": round(self.queries_per_s, 3),
            "generated_tokens_per_s": round(self.tokens_per_s, 1),
            "backend": dict(self.backend_stats),
        }


@dataclass(frozen=True)
class RunSettings:
    """What, besides the documents, decides the records of a run."""

    template: str
    model: str
    queries_per_doc: int = 3
    seed: int = 0
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    limits: QueryCheck = field(default_factory=QueryCheck)
    batch_docs: int = 32  # the unit of work: decoded together, redone whole after an interruption
    shard_docs: int = 1000

    def layout(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "model": self.model,
            "queries_per_doc": self.queries_per_doc,
            "seed": self.seed,
            "sampling": self.sampling.as_dict(),
            "batch_docs": self.batch_docs,
            "shard_docs": self.shard_docs,
            "min_words": self.limits.min_words,
            "max_words": self.limits.max_words,
            # only when changed, so that runs from before this setting existed still resume
            **({"max_copied_ngram": self.limits.max_copied_ngram}
               if self.limits.max_copied_ngram != QueryCheck.max_copied_ngram else {}),
        }


def prompt_queries(prefix: str) -> set[str]:
    """Normalized lines of the few-shot part, labels removed (to spot copied examples)."""
    return {q for q in (normalized(clean_query(line)) for line in prefix.split("\n")) if q}


@dataclass(frozen=True)
class FewShotPart:
    """What the checks need to know of a prompt's few-shot part: its queries
    (:func:`prompt_queries`), content words and word n-grams (copies of it)."""

    queries: frozenset[str]
    words: frozenset[str]
    grams: frozenset[tuple[str, ...]]

    @classmethod
    def of(cls, prefix: str, limits: QueryCheck) -> FewShotPart:
        return cls(frozenset(prompt_queries(prefix)), frozenset(content_stems(prefix)),
                   frozenset(few_shot_ngrams(prefix, limits.max_copied_ngram)))


def judge(
    doc: Document,
    completions: Sequence[Completion],
    run: RunSettings,
    examples: Collection[str],
    prompt_words: Collection[str] = (),
    prompt_grams: Collection[tuple[str, ...]] = (),
) -> tuple[list[SyntheticQuery], list[Dropped]]:
    """Clean and check a document's completions into kept queries and rejects
    (``examples``: :func:`prompt_queries`; ``prompt_words``: content stems of the prefix;
    ``prompt_grams``: its word n-grams, :func:`~inpars.generation.parsing.few_shot_ngrams`)."""
    kept: list[SyntheticQuery] = []
    rejects: list[Dropped] = []
    earlier: set[str] = set()
    for sample, completion in enumerate(completions):
        text = clean_query(completion.text)
        query_id = SyntheticQuery.make_id(doc.doc_id, sample)
        reason = check_query(
            text,
            finished=completion.finished,
            limits=run.limits,
            document=doc,
            example_queries=examples,
            prompt_words=prompt_words,
            prompt_ngrams=prompt_grams,
            earlier=earlier,
        )
        if reason:
            rejects.append(Dropped(query_id, doc.doc_id, text, "generate", reason, completion.text[:300]))
            continue
        earlier.add(normalized(text))
        logprobs = completion.token_logprobs
        kept.append(
            SyntheticQuery(
                query_id=query_id,
                doc_id=doc.doc_id,
                text=text,
                template=run.template,
                model=run.model,
                sample=sample,
                seed=derive_seed(run.seed, doc.doc_id, sample),
                token_logprobs=tuple(round(x, 4) for x in logprobs),
                mean_logprob=round(sum(logprobs) / len(logprobs), 4) if logprobs else None,
                settings=run.sampling.for_sample(sample).as_dict(),
            )
        )
    return kept, rejects


def generate_queries(
    documents: Iterable[Document],
    out_dir: Path | str,
    *,
    backend: Backend,
    builder: PromptBuilder,
    run: RunSettings,
    total: int | None = None,
    progress: bool = True,
) -> GenerationResult:
    """Generate ``run.queries_per_doc`` queries per document into shards under ``out_dir``.

    Resumable: finished shards and batches are skipped, an interrupted batch is redone;
    ``documents`` must come in the same order on every call (see :mod:`.selection`). At
    the end every query id of every shard is checked to appear once (a
    :class:`~inpars.errors.StageError` names a duplicate).
    """
    from tqdm.auto import tqdm

    folder = Path(out_dir)
    check_run_file(folder, run.layout())
    few_shot = FewShotPart.of(builder.prefix, run.limits)
    result = GenerationResult()
    stats_before = Counter(backend.stats)
    start = time.perf_counter()
    bar = tqdm(total=total, unit="doc", desc="generate", disable=not progress, dynamic_ncols=True)
    try:
        for index, shard_docs in enumerate(chunked(documents, run.shard_docs)):
            files = ShardFiles(folder, index)
            if files.is_done():
                bar.update(len(shard_docs))
                continue
            finished = files.prepare()
            try:
                for number, batch in enumerate(chunked(shard_docs, run.batch_docs)):
                    if number not in finished:
                        finished[number] = _run_batch(
                            number, batch, files, backend, builder, run, few_shot, result
                        )
                        result.session_docs += len(batch)
                        elapsed = time.perf_counter() - start
                        bar.set_postfix(q_per_s=f"{result.session_queries / elapsed:.2f}", refresh=False)
                    bar.update(len(batch))
                files.finish([finished[k] for k in sorted(finished)])
            finally:
                files.close()
    finally:
        bar.close()
        result.seconds = time.perf_counter() - start
        result.backend_stats = dict(Counter(backend.stats) - stats_before)
    for marker in read_done_markers(folder):
        result.docs += marker["docs"]
        result.empty_docs += marker["empty_docs"]
        result.queries += marker["kept"]
        result.rejected += marker["rejected"]
        result.rejects.update(marker["reasons"])
        result.batch_seconds += float(marker.get("seconds", 0.0))
    check_run_ids(folder)
    log.info(
        "generated %d queries for %d documents (%d samples rejected%s); this session: %.2f docs/s, "
        "%.2f queries/s, %.1f generated tokens/s",
        result.queries,
        result.docs,
        result.rejected,
        "".join(f", {k}: {v}" for k, v in sorted(result.rejects.items())),
        result.docs_per_s,
        result.queries_per_s,
        result.tokens_per_s,
    )
    return result


def _run_batch(
    number: int,
    batch: list[Document],
    files: ShardFiles,
    backend: Backend,
    builder: PromptBuilder,
    run: RunSettings,
    few_shot: FewShotPart,
    result: GenerationResult,
) -> BatchDone:
    """Generate for one batch (the unit a resumed run redoes) and write its records."""
    started = time.perf_counter()
    live = [doc for doc in batch if join_title(doc.title, doc.text)]
    requests = [
        GenerationRequest(
            builder.build(doc),
            tuple(derive_seed(run.seed, doc.doc_id, s) for s in range(run.queries_per_doc)),
            watch=QueryWatch.for_document(doc, run.limits, few_shot.grams),
        )
        for doc in live
    ]
    completions = backend.generate(requests, run.sampling) if requests else []
    queries: list[SyntheticQuery] = []
    rejects: list[Dropped] = []
    for doc, outs in zip(live, completions, strict=True):
        kept, dropped = judge(doc, outs, run, few_shot.queries, few_shot.words, few_shot.grams)
        queries += kept
        rejects += dropped
    done = BatchDone(
        number,
        tuple(doc.doc_id for doc in batch),
        len(queries),
        len(rejects),
        len(batch) - len(live),
        dict(Counter(r.reason for r in rejects)),
        round(time.perf_counter() - started, 3),
    )
    files.write_batch(queries, rejects, done)
    result.session_queries += len(queries)
    result.session_samples += len(queries) + len(rejects)
    return done
