"""Generation backends behind one interface (:class:`Backend`), one file each:

- ``llama-cpp``  (:mod:`.llamacpp`): GGUF models in llama.cpp, the default; shares the
  few-shot prefix and the document prompt across samples, decodes a batch together
- ``hf-causal``  (:mod:`.hf_causal`): decoder-only transformers models
- ``hf-seq2seq`` (:mod:`.hf_seq2seq`): encoder-decoder transformers models (T5...)
- ``openai``     (:mod:`.openai_http`): any OpenAI-compatible completions server

Heavy libraries are imported only when a backend is created.
"""

from __future__ import annotations

from pathlib import Path

from inpars.config import GenerateConfig
from inpars.errors import ConfigError, ModelError
from inpars.generation.backends.base import Backend, Completion, GenerationRequest, free_cores
from inpars.models import resolve_model

BACKENDS = ("llama-cpp", "hf-causal", "hf-seq2seq", "openai")


def load_backend(cfg: GenerateConfig) -> Backend:
    """The backend a ``[generate]`` section asks for, with its model loaded."""
    if cfg.backend == "openai":
        from inpars.generation.backends.openai_http import OpenAICompatibleBackend, load_token_budget

        return OpenAICompatibleBackend.from_env(
            cfg.api_base,
            cfg.model,
            api_key_env=cfg.api_key_env,
            concurrency=cfg.concurrency,
            timeout_s=cfg.timeout_s,
            retries=cfg.retries,
            tokenizer=load_token_budget(cfg.tokenizer),
        )
    path = resolve_model(cfg.model)
    if cfg.backend == "llama-cpp":
        from inpars.generation.backends.llamacpp import LlamaCppBackend

        if not path.endswith(".gguf") or not Path(path).is_file():
            raise ModelError(
                f"generate.model = {cfg.model!r}: the llama-cpp backend needs a local .gguf file "
                f"(got {path!r}). Fix: give a GGUF path or 'gemma3-270m', "
                "or set generate.backend = 'hf-causal'"
            )
        return LlamaCppBackend(
            path,
            threads=cfg.threads,
            context_tokens=cfg.context_tokens,
            max_sequences=cfg.sequences + 1,  # sequence 0 holds the shared prompt prefix
            model_id=cfg.model,
        )
    if path.endswith(".gguf"):
        raise ModelError(
            f"generate.model = {cfg.model!r} is a GGUF file. Fix: use generate.backend = 'llama-cpp'"
        )
    if cfg.backend == "hf-causal":
        from inpars.generation.backends.hf_causal import HFCausalBackend

        return HFCausalBackend(path, device=cfg.device, threads=cfg.threads, model_id=cfg.model)
    if cfg.backend == "hf-seq2seq":
        from inpars.generation.backends.hf_seq2seq import HFSeq2SeqBackend

        return HFSeq2SeqBackend(path, device=cfg.device, threads=cfg.threads, model_id=cfg.model)
    raise ConfigError(f"generate.backend = {cfg.backend!r}: use one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "Completion", "GenerationRequest", "free_cores", "load_backend"]
