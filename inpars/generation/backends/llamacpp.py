"""GGUF models through llama.cpp (llama-cpp-python's low-level API), the default backend.

How it saves work on a CPU:

- the few-shot prefix is evaluated once and its KV state kept (``llama_state_seq_*``);
  every unit of work starts from that saved state, so the prefix is never recomputed, and
  each document's sequence shares the prefix cells of the unified KV cache;
- the documents of a unit (one ``generate`` call: a runner batch) are decoded with
  continuous batching (:mod:`.continuous_batching`): up to ``max_sequences - 1`` samples
  decode together, one token each per step, a slot freed by a finished sample goes to the
  next document at once, and the prompts of admitted documents are evaluated in calls of
  up to ``batch_tokens`` tokens between the steps;
- the samples of a document fork its sequence after its prompt (no prompt is evaluated
  twice), and a sample whose text can no longer be kept (its request's ``watch``) stops;
- the logits are read where llama.cpp wrote them, and sampling is vectorised over the
  step's rows (:func:`inpars.generation.sampling.choose_tokens`), so a 262,144-token
  vocabulary costs little per token.

A unit always starts from the same restored state and its schedule depends on its own
requests only, so a document's completions do not depend on what ran before it (a
resumed run writes what an uninterrupted one writes). The thread count is fixed for the
backend's life (``threads``, or the fastest of 1 and every core, timed once at start:
:mod:`.threads`), because llama.cpp's sums, and so its samples, depend on it;
:meth:`LlamaCppBackend.thread_count` says which count was used.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inpars.errors import BackendError, ModelError
from inpars.generation.backends.base import Backend, Completion, GenerationRequest
from inpars.generation.backends.continuous_batching import Capacity, ContinuousBatch
from inpars.generation.backends.llama_model import LlamaVocab, fill_batch, import_llama_cpp, load_model
from inpars.generation.backends.threads import fastest, usable_cores
from inpars.generation.sampling import SamplingSettings

log = logging.getLogger(__name__)

CALIBRATION_TEXT = "Search engines rank documents by how well they match the words of a query."
CALIBRATION_STEPS = 2  # timed decoding steps per candidate and round


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
        max_sequences: int = 49,
        model_id: str = "",
    ) -> None:
        path = Path(model_path)
        super().__init__(model_id or path.name)
        if not 2 <= max_sequences <= batch_tokens:
            raise BackendError(
                f"max_sequences = {max_sequences}: must be between 2 (the prefix and one sample) and "
                f"batch_tokens ({batch_tokens}). Fix: set generate.sequences to 1-{batch_tokens - 1}"
            )
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
        """One unit of work per run of requests with the same prompt prefix (a runner
        batch has one), each from the prefix's saved state."""
        results: list[list[Completion]] = [[] for _ in requests]
        start = 0
        while start < len(requests):
            end = start
            while end < len(requests) and requests[end].prompt.prefix == requests[start].prompt.prefix:
                end += 1
            unit = requests[start:end]
            results[start:end] = self._run_unit(unit, settings)
            start = end
        return results

    def _run_unit(
        self, requests: Sequence[GenerationRequest], settings: SamplingSettings
    ) -> list[list[Completion]]:
        lc = self._lc
        prefix_tokens, state = self._prefix_state(requests[0].prompt.prefix)
        prefix_len = len(prefix_tokens)
        suffixes = [self.vocab.tokenize(r.prompt.suffix) for r in requests]
        lc.llama_memory_clear(self._mem, True)
        if prefix_len and lc.llama_state_seq_set_data(self._ctx, state, len(state), 0) == 0:
            raise BackendError("llama.cpp could not restore the saved prompt prefix state")
        capacity = Capacity(tuple(range(1, self._max_sequences)), self.n_ctx - prefix_len, self._batch_tokens)
        unit = ContinuousBatch(requests, suffixes, prefix_len, settings, capacity,
                               vocab=self.vocab, cache=self, decode=self._step)
        try:
            return unit.run()
        finally:
            self.stats.update(unit.stats)

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

    # the sequence cache of :class:`ContinuousBatch`
    def fork(self, source: int, target: int, end: int) -> None:
        self._lc.llama_memory_seq_cp(self._mem, source, target, 0 if end >= 0 else -1, end)

    def drop(self, seq: int) -> None:
        self._lc.llama_memory_seq_rm(self._mem, seq, -1, -1)

    def _step(self, entries: Sequence[tuple[int, int, int, bool]]) -> np.ndarray:
        """One decoding step of at most ``batch_tokens`` entries (token, position, sequence,
        wants logits): the wanted logits, in order, read in place (valid until the next step)."""
        lc = self._lc
        batch = self._batch
        wanted = fill_batch(batch, entries)
        code = lc.llama_decode(self._ctx, batch)
        if code != 0:
            raise BackendError(
                f"llama_decode failed (code {code}; 1 means the context is full). "
                "Fix: lower generate.sequences or raise generate.context_tokens"
            )
        if not wanted:
            return np.zeros((0, self.n_vocab), dtype=np.float32)
        return np.ctypeslib.as_array(lc.llama_get_logits(self._ctx), shape=(wanted, self.n_vocab))

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> np.ndarray:
        """Evaluate any number of entries, ``batch_tokens`` at a time; the wanted logits
        (copied), in order."""
        outputs = [
            np.array(self._step(entries[start : start + self._batch_tokens]))
            for start in range(0, len(entries), self._batch_tokens)
        ]
        outputs = [rows for rows in outputs if len(rows)]
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
