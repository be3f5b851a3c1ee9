"""Any OpenAI-compatible completions server (llama.cpp server, vLLM, TGI, OpenAI...).

One ``POST {api_base}/completions`` per (document, sample) with the sample's seed,
``logprobs: 1`` and the stop strings, sent from a thread pool (``concurrency``), with a
timeout and retries with exponential backoff on connection errors, 429 and 5xx. Uses
only the standard library. The server's own top-k applies (``top_k`` is not part of the
OpenAI API). Token budgets use ``tokenizer`` (a GGUF file or alias, or a Hugging Face
tokenizer) when given, else an estimate of 4 tokens per 3 words.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from inpars.errors import BackendError, ConfigError
from inpars.generation.backends.base import Backend, Completion, GenerationRequest
from inpars.generation.sampling import SamplingSettings

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


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
        api_base: str,
        model: str,
        *,
        api_key: str = "",
        concurrency: int = 4,
        timeout_s: float = 120.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        tokenizer: TokenBudget | None = None,
    ) -> None:
        super().__init__(model)
        if not api_base.startswith(("http://", "https://")):
            raise ConfigError(
                f"generate.api_base = {api_base!r}: not an http(s) URL. Fix: e.g. http://127.0.0.1:8000/v1"
            )
        self.url = api_base.rstrip("/") + "/completions"
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.budget = tokenizer or WordEstimate()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="inpars-http")

    @classmethod
    def from_env(
        cls, api_base: str, model: str, *, api_key_env: str = "", **kwargs: Any
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
        done = list(self._pool.map(lambda job: self._complete(requests[job[0]], job[1], settings), jobs))
        out: list[list[Completion]] = [[] for _ in requests]
        for (r, _), completion in zip(jobs, done, strict=True):
            out[r].append(completion)
        return out

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
        data = self._post(body)
        try:
            choice = data["choices"][0]
            text = str(choice.get("text") or "")
            lp = choice.get("logprobs") or {}
            tokens = [str(t) for t in lp.get("tokens") or []]
            values = [float(v) if v is not None else 0.0 for v in lp.get("token_logprobs") or []]
            reason = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendError(f"{self.url}: unexpected response {json.dumps(data)[:300]}") from exc
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

    def _post(self, body: dict[str, Any]) -> Any:
        payload = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            req = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", errors="replace")[:300]
                if exc.code not in RETRY_STATUS:
                    raise BackendError(
                        f"{self.url}: HTTP {exc.code}: {detail}. Fix: check generate.model, "
                        "api_base and the request settings"
                    ) from None
                last = f"HTTP {exc.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except json.JSONDecodeError as exc:
                last = f"a response that is not JSON ({exc})"
            log.warning("%s: attempt %d/%d failed (%s)", self.url, attempt + 1, self.retries + 1, last)
        raise BackendError(
            f"{self.url}: no answer after {self.retries + 1} attempts ({last}). "
            "Fix: check that the server runs and api_base is right, or raise generate.timeout_s"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
