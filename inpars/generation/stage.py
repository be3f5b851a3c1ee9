"""The ``generate`` stage: a collection in, synthetic queries (shards) out."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpars.config import GenerateConfig
from inpars.data import Collection
from inpars.distributed.settings import RaySettings, ray_settings
from inpars.errors import StageError
from inpars.generation.backends import Backend, load_backend
from inpars.generation.parsing import QueryCheck
from inpars.generation.prompts import (
    FewShotExample,
    NeighbourProvider,
    PromptBuilder,
    check_no_test_queries,
    select_examples,
)
from inpars.generation.runner import GenerationResult, RunSettings, generate_queries
from inpars.generation.sampling import SamplingSettings
from inpars.generation.selection import choose_documents, iter_documents
from inpars.generation.shards import (
    SCRATCH_DIR,
    THREADS_FILE,
    record_threads,
    recorded_threads,
    unfinished_shards,
)
from inpars.generation.templates import Template, load_template
from inpars.io import write_text
from inpars.manifest import ALL_SESSIONS_TIMING, StageContext
from inpars.records import Query

log = logging.getLogger(__name__)


def sampling_settings(cfg: GenerateConfig) -> SamplingSettings:
    """The sampling part of a ``[generate]`` section."""
    return SamplingSettings(
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=cfg.top_k,
        greedy_first=cfg.greedy_first,
        stop=tuple(cfg.stop),
        max_sentences=cfg.max_sentences,
    )


def resume_threads(cfg: GenerateConfig, shards: Path) -> GenerateConfig:
    """``cfg`` with the thread count an earlier session of this run recorded in ``shards``
    (results depend on it, so a resumed run must compute with the same count). An explicit
    ``[generate] threads`` still wins, with a warning when it differs."""
    recorded = recorded_threads(shards)
    if recorded is None or recorded == cfg.threads:
        return cfg
    if cfg.threads:
        log.warning("generate: [generate] threads = %d, but the queries in %s so far were generated with "
                    "%d threads (%s); the rest may differ from what %d threads would give",
                    cfg.threads, shards, recorded, THREADS_FILE, recorded)
        return cfg
    log.info("generate: resuming with the %d threads this run started with (%s), whatever the load now",
             recorded, shards / THREADS_FILE)
    return dataclasses.replace(cfg, threads=recorded)


@dataclass(frozen=True)
class _Plan:
    """What the generate stage decided before any model loads."""

    template: Template
    examples: list[FewShotExample]
    test_queries: list[Query]
    collection: Collection
    doc_ids: list[str]
    run: RunSettings
    neighbours: NeighbourProvider | None


@dataclass(frozen=True)
class _Generated:
    """What a generation session reports, wherever it ran."""

    result: GenerationResult
    kind: str
    threads: int | None
    prefix_tokens: int
    executor: dict[str, Any]


def generate_stage(
    ctx: StageContext, cfg: GenerateConfig, collection: Collection, *, train_split: str, test_split: str,
    dense_dir: Path | None = None, encoder: Any = None, neighbours: NeighbourProvider | None = None,
    load: Callable[[GenerateConfig], Backend] | None = None, doc_ids: Sequence[str] | None = None,
) -> None:
    """Write ``cfg.queries_per_doc`` queries for each chosen document into ``ctx.out_dir/shards``.

    Fills ``ctx.counts`` (docs, queries, rejected...), ``ctx.drops`` (rejects by reason)
    and ``ctx.extra`` (``example_query_ids``: the train queries shown as few-shot
    examples, which evaluation must leave out; ``doc_selection``: how the documents were
    chosen, with the ids and cluster sizes for ``doc_sampling = "clusters"``; throughput;
    the prompt's prefix size; the thread count, which a resumed run reuses:
    :func:`resume_threads`; ``executor``: where it ran). ``clusters`` sampling clusters the
    vectors of the dense index in ``dense_dir`` when given, else the corpus encoded with
    ``encoder`` (default: MiniLM). ``neighbours`` finds the documents a ``{neighbours}``
    template shows beside each target. ``load`` makes the backend from the section (default
    :func:`~inpars.generation.backends.load_backend`). With ``executor = "ray"`` the shards
    run on the actors of a Ray cluster (:mod:`inpars.distributed.generation`), with the
    same files and records. ``doc_ids`` names the documents itself (generated in collection
    order), in place of ``cfg.num_docs`` and ``cfg.doc_sampling`` (a refinement round:
    :mod:`inpars.refinement`).
    """
    template = load_template(cfg.template)
    splits = collection.splits()
    test_queries = collection.split_queries(test_split) if test_split in splits else []
    examples = []
    if template.uses_examples:
        examples = select_examples(
            collection, train_split=train_split, test_split=test_split, k=cfg.num_examples, seed=ctx.seed
        )
    if doc_ids is not None:
        chosen, ctx.extra["doc_selection"] = list(doc_ids), {"how": "given", "docs": len(doc_ids)}
    else:
        with ctx.timed("select_docs"):  # before the model loads: clustering may need memory and time
            chosen, ctx.extra["doc_selection"] = choose_documents(
                collection, num_docs=cfg.num_docs, how=cfg.doc_sampling, seed=ctx.seed,
                clusters=cfg.clusters, dense_dir=dense_dir, encoder=encoder,
            )
    plan = _Plan(template, examples, test_queries, collection, chosen,
                 run_settings(cfg, template.name, ctx.seed), neighbours)
    ray = ray_settings(cfg)
    if ray is None:
        done = _generate_here(ctx, cfg, plan, load)
    else:
        done = _generate_on_ray(ctx, cfg, plan, ray, load)
    ctx.timings[ALL_SESSIONS_TIMING] = done.result.batch_seconds  # generation time of every session
    ctx.output("shards", ctx.out_dir / "shards")
    ctx.output("prompt_prefix", ctx.out_dir / "prompt_prefix.txt")
    _record(ctx, done.result, examples=examples, template=template)
    ctx.extra.update({"backend": done.kind, "model": cfg.model, "threads": done.threads,
                      "prompt_prefix_tokens": done.prefix_tokens, "executor": done.executor})


def prompt_builder(cfg: GenerateConfig, template: Template, backend: Backend,
                   examples: Sequence[FewShotExample], neighbours: NeighbourProvider | None) -> PromptBuilder:
    """The prompt builder of a ``[generate]`` section, cutting with ``backend``'s tokenizer."""
    return PromptBuilder(
        template,
        truncate=backend.truncate,
        doc_max_tokens=cfg.doc_max_tokens,
        examples=examples,
        example_max_tokens=cfg.example_max_tokens,
        neighbours=neighbours,  # the neighbours template: the target's BM25 neighbours
        neighbour_count=cfg.neighbours,
        neighbour_max_tokens=cfg.neighbour_max_tokens,
    )


def _write_prefix(ctx: StageContext, prefix: str, plan: _Plan) -> None:
    """Refuse a prompt that shows a test query, then keep its shared part."""
    check_no_test_queries(prefix, plan.examples, plan.test_queries)
    write_text(ctx.out_dir / "prompt_prefix.txt", prefix)


def _generate_here(ctx: StageContext, cfg: GenerateConfig, plan: _Plan,
                   load: Callable[[GenerateConfig], Backend] | None) -> _Generated:
    """The shards generated in this process, one backend."""
    shards = ctx.out_dir / "shards"
    with ctx.timed("load_model"):
        backend = (load or load_backend)(resume_threads(cfg, shards))
    threads = backend.thread_count()
    try:
        if threads is not None:
            record_threads(shards, threads, backend.kind)
        builder = prompt_builder(cfg, plan.template, backend, plan.examples, plan.neighbours)
        _write_prefix(ctx, builder.prefix, plan)
        with ctx.timed("generate"):
            result = generate_queries(
                iter_documents(plan.collection, plan.doc_ids),
                shards,
                backend=backend,
                builder=builder,
                run=plan.run,
                total=len(plan.doc_ids),
            )
        prefix_tokens = backend.count_tokens(builder.prefix)
    finally:
        backend.close()
    shutil.rmtree(ctx.out_dir / SCRATCH_DIR, ignore_errors=True)  # left by an earlier session on Ray
    return _Generated(result, backend.kind, threads, prefix_tokens, {"kind": "local"})


def _generate_on_ray(ctx: StageContext, cfg: GenerateConfig, plan: _Plan, ray: RaySettings,
                     load: Callable[[GenerateConfig], Backend] | None) -> _Generated:
    """The shards generated on the actors of a Ray cluster, one backend each; with
    ``threads = 0`` each computes with ``ray_actor_cpus`` threads (or the recorded count)."""
    from inpars.distributed.generation import GenerationJob, RayGeneration

    shards = ctx.out_dir / "shards"
    resolved = resume_threads(cfg, shards)
    if resolved.threads == 0:
        resolved = dataclasses.replace(resolved, threads=ray.threads())
    job = GenerationJob(resolved, plan.template, tuple(plan.examples), plan.run,
                        str(ctx.out_dir / SCRATCH_DIR), neighbours=plan.neighbours is not None, load=load)
    todo = unfinished_shards(shards, len(plan.doc_ids), plan.run.shard_docs)
    with ExitStack() as stack:
        with ctx.timed("load_model"):  # the cluster started or joined, and a model loaded on each actor
            session = stack.enter_context(RayGeneration(job, ray, shards_to_do=todo))
        info = session.info
        if info is None:
            raise StageError("[generate] the Ray actors reported nothing. Fix: rerun the stage")
        if info.threads is not None:
            record_threads(shards, info.threads, info.kind)
        _write_prefix(ctx, info.prefix, plan)
        with ctx.timed("generate"):
            result = session.generate(iter_documents(plan.collection, plan.doc_ids), shards,
                                      total=len(plan.doc_ids), neighbours=plan.neighbours)
        executor = session.record()
    return _Generated(result, info.kind, info.threads, info.prefix_tokens, executor)


def run_settings(cfg: GenerateConfig, template: str, seed: int) -> RunSettings:
    """What, besides the documents, decides the records of a run of this ``[generate]`` section."""
    return RunSettings(
        template=template,
        model=cfg.model,
        queries_per_doc=cfg.queries_per_doc,
        seed=seed,
        sampling=sampling_settings(cfg),
        limits=QueryCheck(cfg.min_query_words, cfg.max_query_words, cfg.max_copied_ngram),
        batch_docs=cfg.batch_docs,
        shard_docs=cfg.shard_docs,
    )


def _record(ctx: StageContext, result: GenerationResult, *, examples: Sequence[FewShotExample],
            template: Template) -> None:
    """Counts, drops and the run's extras (few-shot examples, template, throughput)."""
    ctx.counts.update(
        {
            "docs": result.docs,
            "empty_docs": result.empty_docs,
            "queries": result.queries,
            "rejected": result.rejected,
            "samples": result.queries + result.rejected,
        }
    )
    ctx.drops.update(result.rejects)
    ctx.extra.update(
        {
            "example_query_ids": [ex.query_id for ex in examples],
            "example_doc_ids": [ex.doc_id for ex in examples],
            "template": template.name,
            "template_source": template.source,
            "throughput": {
                "docs_per_s": round(result.docs_per_s, 3),
                "queries_per_s": round(result.queries_per_s, 3),
                "generated_tokens_per_s": round(result.tokens_per_s, 1),
                "session_docs": result.session_docs,
                "seconds": round(result.seconds, 1),
                "batch_seconds_all_sessions": round(result.batch_seconds, 1),
            },
            "backend_stats": result.backend_stats,
        }
    )
