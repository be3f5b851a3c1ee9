"""Causal language models through Hugging Face transformers (hub id or local folder).

A batch of documents is encoded once (left-padded); the key/value cache is then
repeated for the samples of each document and all rows decode together with the
seeded sampler of :mod:`inpars.generation.sampling`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from inpars.generation.backends.base import Completion, GenerationRequest
from inpars.generation.backends.hf_common import (
    HFBackend,
    HFTokenizer,
    RowDecoder,
    end_token_ids,
    load_pretrained,
)
from inpars.generation.sampling import SamplingSettings

log = logging.getLogger(__name__)


class HFCausalBackend(HFBackend):
    """A decoder-only model (GPT-2, Llama, Gemma, Qwen...) loaded with ``AutoModelForCausalLM``."""

    kind = "hf-causal"

    def __init__(self, model: str, *, device: str = "auto", threads: int = 0, model_id: str = "") -> None:
        super().__init__(model_id or model)
        transformers = self._start_torch(device, threads)
        tok = load_pretrained(transformers.AutoTokenizer, model, "tokenizer")
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        self.tokenizer = tok
        self._tokens = HFTokenizer(tok)
        self.model = load_pretrained(transformers.AutoModelForCausalLM, model, "model").to(self.device).eval()
        self._end_ids = end_token_ids(tok, self.model.config)
        log.info("transformers causal LM %s on %s", model, self.device)

    def generate(
        self, requests: Sequence[GenerationRequest], settings: SamplingSettings
    ) -> list[list[Completion]]:
        if not requests:
            return []
        torch = self._torch
        decoder = RowDecoder(self.tokenizer, requests, settings, self._end_ids)
        enc = self.tokenizer([r.prompt.text for r in requests], return_tensors="pt", padding=True)
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        self.stats["prompt_tokens"] += int(mask.sum())
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
            rows = torch.tensor([row.request for row in decoder.rows], device=self.device)
            cache = out.past_key_values
            cache.batch_select_indices(rows)
            logits = out.logits[:, -1, :][rows]
            mask = mask[rows]
            last = positions[rows, -1]
            while True:
                chosen = decoder.step(logits.float().cpu().numpy())
                if decoder.finished:
                    break
                self.stats["generated_tokens"] += sum(not row.done for row in decoder.rows)
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                last = last + 1
                out = self.model(
                    input_ids=torch.tensor(chosen, device=self.device)[:, None],
                    attention_mask=mask,
                    position_ids=last[:, None],
                    past_key_values=cache,
                    use_cache=True,
                )
                cache = out.past_key_values
                logits = out.logits[:, -1, :]
        return decoder.completions()

    def close(self) -> None:
        self.__dict__.pop("model", None)
