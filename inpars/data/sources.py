"""Open a collection from whatever ``[data].source`` names: a folder, a file or an id.

The one way in: :func:`open_collection` picks the reader (:class:`FileCollection` for a
BEIR folder or a corpus file, :class:`IrDatasetsCollection` for an ir_datasets id) and
:func:`open_from_config` calls it with the settings of a ``[data]`` section.
"""

from __future__ import annotations

import logging
from pathlib import Path

from inpars.config import DataConfig
from inpars.data.collection import Collection
from inpars.data.files import FileCollection
from inpars.data.irds import PREFIX, IrDatasetsCollection, is_registered
from inpars.errors import DataError
from inpars.io import LineReport

log = logging.getLogger(__name__)


def open_collection(
    source: str | Path, *, fallback: str = "", report: LineReport | None = None
) -> Collection:
    """Open ``source``: a BEIR folder, a corpus file (``.jsonl``/``.tsv``), or an ir_datasets
    id (``beir/scifact/test``; ``irds:beir/scifact/test`` to be explicit).

    A path that exists wins over an ir_datasets id of the same spelling. When ``source``
    does not exist and ``fallback`` is given (an ir_datasets id, or another path), the
    fallback is opened instead, with a warning that says so. ``report`` turns on the
    skip-bad-lines mode: bad lines are counted there instead of raising.
    """
    text = str(source).strip()
    if text.startswith(PREFIX):
        log.info("data: opening the ir_datasets collection %s", text[len(PREFIX):])
        return IrDatasetsCollection(text, report=report)
    path = Path(text).expanduser()
    if text and path.is_dir():
        log.info("data: reading the BEIR folder %s", path)
        return FileCollection.from_beir(path, report=report)
    if text and path.is_file():
        log.info("data: reading the corpus file %s (documents only)", path)
        return FileCollection(path, report=report)
    if text and is_registered(text):
        log.info("data: opening the ir_datasets collection %s", text)
        return IrDatasetsCollection(text, report=report)
    if fallback:
        log.warning("data: %s not found; using the fallback %s instead",
                    text or "no [data].source given", fallback)
        return open_collection(fallback, report=report)
    if not text:
        raise DataError(
            "no data source given. Fix: set [data].source to a BEIR folder, a corpus file or an "
            "ir_datasets id such as beir/scifact/test"
        )
    raise DataError(
        f"{text}: no such folder or file, and not an ir_datasets id. Fix: point [data].source at a BEIR "
        "folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), a corpus .jsonl/.tsv file, or an "
        "ir_datasets id such as beir/scifact/test (prefix irds: to be explicit); "
        "[data].fallback names what to use when the folder is missing"
    )


def open_from_config(cfg: DataConfig) -> Collection:
    """Open the collection a ``[data]`` section names; with ``skip_bad_lines`` the
    collection's ``report`` (a :class:`LineReport`) counts the lines it skipped."""
    report = LineReport() if cfg.skip_bad_lines else None
    return open_collection(cfg.source, fallback=cfg.fallback, report=report)
