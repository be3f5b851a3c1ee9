"""Loading GGUF models with llama-cpp-python, and their tokenizer (for token budgets)."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpars.errors import BackendError, DependencyError, ModelError
from inpars.generation.backends.base import decode_bytes


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or a :class:`DependencyError` saying how to install it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise DependencyError(
            "the llama-cpp backend needs llama-cpp-python. Fix: pip install 'inpars[llama]' "
            "(it compiles llama.cpp, ~7 min on 2 cores), or choose generate.backend = 'hf-causal'"
        ) from exc
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # its C log callback reads this
    return llama_cpp


def fill_batch(batch: Any, entries: Sequence[tuple[int, int, int, bool]]) -> int:
    """Write (token, position, sequence, wants logits) entries into a ``llama_batch`` of one
    sequence id per token; how many want their logits."""
    batch.n_tokens = len(entries)
    wanted = 0
    for j, (token, pos, seq, wants) in enumerate(entries):
        batch.token[j] = token
        batch.pos[j] = pos
        batch.n_seq_id[j] = 1
        batch.seq_id[j][0] = seq
        batch.logits[j] = wants
        wanted += wants
    return wanted


class LlamaVocab:
    """Tokenizer of a loaded llama.cpp model (also used alone, ``vocab_only``)."""

    def __init__(self, lc: Any, vocab: Any) -> None:
        self._lc = lc
        self._vocab = vocab
        self._pieces: dict[int, bytes] = {}
        self.add_bos = bool(lc.llama_vocab_get_add_bos(vocab))

    def tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 8
        buf = (self._lc.llama_token * size)()
        n = self._lc.llama_tokenize(self._vocab, data, len(data), buf, size, add_bos, False)
        if n < 0:
            size = -n
            buf = (self._lc.llama_token * size)()
            n = self._lc.llama_tokenize(self._vocab, data, len(data), buf, size, add_bos, False)
        if n < 0:
            raise BackendError(f"llama.cpp could not tokenize a text of {len(data)} bytes")
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        cached = self._pieces.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(64)
            n = self._lc.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self._lc.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
            cached = self._pieces[token] = buf.raw[: max(n, 0)]
        return cached

    def is_end(self, token: int) -> bool:
        return bool(self._lc.llama_vocab_is_eog(self._vocab, token))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        tokens = self.tokenize(text)
        if len(tokens) <= max_tokens:
            return text
        return decode_bytes(b"".join(self.piece(t) for t in tokens[:max_tokens])).strip()


def load_model(lc: Any, path: Path, *, vocab_only: bool = False) -> Any:
    if not path.is_file():
        raise ModelError(
            f"{path}: GGUF model file not found. Fix: check generate.model (or use 'gemma3-270m')"
        )
    lc.llama_backend_init()
    params = lc.llama_model_default_params()
    params.vocab_only = vocab_only
    model = lc.llama_model_load_from_file(str(path).encode("utf-8"), params)
    if model is None:
        raise ModelError(f"{path}: llama.cpp cannot load this file. Fix: give a valid GGUF model")
    return model
