"""The rerank stage's scoring on Ray (``[rerank] executor = "ray"``), and the filter stage's
reranker step (``[filter] executor = "ray"``).

:func:`inpars.reranking.rerank` cuts the (query, document) pairs to rescore into chunks of
``CHUNK_PAIRS`` and scores them in order. On Ray, :class:`RayChunkScorer` hands groups of
:data:`CHUNKS_PER_TASK` chunks to the actors of an
:class:`~inpars.distributed.pool.ActorPool`, each holding one scorer of the system (loaded
from its :class:`~inpars.reranking.SystemSpec` on the actor, with the ``[rerank]``
settings), and gives the scores back in the order of the chunks. Every chunk is scored by
one ``score()`` call with the same pairs as in a local run, so with the same thread count
(``threads``, or ``ray_actor_cpus`` when it is 0) the scores, and the run files the driver
writes, are the same. An actor that dies loses the chunks in flight, which another actor
scores again; a rerun of the stage keeps the systems whose run file is written.

The reranker filter step sends its chunks the same way, with a :class:`ScorerRecipe` (how its
step loads the scorer, run on each actor) in place of a ``SystemSpec``; its scores are
appended to the step's cache in chunk order, as in a local run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from inpars.config import RerankConfig
from inpars.distributed.cluster import actors_that_fit, ray_cluster
from inpars.distributed.pool import ActorPool
from inpars.distributed.settings import RaySettings
from inpars.errors import StageError
from inpars.io import chunked

if TYPE_CHECKING:
    from inpars.reranking import SystemSpec
    from inpars.scoring import Scorer

log = logging.getLogger(__name__)

CHUNKS_PER_TASK = 4  # chunks of CHUNK_PAIRS pairs an actor scores per task (what a dead actor loses)
WHERE = "[rerank]"
Pairs = list[tuple[str, str]]


@runtime_checkable
class ScorerRecipe(Protocol):
    """How an actor makes its scorer (picklable): e.g. the filter's reranker step settings."""

    def load_scorer(self) -> Scorer: ...


@dataclass(frozen=True)
class ChunkTask:
    """Consecutive chunks of pairs, the ``index``-th group of the system's chunks."""

    index: int
    chunks: tuple[Pairs, ...]


class ScoringWorker:
    """A Ray actor's state: one scorer (wrapped by ``ray.remote``)."""

    def __init__(self, system: SystemSpec | ScorerRecipe | Scorer, cfg: RerankConfig | None) -> None:
        self.system = system
        self.cfg = cfg
        self.scorer: Scorer | None = None

    def setup(self) -> dict[str, Any]:
        from inpars.reranking import SystemSpec, load_system

        system = self.system
        if isinstance(system, SystemSpec):
            if self.cfg is None:
                raise StageError("a SystemSpec was sent to Ray without its [rerank] settings. Fix: pass the "
                                 "RerankConfig to RayScoring")
            self.scorer = load_system(system, self.cfg)
        elif isinstance(system, ScorerRecipe):
            self.scorer = system.load_scorer()
        else:
            self.scorer = system
        return {"node": socket.gethostname(), "pid": os.getpid()}

    def score(self, chunks: list[Pairs]) -> list[list[float]]:
        if self.scorer is None:
            raise StageError("a scoring actor scored before setup(). Fix: rerun the stage")
        return [[float(v) for v in self.scorer.score(chunk)] for chunk in chunks]


class RayChunkScorer:
    """Scores chunks of pairs on a pool of :class:`ScoringWorker` actors, in order."""

    def __init__(self, pool: ActorPool[ChunkTask], chunks_per_task: int = CHUNKS_PER_TASK,
                 where: str = WHERE) -> None:
        self.pool = pool
        self.chunks_per_task = chunks_per_task
        self.where = where

    def score_chunks(self, chunks: Iterable[Pairs]) -> Iterator[list[float]]:
        """One list of scores per chunk, in the order of ``chunks`` (drawn as actors free up)."""
        per = self.chunks_per_task
        tasks = (ChunkTask(i, tuple(group)) for i, group in enumerate(chunked(chunks, per)))
        finished: dict[int, list[list[float]]] = {}
        following = 0

        def label(t: ChunkTask) -> str:
            return f"chunks {t.index * per}-{t.index * per + len(t.chunks) - 1}"

        for task, values in self.pool.run(tasks, lambda actor, t: actor.score.remote(list(t.chunks)), label):
            if len(values) != len(task.chunks):
                raise StageError(f"{self.where} an actor returned {len(values)} score lists for "
                                 f"{len(task.chunks)} chunks. Fix: rerun the stage")
            finished[task.index] = values
            while following in finished:
                yield from finished.pop(following)
                following += 1


class RayScoring:
    """A stage's Ray cluster, joined on first use (a ``with`` block), and one pool of actors
    per system (:meth:`scorer`). ``cfg``: the ``[rerank]`` settings a ``SystemSpec`` loads
    with (``None`` for a stage that sends recipes or scorers, which then give ``threads``);
    ``where`` names the section in messages."""

    def __init__(self, cfg: RerankConfig | None, settings: RaySettings, *, threads: int = 0,
                 where: str = WHERE) -> None:
        # a scorer on an actor computes with the CPUs Ray reserved for it, unless told otherwise
        self.threads = (cfg.threads if cfg is not None else threads) or settings.threads()
        self.cfg = dataclasses.replace(cfg, threads=self.threads) if cfg is not None else None
        self.settings = settings
        self.where = where
        self._stack = ExitStack()
        self._ray: ModuleType | None = None
        self.restarts: list[dict[str, Any]] = []
        self.nodes: set[str] = set()

    def __enter__(self) -> RayScoring:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @contextmanager
    def scorer(self, system: SystemSpec | ScorerRecipe | Scorer, chunks: int = 0) -> Iterator[RayChunkScorer]:
        """A chunk scorer over ``ray_actors`` actors of ``system`` (killed on exit); no more
        actors than the tasks ``chunks`` chunks make, when that count is given."""
        if self._ray is None:
            self._ray = self._stack.enter_context(ray_cluster(self.settings, self.where))
        ray = self._ray
        tasks = -(-chunks // CHUNKS_PER_TASK) if chunks > 0 else self.settings.actors
        size = actors_that_fit(ray, self.settings, max(1, min(self.settings.actors, tasks)), self.where)
        worker = ray.remote(ScoringWorker).options(
            num_cpus=self.settings.actor_cpus, num_gpus=self.settings.actor_gpus, max_restarts=0)
        pool: ActorPool[ChunkTask] = ActorPool(ray, lambda: worker.remote(system, self.cfg), size,
                                               where=self.where)
        try:
            pool.start()
            yield RayChunkScorer(pool, where=self.where)
        finally:
            self.restarts += pool.restarts
            self.nodes |= {info["node"] for info in pool.infos}
            pool.close()

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of the scoring on Ray."""
        return {"kind": "ray", **self.settings.as_dict(), "threads": self.threads,
                "nodes": sorted(self.nodes), "actor_restarts": list(self.restarts)}
