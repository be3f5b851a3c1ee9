"""Choosing llama.cpp's thread count by measuring, once, before generating.

On a machine whose cores other processes also use, more threads can be much slower:
with two cores and one of them busy, two threads wait on each other at every step
(Gemma 270M decoding fell from ~40 to ~4 tokens/s). So when ``[generate] threads`` is 0
the backend times a few decoding steps with each candidate count (:func:`fastest`) and
keeps the fastest for the whole run.

The count is never changed while generating, because llama.cpp's results *do* depend on
it: its matrix products split their sums among the threads, and floating-point sums in
another order differ in the last bits, enough to change a sampled token now and then
(1 and 2 threads give different samples). The generate stage records the count it used
(``shards/threads.json``) and a resumed run uses it again, so that a run stopped and
resumed writes what an uninterrupted one writes; set ``[generate] threads`` to make runs
on different machines (or under different load) comparable too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

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


def fastest(choices: Sequence[int], timer: Callable[[int], float], rounds: int = 3,
            margin: float = 2.0) -> int:
    """The thread count among ``choices`` whose work ``timer(threads)`` (its seconds) is
    fastest on average: one untimed warm-up with the fewest threads, then rounds that time
    every candidate in turn (a change of load weighs on all of them). A candidate over
    ``margin`` times slower than the best is dropped after a round: on a busy core one
    step with too many threads can take seconds, so it is not timed again."""
    live = sorted(set(choices))
    if len(live) == 1:
        return live[0]
    timer(live[0])
    totals = dict.fromkeys(live, 0.0)
    for _ in range(rounds):
        for threads in live:
            totals[threads] += timer(threads)
        best = min(totals[t] for t in live)
        live = [t for t in live if totals[t] <= margin * best]
        if len(live) == 1:
            break
    return min(live, key=lambda t: (totals[t], t))  # the candidates left were timed equally often


class ThreadTuner:
    """Per kind of work: a seconds-per-token estimate for each candidate thread count, with
    an adaptive :meth:`pick`. Generation no longer uses it (switching counts mid-run would
    change the samples; see the module docstring): :func:`fastest` chooses once."""

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
