"""The OpenAI-compatible HTTP backend against a fake server that breaks HTTP: bytes that
are not HTTP, a body shorter than its Content-Length, a 200 that is not a completions
answer. Each is retried within the budget, then ends in one clear BackendError."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from inpars.errors import BackendError
from inpars.generation.backends.base import GenerationRequest
from inpars.generation.backends.openai_http import OpenAICompatibleBackend
from inpars.generation.sampling import SamplingSettings
from inpars.generation.templates import Prompt

GOOD_BODY = json.dumps({"choices": [{
    "text": " what do cats do\nDocument:", "finish_reason": "stop",
    "logprobs": {"tokens": [" what", " do", " cats", " do", "\n"],
                 "token_logprobs": [-1.0, -0.5, -0.2, -0.1, -0.3]},
}]}).encode()


def http_reply(body: bytes, *, length: int | None = None, status: str = "200 OK") -> bytes:
    """A raw HTTP/1.1 response; ``length`` may lie about the body's size."""
    head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


GARBAGE = b"\x00\x17 this is not HTTP at all \xff\r\n\r\n"
SHORT_BODY = http_reply(b'{"choices": [{"te', length=500)
NOT_JSON = http_reply(b"<html>Bad gateway</html>")
NO_CHOICES = http_reply(b'{"object": "text_completion", "error": null}')
GOOD = http_reply(GOOD_BODY)


class FakeServer:
    """Answers the n-th connection with ``replies[n]`` (the last one repeats), then closes it."""

    def __init__(self, replies: Sequence[bytes]) -> None:
        self.replies = list(replies)
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                _read_request(conn)
                reply = self.replies[min(self.connections, len(self.replies) - 1)]
                self.connections += 1
                conn.sendall(reply)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def _read_request(conn: socket.socket) -> None:
    """Read one request (headers and Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


StartServer = Callable[[Sequence[bytes]], FakeServer]


@pytest.fixture
def fake_server() -> Iterator[StartServer]:
    servers: list[FakeServer] = []

    def start(replies: Sequence[bytes]) -> FakeServer:
        servers.append(FakeServer(replies))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def generate(server: FakeServer) -> list[list[str]]:
    backend = OpenAICompatibleBackend(server.api_base, "m", retries=2, backoff_s=0.01, timeout_s=5,
                                      concurrency=1)
    request = GenerationRequest(Prompt("", "Document: Cats purr.\nQuery:"), (1,))
    try:
        out = backend.generate([request], SamplingSettings(max_new_tokens=8))
    finally:
        backend.close()
    return [[c.text for c in completions] for completions in out]


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        (GARBAGE, http.client.HTTPException),
        (SHORT_BODY, http.client.IncompleteRead),
        (NOT_JSON, ValueError),
        (NO_CHOICES, KeyError),
    ],
    ids=["not-http", "short-body", "not-json", "no-choices"],
)
def test_broken_replies_are_retried_then_one_clear_error(
    fake_server: StartServer, reply: bytes, cause: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    server = fake_server([reply])
    start = time.monotonic()
    with pytest.raises(BackendError, match="no answer after 3 attempts") as caught:
        generate(server)
    assert time.monotonic() - start < 5
    assert server.connections == 3  # the bounded budget: 1 try + 2 retries
    message = str(caught.value)
    assert "\n" not in message and len(message) < 800
    assert server.api_base in message and "Fix: " in message
    assert isinstance(caught.value.__cause__, cause)
    retries = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert len(retries) == 3


@pytest.mark.parametrize(
    "first", [GARBAGE, SHORT_BODY, NO_CHOICES], ids=["not-http", "short-body", "no-choices"]
)
def test_one_broken_reply_then_a_good_one_succeeds(fake_server: StartServer, first: bytes) -> None:
    server = fake_server([first, GOOD])
    assert generate(server) == [[" what do cats do"]]
    assert server.connections == 2


def test_client_error_is_not_retried(fake_server: StartServer) -> None:
    server = fake_server([http_reply(b'{"error": "no such model"}', status="404 Not Found"), GOOD])
    with pytest.raises(BackendError, match=r"HTTP 404: \{\"error\": \"no such model\"\}\. Fix: "):
        generate(server)
    assert server.connections == 1
