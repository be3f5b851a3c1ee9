"""The sentence-transformers losses with per-example weights (``[train] weighting``).

Each loss computes its per-row terms as the library does and reduces them with
:func:`weighted_mean`, ``mean_i(w_i * loss_i)``, in place of the library's ``mean_i(loss_i)``
(the weights and their formula: :mod:`inpars.training.weights`). Imported only to train.

How the weights reach a loss:

- cross-encoder: the dataset's ``weight`` column; :class:`inpars.training.ce_trainer.Trainer`
  takes it out of each micro-batch and hands it to the loss (:meth:`CEWeights.set_weights`)
  before the library's ``compute_loss`` runs.
- dense: the label column (the sentence-transformers collator tokenizes every other
  column): ``mnrl`` rows are labelled with their weight (the library's loss reads no label),
  ``margin-mse`` rows with ``[margin, weight]``.
"""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.cross_encoder import losses as ce
from sentence_transformers.sentence_transformer import losses as st
from torch import Tensor, nn


def weighted_mean(per_row: Tensor, weights: Tensor) -> Tensor:
    """``mean_i(weights_i * per_row_i)``; ``per_row`` may have more dimensions (each row's
    terms are averaged first, which keeps the library's mean over every element when all
    weights are 1)."""
    if per_row.dim() > 1:
        per_row = per_row.reshape(per_row.shape[0], -1).mean(dim=1)
    weights = weights.to(device=per_row.device, dtype=per_row.dtype).reshape(-1)
    if weights.shape != per_row.shape:
        raise ValueError(f"{weights.numel()} weights for {per_row.numel()} rows")
    return (per_row * weights).mean()


class CEWeights:
    """The weights of the micro-batch a cross-encoder loss computes next (set by the trainer)."""

    _weights: Tensor | None = None

    def set_weights(self, weights: Any) -> None:
        self._weights = torch.as_tensor(weights, dtype=torch.float32)

    def take_weights(self) -> Tensor:
        weights, self._weights = self._weights, None
        if weights is None:
            raise RuntimeError(f"{type(self).__name__}: no weights were set for this batch")
        return weights


class WeightedBCELoss(CEWeights, ce.BinaryCrossEntropyLoss):
    """``BinaryCrossEntropyLoss`` (with its ``pos_weight``), each (query, document) row weighted."""

    def __init__(self, model: Any, pos_weight: Tensor | None = None) -> None:
        super().__init__(model, pos_weight=pos_weight)
        self.bce_with_logits_loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")

    def forward(self, inputs: Any, labels: Any, prompt: str | None = None, task: str | None = None) -> Tensor:
        return weighted_mean(super().forward(inputs, labels, prompt=prompt, task=task), self.take_weights())


class WeightedListNetLoss(CEWeights, ce.ListNetLoss):
    """``ListNetLoss`` (softmax cross-entropy of each query's group), each group weighted."""

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.cross_entropy_loss = nn.CrossEntropyLoss(reduction="none")

    def forward(self, inputs: Any, labels: Any, prompt: str | None = None, task: str | None = None) -> Tensor:
        return weighted_mean(super().forward(inputs, labels, prompt=prompt, task=task), self.take_weights())


class WeightedCEMarginMSELoss(CEWeights, ce.MarginMSELoss):
    """The cross-encoder ``MarginMSELoss``, each (query, positive, negatives) row weighted."""

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.loss_fct = nn.MSELoss(reduction="none")

    def forward(self, inputs: Any, labels: Any, prompt: str | None = None, task: str | None = None) -> Tensor:
        return weighted_mean(super().forward(inputs, labels, prompt=prompt, task=task), self.take_weights())


class WeightedMNRLoss(st.MultipleNegativesRankingLoss):
    """In-batch ``MultipleNegativesRankingLoss`` (its defaults: query to documents, one joint
    softmax over every document of the batch, cosine times ``scale``) with each query's term
    ``logsumexp(scores_i) - scores_i[positive]`` weighted by its label."""

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        queries, docs = embeddings[0], torch.cat(embeddings[1:], dim=0)
        scores = self.similarity_fct(queries, docs) * self.scale
        rows = torch.arange(queries.size(0), device=queries.device)
        per_query = torch.logsumexp(scores, dim=1) - scores[rows, rows]
        return weighted_mean(per_query, labels)


class WeightedMarginMSELoss(st.MarginMSELoss):
    """The sentence-transformers ``MarginMSELoss`` on rows labelled ``[margin, weight]``."""

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.loss_fct = nn.MSELoss(reduction="none")

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        per_row = super().compute_loss_from_embeddings(embeddings, labels[:, 0])
        return weighted_mean(per_row, labels[:, 1])
