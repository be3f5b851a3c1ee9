"""Encoder-decoder models (T5, BART, doc2query...) through Hugging Face transformers.

The encoder reads each prompt once; its output is repeated for the samples of the
document and the decoder runs all rows together with the seeded sampler.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from inpars.errors import ModelError
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


class HFSeq2SeqBackend(HFBackend):
    """A model loaded with ``AutoModelForSeq2SeqLM``; the prompt is the encoder input."""

    kind = "hf-seq2seq"

    def __init__(self, model: str, *, device: str = "auto", threads: int = 0, model_id: str = "") -> None:
        super().__init__(model_id or model)
        transformers = self._start_torch(device, threads)
        self.tokenizer = load_pretrained(transformers.AutoTokenizer, model, "tokenizer")
        self._tokens = HFTokenizer(self.tokenizer)
        self.model = (
            load_pretrained(transformers.AutoModelForSeq2SeqLM, model, "model").to(self.device).eval()
        )
        start = self.model.config.decoder_start_token_id
        if start is None:
            start = self.tokenizer.pad_token_id
        if start is None:
            raise ModelError(f"{model}: the config has no decoder_start_token_id. Fix: set it in config.json")
        self._start = int(start)
        self._end_ids = end_token_ids(self.tokenizer, self.model.config)
        log.info("transformers seq2seq LM %s on %s", model, self.device)

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
        with torch.inference_mode():
            encoded = self.model.get_encoder()(input_ids=ids, attention_mask=mask)
            rows = torch.tensor([row.request for row in decoder.rows], device=self.device)
            encoded.last_hidden_state = encoded.last_hidden_state[rows]
            mask = mask[rows]
            step_ids = torch.full((len(decoder.rows), 1), self._start, dtype=torch.long, device=self.device)
            cache = None
            while True:
                out = self.model(
                    encoder_outputs=encoded,
                    attention_mask=mask,
                    decoder_input_ids=step_ids,
                    past_key_values=cache,
                    use_cache=True,
                )
                cache = out.past_key_values
                chosen = decoder.step(out.logits[:, -1, :].float().cpu().numpy())
                if decoder.finished:
                    break
                self.stats["generated_tokens"] += sum(not row.done for row in decoder.rows)
                step_ids = torch.tensor(chosen, device=self.device)[:, None]
        return decoder.completions()

    def close(self) -> None:
        self.__dict__.pop("model", None)
