"""The endpoint pool of the OpenAI-compatible backend, on a fake clock: least outstanding
requests, round-robin ties, retries away from tried endpoints, cool-down and probing."""

from __future__ import annotations

import logging

import pytest

from inpars.generation.backends.openai_endpoints import EndpointPool


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(n: int = 3, **kwargs: float) -> tuple[EndpointPool, Clock]:
    clock = Clock()
    options = {"unhealthy_after": 2, "cooldown_s": 10.0} | kwargs
    pool = EndpointPool([f"http://h{i}/v1" for i in range(n)], clock=clock,
                        unhealthy_after=int(options["unhealthy_after"]), cooldown_s=options["cooldown_s"])
    return pool, clock


def test_ties_go_round_robin_and_the_least_loaded_wins() -> None:
    pool, _ = make()
    held = [pool.acquire() for _ in range(3)]
    assert [e.index for e in held] == [0, 1, 2]
    pool.release(held[1], "ok")
    assert pool.acquire().index == 1  # the only one with nothing in flight
    pool.release(held[0], "ok")
    pool.release(held[2], "ok")
    # 0 and 2 now have nothing in flight (1 has one): the cursor stands after 1, so 2 first
    assert [pool.acquire().index for _ in range(2)] == [2, 0]


def test_a_retry_prefers_an_endpoint_the_request_has_not_tried() -> None:
    pool, _ = make()
    first = pool.acquire()
    pool.release(first, "failed")
    assert pool.untried_healthy({first.index})
    again = pool.acquire({first.index})
    assert again.index != first.index
    pool.release(again, "failed")
    last = pool.acquire({first.index, again.index})
    assert last.index not in (first.index, again.index)
    pool.release(last, "failed")
    assert not pool.untried_healthy({0, 1, 2})
    assert pool.acquire({0, 1, 2}).index in (0, 1, 2)  # all tried: any healthy one


def test_cool_down_probe_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    pool, clock = make(2)
    bad = pool.endpoints[1]
    for _ in range(2):
        bad.outstanding += 1
        pool.release(bad, "failed", "HTTP 500")
    assert bad.marked_unhealthy == 1
    assert [pool.acquire().index for _ in range(3)] == [0, 0, 0]  # resting: never chosen
    for e in pool.endpoints:
        e.outstanding = 0
    clock.now += 10.0  # cool-down over: probed again
    assert pool.acquire({0}).index == 1
    pool.release(bad, "failed", "HTTP 500")  # the probe fails: another cool-down at once
    assert bad.marked_unhealthy == 2
    assert pool.acquire({0}).index == 0
    pool.endpoints[0].outstanding = 0
    clock.now += 10.0
    probe = pool.acquire({0})
    with caplog.at_level(logging.INFO):
        pool.release(probe, "ok")
    assert "openai endpoint http://h1/v1: healthy again" in caplog.text
    assert bad.failures_in_a_row == 0 and bad.healthy(clock.now)


def test_every_endpoint_resting_probes_the_one_due_first() -> None:
    pool, clock = make(2, unhealthy_after=1)
    for e in pool.endpoints:
        e.outstanding += 1
        pool.release(e, "failed")
        clock.now += 1.0
    assert pool.acquire().index == 0  # its cool-down ends first


def test_rejected_and_aborted_attempts_leave_health_alone() -> None:
    pool, _ = make(1, unhealthy_after=1)
    e = pool.acquire()
    pool.release(e, "rejected")
    e = pool.acquire()
    pool.release(e, "aborted")
    assert (e.rejected, e.failed, e.marked_unhealthy, e.outstanding) == (1, 0, 0, 0)
    assert pool.stats() == {"endpoint[http://h0/v1].ok": 0, "endpoint[http://h0/v1].failed": 0,
                            "endpoint[http://h0/v1].rejected": 1,
                            "endpoint[http://h0/v1].marked_unhealthy": 0}
    assert pool.summary() == "http://h0/v1 healthy: 0 ok, 0 failed, 1 rejected"
