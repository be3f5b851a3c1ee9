"""inpars: synthetic training data for search systems from any document collection.

The stages (each a module, a CLI subcommand, a config section and an output folder):
``index`` -> ``generate`` -> ``filter`` -> ``negatives`` -> ``train`` -> ``rerank`` -> ``evaluate``.
Heavy dependencies (torch, Pyserini, llama.cpp) are imported lazily by the stages.
"""

from __future__ import annotations

import logging

from inpars.errors import InparsError
from inpars.records import Document, Dropped, Qrel, Query, ScoredPair, SyntheticQuery, TrainingExample

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Document",
    "Dropped",
    "InparsError",
    "Qrel",
    "Query",
    "ScoredPair",
    "SyntheticQuery",
    "TrainingExample",
    "__version__",
]
