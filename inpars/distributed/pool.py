"""A pool of Ray actors that runs tasks (shards), one at a time per actor, and survives
the death of an actor.

Each actor is made by ``make_actor()`` and readied by its ``setup()`` method (where it loads
its model, so that a model that cannot load is an error of the task, with its message, not
a dead actor). :meth:`ActorPool.run` hands each idle actor the next task and yields
``(task, result)`` as tasks finish. When an actor dies mid-task (killed, out of memory, its
node lost), the actor is replaced and its task handed out again, up to ``max_attempts``
times in all; the task's own resume protocol (the shard files) decides what is redone. An
error raised by the task itself is not retried: it is raised here, as the inpars error the
actor raised when it was one.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from inpars.errors import InparsError, StageError

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 3  # runs of one task, first one included, before the stage gives up
LOGS_FIX = ("look at the worker logs (/tmp/ray/session_latest/logs on the actor's node) for why it died "
            "(memory is the usual cause: lower ray_actors or batch_docs), or set executor = 'local'")


class ActorPool(Generic[T]):
    """Runs tasks on ``size`` actors (see the module doc); :meth:`close` kills them."""

    def __init__(self, ray: Any, make_actor: Callable[[], Any], size: int, *, where: str,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self._ray = ray
        self._make = make_actor
        self._size = size
        self._where = where
        self._max_attempts = max_attempts
        self._idle: list[Any] = []
        self._live: list[Any] = []
        self.infos: list[Any] = []  # what each actor's setup() returned, replacements included
        self.restarts: list[dict[str, Any]] = []  # one entry per actor replaced: the task and why

    def start(self) -> list[Any]:
        """Start the actors and wait until each has run ``setup()``; returns what they said."""
        handles = [self._make() for _ in range(self._size)]
        self._live = list(handles)
        refs = [handle.setup.remote() for handle in handles]  # all load at once
        self.infos = [self._get(ref, "starting its actors") for ref in refs]
        self._idle = list(handles)
        return self.infos

    def run(self, tasks: Iterable[T], submit: Callable[[Any, T], Any], label: Callable[[T], str]
            ) -> Iterator[tuple[T, Any]]:
        """Yield ``(task, result)`` for every task, in the order they finish.

        ``submit(actor, task)`` starts a task and returns its object ref; ``label(task)``
        names it in messages. Tasks are drawn from ``tasks`` only as actors become free."""
        died = self._death_errors()
        source = iter(tasks)
        again: deque[T] = deque()
        attempts: Counter[str] = Counter()
        flight: dict[Any, tuple[Any, T]] = {}
        exhausted = False
        while True:
            while self._idle and (again or not exhausted):
                task = again.popleft() if again else next(source, None)
                if task is None:
                    exhausted = True
                    break
                actor = self._idle.pop()
                flight[submit(actor, task)] = (actor, task)
            if not flight:
                return
            ready, _ = self._ray.wait(list(flight), num_returns=1)
            actor, task = flight.pop(ready[0])
            try:
                value = self._get(ready[0], label(task))
            except died as exc:
                attempts[label(task)] += 1
                self._replace(actor, label(task), attempts[label(task)], exc)
                again.append(task)
                continue
            self._idle.append(actor)
            yield task, value

    def broadcast(self, method: str) -> list[Any]:
        """Call ``method`` on every actor (none may be busy) and wait for them all."""
        refs = [getattr(actor, method).remote() for actor in self._live]
        return [self._get(ref, f"{method} on its actors") for ref in refs]

    def close(self) -> None:
        """Kill every actor of the pool (their models go with them)."""
        for actor in self._live:
            self._kill(actor)
        self._live, self._idle = [], []

    def _replace(self, actor: Any, what: str, attempt: int, exc: Exception) -> None:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if attempt >= self._max_attempts:
            raise StageError(f"{self._where} {what}: its Ray actor died {attempt} times (last: {reason}). "
                             f"Fix: {LOGS_FIX}") from exc
        log.warning("%s %s: its Ray actor died (%s); starting another one to run it again (attempt %d of %d)",
                    self._where, what, reason, attempt + 1, self._max_attempts)
        self._kill(actor)
        self._live = [a for a in self._live if a is not actor]
        fresh = self._make()
        self._live.append(fresh)
        self.infos.append(self._get(fresh.setup.remote(), "starting a replacement actor"))
        self._idle.append(fresh)
        self.restarts.append({"task": what, "attempt": attempt + 1, "reason": reason})

    def _get(self, ref: Any, what: str) -> Any:
        """``ray.get``, with an inpars error raised by the actor raised as itself."""
        from ray.exceptions import ActorUnschedulableError, RayTaskError

        try:
            return self._ray.get(ref)
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, InparsError):
                raise cause from None
            raise
        except ActorUnschedulableError as exc:
            raise StageError(f"{self._where} {what}: Ray cannot place an actor ({exc}). Fix: lower "
                             "ray_actor_cpus / ray_actor_gpus to what one node has") from exc

    def _kill(self, actor: Any) -> None:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception as exc:  # already gone, or the cluster is going away
            log.debug("%s: killing an actor: %s", self._where, exc)

    @staticmethod
    def _death_errors() -> tuple[type[Exception], ...]:
        from ray.exceptions import RayActorError, WorkerCrashedError

        return RayActorError, WorkerCrashedError
