"""llama.cpp's own throughput for a GGUF model, through the bare low-level API: no
sampling, no Python per token beyond filling the batch.

The context is the generate stage's (one unified KV cache, the few-shot prefix evaluated
once into sequence 0 and shared by every document's sequence, full-size sliding-window
cache so that sequences fork), so the figures are what that layout allows:

- :meth:`BareLlama.prompt_rate`: documents' prompt tokens evaluated after the cached
  prefix, each document in its own sequence, ``chunk`` tokens per ``llama_decode``, the
  logits of each document's last token asked for (what sampling its first token needs);
- :meth:`BareLlama.decode_rate`: ``parallel`` sequences (3 per document, forked after
  its prompt, as the stage forks a document's samples) decoding one token each per
  ``llama_decode``, the logits of every one asked for.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Entry = tuple[int, int, int, bool]  # token, position, sequence, wants logits


class BareLlama:
    """A model and one context shaped like the generate stage's."""

    def __init__(self, path: Path, *, threads: int, context_tokens: int, batch_tokens: int = 512,
                 sequences: int = 64) -> None:
        from inpars.generation.backends.llama_model import LlamaVocab, import_llama_cpp, load_model

        lc = self._lc = import_llama_cpp()
        self._model = load_model(lc, path)
        self.vocab = LlamaVocab(lc, lc.llama_model_get_vocab(self._model))
        params = lc.llama_context_default_params()
        params.n_ctx = min(context_tokens, int(lc.llama_model_n_ctx_train(self._model)))
        params.n_batch = params.n_ubatch = batch_tokens
        params.n_seq_max = params.n_outputs_max = sequences + 1
        params.kv_unified = True
        params.swa_full = True
        params.n_threads = params.n_threads_batch = threads
        self._ctx = lc.llama_init_from_model(self._model, params)
        if self._ctx is None:
            raise SystemExit(f"{path}: llama.cpp could not create a context of {params.n_ctx} tokens. "
                             "Fix: pass a smaller --context")
        self._mem = lc.llama_get_memory(self._ctx)
        self._batch = lc.llama_batch_init(batch_tokens, 0, sequences + 1)
        self.batch_tokens = batch_tokens
        self.sequences = sequences
        self.n_ctx = int(lc.llama_n_ctx(self._ctx))
        self._prefix: list[int] = []
        self._state: Any = None

    def _decode(self, entries: Sequence[Entry]) -> None:
        from inpars.generation.backends.llama_model import fill_batch

        lc, batch = self._lc, self._batch
        fill_batch(batch, entries)
        code = lc.llama_decode(self._ctx, batch)
        if code != 0:
            raise SystemExit(f"llama_decode failed (code {code}). Fix: pass a larger --context")

    def _decode_all(self, entries: Sequence[Entry], chunk: int) -> float:
        """Evaluate entries ``chunk`` at a time; the seconds the calls took."""
        seconds = 0.0
        for start in range(0, len(entries), chunk):
            begin = time.perf_counter()
            self._decode(entries[start : start + chunk])
            seconds += time.perf_counter() - begin
        return seconds

    def cache_prefix(self, text: str) -> int:
        """Evaluate the shared prompt prefix once and keep its state; its tokens."""
        lc = self._lc
        self._prefix = self.vocab.tokenize(text, add_bos=self.vocab.add_bos)
        lc.llama_memory_clear(self._mem, True)
        self._decode_all([(t, i, 0, False) for i, t in enumerate(self._prefix)], self.batch_tokens)
        size = int(lc.llama_state_seq_get_size(self._ctx, 0))
        self._state = (ctypes.c_uint8 * max(size, 1))()
        lc.llama_state_seq_get_data(self._ctx, self._state, size, 0)
        return len(self._prefix)

    def _restore(self) -> None:
        lc = self._lc
        lc.llama_memory_clear(self._mem, True)
        if self._prefix and lc.llama_state_seq_set_data(self._ctx, self._state, len(self._state), 0) == 0:
            raise SystemExit("llama.cpp could not restore the prefix state")

    def _prompts(self, suffixes: Sequence[list[int]], first_seq: int, stride: int) -> list[Entry]:
        """The prompt entries of documents, document ``d`` in sequence ``first_seq + d * stride``,
        each sequence given the prefix cells first."""
        base = len(self._prefix)
        entries: list[Entry] = []
        for d, tokens in enumerate(suffixes):
            seq = first_seq + d * stride
            if base:
                self._lc.llama_memory_seq_cp(self._mem, 0, seq, 0, base)
            entries += [(t, base + k, seq, k == len(tokens) - 1) for k, t in enumerate(tokens)]
        return entries

    def prompt_rate(self, suffixes: Sequence[list[int]], chunk: int) -> tuple[int, float]:
        """(tokens, seconds) of evaluating the documents' prompts ``chunk`` tokens per call."""
        self._restore()
        entries = self._prompts(suffixes, 1, 1)
        self._decode(entries[:1])  # untimed: the first call after a restore
        seconds = self._decode_all(entries[1:], chunk)
        return len(entries) - 1, seconds

    def decode_rate(self, suffixes: Sequence[list[int]], parallel: int, steps: int,
                    samples: int = 3) -> tuple[int, float]:
        """(tokens, seconds) of ``steps`` decoding steps of ``parallel`` sequences,
        ``samples`` per document (the first ``ceil(parallel / samples)`` documents)."""
        if parallel > self.sequences:
            raise SystemExit(f"--parallel {parallel}: more than the context's {self.sequences} sequences")
        needed = -(-parallel // samples)
        docs = list(suffixes[:needed])
        if len(docs) < needed:
            raise SystemExit(f"{parallel} parallel sequences need {needed} documents, {len(docs)} given")
        self._restore()
        self._decode_all(self._prompts(docs, 1, samples), self.batch_tokens)
        seqs: list[tuple[int, int]] = []  # (sequence, next position)
        for d, tokens in enumerate(docs):
            first = 1 + d * samples
            for s in range(samples):
                if len(seqs) == parallel:
                    break
                if s:
                    self._lc.llama_memory_seq_cp(self._mem, first, first + s, -1, -1)
                seqs.append((first + s, len(self._prefix) + len(tokens)))
        token = self.vocab.tokenize(" the")[0]
        self._decode([(token, pos, seq, True) for seq, pos in seqs])  # untimed warm-up step
        seconds = 0.0
        for step in range(1, steps + 1):
            begin = time.perf_counter()
            self._decode([(token, pos + step, seq, True) for seq, pos in seqs])
            seconds += time.perf_counter() - begin
        return parallel * steps, seconds

    def close(self) -> None:
        lc = self._lc
        lc.llama_batch_free(self._batch)
        lc.llama_free(self._ctx)
        lc.llama_model_free(self._model)


def demo_llama(demo: Any, threads: int, sequences: int) -> tuple[BareLlama, Any, int]:
    """A :class:`BareLlama` on the demo's generator and context size, the demo's prompt
    builder on its tokenizer, and the few-shot prefix evaluated and cached (its tokens)."""
    from inpars.models import resolve_model

    cfg = demo.generate
    bare = BareLlama(Path(resolve_model(cfg.model)), threads=threads, context_tokens=cfg.context_tokens,
                     sequences=sequences)
    builder = demo.builder(bare.vocab.truncate)
    return bare, builder, bare.cache_prefix(builder.prefix)


def prompt_suffixes(bare: BareLlama, builder: Any, demo: Any, docs: int) -> list[list[int]]:
    """The tokens after the cached prefix of the prompts of the demo's first ``docs`` documents."""
    return [bare.vocab.tokenize(builder.build(d).suffix) for d in demo.documents(demo.doc_ids[:docs])]
