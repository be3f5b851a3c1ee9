"""Choosing llama.cpp's thread count by measuring, while generating.

On a machine whose cores other processes also use, more threads can be much slower:
with two cores and one of them busy, two threads wait on each other at every step
(Gemma 270M decoding fell from ~40 to ~4 tokens/s). :class:`ThreadTuner` times each kind
of work (prompt chunks, decoding steps) with each candidate count, keeps the fastest, and
now and then tries the others again, less often each time they lose. llama.cpp's results
do not depend on the thread count (each output value is computed by one thread), so
tuning never changes what is generated.
"""

from __future__ import annotations

import os

START_INTERVAL = 16
MAX_INTERVAL = 1024


def usable_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def work_kind(kind: str, tokens: int) -> str:
    """``kind`` with the size class of the work (tokens rounded up to a power of two).

    Seconds per token depend on how many tokens one call evaluates (a fixed cost per call
    is shared among them), so counts are only compared on calls of about the same size: a
    probe that happened to get a 3-token decoding step must not lose against an estimate
    made on 12-token steps."""
    return f"{kind}/{1 << max(0, tokens - 1).bit_length()}"


class ThreadTuner:
    """Per kind of work: a seconds-per-token estimate for each candidate thread count."""

    def __init__(self, choices: list[int]) -> None:
        self.choices = sorted(set(choices))
        self._cost: dict[str, dict[int, float]] = {}
        self._calls: dict[str, int] = {}
        self._interval: dict[str, int] = {}
        self._next_probe: dict[str, int] = {}

    @classmethod
    def automatic(cls) -> ThreadTuner:
        """Candidates 1 and every usable core (one candidate on a single core)."""
        return cls([1, usable_cores()])

    def kinds(self) -> list[str]:
        """The kinds of work measured so far."""
        return sorted(self._cost)

    def best(self, kind: str) -> int:
        costs = self._cost.get(kind, {})
        return min(costs, key=lambda c: costs[c]) if costs else self.choices[-1]

    def pick(self, kind: str) -> int:
        """The thread count to use for the next piece of work of this kind."""
        costs = self._cost.setdefault(kind, {})
        calls = self._calls[kind] = self._calls.get(kind, 0) + 1
        untried = [c for c in self.choices if c not in costs]
        if untried:
            return untried[-1]
        if calls >= self._next_probe.setdefault(kind, START_INTERVAL):
            best = self.best(kind)
            others = [c for c in self.choices if c != best]
            return others[calls % len(others)] if others else best
        return self.best(kind)

    def record(self, kind: str, threads: int, seconds: float, tokens: int) -> None:
        """Report how long ``tokens`` tokens of work took with ``threads`` threads."""
        if tokens <= 0:
            return
        costs = self._cost.setdefault(kind, {})
        per_token = seconds / tokens
        was_best = self.best(kind) if costs else threads
        calls = self._calls.get(kind, 0)
        probe = threads != was_best and calls >= self._next_probe.get(kind, START_INTERVAL)
        old = costs.get(threads)
        # a probe's old estimate is stale: replace it; otherwise smooth
        costs[threads] = per_token if old is None or probe else 0.7 * old + 0.3 * per_token
        if probe:
            # when the probe lost, wait twice as long before the next one
            lost = self.best(kind) == was_best
            interval = self._interval.get(kind, START_INTERVAL)
            interval = min(interval * 2, MAX_INTERVAL) if lost else START_INTERVAL
            self._interval[kind] = interval
            self._next_probe[kind] = calls + interval
