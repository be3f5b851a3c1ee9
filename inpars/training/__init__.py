"""Training rerankers and dense retrievers on synthetic (query, document) examples.

- :func:`train_cross_encoder`: a 1-logit cross-encoder on sentence-transformers'
  ``CrossEncoderTrainer`` (bce, listwise, or margin-mse distillation of teacher scores).
- :func:`train_dense`: a sentence encoder on ``SentenceTransformerTrainer`` (in-batch +
  hard negatives, or margin-mse distillation of teacher scores).

Both resume from their last checkpoint (a hidden folder beside the model) after an
interruption and write ``training.json`` (data hash, settings, loss curve, throughput);
``[train] weighting`` weights each example's loss by its confidence
(:mod:`inpars.training.weights`).
- :func:`train_stage`: the pipeline's ``train`` stage.

Heavy libraries (torch, transformers, sentence-transformers) load only when training.
"""

from inpars.training.cross_encoder import read_training_summary, train_cross_encoder
from inpars.training.dense import train_dense
from inpars.training.examples import ExampleSet, load_examples
from inpars.training.stage import CROSS_ENCODER_DIR, DENSE_DIR, train_stage

__all__ = [
    "CROSS_ENCODER_DIR",
    "DENSE_DIR",
    "ExampleSet",
    "load_examples",
    "read_training_summary",
    "train_cross_encoder",
    "train_dense",
    "train_stage",
]
