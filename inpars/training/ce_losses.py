"""Cross-encoder training data and losses: inpars' examples as sentence-transformers rows.

Each loss of ``[train] loss`` maps to a loss of ``sentence_transformers.cross_encoder``
and the dataset columns it reads (column names do not matter to the library, only their
order; a ``label`` column holds the labels):

- ``bce``: ``BinaryCrossEntropyLoss`` over ``(query, document, label)`` rows, one row per
  pair (the positive labelled 1, each negative 0), ``pos_weight`` = ``bce_pos_weight``
  (0: ``negatives_per_example``, so positives and negatives weigh the same in total).
- ``listwise``: softmax cross-entropy over each query's group ``[positive, negatives...]``
  (the localized contrastive loss of LCE training), ``-log softmax(scores)[positive]``:
  ``ListNetLoss`` over ``(query, [positive, negatives...])`` rows labelled
  ``[0, -inf, ..., -inf]``. ListNet is the cross-entropy between ``softmax(labels)`` and
  ``softmax(scores)``; with those labels the target is one-hot on the positive, which
  leaves exactly that loss. (The library's cross-encoder ``MultipleNegativesRankingLoss``
  always adds in-batch negatives and scores column by column; ListNet scores each
  micro-batch in one forward pass.)
- ``margin-mse``: ``MarginMSELoss`` over ``(query, positive, negative_1..n)`` rows labelled
  with the teacher's margins ``teacher(positive) - teacher(negative_i)`` (GPL-style
  distillation). A negative without a teacher score (a random top-up, or an example the
  teacher did not label) is dropped and counted; the row's other columns repeat its scored
  negatives (the library needs the same number of columns in every row), and an example
  left with none is dropped.

``batch_size`` keeps its meaning of (query, document) pairs per micro-batch: ``bce`` takes
``batch_size`` rows, the group losses ``batch_size // (1 + negatives_per_example)`` rows
(at least one). ``MarginMSELoss`` scores its rows column by column, one forward pass of
that many pairs per column.

With ``[train] weighting`` the rows carry a ``weight`` column (each pair, group or margin row
the weight of its example; :mod:`inpars.training.weights`) and :func:`make_loss` returns the
weighted twin of the loss (:mod:`inpars.training.weighted_losses`), ``mean(w * loss)`` over a
micro-batch's rows in place of ``mean(loss)``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inpars.config import TrainConfig
from inpars.errors import ConfigError
from inpars.records import TrainingExample
from inpars.training.examples import with_negatives
from inpars.training.weights import WEIGHT

QUERY = "query"  # the first column of every row; the trainer counts rows with it
NO_TEACHER = "negatives without a teacher score"


@dataclass
class Rows:
    """The training dataset's columns and what making them counted."""

    columns: dict[str, list[Any]]
    pairs_per_row: int
    random_negatives: int
    drops: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.columns[QUERY])


def rows_per_batch(cfg: TrainConfig) -> int:
    """Rows per micro-batch: ``batch_size`` pairs, whole groups for the group losses."""
    if cfg.loss == "bce":
        return cfg.batch_size
    return max(1, cfg.batch_size // (1 + cfg.negatives_per_example))


def training_rows(examples: Sequence[TrainingExample], cfg: TrainConfig, rng: random.Random,
                  weights: Sequence[float] | None = None) -> Rows:
    """The rows ``cfg.loss`` trains on (negatives topped up by
    :func:`~inpars.training.examples.with_negatives`), with a ``weight`` column when
    ``weights`` (one per example) are given."""
    rows = _rows(examples, cfg, rng, weights)
    if weights is None:
        rows.columns.pop(WEIGHT)
    return rows


def _rows(examples: Sequence[TrainingExample], cfg: TrainConfig, rng: random.Random,
          weights: Sequence[float] | None) -> Rows:
    if cfg.loss == "margin-mse" and not any(e.teacher_scores for e in examples):
        raise ConfigError(
            "train.loss = 'margin-mse' distils a teacher's scores, but the training examples have none. "
            'Fix: set [negatives] teacher = "hybrid" (or "cross-encoder") and rerun `inpars negatives`, '
            "or set train.loss to 'bce' or 'listwise'"
        )
    count = cfg.negatives_per_example
    groups, random_negatives = with_negatives(examples, count, rng)
    weight_of = list(weights) if weights is not None else [1.0] * len(examples)
    if cfg.loss == "bce":
        columns: dict[str, list[Any]] = {QUERY: [], "document": [], "label": [], WEIGHT: []}
        for (query, positive, negatives), weight in zip(groups, weight_of, strict=True):
            for document, label in ((positive, 1.0), *((n, 0.0) for n in negatives)):
                for name, value in zip(columns, (query, document, label, weight), strict=True):
                    columns[name].append(value)
        return Rows(columns, 1, random_negatives)
    if cfg.loss == "listwise":
        rows = Rows({QUERY: [], "documents": [], "label": [], WEIGHT: []}, 1 + count, random_negatives)
        for (query, positive, negatives), weight in zip(groups, weight_of, strict=True):
            rows.columns[QUERY].append(query)
            rows.columns["documents"].append([positive, *negatives])
            rows.columns["label"].append([0.0] + [-math.inf] * count)  # softmax: one-hot on the positive
            rows.columns[WEIGHT].append(weight)
        return rows
    text_columns = [QUERY, "positive", *(f"negative_{i + 1}" for i in range(count))]  # margin-mse
    rows = Rows({**{name: [] for name in text_columns}, "label": [], WEIGHT: []}, 1 + count, random_negatives)
    for example, (query, positive, negatives), weight in zip(examples, groups, weight_of, strict=True):
        scored, margins = _scored(example, negatives, rows.drops)
        if scored:
            rows.columns["label"].append(margins)
            rows.columns[WEIGHT].append(weight)
            for name, text in zip(text_columns, (query, positive, *scored), strict=True):
                rows.columns[name].append(text)
    return rows


def _scored(
    example: TrainingExample, negatives: list[str], drops: Counter[str]
) -> tuple[list[str], list[float]]:
    """The negatives that have a teacher score, repeated to fill every column, with their
    margins ``teacher(positive) - teacher(negative)``; counts the others in ``drops``."""
    scores = example.teacher_scores
    labelled = len(scores) == 1 + len(example.negatives)  # scores for (positive, *mined negatives)
    # with_negatives keeps the mined negatives first, in order; random top-ups follow them
    kept = [(text, scores[0] - scores[1 + i]) for i, text in enumerate(negatives)
            if labelled and i < len(example.negatives)]
    if len(kept) < len(negatives):
        drops[NO_TEACHER] += len(negatives) - len(kept)
    if not kept:
        drops["examples without a teacher-scored negative"] += 1
        return [], []
    filled = [kept[i % len(kept)] for i in range(len(negatives))]
    return [text for text, _ in filled], [margin for _, margin in filled]


def make_loss(cfg: TrainConfig, model: Any, weighted: bool = False) -> Any:
    """The sentence-transformers loss of ``cfg.loss`` for ``model`` (see the module docstring);
    ``weighted``: its twin that reads the rows' ``weight`` column."""
    import torch
    from sentence_transformers.cross_encoder import losses

    if weighted:
        from inpars.training import weighted_losses as w

        bce: Any = w.WeightedBCELoss
        listwise: Any = w.WeightedListNetLoss
        margin: Any = w.WeightedCEMarginMSELoss
    else:
        bce, listwise, margin = losses.BinaryCrossEntropyLoss, losses.ListNetLoss, losses.MarginMSELoss
    if cfg.loss == "bce":
        weight = cfg.bce_pos_weight or float(cfg.negatives_per_example)
        return bce(model, pos_weight=torch.tensor(weight))
    if cfg.loss == "listwise":
        return listwise(model, activation_fn=torch.nn.Identity(), mini_batch_size=cfg.batch_size)
    return margin(model)
