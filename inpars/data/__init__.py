"""The data layer: documents, queries and relevance judgements from any source.

``open_collection(source)`` (or ``open_from_config(cfg.data)``) reads a BEIR folder, plain
corpus/queries/qrels files, a Parquet corpus (file or folder), a Hugging Face dataset folder
(``save_to_disk``; :mod:`inpars.data.tables`) or an ir_datasets id into a :class:`Collection`; every reader
checks its input and names the file, line, field and fix of anything malformed (or counts
it, with a ``LineReport``). :class:`DocumentLookup` finds documents by id in a collection,
an index or a mapping, for every stage.
"""

from __future__ import annotations

from inpars.data.collection import Collection, Where
from inpars.data.files import FileCollection
from inpars.data.irds import IrDatasetsCollection
from inpars.data.lookup import DocumentLookup, DocumentSource
from inpars.data.sources import open_collection, open_from_config

__all__ = [
    "Collection",
    "DocumentLookup",
    "DocumentSource",
    "FileCollection",
    "IrDatasetsCollection",
    "Where",
    "open_collection",
    "open_from_config",
]
