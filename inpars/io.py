"""Reading and writing inpars records: JSONL, atomic file writes.

Every stage goes through this module (and :mod:`inpars.trec` for TREC run files), so that
one record has one on-disk form.
Writers are atomic (a temporary file in the same folder, then ``os.replace``); the
appending writer flushes whole lines so an interrupted run loses at most the batch in
flight, and readers ignore (and report) a torn last line.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Any, TypeVar, get_args, get_origin, get_type_hints

from inpars.bad_lines import LineReport, handle_bad_line
from inpars.errors import BadLineError, DataError

log = logging.getLogger(__name__)

R = TypeVar("R")


# --------------------------------------------------------------------------- atomic files
@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions of a new file
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_open(path: Path | str, mode: str = "w") -> Iterator[IO[Any]]:
    """Open ``path`` for writing through :func:`atomic_path` (text mode is UTF-8)."""
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as handle:
        handle.write(text)


def write_json(path: Path | str, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: Path | str) -> Any:
    """Read a JSON file, with an error that names the file on failure."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{p}: file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{p}: not valid JSON ({exc}). Fix: delete it or rerun the step that writes it"
        ) from exc


# --------------------------------------------------------------------------- JSON lines
def _undecodable_field(raw: bytes) -> str | None:
    """The top-level key of a JSON line whose value holds the bytes that are not UTF-8."""
    try:
        obj = json.loads(raw.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    for key, value in obj.items():
        if "\ufffd" in key or "\ufffd" in json.dumps(value, ensure_ascii=False):
            return str(key)
    return None


def iter_json_lines(
    path: Path | str, *, report: LineReport | None = None, allow_torn_tail: bool = True
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file.

    Malformed JSON, non-UTF-8 bytes and non-object lines raise :class:`BadLineError`
    (or are counted in ``report``). A torn final line (no trailing newline, left by an
    interrupted writer) is reported and skipped when ``allow_torn_tail`` (stage outputs);
    readers of user input pass ``False`` so that a truncated file is an error. A UTF-8
    byte order mark at the start of the file is ignored.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found. Fix: check the path")
    with open(p, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            torn = not raw.endswith(b"\n")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                handle_bad_line(
                    BadLineError(p, number, _undecodable_field(raw),
                                 f"bytes that are not UTF-8 at byte {exc.start + 1} of the line",
                                 "re-encode the file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)",
                                 reason="not UTF-8"),
                    report,
                )
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                if torn and allow_torn_tail:
                    log.warning("%s, line %d: ignoring a torn last line (interrupted write)", p, number)
                    continue
                handle_bad_line(
                    BadLineError(p, number, None, f"malformed JSON ({exc.msg} at column {exc.colno})",
                                 "make each line one complete JSON object", reason="malformed JSON"),
                    report,
                )
                continue
            if not isinstance(obj, dict):
                handle_bad_line(
                    BadLineError(p, number, None, f"a JSON {type(obj).__name__}, not an object",
                                 "make each line a JSON object like {\"_id\": ..., \"text\": ...}",
                                 reason="not a JSON object"),
                    report,
                )
                continue
            yield number, obj


# --------------------------------------------------------------------------- records
def to_dict(record: Any) -> dict[str, Any]:
    """A record as a JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(record)


def _coerce(value: Any, hint: Any) -> Any:
    """Check ``value`` against a field type hint; returns the value in the record's type."""
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError("a list")
        try:
            return tuple(_coerce(v, args[0]) for v in value)
        except TypeError as exc:
            raise TypeError(f"a list whose items are each {exc.args[0]}") from None
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError("an object")
        return value
    if args and type(None) in args:  # Optional[X]
        if value is None:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("a number")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("an integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    return value


def from_dict(cls: type[R], obj: dict[str, Any], *, path: Path | str = "<memory>", line: int = 0) -> R:
    """Build a record of type ``cls`` from a dict, checking every field.

    Unknown keys are errors (they mean the file was written by something else).
    """
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(obj) - names)
    if unknown:
        raise BadLineError(path, line, unknown[0], f"unknown field for a {cls.__name__} record",
                           f"expected only {sorted(names)}; was this file written for another stage?")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in obj:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise BadLineError(path, line, f.name, f"missing required field of a {cls.__name__}",
                                   f"add \"{f.name}\" to the record")
            continue
        try:
            kwargs[f.name] = _coerce(obj[f.name], hints[f.name])
        except TypeError as exc:
            raise BadLineError(path, line, f.name, f"must be {exc.args[0]}, got {obj[f.name]!r:.60}",
                               f"write \"{f.name}\" as {exc.args[0]}", reason="wrong field type") from None
    return cls(**kwargs)


def read_records(
    path: Path | str, cls: type[R], *, report: LineReport | None = None
) -> Iterator[R]:
    """Stream the records of type ``cls`` stored in a JSONL file."""
    for number, obj in iter_json_lines(path, report=report):
        try:
            yield from_dict(cls, obj, path=path, line=number)
        except BadLineError as error:
            handle_bad_line(error, report)


def chunked(items: Iterable[R], size: int) -> Iterator[list[R]]:
    """Consecutive lists of ``size`` items (the last may be shorter), read lazily.

    It lives here, beside the readers, because what the stages cut into batches are record
    streams (generation's documents, mining's synthetic queries, training's examples), and
    every stage already goes through this module.
    """
    if size < 1:
        raise ValueError(f"batch size {size}: must be at least 1")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def write_records(path: Path | str, records: Iterable[Any]) -> int:
    """Write records to a JSONL file atomically; returns how many were written."""
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(to_dict(record), ensure_ascii=False) + "\n")
            count += 1
    return count


class RecordAppender:
    """Appends records to a JSONL file, one flushed line each; for resumable stages.

    Opening drops a torn last line left by an interrupted run, so that appending
    continues on a clean line boundary.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        # Held open across write() calls and closed by close() / the context manager.
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, records: Iterable[Any]) -> int:
        lines = [json.dumps(to_dict(r), ensure_ascii=False) + "\n" for r in records]
        self._handle.write("".join(lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return len(lines)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RecordAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    log.warning("%s: dropping a torn last line left by an interrupted run", path)
    with open(path, "r+b") as handle:
        handle.truncate(keep)
