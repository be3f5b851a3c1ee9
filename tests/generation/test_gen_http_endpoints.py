"""Several OpenAI-compatible endpoints: two real local HTTP servers in threads, one of them
failing (HTTP 500, or nothing listening) or slow. Every request completes, the load is
balanced over the healthy endpoints, retries go to the other endpoint, an endpoint that
keeps failing rests for a cool-down and is probed again after it, and the per-endpoint
counts (backend stats and log) are right."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inpars.config import GenerateConfig, parse_config
from inpars.errors import BackendError, ConfigError
from inpars.generation.backends import load_backend
from inpars.generation.backends.base import Completion, GenerationRequest
from inpars.generation.backends.openai_http import OpenAICompatibleBackend
from inpars.generation.sampling import SamplingSettings
from inpars.generation.templates import Prompt


class CompletionServer:
    """An OpenAI-compatible ``/v1/completions`` server on a loopback port, in threads.

    ``mode``: ``ok`` answers (after ``delay`` seconds), ``fail`` answers HTTP 500. The answer
    depends only on the request's seed, so any endpoint gives the same completion.
    """

    def __init__(self, mode: str = "ok", delay: float = 0.0) -> None:
        self.mode = mode
        self.delay = delay
        self.seeds: list[int] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.seeds.append(int(body["seed"]))
                if server.delay:
                    time.sleep(server.delay)
                if self.path != "/v1/completions" or server.mode == "fail":
                    self._reply(500 if server.mode == "fail" else 404, {"error": "broken"})
                    return
                self._reply(200, answer(int(body["seed"])))

            def _reply(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client timed out and left
                    self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def requests(self) -> int:
        return len(self.seeds)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(seed: int) -> dict[str, Any]:
    return {"choices": [{
        "text": f" query number {seed}\nDocument:", "finish_reason": "stop",
        "logprobs": {"tokens": [" query", " number", f" {seed}", "\n"],
                     "token_logprobs": [-1.0, -0.5, -seed / 100, -0.3]},
    }]}


def refused_base() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def servers() -> Iterator[list[CompletionServer]]:
    started: list[CompletionServer] = []
    yield started
    for server in started:
        server.close()


def start(servers: list[CompletionServer], mode: str = "ok", delay: float = 0.0) -> CompletionServer:
    servers.append(CompletionServer(mode, delay))
    return servers[-1]


SEEDS = tuple(range(1, 7))
REQUEST = GenerationRequest(Prompt("", "Document: Cats purr.\nQuery:"), SEEDS)
SETTINGS = SamplingSettings(max_new_tokens=8)
EXPECTED = [Completion(f" query number {s}", (-1.0, -0.5, -s / 100), True) for s in SEEDS]


def backend(bases: list[str], **kwargs: Any) -> OpenAICompatibleBackend:
    options: dict[str, Any] = {"retries": 2, "backoff_s": 0.01, "timeout_s": 5, "concurrency": 1,
                               "unhealthy_after": 2, "cooldown_s": 60.0} | kwargs
    return OpenAICompatibleBackend(bases, "m", **options)


def counts(b: OpenAICompatibleBackend, base: str) -> dict[str, int]:
    return {name: b.stats.get(f"endpoint[{base}].{name}", 0)
            for name in ("ok", "failed", "rejected", "marked_unhealthy")}


def test_two_healthy_endpoints_share_the_load_round_robin(servers: list[CompletionServer]) -> None:
    a, b = start(servers), start(servers)
    client = backend([a.api_base, b.api_base])
    out = client.generate([REQUEST, REQUEST], SETTINGS)
    client.close()
    assert out == [EXPECTED, EXPECTED]  # the same completions as from one server
    assert (a.requests, b.requests) == (6, 6)
    assert a.seeds == [1, 3, 5] * 2 and b.seeds == [2, 4, 6] * 2  # sequential requests alternate
    assert counts(client, a.api_base) == {"ok": 6, "failed": 0, "rejected": 0, "marked_unhealthy": 0}
    assert counts(client, b.api_base) == counts(client, a.api_base)


@pytest.mark.parametrize("broken", ["http-500", "refused"])
def test_failing_endpoint_retries_go_to_the_other_one(
    servers: list[CompletionServer], broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = start(servers)
    bad = start(servers, "fail") if broken == "http-500" else None
    bad_base = bad.api_base if bad is not None else refused_base()
    client = backend([good.api_base, bad_base])
    with caplog.at_level(logging.INFO):
        out = client.generate([REQUEST], SETTINGS)
        client.close()
    assert out == [EXPECTED]
    # seed 1 -> good; seed 2 -> bad, retried on good; seed 3 -> bad (2nd failure in a row:
    # unhealthy), retried on good; seeds 4-6 -> good only, as bad cools down
    assert good.seeds == [1, 2, 3, 4, 5, 6]
    if bad is not None:
        assert bad.seeds == [2, 3]
    assert counts(client, good.api_base) == {"ok": 6, "failed": 0, "rejected": 0, "marked_unhealthy": 0}
    assert counts(client, bad_base) == {"ok": 0, "failed": 2, "rejected": 0, "marked_unhealthy": 1}
    messages = [r.getMessage() for r in caplog.records]
    retried = [m for m in messages if "retrying on another endpoint" in m]
    assert len(retried) == 2 and all(m.startswith(bad_base) for m in retried)
    assert sum(f"openai endpoint {bad_base}: unhealthy after 2 failures" in m for m in messages) == 1
    summary = [m for m in messages if m.startswith("openai endpoints: ")][-1]
    assert f"{good.api_base} healthy: 6 ok, 0 failed" in summary
    assert (f"{bad_base} unhealthy (retried in 60s): 0 ok, 2 failed, 0 rejected, marked unhealthy 1x"
            in summary)


def test_unhealthy_endpoint_is_tried_again_after_its_cool_down(
    servers: list[CompletionServer], caplog: pytest.LogCaptureFixture
) -> None:
    good, flaky = start(servers), start(servers, "fail")
    client = backend([good.api_base, flaky.api_base], cooldown_s=0.3)
    assert client.generate([REQUEST], SETTINGS) == [EXPECTED]
    assert flaky.seeds == [2, 3]  # marked unhealthy after its 2nd failure
    flaky.mode = "ok"  # the server recovers
    time.sleep(0.4)
    with caplog.at_level(logging.INFO):
        assert client.generate([REQUEST], SETTINGS) == [EXPECTED]
    client.close()
    assert len(flaky.seeds) > 2  # probed again, and answered
    assert any(f"openai endpoint {flaky.api_base}: healthy again" in r.getMessage() for r in caplog.records)
    assert counts(client, flaky.api_base)["marked_unhealthy"] == 1
    assert counts(client, flaky.api_base)["ok"] + counts(client, good.api_base)["ok"] == 12


def test_slow_endpoint_gets_fewer_requests(servers: list[CompletionServer]) -> None:
    fast, slow = start(servers), start(servers, delay=0.3)
    client = backend([fast.api_base, slow.api_base], concurrency=4)
    many = GenerationRequest(REQUEST.prompt, tuple(range(1, 25)))
    out = client.generate([many], SETTINGS)
    client.close()
    assert [c.text for c in out[0]] == [f" query number {s}" for s in range(1, 25)]
    ok_fast, ok_slow = counts(client, fast.api_base)["ok"], counts(client, slow.api_base)["ok"]
    assert ok_fast + ok_slow == 24
    # least outstanding requests: the slow server holds its requests 0.3 s, so it is chosen
    # only while it has none in flight; round-robin would give it 12 of the 24
    assert ok_slow >= 1  # still used while it has nothing in flight
    assert ok_fast >= 18  # so at most 6 went to the slow server
    assert counts(client, slow.api_base)["failed"] == 0


def test_endpoint_slower_than_the_timeout_is_retried_elsewhere(servers: list[CompletionServer]) -> None:
    good, stuck = start(servers), start(servers, delay=2.0)
    client = backend([good.api_base, stuck.api_base], timeout_s=0.3)
    started = time.monotonic()
    assert client.generate([REQUEST], SETTINGS) == [EXPECTED]
    client.close()
    assert time.monotonic() - started < 1.8  # two timeouts, then the stuck endpoint rests
    assert good.seeds == [1, 2, 3, 4, 5, 6]
    assert counts(client, stuck.api_base) == {"ok": 0, "failed": 2, "rejected": 0, "marked_unhealthy": 1}


def test_every_endpoint_failing_ends_in_one_error_naming_them(servers: list[CompletionServer]) -> None:
    a, b = start(servers, "fail"), start(servers, "fail")
    client = backend([a.api_base, b.api_base], retries=3, unhealthy_after=5)
    one = GenerationRequest(REQUEST.prompt, (7,))
    with pytest.raises(BackendError, match="no answer after 4 attempts") as caught:
        client.generate([one], SETTINGS)
    client.close()
    assert (a.requests, b.requests) == (2, 2)  # the attempts alternate over the endpoints
    assert a.api_base in str(caught.value) and b.api_base in str(caught.value)
    assert counts(client, a.api_base)["failed"] == 2 and counts(client, b.api_base)["failed"] == 2


def test_a_client_error_is_not_retried_on_another_endpoint(servers: list[CompletionServer]) -> None:
    a, b = start(servers), start(servers)
    client = backend([a.api_base + "/wrong", b.api_base + "/wrong"])
    with pytest.raises(BackendError, match=r"HTTP 404: .*Fix: "):
        client.generate([GenerationRequest(REQUEST.prompt, (1,))], SETTINGS)
    client.close()
    assert a.requests + b.requests == 1
    bases = (a.api_base + "/wrong", b.api_base + "/wrong")
    assert sum(counts(client, base)["rejected"] for base in bases) == 1


def test_api_base_list_in_the_config(servers: list[CompletionServer]) -> None:
    a, b = start(servers), start(servers)
    cfg = parse_config({"generate": {"backend": "openai", "api_base": [a.api_base, b.api_base + "/"],
                                     "concurrency": 1}}, "x.toml").generate
    client = load_backend(cfg)
    assert isinstance(client, OpenAICompatibleBackend)
    assert client.generate([REQUEST], SETTINGS) == [EXPECTED]
    client.close()
    assert (a.requests, b.requests) == (3, 3)


@pytest.mark.parametrize(
    ("api_base", "message"),
    [
        ([], r"x.toml \[generate\]: api_base = \[\]: no server. Fix: "),
        (["http://127.0.0.1:8000/v1", "127.0.0.1:8001/v1"],
         r"api_base\[1\] = '127.0.0.1:8001/v1': not an http\(s\) URL. Fix: "),
        (["http://a:8000/v1", "http://a:8000/v1/"], r"api_base\[1\] = .* listed twice. Fix: "),
        ("ftp://a/v1", r"api_base = 'ftp://a/v1': not an http\(s\) URL"),
        ([1], r"api_base: expected a string or a list of a string"),
    ],
)
def test_api_base_config_errors(api_base: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"generate": {"backend": "openai", "api_base": api_base}}, "x.toml")


def test_backend_rejects_a_bad_endpoint_list() -> None:
    with pytest.raises(ConfigError, match=r"generate.api_base\[1\] = 'localhost:1': not an http"):
        OpenAICompatibleBackend(["http://127.0.0.1:1/v1", "localhost:1"], "m")
    with pytest.raises(ConfigError, match=r"generate.api_base = \[\]"):
        OpenAICompatibleBackend([], "m")


def test_adding_a_server_keeps_the_generate_fingerprint() -> None:
    """Which servers answer, and how they are called, is not what they compute: a run resumes
    after a server is added; the served model still counts. Other backends keep every key."""
    from inpars.generation.selection import fingerprint_settings

    one = GenerateConfig(backend="openai", model="m", api_base="http://a:8000/v1")
    two = GenerateConfig(backend="openai", model="m", api_base=["http://a:8000/v1", "http://b:8000/v1"],
                         concurrency=32, retries=2)
    assert fingerprint_settings(one) == fingerprint_settings(two)
    assert fingerprint_settings(one) != fingerprint_settings(dataclasses.replace(one, model="other"))
    assert "api_base" in fingerprint_settings(GenerateConfig())
