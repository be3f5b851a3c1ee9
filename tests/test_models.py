"""Model settings: an unreachable hub id fails at once with one clear ModelError."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest

from inpars.errors import ModelError
from inpars.models import hub_reachable, resolve_model

MADE_UP = "inpars-made-up-org/no-such-model-for-tests"


def closed_port_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache (nothing of the made-up id can be cached there)."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_offline_hub_id_fails_fast_with_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, empty_hf_cache: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelError) as caught:
        resolve_model(MADE_UP)
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert message.startswith(f"{MADE_UP}: not a local path or packaged alias, HF_HUB_OFFLINE is set")
    assert "Fix: give a local model folder or a packaged alias" in message and "gemma3-270m" in message
    assert "\n" not in message
    assert len(caplog.records) <= 2  # no flood of retry lines


def test_unreachable_hub_fails_fast_without_retries(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, empty_hf_cache: Path
) -> None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    endpoint = closed_port_endpoint()  # nothing listens: refused at once
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelError, match="cannot be reached") as caught:
        resolve_model(MADE_UP)
    assert time.monotonic() - start < 5
    assert endpoint in str(caught.value) and "HF_HUB_OFFLINE=1" in str(caught.value)
    assert len(caplog.records) <= 2
    assert not hub_reachable(endpoint)  # asked once per process


def test_cached_snapshot_is_used_when_offline(monkeypatch: pytest.MonkeyPatch, empty_hf_cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = empty_hf_cache / f"models--{MADE_UP.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    assert Path(resolve_model(MADE_UP)) == snapshot


def test_local_paths_and_aliases_are_not_probed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_hf_cache: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert resolve_model(str(folder)) == str(folder.resolve())
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)) == str(gguf.resolve())
    with pytest.raises(ModelError, match=r"not found\. Fix: check the path"):
        resolve_model(str(tmp_path / "missing.gguf"))
    try:
        packaged = resolve_model("all-MiniLM-L6-v2")
    except ModelError:
        pytest.skip("the packaged encoder is not installed")
    assert Path(packaged).is_dir()
