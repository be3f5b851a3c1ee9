"""The OpenAI-compatible HTTP backend against a real llama.cpp server on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from inpars.config import GenerateConfig
from inpars.errors import BackendError, ConfigError
from inpars.generation.backends import load_backend
from inpars.generation.backends.base import Completion, GenerationRequest
from inpars.generation.backends.openai_http import OpenAICompatibleBackend
from inpars.generation.sampling import SamplingSettings
from inpars.generation.templates import Prompt

PREFIX = (
    "Each document is followed by a search query.\n\n"
    "Document: Rivers carry water.\nQuery: what do rivers carry\n\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_same_completions(got: list[list[Completion]], expected: list[list[Completion]]) -> None:
    """The same texts and ends; log-probs within 0.1. A repeated prompt is served from the
    server's prompt cache, evaluated in other batch shapes, and a CPU-native llama.cpp build
    picks other kernels for those (seen in CI: 0.850 against 0.874 for one token)."""
    assert [[(c.text, c.finished) for c in cs] for cs in got] == [
        [(c.text, c.finished) for c in cs] for cs in expected
    ]
    for cs_got, cs_expected in zip(got, expected, strict=True):
        for a, b in zip(cs_got, cs_expected, strict=True):
            assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=0.1)


@pytest.fixture(scope="module")
def server(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on SmolLM2, on a free loopback port; stopped at the end."""
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(smollm2_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as resp:
                    if json.loads(resp.read())["data"]:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_http_backend_generates_with_seeds_logprobs_and_stop(server: str, smollm2_path: Path) -> None:
    cfg = GenerateConfig(
        backend="openai",
        api_base=server,
        model="smollm2",
        tokenizer=str(smollm2_path),
        concurrency=3,
        timeout_s=60,
    )
    backend = load_backend(cfg)
    assert backend.kind == "openai"
    requests = [
        GenerationRequest(Prompt(PREFIX, "Document: Cats purr when they are content.\nQuery:"), (5, 6)),
        GenerationRequest(Prompt(PREFIX, "Document: Honey never spoils.\nQuery:"), (7, 8)),
    ]
    settings = SamplingSettings(max_new_tokens=20)
    out = backend.generate(requests, settings)
    assert [len(c) for c in out] == [2, 2]
    for completions in out:
        for c in completions:
            assert "\n" not in c.text
            assert all(lp <= 0 for lp in c.token_logprobs)
            if c.text.strip():
                assert c.token_logprobs
    assert any(c.text.strip() for cs in out for c in cs)
    assert_same_completions([cs[:1] for cs in backend.generate(requests, settings)], [cs[:1] for cs in out])
    assert backend.stats["generated_tokens"] > 0
    # token budgets come from the model's own tokenizer (the GGUF vocabulary)
    text = "protein folding " * 40
    assert backend.count_tokens(backend.truncate(text, 16)) <= 16
    backend.close()


@pytest.mark.slow
def test_http_backend_reports_client_errors_without_retrying(server: str) -> None:
    backend = OpenAICompatibleBackend(
        server + "/no-such-api", "smollm2", retries=3, backoff_s=5.0, timeout_s=30
    )
    start = time.monotonic()
    request = GenerationRequest(Prompt("", "Document: x\nQuery:"), (1,))
    with pytest.raises(BackendError, match="HTTP 404"):
        backend.generate([request], SamplingSettings(max_new_tokens=4))
    assert time.monotonic() - start < 5  # no backoff on a 4xx
    backend.close()


def test_http_backend_retries_then_fails_clearly_when_no_server() -> None:
    backend = OpenAICompatibleBackend(
        f"http://127.0.0.1:{free_port()}/v1", "m", retries=2, backoff_s=0.01, timeout_s=2
    )
    request = GenerationRequest(Prompt("", "Document: x\nQuery:"), (1,))
    with pytest.raises(BackendError, match="no answer after 3 attempts"):
        backend.generate([request], SamplingSettings(max_new_tokens=4))
    backend.close()


def test_http_backend_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="api_base"):
        GenerateConfig(backend="openai")
    monkeypatch.delenv("INPARS_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="INPARS_TEST_KEY"):
        load_backend(
            GenerateConfig(backend="openai", api_base="http://127.0.0.1:9/v1", api_key_env="INPARS_TEST_KEY")
        )
    with pytest.raises(ConfigError, match="not an http"):
        OpenAICompatibleBackend("127.0.0.1:8000", "m")


@pytest.mark.slow
def test_http_backend_gives_the_same_completions_with_a_dead_second_endpoint(server: str) -> None:
    """Seeded requests through a list of endpoints, one of them refusing connections: the
    same completions and log-probs as from the server alone."""
    requests = [GenerationRequest(Prompt(PREFIX, "Document: Honey never spoils.\nQuery:"), (7, 8, 9))]
    settings = SamplingSettings(max_new_tokens=12)
    alone = OpenAICompatibleBackend(server, "smollm2", concurrency=1, timeout_s=60)
    expected = alone.generate(requests, settings)
    alone.close()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    pair = OpenAICompatibleBackend(
        [dead, server], "smollm2", concurrency=1, timeout_s=60, backoff_s=0.01, unhealthy_after=1
    )
    assert_same_completions(pair.generate(requests, settings), expected)
    pair.close()
    assert pair.stats[f"endpoint[{server}].ok"] == 3
    assert pair.stats[f"endpoint[{dead}].failed"] == 1  # then it rests for its cool-down
    assert pair.stats[f"endpoint[{dead}].marked_unhealthy"] == 1
