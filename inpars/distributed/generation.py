"""The generate stage's shards on Ray (``[generate] executor = "ray"``).

The driver (the ``inpars`` process) chooses the documents and cuts them into the same
shards as a local run (``shard_docs`` consecutive chosen documents). Each actor of an
:class:`~inpars.distributed.pool.ActorPool` loads one backend from the ``[generate]``
section (llama.cpp with ``threads``, transformers, or an OpenAI-compatible endpoint) and
builds the prompts itself (its tokenizer cuts the documents). For a shard it runs the
local generation loop, :func:`~inpars.generation.runner.generate_queries`, on the shard's
documents alone in a scratch folder, so every batch, seed and check is what the local run
does for that shard, and returns the shard's four files (:class:`ShardPayload`).

**Writing.** The driver alone writes the run's ``shards/`` folder: each returned file
atomically, the completion marker last (:func:`~inpars.generation.shards.write_shard_payload`).
No shared filesystem is assumed. A worker's scratch folder is ``<stage>/.ray-work/part-N``
when the stage folder is visible on its node (this machine, or a shared filesystem), so a
shard whose actor died resumes there from its last finished batch; on a node that does not
see it, the scratch folder is node-local (the system's temporary folder) and a retried shard
that lands on another node starts over. Either way nothing is written twice: the driver
writes a shard once, from one finished scratch shard.

**Resume.** Shards with a completion marker are skipped; a killed actor's shard is run
again on a fresh actor (:mod:`.pool`); a rerun of the stage resumes from the markers (and
from the scratch folders that survived). The records are those of a local run with the same
seed, shard layout and thread count: with ``threads = 0`` an actor's backend computes with
``ray_actor_cpus`` threads, recorded in ``threads.json`` like a local run's count.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.config import GenerateConfig
from inpars.distributed.cluster import actors_that_fit, ray_cluster
from inpars.distributed.pool import ActorPool
from inpars.distributed.settings import RaySettings
from inpars.errors import StageError
from inpars.generation.backends.base import Backend
from inpars.generation.prompts import FewShotExample, NeighbourProvider
from inpars.generation.runner import GenerationResult, RunSettings
from inpars.generation.shards import (
    ShardFiles,
    ShardPayload,
    check_run_file,
    check_run_ids,
    run_totals,
    write_shard_payload,
)
from inpars.generation.templates import Template
from inpars.io import chunked
from inpars.records import Document

log = logging.getLogger(__name__)

WHERE = "[generate]"


@dataclass(frozen=True)
class GenerationJob:
    """What every actor needs to generate any shard of a run."""

    cfg: GenerateConfig  # threads already resolved (see inpars.generation.stage)
    template: Template
    examples: tuple[FewShotExample, ...]
    run: RunSettings
    scratch: str  # the driver's scratch folder (SCRATCH_DIR in the stage folder)
    neighbours: bool = False  # the template shows neighbours (the driver looks them up per shard)
    load: Callable[[GenerateConfig], Backend] | None = None  # None: inpars.generation.backends.load_backend


@dataclass(frozen=True)
class WorkerInfo:
    """What an actor reports once its backend is loaded."""

    prefix: str
    prefix_tokens: int
    threads: int | None
    kind: str
    node: str
    pid: int


@dataclass(frozen=True)
class ShardTask:
    """One shard to generate: its number, its documents and (neighbours template) theirs."""

    index: int
    documents: tuple[Document, ...]
    neighbours: Mapping[str, tuple[Document, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ShardOutput:
    """A finished shard's files and what generating it took on the actor."""

    payload: ShardPayload
    session_docs: int
    session_queries: int
    session_samples: int
    stats: dict[str, int]
    node: str
    pid: int


class NeighbourTable:
    """The neighbours of the documents of the shard at hand, looked up by the driver."""

    def __init__(self) -> None:
        self.table: Mapping[str, tuple[Document, ...]] = {}

    def __call__(self, doc: Document) -> tuple[Document, ...]:
        found = self.table.get(doc.doc_id)
        if found is None:
            raise StageError(f"document {doc.doc_id!r}: the driver sent no neighbours for it. "
                             "Fix: rerun the stage (the shard is generated again)")
        return found


def scratch_root(driver_scratch: str) -> Path:
    """Where an actor generates its shards: the driver's scratch folder when this node sees
    the stage folder, else a folder of this node's temporary folder (see the module doc)."""
    root = Path(driver_scratch)
    if root.parent.is_dir():
        return root
    digest = hashlib.sha256(driver_scratch.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "inpars-ray" / digest


class GenerationWorker:
    """A Ray actor's state: one backend and its prompt builder (wrapped by ``ray.remote``)."""

    def __init__(self, job: GenerationJob) -> None:
        self.job = job
        self.backend: Backend | None = None
        self.builder: Any = None
        self.table = NeighbourTable()

    def setup(self) -> WorkerInfo:
        from inpars.generation.backends import load_backend
        from inpars.generation.stage import prompt_builder

        job = self.job
        self.backend = (job.load or load_backend)(job.cfg)
        self.builder = prompt_builder(job.cfg, job.template, self.backend, job.examples,
                                      self.table if job.neighbours else None)
        return WorkerInfo(self.builder.prefix, self.backend.count_tokens(self.builder.prefix),
                          self.backend.thread_count(), self.backend.kind, socket.gethostname(), os.getpid())

    def run_shard(self, task: ShardTask) -> ShardOutput:
        from inpars.generation.runner import generate_queries
        from inpars.generation.shards import read_shard_payload

        if self.backend is None:
            raise StageError("a generation actor ran a shard before setup(). Fix: rerun the stage")
        folder = scratch_root(self.job.scratch) / f"part-{task.index:05d}"
        self.table.table = task.neighbours
        result = generate_queries(task.documents, folder, backend=self.backend, builder=self.builder,
                                  run=self.job.run, total=len(task.documents), progress=False)
        return ShardOutput(read_shard_payload(ShardFiles(folder, 0)), result.session_docs,
                           result.session_queries, result.session_samples, dict(result.backend_stats),
                           socket.gethostname(), os.getpid())

    def cleanup(self) -> None:
        """Remove this node's scratch folder when it is node-local (the driver removes its own)."""
        root = scratch_root(self.job.scratch)
        if root != Path(self.job.scratch):
            shutil.rmtree(root, ignore_errors=True)


class RayGeneration:
    """The driver's side: a cluster and a pool of :class:`GenerationWorker` actors, for a
    ``with`` block; ``info`` is what the first actor reported (prompt prefix, threads)."""

    def __init__(self, job: GenerationJob, settings: RaySettings, *, shards_to_do: int) -> None:
        self.job = job
        self.settings = settings
        self.wanted = max(1, min(settings.actors, shards_to_do))
        self._stack = ExitStack()
        self._pool: ActorPool[ShardTask] | None = None
        self.info: WorkerInfo | None = None
        self.shards_run: list[dict[str, Any]] = []

    def __enter__(self) -> RayGeneration:
        try:
            ray = self._stack.enter_context(ray_cluster(self.settings, WHERE))
            size = actors_that_fit(ray, self.settings, self.wanted, WHERE)
            worker = ray.remote(GenerationWorker).options(
                num_cpus=self.settings.actor_cpus, num_gpus=self.settings.actor_gpus, max_restarts=0)
            pool: ActorPool[ShardTask] = ActorPool(ray, lambda: worker.remote(self.job), size, where=WHERE)
            self._stack.callback(pool.close)
            self._pool = pool
            infos = pool.start()
        except BaseException:
            self._stack.close()
            raise
        threads = {i.threads for i in infos}
        if len(threads) > 1:
            self._stack.close()
            raise StageError(f"{WHERE} the Ray actors compute with different thread counts "
                             f"{sorted(threads)}, so their queries would differ from one run to the next. "
                             "Fix: set [generate] threads")
        self.info = infos[0]
        log.info("%s %d Ray actors ready (%s backend, %s threads each) on %s", WHERE, len(infos),
                 self.info.kind, self.info.threads, ", ".join(sorted({i.node for i in infos})))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def generate(self, documents: Iterable[Document], folder: Path, *, total: int,
                 neighbours: NeighbourProvider | None = None) -> GenerationResult:
        """Generate every unfinished shard of ``documents`` into ``folder`` (see the module doc)."""
        from tqdm.auto import tqdm

        if self._pool is None:
            raise StageError("RayGeneration.generate outside its `with` block. "
                             "Fix: use `with RayGeneration(...) as session`")
        check_run_file(folder, self.job.run.layout())
        result, stats = GenerationResult(), Counter[str]()
        start = time.perf_counter()
        with tqdm(total=total, unit="doc", desc="generate (ray)", dynamic_ncols=True) as bar:
            tasks = self._tasks(documents, folder, neighbours, bar.update)
            for task, out in self._pool.run(tasks, lambda actor, t: actor.run_shard.remote(t),
                                            lambda t: f"shard {t.index}"):
                self._write(folder, task, out)
                result.session_docs += out.session_docs
                result.session_queries += out.session_queries
                result.session_samples += out.session_samples
                stats.update(out.stats)
                bar.update(len(task.documents))
        result.seconds = time.perf_counter() - start
        result.backend_stats = dict(stats)
        self._cleanup()
        totals, reasons = run_totals(folder)
        result.docs, result.empty_docs = totals["docs"], totals["empty_docs"]
        result.queries, result.rejected = totals["kept"], totals["rejected"]
        result.rejects, result.batch_seconds = reasons, totals["seconds"]
        check_run_ids(folder)
        log.info("%s generated %d queries for %d documents on Ray (%d samples rejected); this session: "
                 "%.2f docs/s over %d shards", WHERE, result.queries, result.docs, result.rejected,
                 result.docs_per_s, len(self.shards_run))
        return result

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of the run on Ray."""
        infos = self._pool.infos if self._pool is not None else []
        per_actor = Counter(f"{s['node']}:{s['pid']}" for s in self.shards_run)
        return {"kind": "ray", **self.settings.as_dict(), "actors_started": len(infos),
                "nodes": sorted({i.node for i in infos}),
                "actor_restarts": list(self._pool.restarts) if self._pool is not None else [],
                "shards_run": len(self.shards_run), "shards_per_actor": dict(sorted(per_actor.items()))}

    def _tasks(self, documents: Iterable[Document], folder: Path, neighbours: NeighbourProvider | None,
               skipped: Callable[[int], Any]) -> Iterator[ShardTask]:
        for index, docs in enumerate(chunked(documents, self.job.run.shard_docs)):
            if ShardFiles(folder, index).is_done():
                skipped(len(docs))
                continue
            table = {d.doc_id: tuple(neighbours(d)) for d in docs} if neighbours is not None else {}
            yield ShardTask(index, tuple(docs), table)

    def _write(self, folder: Path, task: ShardTask, out: ShardOutput) -> None:
        write_shard_payload(ShardFiles(folder, task.index), out.payload)
        shutil.rmtree(Path(self.job.scratch) / f"part-{task.index:05d}", ignore_errors=True)
        self.shards_run.append({"shard": task.index, "node": out.node, "pid": out.pid})
        log.info("%s shard %d: %d documents written (generated on %s, pid %d)", WHERE, task.index,
                 len(task.documents), out.node, out.pid)

    def _cleanup(self) -> None:
        """Remove the scratch folders once every shard is written."""
        if self._pool is not None:
            self._pool.broadcast("cleanup")
        shutil.rmtree(self.job.scratch, ignore_errors=True)
