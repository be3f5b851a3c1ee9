"""Continuous batching on a fake model: what each sequence sees is checked token by token,
so the schedule's bookkeeping (slots, cells, positions, forks) is tested without llama.cpp."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from inpars.config import GenerateConfig
from inpars.errors import BackendError
from inpars.generation.backends.base import Completion, GenerationRequest
from inpars.generation.backends.continuous_batching import Capacity, ContinuousBatch, Entry
from inpars.generation.sampling import SamplingSettings
from inpars.generation.templates import Prompt

PIECES = [b"", b" a", b" b", b" c", b" d", b" e", b".", b"\n", b" The", b" f", b" g", b" h"]
END = 0  # end-of-text
VOCAB = len(PIECES)


class FakeModel:
    """A vocabulary, a KV cache of per-sequence token histories and a decode step whose
    logits depend only on the history of the sequence they are for."""

    def __init__(self, prefix: Sequence[int], cells: int) -> None:
        self.seqs: dict[int, list[int]] = {0: list(prefix)}
        self.cells = cells
        self.steps: list[list[Entry]] = []

    def piece(self, token: int) -> bytes:
        return PIECES[token]

    def is_end(self, token: int) -> bool:
        return token == END

    def fork(self, source: int, target: int, end: int) -> None:
        assert target not in self.seqs, "a sequence is forked into while still in use"
        history = self.seqs[source]
        self.seqs[target] = list(history if end < 0 else history[:end])

    def drop(self, seq: int) -> None:
        del self.seqs[seq]

    def used_cells(self) -> int:
        """Distinct (position, token history) cells, as a unified cache shares them."""
        return len({tuple(h[: i + 1]) for h in self.seqs.values() for i in range(len(h))})

    def decode(self, entries: Sequence[Entry]) -> np.ndarray:
        self.steps.append(list(entries))
        rows = []
        for token, pos, seq, wants in entries:
            history = self.seqs[seq]
            assert pos == len(history), f"sequence {seq} fed position {pos} after {len(history)} tokens"
            history.append(token)
            if wants:
                digest = hashlib.sha256(repr(history).encode()).digest()
                rows.append(np.frombuffer(digest[:VOCAB], dtype=np.uint8).astype(np.float32) / 16.0)
        assert self.used_cells() <= len(self.seqs[0]) + self.cells, "more KV cells than the capacity"
        return np.stack(rows) if rows else np.zeros((0, VOCAB), dtype=np.float32)


PREFIX = [1, 2, 3]


def make_requests(count: int, samples: int = 3) -> tuple[list[GenerationRequest], list[list[int]]]:
    suffixes = [[(i + k) % 9 + 1 for k in range(3 + i % 4)] for i in range(count)]
    requests = [GenerationRequest(Prompt("p", f"d{i}"), tuple(100 * i + s for s in range(samples)))
                for i in range(count)]
    return requests, suffixes


def run(
    requests: list[GenerationRequest], suffixes: list[list[int]], *, slots: int = 6, cells: int = 400,
    batch_tokens: int = 16, settings: SamplingSettings | None = None,
) -> tuple[list[list[Completion]], FakeModel]:
    model = FakeModel(PREFIX, cells)
    settings = settings or SamplingSettings(max_new_tokens=8, temperature=1.0, top_k=5, top_p=1.0)
    unit = ContinuousBatch(requests, suffixes, len(PREFIX), settings,
                           Capacity(tuple(range(1, slots + 1)), cells, batch_tokens),
                           vocab=model, cache=model, decode=model.decode)
    return unit.run(), model


def test_a_documents_samples_do_not_depend_on_the_others_nor_on_the_slots() -> None:
    requests, suffixes = make_requests(7)
    together, model = run(requests, suffixes)
    assert [len(c) for c in together] == [3] * 7
    assert any(c.text for cs in together for c in cs)
    for i in range(7):  # alone, with one slot per sample: the same completions
        alone, _ = run(requests[i : i + 1], suffixes[i : i + 1], slots=3, batch_tokens=4)
        assert alone[0] == together[i]
    wide, _ = run(requests, suffixes, slots=21, batch_tokens=64)
    assert wide == together
    assert run(requests, suffixes)[0] == together  # and the same on every run
    assert model.seqs.keys() == {0}  # every sequence removed at the end


def test_steps_respect_the_slots_and_the_batch_and_refill_freed_slots() -> None:
    requests, suffixes = make_requests(9)
    _, model = run(requests, suffixes, slots=6, batch_tokens=10)
    for step in model.steps:
        assert len(step) <= 10
        assert len({seq for _, _, seq, _ in step}) <= 6
        assert all(1 <= seq <= 6 for _, _, seq, _ in step)
    widths = [sum(1 for *_, wants in step if wants) for step in model.steps]
    assert max(widths) == 6  # at some step every slot decoded
    # a call is either a decoding step (every token wants logits, one per sequence) or
    # prompt tokens only (only the last token of a finished prompt wants logits)
    for step in model.steps:
        seqs = [seq for _, _, seq, _ in step]
        if all(wants for *_, wants in step):
            assert len(set(seqs)) == len(seqs)
        else:
            assert sum(1 for *_, wants in step if wants) <= len(set(seqs))
    prompt_calls = [s for s in model.steps if not all(w for *_, w in s)]
    assert 3 <= len(prompt_calls) < len(model.steps)  # documents admitted as slots free up
    out, small = run(requests, suffixes, slots=3, batch_tokens=4)  # prompts split over calls
    assert all(len(step) <= 4 for step in small.steps)
    assert out == run(requests, suffixes, slots=6, batch_tokens=10)[0]
    with pytest.raises(BackendError, match="must fit one call"):
        run(requests, suffixes, slots=6, batch_tokens=4)  # a decoding step would not fit a call


def test_cells_limit_admission_and_a_document_too_big_is_refused() -> None:
    requests, suffixes = make_requests(5)
    settings = SamplingSettings(max_new_tokens=8, temperature=0.0)
    need = max(len(s) for s in suffixes) + 3 * 8
    out, _ = run(requests, suffixes, cells=need, settings=settings)  # one document at a time
    assert out == run(requests, suffixes, cells=400, settings=settings)[0]
    with pytest.raises(BackendError, match="context_tokens"):
        run(requests, suffixes, cells=need - 1, settings=settings)
    with pytest.raises(BackendError, match=r"generate\.sequences"):
        run(requests, suffixes, slots=2)


def test_stops_budget_sentences_and_the_watch() -> None:
    requests, suffixes = make_requests(6)
    settings = SamplingSettings(max_new_tokens=6, temperature=1.0, top_k=0, top_p=1.0, max_sentences=1)
    out, _ = run(requests, suffixes, settings=settings)
    for completion in (c for cs in out for c in cs):
        assert "\n" not in completion.text
        assert len(completion.token_logprobs) <= 6
        assert ". The" not in completion.text  # cut after the first sentence
        if not completion.finished:
            assert len(completion.token_logprobs) == 6
    seen: list[str] = []

    def watch(text: str) -> bool:
        seen.append(text)
        return len(text.split()) >= 2

    watched = [GenerationRequest(r.prompt, r.seeds, watch=watch) for r in requests]
    stopped, _ = run(watched, suffixes, settings=settings)
    assert seen
    for before, after in zip((c for cs in out for c in cs), (c for cs in stopped for c in cs), strict=True):
        if len(before.text.split()) >= 2 and after != before:
            assert not after.finished and len(after.text.split()) == 2
            assert before.text.startswith(after.text)


def test_sequences_setting_is_validated() -> None:
    assert GenerateConfig().sequences == 48
    with pytest.raises(ValueError, match="sequences"):
        GenerateConfig(queries_per_doc=5, sequences=4)
    with pytest.raises(ValueError, match="sequences"):
        GenerateConfig(sequences=512)
    GenerateConfig(backend="hf-causal", queries_per_doc=5, sequences=4)  # only llama-cpp reads it
    with pytest.raises(ValueError, match="max_sentences"):
        GenerateConfig(max_sentences=-1)
