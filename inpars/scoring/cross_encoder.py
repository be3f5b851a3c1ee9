"""Cross-encoder scoring: one transformer pass over each (query, document) pair.

Loads a sequence-classification model (a sentence-transformers ``CrossEncoder`` folder,
any Hugging Face ``*ForSequenceClassification`` folder or hub id), or a plain encoder
such as the packaged all-MiniLM-L6-v2 with a fresh one-logit head (the start point of
training; its scores mean nothing until then).

Speed on CPU comes from tokenizing a chunk of pairs in one call, sorting them by token
length into buckets padded only to their longest pair, ``torch.inference_mode`` and, where
the chip has it, bfloat16; or int8 (``quantize="int8"``, CPU only: see
:mod:`inpars.scoring.quantize`). Scores match ``sentence_transformers.CrossEncoder.predict``
(same tokenization, same activation) in float32.

With ``raw=True`` the scorer returns the logit before the activation instead (for a
2-label model, ``logit[relevant] - logit[not relevant]``, the logit of its softmax): a
strictly increasing function of the activated score, so the ranking is the same, but one
that does not saturate. Sigmoid scores of confident models round to exactly 1.0 in float32
(for logits above about 17), which makes their top documents tie; reranking therefore asks
for raw scores.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpars.errors import ModelError
from inpars.models import resolve_model
from inpars.scoring.batching import length_buckets, pad_rows, restore_order
from inpars.scoring.quantize import quantize_int8, resolve_quantize
from inpars.scoring.runtime import resolve_device, resolve_dtype, set_threads

log = logging.getLogger(__name__)

TOKENIZE_CHUNK = 2048  # pairs tokenized (and length-sorted) together; bounds memory on big inputs
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def has_relevance_head(architectures: Sequence[str]) -> bool:
    """Whether a model config's ``architectures`` include a sequence-classification head (a
    trained cross-encoder); a plain encoder gets a fresh, untrained head."""
    return any(a.endswith("ForSequenceClassification") for a in architectures)


def activation_name(model_dir: Path, num_labels: int) -> str:
    """The activation sentence-transformers applies to this model's logits.

    Read from ``config_sentence_transformers.json`` (v4+) or the ``sentence_transformers``
    block of ``config.json`` (older releases); otherwise sigmoid for one label, as
    sentence-transformers does. Returns ``sigmoid``, ``identity`` or ``tanh``.
    """
    declared = ""
    st_config = model_dir / "config_sentence_transformers.json"
    hf_config = model_dir / "config.json"
    try:
        if st_config.is_file():
            declared = str(json.loads(st_config.read_text(encoding="utf-8")).get("activation_fn") or "")
        if not declared and hf_config.is_file():
            block = json.loads(hf_config.read_text(encoding="utf-8")).get("sentence_transformers") or {}
            declared = str(block.get("activation_fn") or "")
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{model_dir}: unreadable model config ({exc}). Fix: re-save the model") from exc
    if not declared:
        return "sigmoid" if num_labels == 1 else "identity"
    short = declared.rsplit(".", 1)[-1].lower()
    if short in ("sigmoid", "identity", "tanh"):
        return short
    log.warning("%s: activation %s is not supported; using raw logits (same ranking)", model_dir, declared)
    return "identity"


class CrossEncoderScorer:
    """Scores (query, document) pairs with a cross-encoder; see the module docstring."""

    kind = "cross-encoder"

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        max_length: int = 256,
        device: str = "auto",
        dtype: str = "auto",
        threads: int = 0,
        seed: int = 0,
        show_progress: bool = False,
        raw: bool = False,
        quantize: str = "none",
    ) -> None:
        if batch_size < 1 or max_length < 8:
            raise ModelError(
                f"batch_size = {batch_size}, max_length = {max_length}. Fix: batch_size >= 1, max_length >= 8"
            )
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        self.name = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.show_progress = show_progress
        self.raw = raw
        self.quantize = quantize
        device, dtype = resolve_quantize(quantize, device, dtype)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if self.device == "cpu":
            self.threads = set_threads(threads)
        path = resolve_model(model)
        try:
            config = AutoConfig.from_pretrained(path)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{model}: cannot load a model config and tokenizer ({exc}). "
                "Fix: give a packaged alias, a local model folder or a reachable hub id"
            ) from exc
        architectures = config.architectures or []
        self.fresh_head = not has_relevance_head(architectures)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # a fresh head is drawn from this seed only
            kwargs: dict[str, Any] = {"num_labels": 1} if self.fresh_head else {}
            try:
                net = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
            except (OSError, ValueError) as exc:
                raise ModelError(f"{model}: cannot load it as a cross-encoder ({exc})") from exc
        if self.fresh_head:
            log.warning("%s has no classification head: using a fresh one-logit head (seed %d); "
                        "its scores mean nothing until it is trained", model, seed)
        self.num_labels = int(net.config.num_labels)
        if self.num_labels > 2:
            raise ModelError(
                f"{model}: a classifier with {self.num_labels} labels. Fix: use a relevance model with "
                "1 label (a score) or 2 labels (not relevant / relevant)"
            )
        local = Path(path)
        self.activation = activation_name(local, self.num_labels) if local.is_dir() else (
            "sigmoid" if self.num_labels == 1 else "identity"
        )
        self.model = net.to(self.device, dtype=self.dtype).eval()
        if self.dtype != torch.float32:
            float32_head(self.model)
        if quantize == "int8":
            self.model = quantize_int8(self.model)
        accepted = set(inspect.signature(self.model.forward).parameters)
        self._inputs = [name for name in MODEL_INPUTS if name in accepted]
        self.pad_id = int(self.tokenizer.pad_token_id or 0)

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """One score per (query text, document text) pair, in input order."""
        from tqdm import tqdm

        scores: list[float] = []
        with tqdm(total=len(pairs), desc="cross-encoder", unit="pair", disable=not self.show_progress) as bar:
            for start in range(0, len(pairs), TOKENIZE_CHUNK):
                chunk = pairs[start : start + TOKENIZE_CHUNK]
                scores.extend(self._score_chunk(chunk, bar))
        return scores

    def _score_chunk(self, pairs: Sequence[tuple[str, str]], bar: Any) -> list[float]:
        import torch

        if not pairs:
            return []
        encoded = self.tokenizer(
            [p[0] for p in pairs], [p[1] for p in pairs],
            truncation="longest_first", max_length=self.max_length,
        )
        ids: list[list[int]] = encoded["input_ids"]
        types: list[list[int]] | None = encoded.get("token_type_ids")
        batches = length_buckets([len(r) for r in ids], self.batch_size, self.batch_size * self.max_length)
        results: list[list[float]] = []
        with torch.inference_mode():
            for batch in batches:
                input_ids, mask = pad_rows([ids[i] for i in batch], self.pad_id)
                features = {"input_ids": input_ids, "attention_mask": mask}
                if types is not None:
                    features["token_type_ids"] = pad_rows([types[i] for i in batch], 0)[0]
                tensors = {
                    k: torch.from_numpy(v).to(self.device) for k, v in features.items() if k in self._inputs
                }
                logits = self.model(**tensors).logits.float()
                results.append(self._activate(logits).cpu().tolist())
                bar.update(len(batch))
        return restore_order(batches, results, len(pairs))

    def _activate(self, logits: Any) -> Any:
        import torch

        if self.num_labels == 2:
            if self.raw:
                return logits[:, 1] - logits[:, 0]  # softmax(...)[:, 1] == sigmoid(this)
            return torch.softmax(logits, dim=-1)[:, 1]
        values = logits[:, 0]
        if self.raw:
            return values
        if self.activation == "sigmoid":
            return torch.sigmoid(values)
        if self.activation == "tanh":
            return torch.tanh(values)
        return values


def float32_head(net: Any) -> None:
    """Run the classification head of a half-precision model in float32, on its half-precision
    input. A bfloat16 logit keeps 8 significant bits, so many of one query's reranked documents
    got the same score (over a third in a SciFact run of 100 per query), and ties are ordered
    arbitrarily. The head is one or two small layers: this costs nothing measurable. Models
    whose head is not ``classifier`` or ``score`` (the transformers names) keep theirs."""
    import torch

    head = getattr(net, "classifier", None) or getattr(net, "score", None)
    if not isinstance(head, torch.nn.Module):
        return
    head.float()

    def to_float32(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    head.register_forward_pre_hook(to_float32)
