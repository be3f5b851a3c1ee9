"""Open a collection from whatever ``[data].source`` names: a folder, a file or an id.

The one way in: :func:`open_collection` picks the reader (:class:`FileCollection` for a
BEIR folder, a corpus file, a Parquet file or folder or a Hugging Face dataset folder;
:class:`IrDatasetsCollection` for an ir_datasets id) and
:func:`open_from_config` calls it with the settings of a ``[data]`` section.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from inpars.bad_lines import LineReport
from inpars.config import DataConfig
from inpars.data.collection import Collection
from inpars.data.files import FileCollection
from inpars.data.irds import PREFIX, IrDatasetsCollection, is_registered
from inpars.data.tables import table_kind
from inpars.errors import DataError

log = logging.getLogger(__name__)


def open_collection(
    source: str | Path,
    *,
    fallback: str = "",
    report: LineReport | None = None,
    columns: Mapping[str, str] | None = None,
) -> Collection:
    """Open ``source``: a BEIR folder, a corpus file (``.jsonl``/``.tsv``/``.parquet``), a
    folder of Parquet files or written by ``datasets``' ``save_to_disk`` (documents only), or
    an ir_datasets id (``beir/scifact/test``; ``irds:beir/scifact/test`` to be explicit).
    ``columns`` maps the corpus's id, title and text columns (``[data] columns``).

    A path that exists wins over an ir_datasets id of the same spelling. When ``source``
    does not exist and ``fallback`` is given (an ir_datasets id, or another path), the
    fallback is opened instead, with a warning that says so. ``report`` turns on the
    skip-bad-lines mode: bad lines are counted there instead of raising.
    """
    text = str(source).strip()
    path = Path(text).expanduser()
    if text and not text.startswith(PREFIX) and path.exists():
        return _open_path(path, report, columns)
    if text.startswith(PREFIX) or (text and is_registered(text)):
        if columns:
            log.warning("data: [data] columns is ignored for the ir_datasets collection %s", text)
        log.info("data: opening the ir_datasets collection %s", text.removeprefix(PREFIX))
        return IrDatasetsCollection(text, report=report)
    if fallback:
        log.warning("data: %s not found; using the fallback %s instead",
                    text or "no [data].source given", fallback)
        return open_collection(fallback, report=report, columns=columns)
    if not text:
        raise DataError(
            "no data source given. Fix: set [data].source to a BEIR folder, a corpus file or an "
            "ir_datasets id such as beir/scifact/test"
        )
    raise DataError(
        f"{text}: no such folder or file, and not an ir_datasets id. Fix: point [data].source at a BEIR "
        "folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), a corpus .jsonl/.tsv/.parquet file, "
        "a Hugging Face dataset folder (save_to_disk), or an ir_datasets id such as beir/scifact/test "
        "(prefix irds: to be explicit); [data].fallback names what to use when the folder is missing"
    )


def _open_path(path: Path, report: LineReport | None, columns: Mapping[str, str] | None) -> Collection:
    """A local source: a BEIR folder, or a corpus alone (a file, a Parquet or dataset folder)."""
    beir = path.is_dir() and any((path / name).is_file() for name in ("corpus.jsonl", "corpus.parquet"))
    kind = None if beir else table_kind(path)
    if path.is_dir() and kind is None:
        log.info("data: reading the BEIR folder %s", path)
        return FileCollection.from_beir(path, report=report, columns=columns)
    what = {"parquet": "the Parquet corpus", "hf-dataset": "the Hugging Face dataset corpus"}.get(
        kind or "", "the corpus file")
    log.info("data: reading %s %s (documents only)", what, path)
    return FileCollection(path, report=report, columns=columns)


def open_from_config(cfg: DataConfig) -> Collection:
    """Open the collection a ``[data]`` section names; with ``skip_bad_lines`` the
    collection's ``report`` (a :class:`LineReport`) counts the lines it skipped."""
    report = LineReport() if cfg.skip_bad_lines else None
    return open_collection(cfg.source, fallback=cfg.fallback, report=report, columns=cfg.columns)
