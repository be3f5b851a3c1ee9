"""GGUF models through llama.cpp (llama-cpp-python's low-level API), the default backend.

How it saves work on a CPU:

- the few-shot prefix is evaluated once and its KV state kept (``llama_state_seq_*``);
  every batch starts from that saved state, so the prefix is never recomputed;
- the documents of a batch are evaluated together, each in its own sequence that shares
  the prefix cells of the unified KV cache;
- the samples of a document fork its sequence after the document (no prompt is evaluated
  twice) and all live sequences of the batch decode together, one token each per step.

A batch always starts from the same restored state, so a document's completions do not
depend on what ran before it (a resumed run writes what an uninterrupted one writes). The
thread count is fixed for the backend's life (``threads``, or the fastest of 1 and every
core, timed once at start: :mod:`.threads`), because llama.cpp's sums, and so its samples,
depend on it; :meth:`LlamaCppBackend.thread_count` says which count was used.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpars.errors import BackendError, ModelError
from inpars.generation.backends.base import (
    Backend,
    Completion,
    GenerationRequest,
    cut_at_stop,
    decode_bytes,
)
from inpars.generation.backends.llama_model import LlamaVocab, import_llama_cpp, load_model
from inpars.generation.backends.threads import fastest, usable_cores
from inpars.generation.sampling import SamplingSettings, TokenSampler, log_normalizers

log = logging.getLogger(__name__)

CALIBRATION_TEXT = "Search engines rank documents by how well they match the words of a query."
CALIBRATION_STEPS = 2  # timed decoding steps per candidate and round


@dataclass
class _Sequence:
    seq: int
    pos: int
    request: int
    sample: int
    sampler: TokenSampler
    pieces: list[bytes] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    token: int = -1


class LlamaCppBackend(Backend):
    """A GGUF model in llama.cpp; see the module docstring for what it shares and batches."""

    kind = "llama-cpp"

    def __init__(
        self,
        model_path: str | Path,
        *,
        threads: int = 0,
        context_tokens: int = 8192,
        batch_tokens: int = 512,
        max_sequences: int = 64,
        model_id: str = "",
    ) -> None:
        path = Path(model_path)
        super().__init__(model_id or path.name)
        lc = self._lc = import_llama_cpp()
        self._model = load_model(lc, path)
        self.vocab = LlamaVocab(lc, lc.llama_model_get_vocab(self._model))
        self.n_vocab = int(lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(self._model)))
        self.threads = threads or usable_cores()
        params = lc.llama_context_default_params()
        params.n_ctx = min(context_tokens, int(lc.llama_model_n_ctx_train(self._model)))
        params.n_batch = params.n_ubatch = batch_tokens
        params.n_seq_max = max_sequences
        params.n_outputs_max = max_sequences
        params.kv_unified = True  # sequences share the prefix cells
        params.swa_full = True  # sliding-window layers keep every cell, so sequences can fork and be removed
        params.n_threads = params.n_threads_batch = self.threads
        self._ctx = lc.llama_init_from_model(self._model, params)
        if self._ctx is None:
            lc.llama_model_free(self._model)
            raise ModelError(
                f"{path}: llama.cpp could not create a context of {params.n_ctx} tokens. "
                "Fix: lower generate.context_tokens"
            )
        self.n_ctx = int(lc.llama_n_ctx(self._ctx))
        self._mem = lc.llama_get_memory(self._ctx)
        self._batch = lc.llama_batch_init(batch_tokens, 0, max_sequences)
        self._batch_tokens = batch_tokens
        self._max_sequences = max_sequences
        self._prefixes: dict[str, tuple[list[int], Any]] = {}
        if not threads:
            self._use_threads(self._calibrate(sorted({1, usable_cores()})))
        log.info(
            "llama.cpp: %s, context %d tokens, %d threads (%s, fixed for the run)",
            path.name,
            self.n_ctx,
            self.threads,
            "as set" if threads else "the faster of 1 and every core, timed",
        )

    def thread_count(self) -> int:
        return self.threads

    def _use_threads(self, threads: int) -> None:
        self._lc.llama_set_n_threads(self._ctx, threads, threads)
        self.threads = threads

    def _calibrate(self, choices: list[int]) -> int:
        """The fastest of ``choices`` on decoding steps of several tokens (the shape of a
        batch's steps) after a short prompt; the context is left empty."""
        lc = self._lc
        prompt = self.vocab.tokenize(CALIBRATION_TEXT, add_bos=self.vocab.add_bos) or [0]
        width = max(1, min(8, self._max_sequences - 1, len(prompt)))
        lc.llama_memory_clear(self._mem, True)
        self._use_threads(choices[0])
        self._decode([(t, i, 0, i == len(prompt) - 1) for i, t in enumerate(prompt)])
        end = len(prompt)

        def timer(threads: int) -> float:
            self._use_threads(threads)
            start = time.perf_counter()
            for step in range(CALIBRATION_STEPS):
                pos = end + step * width
                self._decode([(prompt[k], pos + k, 0, k == width - 1) for k in range(width)])
            seconds = time.perf_counter() - start
            lc.llama_memory_seq_rm(self._mem, 0, end, -1)  # every measurement starts at the prompt's end
            return seconds

        try:
            return fastest(choices, timer)
        finally:
            lc.llama_memory_clear(self._mem, True)

    # ------------------------------------------------------------------ tokenizer
    def count_tokens(self, text: str) -> int:
        return self.vocab.count_tokens(text)

    def truncate(self, text: str, max_tokens: int) -> str:
        return self.vocab.truncate(text, max_tokens)

    # ------------------------------------------------------------------ generation
    def generate(
        self, requests: Sequence[GenerationRequest], settings: SamplingSettings
    ) -> list[list[Completion]]:
        results: list[list[Completion]] = [[] for _ in requests]
        start = 0
        while start < len(requests):
            end = start
            while end < len(requests) and requests[end].prompt.prefix == requests[start].prompt.prefix:
                end += 1
            prefix_tokens, state = self._prefix_state(requests[start].prompt.prefix)
            suffixes = [self.vocab.tokenize(requests[i].prompt.suffix) for i in range(start, end)]
            for group in self._pack(
                list(range(start, end)), suffixes, len(prefix_tokens), requests, settings
            ):
                self._run_group(
                    group,
                    [suffixes[i - start] for i in group],
                    prefix_tokens,
                    state,
                    requests,
                    settings,
                    results,
                )
            start = end
        return results

    def _pack(
        self,
        indices: list[int],
        suffixes: list[list[int]],
        prefix_len: int,
        requests: Sequence[GenerationRequest],
        settings: SamplingSettings,
    ) -> list[list[int]]:
        """Split requests into groups that fit the context and the sequence slots (deterministic)."""
        groups: list[list[int]] = []
        cells = seqs = 0
        for i, suffix in zip(indices, suffixes, strict=True):
            n = len(requests[i].seeds)
            if not suffix or not n:
                raise BackendError("a request with an empty prompt suffix or no seeds (nothing to generate)")
            need = len(suffix) + n * settings.max_new_tokens
            if prefix_len + need > self.n_ctx or n > self._max_sequences - 1:
                raise BackendError(
                    f"one document needs {prefix_len + need} tokens of context ({prefix_len} prompt prefix, "
                    f"{len(suffix)} document, {n} x {settings.max_new_tokens} new) but the context holds "
                    f"{self.n_ctx}. Fix: lower generate.doc_max_tokens or raise generate.context_tokens"
                )
            if groups and (prefix_len + cells + need > self.n_ctx or seqs + n > self._max_sequences - 1):
                groups.append([])
                cells = seqs = 0
            if not groups:
                groups.append([])
            groups[-1].append(i)
            cells += need
            seqs += n
        return groups

    def _prefix_state(self, prefix: str) -> tuple[list[int], Any]:
        """Tokens and saved KV state (sequence 0) of a prompt prefix, evaluated once."""
        if prefix in self._prefixes:
            return self._prefixes[prefix]
        lc = self._lc
        tokens = self.vocab.tokenize(prefix, add_bos=self.vocab.add_bos)
        if len(tokens) >= self.n_ctx:
            raise BackendError(
                f"the prompt prefix has {len(tokens)} tokens, more than the context ({self.n_ctx}). "
                "Fix: fewer or shorter few-shot examples, or raise generate.context_tokens"
            )
        lc.llama_memory_clear(self._mem, True)
        self._decode([(t, i, 0, False) for i, t in enumerate(tokens)])
        size = int(lc.llama_state_seq_get_size(self._ctx, 0))
        state = (ctypes.c_uint8 * max(size, 1))()
        if tokens:
            lc.llama_state_seq_get_data(self._ctx, state, size, 0)
        self.stats["prefix_evals"] += 1
        self.stats["prompt_tokens"] += len(tokens)
        if len(self._prefixes) >= 2:
            self._prefixes.pop(next(iter(self._prefixes)))
        self._prefixes[prefix] = (tokens, state)
        return tokens, state

    def _run_group(
        self,
        group: list[int],
        suffixes: list[list[int]],
        prefix_tokens: list[int],
        state: Any,
        requests: Sequence[GenerationRequest],
        settings: SamplingSettings,
        results: list[list[Completion]],
    ) -> None:
        lc = self._lc
        prefix_len = len(prefix_tokens)
        lc.llama_memory_clear(self._mem, True)
        if prefix_len and lc.llama_state_seq_set_data(self._ctx, state, len(state), 0) == 0:
            raise BackendError("llama.cpp could not restore the saved prompt prefix state")
        entries: list[tuple[int, int, int, bool]] = []
        firsts: list[int] = []
        next_seq = 1
        for i, suffix in zip(group, suffixes, strict=True):
            if prefix_len:
                lc.llama_memory_seq_cp(self._mem, 0, next_seq, 0, prefix_len)
            entries += [(t, prefix_len + k, next_seq, k == len(suffix) - 1) for k, t in enumerate(suffix)]
            firsts.append(next_seq)
            next_seq += len(requests[i].seeds)
        self.stats["prompt_tokens"] += len(entries)
        doc_logits = self._decode(entries)
        live: list[_Sequence] = []
        rows: list[np.ndarray] = []
        for d, (i, suffix) in enumerate(zip(group, suffixes, strict=True)):
            for s, seed in enumerate(requests[i].seeds):
                if s:
                    lc.llama_memory_seq_cp(self._mem, firsts[d], firsts[d] + s, -1, -1)
                live.append(
                    _Sequence(
                        firsts[d] + s,
                        prefix_len + len(suffix),
                        i,
                        s,
                        TokenSampler(settings.for_sample(s), seed),
                    )
                )
                rows.append(doc_logits[d])
            results[i] = [Completion("", (), False)] * len(requests[i].seeds)
        logits = np.stack(rows)
        while live:
            norms = log_normalizers(logits)
            feed: list[_Sequence] = []
            for row, st in enumerate(live):
                token, logprob = st.sampler.choose(logits[row], norms[row])
                if self.vocab.is_end(token):
                    self._finish(st, True, settings, results)
                    continue
                st.pieces.append(self.vocab.piece(token))
                st.logprobs.append(logprob)
                st.token = token
                data = b"".join(st.pieces)
                if any(stop.encode("utf-8") in data for stop in settings.stop):
                    self._finish(st, True, settings, results)
                elif len(st.pieces) >= settings.max_new_tokens:
                    self._finish(st, False, settings, results)
                else:
                    feed.append(st)
            if not feed:
                break
            logits = self._decode([(st.token, st.pos, st.seq, True) for st in feed])
            self.stats["generated_tokens"] += len(feed)
            for st in feed:
                st.pos += 1
            live = feed

    def _finish(
        self, st: _Sequence, stopped: bool, settings: SamplingSettings, results: list[list[Completion]]
    ) -> None:
        data, kept, found = cut_at_stop(st.pieces, settings.stop)
        results[st.request][st.sample] = Completion(
            decode_bytes(data), tuple(st.logprobs[:kept]), stopped or found
        )
        self._lc.llama_memory_seq_rm(self._mem, st.seq, -1, -1)

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> np.ndarray:
        """Evaluate (token, position, sequence, wants logits) entries; the wanted logits, in order."""
        lc = self._lc
        batch = self._batch
        outputs: list[np.ndarray] = []
        for start in range(0, len(entries), self._batch_tokens):
            chunk = entries[start : start + self._batch_tokens]
            batch.n_tokens = len(chunk)
            for j, (token, pos, seq, wants) in enumerate(chunk):
                batch.token[j] = token
                batch.pos[j] = pos
                batch.n_seq_id[j] = 1
                batch.seq_id[j][0] = seq
                batch.logits[j] = wants
            code = lc.llama_decode(self._ctx, batch)
            if code != 0:
                raise BackendError(
                    f"llama_decode failed (code {code}; 1 means the context is full). "
                    "Fix: lower generate.batch_docs or raise generate.context_tokens"
                )
            wanted = sum(1 for entry in chunk if entry[3])
            if wanted:
                view = np.ctypeslib.as_array(lc.llama_get_logits(self._ctx), shape=(wanted, self.n_vocab))
                outputs.append(np.array(view, dtype=np.float32))
        if not outputs:
            return np.zeros((0, self.n_vocab), dtype=np.float32)
        return np.concatenate(outputs) if len(outputs) > 1 else outputs[0]

    def close(self) -> None:
        lc = getattr(self, "_lc", None)
        if lc is None:
            return
        if getattr(self, "_batch", None) is not None:
            lc.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "_ctx", None) is not None:
            lc.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None) is not None:
            lc.llama_model_free(self._model)
            self._model = None
        getattr(self, "_prefixes", {}).clear()

    def __del__(self) -> None:
        self.close()
