"""The one narrow interface every generation backend implements.

Prompts go in (a shared prefix and a per-document suffix), completions come out: the
text up to the first stop string (or the end of the ``max_sentences``-th sentence, once
another one starts), the model's log-probability of each of its tokens, and whether a
stop (or end-of-text) ended it. Each sample has its own seed.

A request may carry a ``watch``: a test of the text written so far that says when a
sample can no longer become a kept query (a copy of the document, too many words: see
:class:`inpars.generation.parsing.QueryWatch`). A backend that decodes token by token
may stop such a sample at once (it returns it unfinished, with the text so far); one that
cannot, ignores it. The verdict on the text is the runner's either way.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from inpars.generation.sampling import SamplingSettings
from inpars.generation.templates import Prompt


@dataclass(frozen=True)
class GenerationRequest:
    """One document's prompt and the seeds of its samples (one completion per seed);
    ``watch(text)``: true once the text a sample has written so far is a lost cause."""

    prompt: Prompt
    seeds: tuple[int, ...]
    watch: Callable[[str], bool] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Completion:
    """One sample: text before the stop string, per-token log-probs, and how it ended."""

    text: str
    token_logprobs: tuple[float, ...]
    finished: bool


class Backend(ABC):
    """A language model that completes prompts.

    ``stats`` counts ``prompt_tokens`` (evaluated, cached prefixes excluded),
    ``generated_tokens`` and ``prefix_evals``, for throughput reports (llama.cpp adds its
    ``steps`` and the samples ``stopped_early`` by their request's watch).
    """

    kind: str = ""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.stats: Counter[str] = Counter()

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` (no special tokens)."""

    @abstractmethod
    def truncate(self, text: str, max_tokens: int) -> str:
        """``text`` cut to its first ``max_tokens`` tokens."""

    @abstractmethod
    def generate(
        self, requests: Sequence[GenerationRequest], settings: SamplingSettings
    ) -> list[list[Completion]]:
        """One list of completions per request, one completion per seed; sample ``i`` of a
        request uses ``settings.for_sample(i)`` and ``request.seeds[i]``."""

    def thread_count(self) -> int | None:
        """The CPU thread count the model computes with, when its results depend on it
        (``None``: they do not, as with a server or a GPU). A resumed run reuses it."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Free the model (and stop threads or connections)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SENTENCE_GAP = re.compile(rb"[.!?][\"')\]]*(?=\s+[A-Z])")
_LAST_WORD = re.compile(rb"([A-Za-z]+)\.?$")
# words a full stop follows without ending the sentence (lower case)
ABBREVIATIONS = frozenset(
    b"al vs dr mr mrs ms prof fig figs no nos vol eq eqs ref refs approx ca cf etc inc ltd co jr sr "
    b"st ph dept univ sci proc nat ed eds resp viz".split()
)


def sentence_end(data: bytes, max_sentences: int) -> int:
    """Byte offset just after the ``max_sentences``-th sentence of ``data`` when another
    sentence starts after it, else -1 (``max_sentences`` 0: never).

    A sentence ends at ``.``, ``!`` or ``?`` (closing quotes and brackets included) that
    whitespace and a capital letter follow; a full stop after a single letter (initials,
    ``e.g``) or after a common abbreviation (``et al``, ``Fig``, ``vs``...) does not end one.
    """
    if max_sentences <= 0:
        return -1
    count = 0
    for match in _SENTENCE_GAP.finditer(data):
        if data[match.start() : match.start() + 1] == b".":
            word = _LAST_WORD.search(data, max(0, match.start() - 12), match.start())
            if word and (len(word.group(1)) == 1 or word.group(1).lower() in ABBREVIATIONS):
                continue
        count += 1
        if count == max_sentences:
            return match.end()
    return -1


def find_stop(data: bytes, stops: Sequence[str], max_sentences: int = 0) -> int:
    """Where the completion in ``data`` ends: the first stop string, or the end of the
    ``max_sentences``-th sentence once another one started (:func:`sentence_end`),
    whichever comes first; -1 when neither is there yet."""
    cut = -1
    for stop in stops:
        at = data.find(stop.encode("utf-8"))
        if at != -1 and (cut == -1 or at < cut):
            cut = at
    end = sentence_end(data, max_sentences)
    if end != -1 and (cut == -1 or end < cut):
        cut = end
    return cut


def cut_at_stop(
    pieces: Sequence[bytes], stops: Sequence[str], max_sentences: int = 0
) -> tuple[bytes, int, bool]:
    """Join token pieces and cut before the first stop (:func:`find_stop`).

    Returns the kept bytes, how many tokens contributed to them (a token that straddles
    the stop counts when some non-blank part of it is kept) and whether a stop was found.
    """
    data = b"".join(pieces)
    at = find_stop(data, stops, max_sentences)
    found = at != -1
    cut = at if found else len(data)
    kept = 0
    offset = 0
    for piece in pieces:
        if offset >= cut:
            break
        if offset + len(piece) <= cut or piece[: cut - offset].strip():
            kept += 1
        offset += len(piece)
    return data[:cut], kept, found


def decode_bytes(data: bytes) -> str:
    """UTF-8 text of generated bytes (a character split by the cut is dropped)."""
    return data.decode("utf-8", errors="ignore")


def free_cores() -> int:
    """Cores not busy with other processes right now (load average), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))
