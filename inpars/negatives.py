"""Hard negatives for each kept (query, document) pair, mined from BM25 (and dense) rankings.

For every kept synthetic query the BM25 top ``depth`` is searched and ``count`` negatives
are picked: the best-ranked (``top``) or a seeded random sample of the ranks
``window_start..depth`` (``window``). A negative is never the positive document, a
document with the positive's exact text, or a document judged relevant to that query
(when qrels are given). Optional dense negatives come from a dense index the same way.

Output: :class:`~inpars.records.TrainingExample` JSONL, streamed and resumable (each query's
sample depends only on the seed and its id). Exporters write the examples as
sentence-transformers / Hugging Face datasets style triples (JSONL with ``query``,
``positive``, ``negative`` columns) and as InPars TSV triples
(``query<TAB>positive<TAB>negative``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inpars.config import NegativesConfig
from inpars.data.lookup import DocumentLookup
from inpars.errors import BadLineError, ConfigError, DataError
from inpars.io import RecordAppender, atomic_open, chunked, read_records, write_records
from inpars.manifest import StageContext
from inpars.records import Document, Qrel, Query, ScoredPair, SyntheticQuery, TrainingExample
from inpars.teacher import CrossEncoderTeacher, HybridTeacher

log = logging.getLogger(__name__)

EXAMPLES = "examples.jsonl"
REAL_QUERIES = "real-queries.jsonl"  # the judged train queries as pairs ([train] labels real/both)
REAL_EXAMPLES = "real-examples.jsonl"
ST_TRIPLES = "triples.jsonl"
TSV_TRIPLES = "triples.tsv"


class LexicalIndex(Protocol):
    """What mining needs from BM25 (``inpars.indexing.Bm25Searcher`` fits): search and
    the stored documents."""

    def search(self, queries: Sequence[Query], k: int, threads: int = 1) -> dict[str, list[ScoredPair]]:
        ...

    def document(self, doc_id: str) -> Document:
        ...


class DenseRetriever(Protocol):
    """A dense index (``inpars.indexing.DenseIndex`` fits)."""

    def search(self, queries: Sequence[Query], k: int) -> dict[str, list[ScoredPair]]:
        ...


@dataclass(frozen=True)
class Triple:
    """One (query, positive, negative) training row, as exported."""

    query: str
    positive: str
    negative: str


def judged_relevant(qrels: Iterable[Qrel]) -> dict[str, set[str]]:
    """Query id -> ids of the documents judged relevant (relevance > 0)."""
    relevant: dict[str, set[str]] = {}
    for qrel in qrels:
        if qrel.relevance > 0:
            relevant.setdefault(qrel.query_id, set()).add(qrel.doc_id)
    return relevant


def pick_negatives(
    ranked: Sequence[str],
    *,
    exclude: set[str],
    count: int,
    sampling: str,
    window_start: int,
    rng: random.Random,
) -> list[str]:
    """Pick ``count`` document ids from a ranking (best first), never one in ``exclude``.

    ``top``: the best-ranked allowed ones. ``window``: a random sample (from ``rng``) of
    the allowed ones ranked ``window_start`` or lower (1-based ranks of ``ranked``),
    returned in rank order.
    """
    if sampling == "top":
        return [d for d in ranked if d not in exclude][:count]
    if sampling != "window":
        raise ConfigError(f"negatives sampling {sampling!r}: use 'top' or 'window'")
    pool = [d for d in ranked[window_start - 1 :] if d not in exclude]
    if len(pool) <= count:
        return pool
    chosen = set(rng.sample(range(len(pool)), count))
    return [d for i, d in enumerate(pool) if i in chosen]


def needs_dense(cfg: NegativesConfig) -> bool:
    """Whether mining with ``cfg`` needs the dense index."""
    return bool(cfg.dense_count) or cfg.retriever != "bm25" or cfg.teacher == "hybrid"


def mine_negatives(
    queries: Iterable[SyntheticQuery],
    bm25: LexicalIndex,
    cfg: NegativesConfig,
    *,
    dense: DenseRetriever | None = None,
    teacher: HybridTeacher | None = None,
    qrels: Iterable[Qrel] | None = None,
    seed: int = 0,
    labeller: CrossEncoderTeacher | None = None,
) -> Iterator[TrainingExample]:
    """One :class:`TrainingExample` per query, in input order, streamed batch by batch.

    ``teacher`` ranks the pool for ``retriever = "hybrid"`` and, with ``teacher = "hybrid"``,
    labels the positive and the negatives (``TrainingExample.teacher_scores``); with
    ``teacher = "cross-encoder"``, ``labeller`` labels them, a batch at a time."""
    if needs_dense(cfg) and dense is None:
        raise ConfigError(
            f"[negatives] dense_count = {cfg.dense_count}, retriever = {cfg.retriever!r}, teacher = "
            f"{cfg.teacher!r} need the dense index, but none was given. Fix: build one ([index] dense = "
            "true), or set dense_count = 0, retriever = 'bm25' and teacher = 'none'"
        )
    if (cfg.retriever == "hybrid" or cfg.teacher == "hybrid") and teacher is None:
        raise ConfigError("[negatives] retriever = 'hybrid' or teacher = 'hybrid' needs the hybrid teacher. "
                          "Fix: pass teacher=HybridTeacher(dense_index)")
    if cfg.teacher == "cross-encoder" and labeller is None:
        raise ConfigError("[negatives] teacher = 'cross-encoder' needs its model. "
                          "Fix: pass labeller=CrossEncoderTeacher(scorer of teacher_model)")
    relevant = judged_relevant(qrels or ())
    docs = DocumentLookup(bm25, fix="mine with the BM25 index of the collection the queries come from")
    for batch in chunked(queries, cfg.batch_size):
        search_queries = [Query(q.query_id, q.text) for q in batch]
        lexical = bm25.search(search_queries, cfg.depth, threads=cfg.threads)
        semantic = dense.search(search_queries, cfg.depth) if dense is not None and needs_dense(cfg) else {}
        vectors = teacher.query_vectors(search_queries) if teacher is not None else {}
        examples = [_example(query, lexical.get(query.query_id, []), semantic.get(query.query_id, []),
                             vectors.get(query.query_id), teacher, cfg, docs,
                             exclude={query.doc_id} | relevant.get(query.query_id, set()),
                             rng=random.Random(f"{seed}:{query.query_id}"))
                    for query in batch]
        yield from labeller.label(examples) if labeller is not None else examples


def _example(query: SyntheticQuery, lexical: Sequence[ScoredPair], semantic: Sequence[ScoredPair],
             vector: Any, teacher: HybridTeacher | None, cfg: NegativesConfig, docs: DocumentLookup,
             *, exclude: set[str], rng: random.Random) -> TrainingExample:
    """The training example of one query: negatives from the configured ranking, then the
    extra dense ones, then (with a teacher) the teacher's scores of all of them."""
    positive = docs.get(query.doc_id)
    scores: dict[str, float] = {}
    if teacher is not None:
        scores = teacher.scores(vector, lexical, (p.doc_id for p in semantic), [query.doc_id])
    if cfg.retriever == "bm25":
        ranking = list(lexical)
    elif cfg.retriever == "dense":
        ranking = list(semantic)
    else:
        ranking = teacher_ranking(teacher, query, scores)
    chosen = _choose(ranking, exclude, cfg.count, cfg, positive, docs, rng)
    if cfg.dense_count:
        chosen += _choose(semantic, exclude | set(chosen), cfg.dense_count, cfg, positive, docs, rng)
    labels: tuple[float, ...] = ()
    if cfg.teacher == "hybrid" and teacher is not None:  # every pick came from the scored pool
        labels = tuple(round(scores[d], 6) for d in (query.doc_id, *chosen))
    return TrainingExample(
        query_id=query.query_id,
        query=query.text,
        doc_id=query.doc_id,
        positive=positive.contents,
        negative_ids=tuple(chosen),
        negatives=tuple(docs.get(d).contents for d in chosen),
        teacher_scores=labels,
    )


def teacher_ranking(teacher: HybridTeacher | None, query: SyntheticQuery, scores: dict[str, float]
                    ) -> list[ScoredPair]:
    """The hybrid ranking of a query's pool (its positive left in; exclusion happens later)."""
    if teacher is None:
        raise ConfigError("[negatives] retriever = 'hybrid' needs the hybrid teacher")
    return teacher.ranking(query.query_id, scores)


def _choose(
    hits: Sequence[ScoredPair],
    exclude: set[str],
    count: int,
    cfg: NegativesConfig,
    positive: Document,
    docs: DocumentLookup,
    rng: random.Random,
) -> list[str]:
    """Negatives from one ranking. A pick with the positive's exact text (the same document
    under another id) or no text is excluded and the pick redone."""
    ranked = [p.doc_id for p in hits]
    exclude = set(exclude)
    while True:
        chosen = pick_negatives(ranked, exclude=exclude, count=count, sampling=cfg.sampling,
                                window_start=cfg.window_start, rng=rng)
        unusable = {d for d in chosen if docs.get(d).contents in (positive.contents, "")}
        if not unusable:
            return chosen
        exclude |= unusable


# --------------------------------------------------------------------------- exporters
def iter_triples(examples: Iterable[TrainingExample]) -> Iterator[Triple]:
    """One (query, positive, negative) row per negative of each example."""
    for example in examples:
        for negative in example.negatives:
            yield Triple(example.query, example.positive, negative)


def export_sentence_transformers(examples_path: Path, out_path: Path) -> int:
    """Write the examples as JSONL rows ``{"query", "positive", "negative"}`` (the column
    layout of sentence-transformers / Hugging Face ``datasets`` triplet data); returns the
    number of rows. ``datasets.load_dataset("json", data_files=...)`` reads it as is."""
    return write_records(out_path, iter_triples(read_records(examples_path, TrainingExample)))


def read_st_triples(path: Path) -> Iterator[Triple]:
    """Rows of a file written by :func:`export_sentence_transformers`."""
    return read_records(path, Triple)


def tsv_field(text: str) -> str:
    """``text`` on one line without tabs (runs of whitespace become one space)."""
    return " ".join(text.split())


def export_tsv_triples(examples_path: Path, out_path: Path) -> int:
    """Write InPars-style ``query<TAB>positive<TAB>negative`` lines (whitespace inside a
    field collapsed to single spaces); returns the number of lines."""
    count = 0
    with atomic_open(out_path) as handle:
        for triple in iter_triples(read_records(examples_path, TrainingExample)):
            handle.write(f"{tsv_field(triple.query)}\t{tsv_field(triple.positive)}\t{tsv_field(triple.negative)}\n")
            count += 1
    return count


def read_tsv_triples(path: Path) -> Iterator[Triple]:
    """Rows of a ``query<TAB>positive<TAB>negative`` file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found. Fix: check the path")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise BadLineError(path, number, None, f"{len(fields)} tab-separated fields instead of 3",
                                   "write 'query<TAB>positive<TAB>negative' on each line")
            yield Triple(*fields)


EXPORTERS = {
    "sentence-transformers": (ST_TRIPLES, export_sentence_transformers),
    "tsv": (TSV_TRIPLES, export_tsv_triples),
}


# --------------------------------------------------------------------------- stage
def negatives_stage(
    ctx: StageContext,
    cfg: NegativesConfig,
    kept_path: Path,
    bm25: LexicalIndex,
    *,
    dense: DenseRetriever | None = None,
    teacher: HybridTeacher | None = None,
    qrels: Sequence[Qrel] | None = None,
    held_out: Collection[str] = (),
    labeller: CrossEncoderTeacher | None = None,
) -> None:
    """Mine negatives for every query of ``kept_path`` (the filter stage's ``kept.jsonl``)
    into ``examples.jsonl`` (with the teacher's labels when ``cfg.teacher`` asks for them),
    then export it in the formats of ``cfg.export``. Queries in ``held_out`` (a label-free
    dev set) are left out of the examples.

    Resumable: examples already written by an interrupted run are kept, and mining goes
    on from the next query (each query's sample depends only on the seed and its id).
    """
    out = ctx.out_dir / EXAMPLES
    with ctx.timed("mine"):
        stats = mine_to_file(ctx, cfg, Path(kept_path), out, bm25, dense=dense, teacher=teacher, qrels=qrels,
                             held_out=held_out, labeller=labeller)
    if held_out:
        stats["held_out_dev"] = len(held_out)
    ctx.output("examples", out)
    with ctx.timed("export"):
        for name in cfg.export:
            filename, exporter = EXPORTERS[name]
            stats[f"rows_{name}"] = exporter(out, ctx.out_dir / filename)
            ctx.output(name, ctx.out_dir / filename)
    ctx.counts.update(stats)
    if stats["short"]:
        ctx.drops["fewer_negatives_than_asked"] = stats["short"]


def real_examples_stage(
    ctx: StageContext,
    cfg: NegativesConfig,
    pairs: Sequence[SyntheticQuery],
    qrels: Sequence[Qrel],
    bm25: LexicalIndex,
    *,
    dense: DenseRetriever | None = None,
    teacher: HybridTeacher | None = None,
    labeller: CrossEncoderTeacher | None = None,
) -> None:
    """Training examples from the collection's judged train queries (the worth table's
    reference; see ``Workspace.real_training_queries``), mined exactly as the synthetic ones
    into ``real-examples.jsonl``, judged-relevant documents never negatives."""
    queries = ctx.out_dir / REAL_QUERIES
    if not queries.is_file():
        write_records(queries, pairs)
    out = ctx.out_dir / REAL_EXAMPLES
    with ctx.timed("mine_real"):
        stats = mine_to_file(ctx, cfg, queries, out, bm25, dense=dense, teacher=teacher, qrels=qrels,
                             labeller=labeller)
    ctx.output("real_examples", out)
    ctx.counts.update({f"real_{key}": value for key, value in stats.items()})
    if stats["short"]:
        ctx.drops["real: fewer_negatives_than_asked"] = stats["short"]


def mine_to_file(
    ctx: StageContext,
    cfg: NegativesConfig,
    queries_path: Path,
    out: Path,
    bm25: LexicalIndex,
    *,
    dense: DenseRetriever | None,
    teacher: HybridTeacher | None,
    qrels: Sequence[Qrel] | None,
    held_out: Collection[str] = (),
    labeller: CrossEncoderTeacher | None = None,
) -> dict[str, int]:
    """Mine examples for the queries of ``queries_path`` (but those in ``held_out``) into
    ``out``, going on after the examples an interrupted run already wrote; counts of what
    ``out`` holds."""
    from tqdm import tqdm

    def queries() -> Iterator[SyntheticQuery]:
        return (q for q in read_records(queries_path, SyntheticQuery) if q.query_id not in held_out)

    done = sum(1 for _ in read_records(out, TrainingExample)) if out.is_file() else 0
    total = sum(1 for _ in queries())
    if done > total:
        raise DataError(f"{out}: holds {done} examples for {total} queries. Fix: delete it and rerun")
    if done:
        log.info("negatives: resuming %s after %d of %d examples", out.name, done, total)
    remaining = (q for i, q in enumerate(queries()) if i >= done)
    with RecordAppender(out) as appender, tqdm(
        total=total, initial=done, desc=out.stem, unit="query", disable=total < 2 * cfg.batch_size
    ) as bar:
        for batch in chunked(mine_negatives(remaining, bm25, cfg, dense=dense, teacher=teacher, qrels=qrels,
                                            seed=ctx.seed, labeller=labeller), cfg.batch_size):
            appender.write(batch)
            bar.update(len(batch))
    wanted = cfg.count + (cfg.dense_count if dense is not None else 0)
    stats = {"examples": 0, "negatives": 0, "short": 0, "teacher_labelled": 0}
    for example in read_records(out, TrainingExample):
        stats["examples"] += 1
        stats["negatives"] += len(example.negative_ids)
        stats["short"] += len(example.negative_ids) < wanted
        stats["teacher_labelled"] += bool(example.teacher_scores)
    log.info("negatives: %s: %d examples, %d negatives (%d examples short of %d)", out.name,
             stats["examples"], stats["negatives"], stats["short"], wanted)
    return stats
