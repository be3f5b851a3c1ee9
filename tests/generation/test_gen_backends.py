"""Backends behind one interface: llama.cpp (packaged SmolLM2 GGUF) and transformers
(tiny random-weight GPT-2 and T5 folders); the seeded sampler they share."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inpars.config import GenerateConfig
from inpars.errors import BackendError, ModelError
from inpars.generation.backends import load_backend
from inpars.generation.backends.base import GenerationRequest
from inpars.generation.sampling import SamplingSettings, TokenSampler, derive_seed, log_normalizers
from inpars.generation.templates import Prompt

PREFIX = (
    "Each document is followed by a search query.\n\n"
    "Document: The Amazon carries more water than any other river.\nQuery: largest river by volume\n\n"
)
DOCS = [
    "Document: Cats purr when they are content and sometimes when they are hurt.\nQuery:",
    "Document: Honey never spoils because its sugar content is too high for microbes.\nQuery:",
    "Document: The Eiffel tower grows by about 15 cm in summer as its iron expands.\nQuery:",
]


def requests(n: int = 3, seed: int = 11) -> list[GenerationRequest]:
    return [
        GenerationRequest(Prompt(PREFIX, doc), tuple(derive_seed(seed, f"d{i}", s) for s in range(n)))
        for i, doc in enumerate(DOCS)
    ]


def test_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(42, "doc-1", 0) == derive_seed(42, "doc-1", 0)
    seeds = {derive_seed(s, d, k) for s in (1, 2) for d in ("a", "b") for k in range(3)}
    assert len(seeds) == 12
    assert all(0 <= s < 2**31 for s in seeds)


def test_token_sampler_is_seeded_and_reports_model_logprobs() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 500)).astype(np.float32) * 3
    norm = log_normalizers(logits)[0]
    reference = logits[0] - (logits[0].max() + math.log(np.exp(logits[0] - logits[0].max()).sum()))
    greedy = TokenSampler(SamplingSettings(temperature=0), seed=1).choose(logits[0], norm)
    assert greedy[0] == int(np.argmax(logits[0]))
    assert greedy[1] == pytest.approx(reference[greedy[0]], abs=1e-5)
    sampled = SamplingSettings(temperature=1.0, top_k=50, top_p=0.9)
    a = [TokenSampler(sampled, seed=7).choose(logits[0], norm) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    draws = {TokenSampler(sampled, seed=s).choose(logits[0], norm)[0] for s in range(40)}
    top50 = set(np.argsort(-logits[0])[:50].tolist())
    assert len(draws) > 3 and draws <= top50
    for token, logprob in (TokenSampler(sampled, seed=s).choose(logits[0], norm) for s in range(5)):
        assert logprob == pytest.approx(reference[token], abs=1e-5)  # temperature 1 model log-prob
    assert SamplingSettings().for_sample(0).greedy and not SamplingSettings().for_sample(1).greedy


@pytest.mark.slow
def test_llamacpp_generates_seeded_samples_with_logprobs(smollm2_backend: Any) -> None:
    backend = smollm2_backend
    settings = SamplingSettings(max_new_tokens=16)
    before = dict(backend.stats)
    out = backend.generate(requests(n=2), settings)
    assert [len(c) for c in out] == [2, 2, 2]
    for completions in out:
        for c in completions:
            assert "\n" not in c.text
            assert all(lp <= 0 for lp in c.token_logprobs)
            if c.finished:
                assert 0 < len(c.token_logprobs) <= 16
    assert any(c.text.strip() for cs in out for c in cs)
    # the prefix was evaluated once (or was already cached), the documents once each
    assert backend.stats["prefix_evals"] - before.get("prefix_evals", 0) <= 1
    # same seeds and the same batch: the same completions
    assert backend.generate(requests(n=2), settings) == out
    # other seeds: other samples
    other = backend.generate(requests(n=2, seed=12), settings)
    assert [cs[1:] for cs in other] != [cs[1:] for cs in out]


@pytest.mark.slow
def test_llamacpp_stop_strings_come_from_the_settings(smollm2_backend: Any) -> None:
    settings = SamplingSettings(max_new_tokens=12, temperature=0, stop=(" ",))
    out = smollm2_backend.generate(requests(n=1)[:1], settings)[0][0]
    assert " " not in out.text.strip()


def test_load_backend_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_backend(GenerateConfig(model=str(tmp_path / "missing.gguf")))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"needs a local \.gguf file"):
        load_backend(GenerateConfig(model=str(folder)))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    pytest.importorskip("llama_cpp")
    with pytest.raises(ModelError, match="cannot load"):
        load_backend(GenerateConfig(model=str(bad)))
    with pytest.raises(ModelError, match="cannot load the tokenizer"):
        load_backend(GenerateConfig(model=str(folder), backend="hf-causal", device="cpu"))


@pytest.mark.parametrize("kind", ["hf-causal", "hf-seq2seq"])
def test_transformers_backends_on_tiny_local_models(kind: str, tiny_gpt2: Path, tiny_t5: Path) -> None:
    folder = tiny_gpt2 if kind == "hf-causal" else tiny_t5
    backend = load_backend(GenerateConfig(model=str(folder), backend=kind, device="cpu", threads=1))
    assert backend.kind == kind
    reqs = [
        GenerationRequest(Prompt("the cells of\n", "what does protein do ?\nquery:"), (1, 2, 3)),
        GenerationRequest(Prompt("the cells of\n", "blood pressure\nquery:"), (4, 5)),
    ]
    settings = SamplingSettings(max_new_tokens=6)
    out = backend.generate(reqs, settings)
    assert [len(c) for c in out] == [3, 2]
    for completions in out:
        for c in completions:
            assert len(c.token_logprobs) <= 6
            assert all(lp <= 0 for lp in c.token_logprobs)
            assert "\n" not in c.text
    assert backend.generate(reqs, settings) == out  # seeded
    assert backend.count_tokens("what does protein do") == 4
    assert backend.truncate("what does protein do", 2) == "what does"
    assert backend.stats["prompt_tokens"] > 0
    backend.close()


def test_thread_tuner_keeps_the_faster_count_and_probes_less_often() -> None:
    from inpars.generation.backends.threads import ThreadTuner

    tuner = ThreadTuner([1, 2])
    cost = {1: 0.02, 2: 0.2}  # two threads collapse (a busy core)
    used = []
    for _ in range(400):
        n = tuner.pick("step")
        used.append(n)
        tuner.record("step", n, cost[n] * 12, 12)
    assert tuner.best("step") == 1
    probes = [i for i, n in enumerate(used) if n == 2]
    assert 2 <= len(probes) <= 8  # tried first, then probed at growing intervals
    assert all(b - a >= 16 for a, b in itertools.pairwise(probes[1:]))
    cost = {1: 0.02, 2: 0.005}  # the other process ended: two threads now win
    for _ in range(1200):
        n = tuner.pick("step")
        tuner.record("step", n, cost[n] * 12, 12)
    assert tuner.best("step") == 2
    assert ThreadTuner([3]).pick("prompt") == 3


def test_thread_tuner_compares_calls_of_the_same_size() -> None:
    from inpars.generation.backends.threads import ThreadTuner, work_kind

    assert [work_kind("step", n) for n in (1, 2, 3, 12, 16, 17)] == [
        "step/1", "step/2", "step/4", "step/16", "step/16", "step/32"]
    # per token, a 2-token call costs more than a 12-token one whatever the thread count;
    # two threads are faster at both sizes and must win at both, not lose to the other size
    per_token = {(1, 2): 0.05, (2, 2): 0.04, (1, 12): 0.01, (2, 12): 0.006}
    tuner = ThreadTuner([1, 2])
    for i in range(600):
        size = 2 if i % 3 else 12
        kind = work_kind("step", size)
        n = tuner.pick(kind)
        tuner.record(kind, n, per_token[(n, size)] * size, size)
    assert tuner.best(work_kind("step", 2)) == 2 and tuner.best(work_kind("step", 12)) == 2
    assert tuner.kinds() == ["step/16", "step/2"]


def test_vectorised_choice_matches_the_full_row_sampler_and_is_exact_top_k() -> None:
    from inpars.generation.sampling import choose_tokens, top_k_tokens

    rng = np.random.default_rng(3)
    logits = (rng.normal(size=(6, 5000)) * 2.5).astype(np.float32)
    logits[:, rng.integers(0, 5000, 30)] += 9
    logits[2, [10, 20, 30]] = logits[2].max() + 1  # a tie at the top
    for k in (1, 40, 300):
        for row in logits:
            top = top_k_tokens(row, k, float(row.max()))
            order = np.lexsort((np.arange(5000), -row.astype(np.float64)))  # the whole row sorted
            assert top.tolist() == order[:k].tolist()
    assert top_k_tokens(logits[2], 2, float(logits[2].max())).tolist() == [10, 20]  # ties: smaller id first
    norms = log_normalizers(logits)
    for settings in (SamplingSettings(temperature=0), SamplingSettings(), SamplingSettings(top_k=0)):
        samplers = [TokenSampler(settings, seed=i) for i in range(6)]
        again = [TokenSampler(settings, seed=i) for i in range(6)]
        got = choose_tokens(samplers, logits)
        assert got == [s.choose(logits[i], norms[i]) for i, s in enumerate(again)]
        for i, (token, logprob) in enumerate(got):
            exact = float(logits[i, token]) - math.log(np.exp(logits[i].astype(np.float64)).sum())
            assert logprob == pytest.approx(exact, abs=1e-5)  # the model's log-prob, full vocabulary


@pytest.mark.slow
def test_llamacpp_continuous_batches_repeat_and_count_their_steps(smollm2_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from inpars.generation.backends.llamacpp import LlamaCppBackend

    settings = SamplingSettings(max_new_tokens=12, max_sentences=1)
    with LlamaCppBackend(smollm2_path, context_tokens=2048, max_sequences=4, threads=1) as narrow:
        out = narrow.generate(requests(n=2), settings)  # 3 slots: documents wait for free ones
        assert narrow.generate(requests(n=2), settings) == out
        assert narrow.stats["steps"] > 0 and narrow.stats["generated_tokens"] > 0
        watched = [GenerationRequest(r.prompt, r.seeds, watch=lambda text: bool(text.strip()))
                   for r in requests(n=2)]
        stopped = narrow.generate(watched, settings)
        assert all(c.finished or len(c.text.split()) == 1 for cs in stopped for c in cs)
        with pytest.raises(BackendError, match=r"generate\.sequences"):
            narrow.generate(requests(n=4), settings)
