"""Corpora stored as tables: Parquet files and Hugging Face ``datasets`` folders.

A table source is one of:

* a Parquet file (``corpus.parquet``), or a folder of them (every ``*.parquet`` directly in
  it, in name order: one corpus in shards);
* a folder written by ``datasets.Dataset.save_to_disk`` (``state.json`` and its
  ``data-*.arrow`` shards), or by ``DatasetDict.save_to_disk`` (``dataset_dict.json``) with a
  single split or a split named ``corpus``.

Each row is a :class:`~inpars.records.Document`: the id from the first of the columns
``_id``, ``doc_id``, ``id`` (text or integers), ``title`` when there is one, and ``text``;
``[data] columns`` maps other names (``{doc_id = "pid", text = "passage"}``). A null title
or text reads as ``""``; a null id is a bad row (its number, from 1 within its file, is the
"line" of the error). The files are read with ``pyarrow`` only, memory-mapped and a batch
at a time, so ``datasets`` itself need not be installed; their sha256 (the data files, not
``state.json``, whose ``_fingerprint`` changes with the dataset's history) identifies the
corpus in manifests and index folders.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inpars.bad_lines import SKIP_HINT
from inpars.data.collection import Where
from inpars.errors import BadLineError, DataError, DependencyError
from inpars.records import Document

log = logging.getLogger(__name__)

DOC_ID_KEYS = ("_id", "doc_id", "id")
BATCH_ROWS = 4096
TableKind = Literal["parquet", "hf-dataset"]


def table_kind(path: Path) -> TableKind | None:
    """What kind of table source ``path`` is, or ``None`` when it is not one."""
    if path.is_file():
        return "parquet" if path.suffix.lower() == ".parquet" else None
    if not path.is_dir():
        return None
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return "hf-dataset"
    if any(p.is_file() for p in path.glob("*.parquet")):
        return "parquet"
    return None


def _pyarrow() -> Any:
    try:
        # imported by name: pyarrow is optional (it comes with `datasets`) and mypy stays off it
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise DependencyError(
            "reading a Parquet or Hugging Face dataset corpus needs pyarrow. "
            "Fix: pip install datasets (it brings pyarrow), or pip install pyarrow"
        ) from exc


@dataclass(frozen=True)
class Columns:
    """The columns one data file's documents come from (``title`` may be absent)."""

    doc_id: str
    title: str | None
    text: str


class TableCorpus:
    """The documents of a table source (see the module doc), checked column by column."""

    def __init__(self, path: Path | str, columns: Mapping[str, str] | None = None) -> None:
        self.path = Path(path)
        kind = table_kind(self.path)
        if kind is None:
            raise DataError(f"{self.path}: not a Parquet file, a folder of them or a Hugging Face dataset "
                            "folder. Fix: point [data].source at one of these")
        self.kind: TableKind = kind
        self.mapping = dict(columns or {})
        self.pa, self.pq = _pyarrow()
        self.files = self._data_files()
        self.columns = [self._resolve(path, self._schema(path)) for path in self.files]

    @property
    def name(self) -> str:
        """The collection name: the folder's, or the file's stem (``corpus``: its folder's)."""
        if self.path.is_dir():
            return self.path.resolve().name
        stem = self.path.name.split(".")[0]
        return self.path.resolve().parent.name if stem == "corpus" else stem

    # ------------------------------------------------------------------ files and schemas
    def _data_files(self) -> list[Path]:
        if self.kind == "parquet":
            files = [self.path] if self.path.is_file() else sorted(self.path.glob("*.parquet"))
            return [p for p in files if p.is_file()]
        folder = _dataset_folder(self.path)
        state = _read_state(folder)
        files = [folder / str(entry.get("filename", "")) for entry in state.get("_data_files") or []]
        missing = [str(p) for p in files if not p.is_file()]
        if not files or missing:
            raise DataError(
                f"{folder / 'state.json'}: the dataset's data files are missing "
                f"({', '.join(missing) or 'none listed in _data_files'}). "
                "Fix: write the folder again with datasets' save_to_disk"
            )
        return files

    def _schema(self, path: Path) -> Any:
        try:
            if self.kind == "parquet":
                return self.pq.ParquetFile(path).schema_arrow
            with self.pa.memory_map(str(path)) as source:
                return self._open_arrow(source).schema
        except (OSError, self.pa.ArrowException) as exc:
            what = "Parquet" if self.kind == "parquet" else "Arrow (Hugging Face dataset)"
            raise DataError(f"{path}: not a readable {what} file ({exc}). "
                            "Fix: write it again, or point [data].source at the right file") from None

    def _open_arrow(self, source: Any) -> Any:
        try:
            return self.pa.ipc.open_stream(source)  # what datasets writes
        except self.pa.ArrowInvalid:
            source.seek(0)
            return self.pa.ipc.open_file(source)

    def _resolve(self, path: Path, schema: Any) -> Columns:
        """The columns of ``path`` that hold id, title and text (see the module doc)."""
        found = list(schema.names)
        id_column = self._required(path, found, "doc_id", DOC_ID_KEYS)
        text = self._required(path, found, "text", ("text",))
        title = self._column(found, "title", ("title",))
        if title is None and "title" in self.mapping:
            raise self._missing(path, found, "title", ("title",))
        pa = self.pa
        _check_type(path, schema.field(id_column), "document id", found,
                    lambda t: _is_text(pa, t) or pa.types.is_integer(t))
        for column, what in ((title, "document title"), (text, "document text")):
            if column is not None:
                _check_type(path, schema.field(column), what, found, lambda t: _is_text(pa, t))
        return Columns(id_column, title, text)

    def _column(self, found: list[str], key: str, defaults: tuple[str, ...]) -> str | None:
        mapped = self.mapping.get(key)
        return next((name for name in ((mapped,) if mapped else defaults) if name in found), None)

    def _required(self, path: Path, found: list[str], key: str, defaults: tuple[str, ...]) -> str:
        name = self._column(found, key, defaults)
        if name is None:
            raise self._missing(path, found, key, defaults)
        return name

    def _missing(self, path: Path, found: list[str], key: str, defaults: tuple[str, ...]) -> DataError:
        mapped = self.mapping.get(key)
        if mapped:
            problem = f"no column {mapped!r} ([data] columns.{key})"
            fix = f"set [data] columns.{key} to one of the columns above, or leave it out"
        else:
            problem = f"no {key} column ({' or '.join(repr(n) for n in defaults)})"
            fix = (f"rename the column to {defaults[0]!r} or map it in the config: "
                   f'[data] columns = {{{key} = "<column>"}}')
        return DataError(f"{path}: {problem}; the columns are: {', '.join(found) or 'none'}. Fix: {fix}")

    # ------------------------------------------------------------------ rows
    def read(self, bad: Callable[[BadLineError], None]) -> Iterator[tuple[Where, Document]]:
        """Every document, file by file; a row with a null id goes to ``bad`` instead."""
        for path, columns in zip(self.files, self.columns, strict=True):
            row = 0
            for batch in self._batches(path, columns):
                ids = batch.column(columns.doc_id).to_pylist()
                texts = batch.column(columns.text).to_pylist()
                titles = batch.column(columns.title).to_pylist() if columns.title else [None] * len(ids)
                for doc_id, title, text in zip(ids, titles, texts, strict=True):
                    row += 1
                    where = Where(str(path), row, columns.doc_id, columns.text)
                    if doc_id is None:
                        bad(_null_id(path, row, columns.doc_id))
                        continue
                    yield where, Document(str(doc_id), text or "", title or "")

    def _batches(self, path: Path, columns: Columns) -> Iterator[Any]:
        wanted = [c for c in (columns.doc_id, columns.title, columns.text) if c is not None]
        if self.kind == "parquet":
            yield from self.pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=wanted)
            return
        with self.pa.memory_map(str(path)) as source:
            reader = self._open_arrow(source)
            batches = reader if hasattr(reader, "__iter__") else map(reader.get_batch,
                                                                     range(reader.num_record_batches))
            for batch in batches:
                yield batch.select(wanted)


def _dataset_folder(path: Path) -> Path:
    """The folder of one dataset: ``path``, or the split of a DatasetDict folder it holds."""
    listing = path / "dataset_dict.json"
    if not listing.is_file():
        return path
    try:
        splits = [str(s) for s in json.loads(listing.read_text(encoding="utf-8"))["splits"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{listing}: not a readable DatasetDict listing ({exc}). "
                        "Fix: write the folder again with datasets' save_to_disk") from None
    if len(splits) == 1 or "corpus" in splits:
        split = splits[0] if len(splits) == 1 else "corpus"
        log.info("data: reading split %r of the dataset folder %s", split, path)
        return path / split
    raise DataError(
        f"{path}: a DatasetDict with the splits {', '.join(splits) or 'none'}, and none is 'corpus'. "
        f"Fix: point [data].source at the corpus split's folder, e.g. {path / (splits or ['corpus'])[0]}"
    )


def _read_state(folder: Path) -> dict[str, Any]:
    state = folder / "state.json"
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{state}: cannot read the dataset's state ({exc}). Fix: point [data].source "
                        "at a folder written by datasets' save_to_disk") from None
    if not isinstance(data, dict):
        raise DataError(f"{state}: not a dataset state (a JSON object). Fix: write the folder again "
                        "with datasets' save_to_disk")
    return data


def _is_text(pa: Any, dtype: Any) -> bool:
    string_view = getattr(pa.types, "is_string_view", lambda t: False)
    return bool(pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or string_view(dtype)
                or pa.types.is_null(dtype))


def _check_type(path: Path, field: Any, what: str, found: list[str], ok: Callable[[Any], bool]) -> None:
    if not ok(field.type):
        raise DataError(
            f"{path}: column {field.name!r} ({what}) holds {field.type} values, not text"
            + (" or integers" if what == "document id" else "")
            + f" (the columns are: {', '.join(found)}). Fix: cast the column to strings, or map "
            "another column in [data] columns"
        )


def _null_id(path: Path, row: int, column: str) -> BadLineError:
    return BadLineError(path, row, column, "no document id (null) in this row",
                        f"give every row an id, {SKIP_HINT}", reason="missing document id")
