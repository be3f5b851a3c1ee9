"""Continuous batching: the samples of many documents decoded together, each freed
sequence slot refilled with the next document at once.

One :meth:`ContinuousBatch.run` is one unit of work (the documents of a runner batch).
Its schedule, which prompt tokens share a call and which samples a decoding step, follows
from the unit's requests alone (and from what the model writes), never from what ran
before, so a resumed run repeats it exactly:

- requests are admitted in their order, as soon as a sequence slot is free for each of
  their samples and the KV cells they may need (prompt, plus ``max_new_tokens`` per
  sample) are free too; a request's prompt starts from the shared prefix (a fork of its
  cells, nothing recomputed);
- each round evaluates pending prompt tokens (up to ``batch_tokens``, in order) in one call
  and then decodes one token of every live sample in another: kept apart, each runs at
  its best rate (on 2 cores a 480-token call that carried 48 sampled tokens along was ~12%
  slower than the two calls apart, and the generate stage ~15% slower in documents/s);
- the logits of a prompt's last token give the first token of every sample of the
  document; the samples then fork the document's sequence;
- a sample ends at a stop (:func:`~inpars.generation.backends.base.find_stop`), at
  end-of-text, at ``max_new_tokens``, or as soon as its request's ``watch`` calls its text
  a lost cause; its slot and cells go to the next request.

The model is reached through three small interfaces (:class:`Vocabulary`,
:class:`SequenceCache` and a ``decode`` function), so the schedule is tested without one.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from inpars.errors import BackendError
from inpars.generation.backends.base import (
    Completion,
    GenerationRequest,
    cut_at_stop,
    decode_bytes,
    find_stop,
)
from inpars.generation.sampling import LogitRows, SamplingSettings, TokenSampler

if TYPE_CHECKING:
    import numpy as np

Entry = tuple[int, int, int, bool]
"""One token of a decoding step: (token, position, sequence, wants its logits)."""

Decode = Callable[[Sequence[Entry]], "np.ndarray"]
"""Evaluates one step (at most ``batch_tokens`` entries); the logits of the entries that
want them, one row each, in entry order."""


class Vocabulary(Protocol):
    def piece(self, token: int) -> bytes: ...

    def is_end(self, token: int) -> bool: ...


class SequenceCache(Protocol):
    def fork(self, source: int, target: int, end: int) -> None:
        """Give ``target`` the cells of ``source`` at positions below ``end`` (-1: all)."""

    def drop(self, seq: int) -> None:
        """Remove every cell of ``seq`` (cells other sequences share stay)."""


@dataclass(frozen=True)
class Capacity:
    """What one unit may use: sequence ids for samples, KV cells beyond the shared
    prefix, and tokens per decoding step."""

    slots: tuple[int, ...]
    cells: int
    batch_tokens: int


@dataclass
class _Prompt:
    request: int
    tokens: list[int]
    seqs: list[int]
    fed: int = 0


@dataclass
class _Sample:
    request: int
    sample: int
    seq: int
    pos: int
    sampler: TokenSampler
    pieces: list[bytes] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    token: int = -1


class ContinuousBatch:
    """The schedule of one unit of work; :meth:`run` returns one list of completions per
    request, one completion per seed. ``stats`` counts prompt and generated tokens fed,
    steps, and samples stopped early by their watch."""

    def __init__(
        self,
        requests: Sequence[GenerationRequest],
        suffixes: Sequence[list[int]],
        prefix_len: int,
        settings: SamplingSettings,
        capacity: Capacity,
        *,
        vocab: Vocabulary,
        cache: SequenceCache,
        decode: Decode,
    ) -> None:
        self._requests = requests
        self._suffixes = suffixes
        self._prefix_len = prefix_len
        self._settings = settings
        self._capacity = capacity
        self._vocab = vocab
        self._cache = cache
        self._decode = decode
        self._check(capacity)
        self._free = sorted(capacity.slots)
        self._cells = capacity.cells
        self._waiting = deque(range(len(requests)))
        self._prompts: deque[_Prompt] = deque()
        self._live: list[_Sample] = []
        self._open = [len(r.seeds) for r in requests]
        self._rows = LogitRows()
        self.stats: Counter[str] = Counter()
        self.results: list[list[Completion]] = [[Completion("", (), False)] * len(r.seeds) for r in requests]

    def _need(self, i: int) -> int:
        return len(self._suffixes[i]) + len(self._requests[i].seeds) * self._settings.max_new_tokens

    def _check(self, capacity: Capacity) -> None:
        if not 0 < len(capacity.slots) <= capacity.batch_tokens:
            raise BackendError(f"{len(capacity.slots)} sequence slots for calls of {capacity.batch_tokens} "
                               "tokens: a decoding step must fit one call. Fix: lower generate.sequences")
        for i, request in enumerate(self._requests):
            n = len(request.seeds)
            if not self._suffixes[i] or not n:
                raise BackendError("a request with an empty prompt suffix or no seeds (nothing to generate)")
            if n > len(capacity.slots):
                raise BackendError(
                    f"one document asks for {n} samples but {len(capacity.slots)} sequences decode together. "
                    "Fix: raise generate.sequences or lower generate.queries_per_doc"
                )
            if self._need(i) > capacity.cells:
                raise BackendError(
                    f"one document needs {self._prefix_len + self._need(i)} tokens of context "
                    f"({self._prefix_len} prompt prefix, {len(self._suffixes[i])} document, {n} x "
                    f"{self._settings.max_new_tokens} new) but the context holds "
                    f"{self._prefix_len + capacity.cells}. Fix: lower generate.doc_max_tokens or raise "
                    "generate.context_tokens"
                )

    def run(self) -> list[list[Completion]]:
        while self._waiting or self._prompts or self._live:
            self._admit()
            if self._prompts:
                self._call(*self._prompt_call())
            if self._live:
                self._call(*self._decoding_step())
        return self.results

    def _call(self, entries: list[Entry], owners: list[_Sample | _Prompt]) -> None:
        logits = self._decode(entries)
        self.stats["steps"] += 1
        self._advance(logits, owners)

    def _admit(self) -> None:
        """Start the waiting requests, in order, while their slots and cells are free."""
        while self._waiting:
            i = self._waiting[0]
            n, need = len(self._requests[i].seeds), self._need(i)
            if len(self._free) < n or need > self._cells:
                return
            self._waiting.popleft()
            seqs = [heapq.heappop(self._free) for _ in range(n)]
            self._cells -= need
            if self._prefix_len:
                self._cache.fork(0, seqs[0], self._prefix_len)
            self._prompts.append(_Prompt(i, self._suffixes[i], seqs))

    def _decoding_step(self) -> tuple[list[Entry], list[_Sample | _Prompt]]:
        """One token of every live sample; each wants its logits."""
        self.stats["generated_tokens"] += len(self._live)
        return [(s.token, s.pos, s.seq, True) for s in self._live], list(self._live)

    def _prompt_call(self) -> tuple[list[Entry], list[_Sample | _Prompt]]:
        """Pending prompt tokens, in order, up to ``batch_tokens``; the prompts this call
        finishes (their last token wants logits)."""
        entries: list[Entry] = []
        owners: list[_Sample | _Prompt] = []
        room = self._capacity.batch_tokens
        for prompt in self._prompts:
            if room <= 0:
                break
            take = min(room, len(prompt.tokens) - prompt.fed)
            end = prompt.fed + take
            entries += [
                (prompt.tokens[k], self._prefix_len + k, prompt.seqs[0], k == len(prompt.tokens) - 1)
                for k in range(prompt.fed, end)
            ]
            if end == len(prompt.tokens):
                owners.append(prompt)
            prompt.fed = end
            room -= take
            self.stats["prompt_tokens"] += take
        return entries, owners

    def _advance(self, logits: np.ndarray, owners: list[_Sample | _Prompt]) -> None:
        """Choose the next token of every sample the step fed, and the first tokens of the
        documents whose prompt it finished."""
        if logits.shape[0] != len(owners):
            raise BackendError(f"the model gave {logits.shape[0]} rows of logits for {len(owners)} outputs")
        norms, peaks = self._rows.normalizers(logits)
        fed = any(isinstance(owner, _Sample) for owner in owners)
        live: list[_Sample] = [] if fed else list(self._live)  # a prompt call feeds no sample
        for row, owner in enumerate(owners):
            if isinstance(owner, _Prompt):
                self._prompts.popleft()  # prompts finish in the order they were fed
                samples = self._fork(owner)
            else:
                owner.pos += 1
                samples = [owner]
            for sample in samples:
                token, logprob = sample.sampler.choose(logits[row], float(norms[row]), float(peaks[row]))
                if self._accept(sample, token, logprob):
                    live.append(sample)
        self._live = live

    def _fork(self, prompt: _Prompt) -> list[_Sample]:
        """The samples of a document whose prompt is evaluated, each in its own sequence."""
        request = self._requests[prompt.request]
        first = prompt.seqs[0]
        for seq in prompt.seqs[1:]:
            self._cache.fork(first, seq, -1)
        pos = self._prefix_len + len(prompt.tokens)
        return [
            _Sample(prompt.request, s, seq, pos, TokenSampler(self._settings.for_sample(s), seed))
            for s, (seq, seed) in enumerate(zip(prompt.seqs, request.seeds, strict=True))
        ]

    def _accept(self, sample: _Sample, token: int, logprob: float) -> bool:
        """Add a chosen token to a sample; False when the sample has ended."""
        settings = self._settings
        if self._vocab.is_end(token):
            self._finish(sample, True)
            return False
        piece = self._vocab.piece(token)
        sample.pieces.append(piece)
        sample.logprobs.append(logprob)
        sample.data += piece
        if find_stop(bytes(sample.data), settings.stop, settings.max_sentences) != -1:
            self._finish(sample, True)
            return False
        if len(sample.pieces) >= settings.max_new_tokens:
            self._finish(sample, False)
            return False
        watch = self._requests[sample.request].watch
        if watch is not None and watch(decode_bytes(bytes(sample.data))):
            self.stats["stopped_early"] += 1
            self._finish(sample, False)
            return False
        sample.token = token
        return True

    def _finish(self, sample: _Sample, stopped: bool) -> None:
        settings = self._settings
        data, kept, found = cut_at_stop(sample.pieces, settings.stop, settings.max_sentences)
        self.results[sample.request][sample.sample] = Completion(
            decode_bytes(data), tuple(sample.logprobs[:kept]), stopped or found
        )
        self._cache.drop(sample.seq)
        heapq.heappush(self._free, sample.seq)
        self._cells += settings.max_new_tokens
        self._open[sample.request] -= 1
        if not self._open[sample.request]:
            self._cells += len(self._suffixes[sample.request])
