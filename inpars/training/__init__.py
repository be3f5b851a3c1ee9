"""Training rerankers and dense retrievers on synthetic (query, document) examples.

- :func:`train_cross_encoder`: a 1-logit cross-encoder (BCE or listwise loss).
- :func:`train_dense`: a sentence encoder with in-batch + hard negatives.
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
