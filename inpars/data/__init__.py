"""The data layer: documents, queries and relevance judgements from any source.

``open_collection(source)`` reads a BEIR folder, plain corpus/queries/qrels files or an
ir_datasets id into a :class:`Collection`; every reader checks its input and names the
file, line, field and fix of anything malformed (or counts it, with a ``LineReport``).
"""

from __future__ import annotations

from inpars.data.collection import Collection, Where
from inpars.data.files import FileCollection
from inpars.data.irds import IrDatasetsCollection
from inpars.data.sources import open_collection, open_from_config

__all__ = [
    "Collection",
    "FileCollection",
    "IrDatasetsCollection",
    "Where",
    "open_collection",
    "open_from_config",
]
