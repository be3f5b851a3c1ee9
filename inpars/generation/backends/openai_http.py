"""Any OpenAI-compatible completions server (llama.cpp server, vLLM, TGI, OpenAI...), or several.

One ``POST {api_base}/completions`` per (document, sample) with the sample's seed,
``logprobs: 1`` and the stop strings, sent from a thread pool (``concurrency``), with a
timeout and bounded retries with exponential backoff on connection errors, 429, 5xx
and answers that are not HTTP or not a completions JSON object. With several
``api_base`` URLs (several vLLM servers of the same model) each attempt goes to the
endpoint with the fewest requests in flight, a retry to an endpoint the request has not
tried yet (at once; the backoff applies once every healthy endpoint was tried), and an
endpoint that keeps failing rests for a cool-down (:mod:`.openai_endpoints`). Uses
only the standard library. The server's own top-k applies (``top_k`` is not part of the
OpenAI API). Token budgets use ``tokenizer`` (a GGUF file or alias, or a Hugging Face
tokenizer) when given, else an estimate of 4 tokens per 3 words.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from inpars.errors import BackendError, ConfigError
from inpars.generation.backends.base import Backend, Completion, GenerationRequest
from inpars.generation.backends.openai_endpoints import Endpoint, EndpointPool
from inpars.generation.sampling import SamplingSettings

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}

Choice = tuple[str, list[str], list[float], Any]
"""The first choice of a completions answer: text, tokens, their logprobs, finish reason."""


class _Retry(Exception):
    """One failed attempt that another may fix; its message says what went wrong."""


class TokenBudget(Protocol):
    def count_tokens(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


class WordEstimate:
    """Token budgets estimated from words (4 tokens per 3 words), when no tokenizer is given."""

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text.split()) * 4 / 3)

    def truncate(self, text: str, max_tokens: int) -> str:
        words = text.split()
        keep = max(1, (max_tokens * 3) // 4)
        return text if len(words) <= keep else " ".join(words[:keep])


def load_token_budget(tokenizer: str) -> TokenBudget:
    """The tokenizer that cuts documents for a remote model (see the module docstring)."""
    if not tokenizer:
        log.warning("openai backend without generate.tokenizer: document budgets are estimated from words")
        return WordEstimate()
    from inpars.models import resolve_model

    resolved = resolve_model(tokenizer)
    if resolved.endswith(".gguf"):
        from inpars.generation.backends.llama_model import LlamaVocab, import_llama_cpp, load_model

        lc = import_llama_cpp()
        model = load_model(lc, Path(resolved), vocab_only=True)
        vocab = LlamaVocab(lc, lc.llama_model_get_vocab(model))
        vocab.model = model  # type: ignore[attr-defined]  # keep the model alive with its vocab
        return vocab
    from inpars.generation.backends.hf_common import HFTokenizer, import_torch_transformers, load_pretrained

    _, transformers = import_torch_transformers()
    return HFTokenizer(load_pretrained(transformers.AutoTokenizer, resolved, "tokenizer"))


class OpenAICompatibleBackend(Backend):
    """Completions from an OpenAI-compatible HTTP server."""

    kind = "openai"

    def __init__(
        self,
        api_base: str | Sequence[str],
        model: str,
        *,
        api_key: str = "",
        concurrency: int = 4,
        timeout_s: float = 120.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        tokenizer: TokenBudget | None = None,
        unhealthy_after: int = 3,
        cooldown_s: float = 30.0,
    ) -> None:
        super().__init__(model)
        self.pool = EndpointPool(
            api_bases(api_base), unhealthy_after=unhealthy_after, cooldown_s=cooldown_s
        )
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.budget = tokenizer or WordEstimate()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="inpars-http")

    @classmethod
    def from_env(
        cls, api_base: str | Sequence[str], model: str, *, api_key_env: str = "", **kwargs: Any
    ) -> OpenAICompatibleBackend:
        key = ""
        if api_key_env:
            key = os.environ.get(api_key_env, "")
            if not key:
                raise ConfigError(
                    f"generate.api_key_env = {api_key_env!r} but that environment variable is not set"
                )
        return cls(api_base, model, api_key=key, **kwargs)

    def count_tokens(self, text: str) -> int:
        return self.budget.count_tokens(text)

    def truncate(self, text: str, max_tokens: int) -> str:
        return self.budget.truncate(text, max_tokens)

    def generate(
        self, requests: Sequence[GenerationRequest], settings: SamplingSettings
    ) -> list[list[Completion]]:
        jobs = [(r, s) for r, request in enumerate(requests) for s in range(len(request.seeds))]
        try:
            done = list(self._pool.map(lambda job: self._complete(requests[job[0]], job[1], settings), jobs))
        finally:
            self.stats.update(self._endpoint_stats())
            if len(self.pool) > 1:
                log.debug("openai endpoints: %s", self.pool.summary())
        out: list[list[Completion]] = [[] for _ in requests]
        for (r, _), completion in zip(jobs, done, strict=True):
            out[r].append(completion)
        return out

    def _endpoint_stats(self) -> dict[str, int]:
        """The growth of the pool's per-endpoint counters since they were last added to ``stats``."""
        now = self.pool.stats()
        grown = {key: value - self.stats.get(key, 0) for key, value in now.items()}
        return {key: value for key, value in grown.items() if value}

    def _complete(self, request: GenerationRequest, sample: int, settings: SamplingSettings) -> Completion:
        s = settings.for_sample(sample)
        body = {
            "model": self.model_id,
            "prompt": request.prompt.text,
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p if not s.greedy else 1.0,
            "seed": request.seeds[sample],
            "stop": list(s.stop),
            "logprobs": 1,
            "n": 1,
        }
        text, tokens, values, reason = self._post(body)
        cut = min((text.find(stop) for stop in s.stop if stop in text), default=len(text))
        stopped = reason == "stop" or cut < len(text)
        text = text[:cut]
        kept, offset = 0, 0
        for token in tokens:
            if offset >= len(text):
                break
            offset += len(token)
            kept += 1
        self.stats["generated_tokens"] += len(tokens)
        return Completion(text, tuple(values[:kept]), stopped)

    def _post(self, body: dict[str, Any]) -> Choice:
        """The first choice of the servers' answer to ``body``, with bounded retries.

        Refused or reset connections, timeouts, 408/409/429/5xx, replies that are not HTTP,
        bodies shorter than their Content-Length and answers that are not a completions
        JSON object are retried, first on the healthy endpoints this request has not tried
        (at once), then with exponential backoff; after ``retries`` retries, one
        :class:`BackendError`. A 4xx is the request's fault: raised at once.
        """
        payload = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last, last_base, cause, waits = "", "", None, 0
        tried: set[int] = set()
        for attempt in range(self.retries + 1):
            if attempt and not self.pool.untried_healthy(tried):
                time.sleep(self.backoff_s * 2**waits)
                waits += 1
            endpoint = self.pool.acquire(tried)
            try:
                choice = _parse_choice(self._attempt(endpoint, payload, headers))
            except _Retry as exc:
                last, last_base, cause = str(exc), endpoint.base, exc.__cause__ or exc
                self.pool.release(endpoint, "failed", str(exc))
            except BackendError:  # a 4xx: the request's fault, not the endpoint's
                self.pool.release(endpoint, "rejected")
                raise
            except BaseException:
                self.pool.release(endpoint, "aborted")
                raise
            else:
                self.pool.release(endpoint, "ok")
                return choice
            tried.add(endpoint.index)
            log.warning("%s: attempt %d/%d failed (%s)%s", endpoint.url, attempt + 1, self.retries + 1,
                        last, self._next_hint(tried, attempt))
        raise BackendError(
            f"{self.pool.names}: no answer after {self.retries + 1} attempts (last: {last}, from "
            f"{last_base}). Fix: check "
            "that the server runs and speaks the OpenAI completions API at api_base, or raise "
            "generate.timeout_s or generate.retries"
        ) from cause

    def _next_hint(self, tried: AbstractSet[int], attempt: int) -> str:
        if attempt >= self.retries or len(self.pool) == 1:
            return ""
        return "; retrying on another endpoint" if self.pool.untried_healthy(tried) else "; retrying"

    def _attempt(self, endpoint: Endpoint, payload: bytes, headers: dict[str, str]) -> Any:
        """One POST: the decoded JSON answer; :class:`_Retry` when another try may help."""
        url = endpoint.url
        req = urllib.request.Request(url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _error_body(exc)
            if exc.code not in RETRY_STATUS:
                raise BackendError(
                    f"{url}: HTTP {exc.code}: {detail}. Fix: check generate.model, "
                    "api_base and the request settings"
                ) from None
            raise _Retry(f"HTTP {exc.code}: {detail}") from exc
        except (OSError, http.client.HTTPException) as exc:
            # URLError (refused, DNS), timeouts, resets; not HTTP at all, a short body...
            raise _Retry(_describe(exc)) from exc
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            shown = _one_line(raw[:120].decode("utf-8", errors="replace"))
            raise _Retry(f"a response that is not JSON ({_one_line(str(exc))}): {shown!r}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        log.info("openai endpoints: %s", self.pool.summary())


def api_bases(api_base: str | Sequence[str]) -> list[str]:
    """The endpoints ``generate.api_base`` names (one URL or a list), without trailing '/';
    a :class:`ConfigError` for an empty list, a URL that is not http(s) or one named twice."""
    bases = [api_base] if isinstance(api_base, str) else list(api_base)
    if not bases:
        raise ConfigError("generate.api_base = []: no endpoint. Fix: give one URL or a list, e.g. "
                          "['http://10.0.0.1:8000/v1', 'http://10.0.0.2:8000/v1']")
    out: list[str] = []
    for i, base in enumerate(bases):
        where = "generate.api_base" + (f"[{i}]" if not isinstance(api_base, str) else "")
        if not isinstance(base, str) or not base.startswith(("http://", "https://")):
            raise ConfigError(f"{where} = {base!r}: not an http(s) URL. Fix: e.g. http://127.0.0.1:8000/v1")
        if base.rstrip("/") in out:
            raise ConfigError(f"{where} = {base!r} is listed twice. Fix: name each server once")
        out.append(base.rstrip("/"))
    return out


def _parse_choice(data: Any) -> Choice:
    """The first choice of a completions answer; :class:`_Retry` when it has no such shape."""
    try:
        choice = data["choices"][0]
        text = str(choice.get("text") or "")
        lp = choice.get("logprobs") or {}
        tokens = [str(t) for t in lp.get("tokens") or []]
        values = [float(v) if v is not None else 0.0 for v in lp.get("token_logprobs") or []]
        return text, tokens, values, choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        shown = _one_line(json.dumps(data, default=str)[:200])
        raise _Retry(f"an answer without a completion choice ({type(exc).__name__}): {shown}") from exc


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` on one printable line of at most ``limit`` characters (for logs and errors)."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        more = f", {exc.expected} more expected" if exc.expected is not None else ""
        return f"IncompleteRead: a body shorter than its Content-Length ({len(exc.partial)} bytes read{more})"
    if isinstance(exc, http.client.BadStatusLine) and not isinstance(exc, ConnectionError):
        return f"BadStatusLine: a reply that is not HTTP ({_one_line(str(exc), 120)})"
    detail = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return _one_line(f"{type(exc).__name__}: {detail}")


def _error_body(exc: urllib.error.HTTPError) -> str:
    """The start of an HTTP error's body, on one line ('' when even that cannot be read)."""
    try:
        return _one_line(exc.read().decode("utf-8", errors="replace"))
    except (OSError, http.client.HTTPException):
        return ""
