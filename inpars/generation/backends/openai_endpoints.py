"""Client-side load balancing and health over several OpenAI-compatible endpoints.

:class:`EndpointPool` hands each request attempt one endpoint:

- the healthy endpoints that this request has not tried yet come first, then healthy ones it
  has tried, then (when every endpoint is cooling down) the one whose cool-down ends first;
- within that tier, the endpoint with the fewest requests in flight (least outstanding
  requests); ties go round-robin, so sequential requests alternate over equal endpoints;
- ``unhealthy_after`` failures in a row mark an endpoint unhealthy for ``cooldown_s``
  seconds; after that one request probes it again: a success makes it healthy, a failure
  starts another cool-down.

Every endpoint counts its answered (``ok``), failed and rejected (4xx) attempts and the
times it was marked unhealthy; :meth:`EndpointPool.stats` gives them as flat counters for
the backend's ``stats`` (and so the generate stage's manifest), :meth:`EndpointPool.summary`
as one log line. Thread-safe: the backend's request threads share one pool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Outcome = Literal["ok", "failed", "rejected", "aborted"]  # aborted: interrupted, counts nowhere


@dataclass
class Endpoint:
    """One server (its ``api_base``) and what happened to the requests sent to it."""

    index: int
    base: str
    outstanding: int = 0
    ok: int = 0
    failed: int = 0
    rejected: int = 0
    failures_in_a_row: int = 0
    unhealthy_until: float = 0.0  # monotonic time; 0: never marked
    marked_unhealthy: int = 0

    @property
    def url(self) -> str:
        return self.base + "/completions"

    def healthy(self, now: float) -> bool:
        return now >= self.unhealthy_until

    def state(self, now: float, unhealthy_after: int) -> str:
        if not self.healthy(now):
            return f"unhealthy (retried in {self.unhealthy_until - now:.0f}s)"
        return "on probation" if self.failures_in_a_row >= unhealthy_after else "healthy"


class EndpointPool:
    """Which endpoint each attempt goes to, and the health of each (see the module doc)."""

    def __init__(
        self,
        bases: Sequence[str],
        *,
        unhealthy_after: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not bases:
            raise ValueError("EndpointPool needs at least one endpoint")
        if unhealthy_after < 1 or cooldown_s < 0:
            raise ValueError("unhealthy_after must be at least 1 and cooldown_s 0 or more")
        self.endpoints = [Endpoint(i, base) for i, base in enumerate(bases)]
        self.unhealthy_after = unhealthy_after
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._turn = 0  # round-robin cursor for ties

    def __len__(self) -> int:
        return len(self.endpoints)

    @property
    def names(self) -> str:
        return ", ".join(e.base for e in self.endpoints)

    def untried_healthy(self, tried: Collection[int]) -> bool:
        """Whether a healthy endpoint that a request has not tried yet is left (then a retry
        goes there at once; otherwise it waits its backoff first)."""
        with self._lock:
            now = self._clock()
            return any(e.healthy(now) and e.index not in tried for e in self.endpoints)

    def acquire(self, tried: Collection[int] = ()) -> Endpoint:
        """The endpoint for the next attempt of a request that already tried ``tried``;
        counted as in flight until :meth:`release`."""
        with self._lock:
            now = self._clock()
            healthy = [e for e in self.endpoints if e.healthy(now)]
            fresh = [e for e in healthy if e.index not in tried]
            if fresh or healthy:
                chosen = self._least_outstanding(fresh or healthy)
            else:  # every endpoint cools down: probe the one that is due first
                chosen = min(self.endpoints, key=lambda e: (e.unhealthy_until, e.index))
            chosen.outstanding += 1
            return chosen

    def _least_outstanding(self, candidates: list[Endpoint]) -> Endpoint:
        fewest = min(e.outstanding for e in candidates)
        tied = [e for e in candidates if e.outstanding == fewest]
        n = len(self.endpoints)
        chosen = min(tied, key=lambda e: (e.index - self._turn) % n)
        self._turn = (chosen.index + 1) % n
        return chosen

    def release(self, endpoint: Endpoint, outcome: Outcome, detail: str = "") -> None:
        """Record how an attempt on ``endpoint`` ended; ``failed`` ones count toward its health."""
        with self._lock:
            now = self._clock()
            endpoint.outstanding -= 1
            if outcome in ("rejected", "aborted"):
                endpoint.rejected += outcome == "rejected"
                return
            if outcome == "ok":
                endpoint.ok += 1
                if endpoint.failures_in_a_row >= self.unhealthy_after:
                    log.info("openai endpoint %s: healthy again (a request succeeded)", endpoint.base)
                endpoint.failures_in_a_row = 0
                endpoint.unhealthy_until = min(endpoint.unhealthy_until, now)
                return
            endpoint.failed += 1
            endpoint.failures_in_a_row += 1
            if endpoint.failures_in_a_row >= self.unhealthy_after and endpoint.healthy(now):
                endpoint.unhealthy_until = now + self.cooldown_s
                endpoint.marked_unhealthy += 1
                log.warning(
                    "openai endpoint %s: unhealthy after %d failures in a row (last: %s); it gets no "
                    "request for %.0fs while another endpoint is healthy (%d ok, %d failed so far)",
                    endpoint.base, endpoint.failures_in_a_row, detail, self.cooldown_s,
                    endpoint.ok, endpoint.failed,
                )

    def stats(self) -> dict[str, int]:
        """Flat counters per endpoint: ``endpoint[<api_base>].ok`` / ``.failed`` /
        ``.rejected`` / ``.marked_unhealthy``."""
        with self._lock:
            return {
                f"endpoint[{e.base}].{name}": getattr(e, name)
                for e in self.endpoints
                for name in ("ok", "failed", "rejected", "marked_unhealthy")
            }

    def summary(self) -> str:
        """Each endpoint's health and counts, on one line (for the log)."""
        with self._lock:
            now = self._clock()
            return "; ".join(
                f"{e.base} {e.state(now, self.unhealthy_after)}: "
                f"{e.ok} ok, {e.failed} failed, {e.rejected} rejected"
                + (f", marked unhealthy {e.marked_unhealthy}x" if e.marked_unhealthy else "")
                for e in self.endpoints
            )
