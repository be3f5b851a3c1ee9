"""Fakes the Ray tests ship to actors (importable there: the workers of a local cluster
run in the repository with the driver's sys.path): a generation backend and a scorer that
are deterministic, log their calls to a file, and can kill their own process once."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inpars.config import GenerateConfig
from inpars.generation.backends.base import Backend, Completion, GenerationRequest
from inpars.generation.sampling import SamplingSettings

WORDS = ["what", "causes", "the", "effect", "of", "which", "cells", "protein", "role", "how", "does",
         "change"]


def kill_self_once(marker: str) -> None:
    """SIGKILL this process, unless another process already did it (``marker`` is created
    atomically, so exactly one process dies)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def _log(path: str, lines: Sequence[str]) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in lines))


class EchoBackend(Backend):
    """Queries made from the document's words and the seed; counts a call per batch."""

    kind = "echo"

    def __init__(self, model_id: str, threads: int, calls_log: str = "", kill_marker: str = "",
                 kill_at_call: int = 0, die_on: str = "") -> None:
        super().__init__(model_id)
        self.die_on = die_on
        self.threads = threads
        self.calls = 0
        self.calls_log = calls_log
        self.kill_marker = kill_marker
        self.kill_at_call = kill_at_call

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])

    def generate(self, requests: Sequence[GenerationRequest], settings: SamplingSettings
                 ) -> list[list[Completion]]:
        self.calls += 1
        _log(self.calls_log, [r.prompt.suffix.replace("\n", " | ") for r in requests])
        if self.kill_marker and self.calls == self.kill_at_call:
            kill_self_once(self.kill_marker)
        if self.die_on and any(self.die_on in r.prompt.suffix for r in requests):
            os.kill(os.getpid(), signal.SIGKILL)  # every time: the shard can never finish
        return [[self._complete(r.prompt.suffix, seed) for seed in r.seeds] for r in requests]

    def _complete(self, suffix: str, seed: int) -> Completion:
        digest = hashlib.sha256(f"{suffix}|{seed}".encode()).digest()
        words = [WORDS[b % len(WORDS)] for b in digest[: 3 + digest[-1] % 5]]
        logprobs = tuple(-b / 64 for b in digest[: len(words)])
        self.stats["generated_tokens"] += len(words)
        return Completion(" ".join(words), logprobs, finished=digest[0] % 7 != 0)

    def thread_count(self) -> int:
        return self.threads


@dataclass(frozen=True)
class EchoFactory:
    """``load(cfg)`` of the generate stage: an :class:`EchoBackend` with the section's threads."""

    calls_log: str = ""
    kill_marker: str = ""
    kill_at_call: int = 0
    die_on: str = ""  # a text that kills the backend's process whenever a prompt holds it

    def __call__(self, cfg: GenerateConfig) -> EchoBackend:
        return EchoBackend(cfg.model, cfg.threads, self.calls_log, self.kill_marker, self.kill_at_call,
                           self.die_on)


@dataclass
class WordOverlapScorer:
    """Scores a pair by the words query and document share; may kill its process on a call."""

    name: str = "overlap"
    kill_marker: str = ""
    calls_log: str = ""

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        _log(self.calls_log, [f"{len(pairs)}"])
        if self.kill_marker and Path(self.kill_marker).parent.is_dir():
            kill_self_once(self.kill_marker)
        return [len(set(q.lower().split()) & set(d.lower().split())) + len(d) / 1e6 for q, d in pairs]
