"""What the two Hugging Face backends share: loading, token budgets, and the per-row
decoding state (seeded sampler, stop strings, end-of-text tokens)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpars.errors import DependencyError, ModelError
from inpars.generation.backends.base import (
    Backend,
    Completion,
    GenerationRequest,
    cut_at_stop,
    decode_bytes,
    find_stop,
)
from inpars.generation.sampling import SamplingSettings, TokenSampler, log_normalizers

log = logging.getLogger(__name__)


def import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise DependencyError(
            "the hf-* backends need torch and transformers. Fix: pip install torch transformers"
        ) from exc
    return torch, transformers


def resolve_device(torch: Any, device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(
            f"device = {device!r} but CUDA is not available. Fix: set generate.device = 'cpu' or 'auto'"
        )
    return device


def load_pretrained(loader: Any, name: str, what: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(name)`` with a :class:`ModelError` that says what to fix."""
    local = Path(name).expanduser().exists()
    try:
        return loader.from_pretrained(name, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        hint = (
            "the folder needs config.json, the weights and the tokenizer files (save_pretrained writes them)"
            if local
            else "check the hub id and your network, or give a local folder"
        )
        raise ModelError(
            f"{name}: cannot load the {what} ({type(exc).__name__}: {exc}). Fix: {hint}"
        ) from exc


class HFTokenizer:
    """Token counts and budgets with a Hugging Face tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, max_tokens: int) -> str:
        if getattr(self.tok, "is_fast", False):
            enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
            offsets = enc["offset_mapping"]
            if len(offsets) <= max_tokens:
                return text
            return text[: offsets[max_tokens - 1][1]].strip()
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            return text
        return str(self.tok.decode(ids[:max_tokens], skip_special_tokens=True)).strip()


@dataclass
class _Row:
    request: int
    sample: int
    sampler: TokenSampler
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    done: bool = False
    stopped: bool = False


class RowDecoder:
    """One row per (request, sample): picks tokens from logits until stop or budget."""

    def __init__(
        self,
        tokenizer: Any,
        requests: Sequence[GenerationRequest],
        settings: SamplingSettings,
        end_ids: set[int],
    ) -> None:
        self.tok = tokenizer
        self.settings = settings
        self.end_ids = end_ids
        self.rows = [
            _Row(r, s, TokenSampler(settings.for_sample(s), seed))
            for r, request in enumerate(requests)
            for s, seed in enumerate(request.seeds)
        ]
        self.pad = int(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(end_ids), 0)
        )
        self.sizes = [len(request.seeds) for request in requests]

    @property
    def finished(self) -> bool:
        return all(row.done for row in self.rows)

    def step(self, logits: np.ndarray) -> list[int]:
        """Choose the next token of every row (finished rows get the pad token)."""
        norms = log_normalizers(logits)
        chosen: list[int] = []
        for i, row in enumerate(self.rows):
            if row.done:
                chosen.append(self.pad)
                continue
            token, logprob = row.sampler.choose(logits[i], norms[i])
            chosen.append(token)
            if token in self.end_ids:
                row.done = row.stopped = True
                continue
            row.tokens.append(token)
            row.logprobs.append(logprob)
            text = self.tok.decode(row.tokens, skip_special_tokens=True)
            if find_stop(text.encode("utf-8"), self.settings.stop, self.settings.max_sentences) != -1:
                row.done = row.stopped = True
            elif len(row.tokens) >= self.settings.max_new_tokens:
                row.done = True
        return chosen

    def _pieces(self, tokens: list[int]) -> list[bytes]:
        pieces: list[bytes] = []
        before = ""
        for i in range(len(tokens)):
            now = self.tok.decode(tokens[: i + 1], skip_special_tokens=True)
            pieces.append((now[len(before) :] if now.startswith(before) else now).encode("utf-8"))
            before = now
        return pieces

    def completions(self) -> list[list[Completion]]:
        out: list[list[Completion]] = [[Completion("", (), False)] * n for n in self.sizes]
        for row in self.rows:
            pieces = self._pieces(row.tokens)
            data, kept, found = cut_at_stop(pieces, self.settings.stop, self.settings.max_sentences)
            out[row.request][row.sample] = Completion(
                decode_bytes(data), tuple(row.logprobs[:kept]), row.stopped or found
            )
        return out


def end_token_ids(tokenizer: Any, config: Any) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids


class HFBackend(Backend):
    """What the transformers backends share: torch and the device, and token budgets."""

    _tokens: HFTokenizer

    def _start_torch(self, device: str, threads: int) -> Any:
        """Import torch and transformers, set the thread count and the device; returns transformers."""
        torch, transformers = import_torch_transformers()
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(torch, device)
        return transformers

    def count_tokens(self, text: str) -> int:
        return self._tokens.count_tokens(text)

    def truncate(self, text: str, max_tokens: int) -> str:
        return self._tokens.truncate(text, max_tokens)

    def thread_count(self) -> int | None:
        """torch's CPU thread count (its sums, and so the samples, depend on it); ``None`` on a GPU."""
        return int(self._torch.get_num_threads()) if self.device == "cpu" else None
