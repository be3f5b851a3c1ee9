"""Index folders on disk: where they go, what they were built from, atomic replacement.

Every index folder (``index/<collection>/bm25/``, ``index/<collection>/dense/<model>/``)
holds an ``inpars-index.json`` manifest: the corpus it was built from (source files and
their sha256, or a digest of the documents when the source has no local files), the
settings that shape its content, package versions, counts and timings. A folder whose
manifest has the same fingerprint is reused instead of rebuilt;
:mod:`inpars.indexing.identity` keeps the indexes of different corpora apart.

Indexes are built in a hidden sibling folder and moved into place only when complete, so
an interrupted build never leaves a half-written index where a finished one is expected;
the leftovers of a killed build are removed by the next build in the same place.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from inpars.errors import DataError, IndexStoreError
from inpars.fingerprint import file_sha256
from inpars.io import read_json, write_json
from inpars.manifest import package_versions
from inpars.records import Document

log = logging.getLogger(__name__)

INDEX_MANIFEST = "inpars-index.json"
FORMAT_VERSION = 1


@runtime_checkable
class Corpus(Protocol):
    """What indexing needs from a collection (``inpars.data.Collection`` has all of it)."""

    name: str

    def docs(self) -> Iterator[Document]: ...

    def source_files(self) -> list[Path]: ...

    def count_docs(self) -> int: ...


def index_root(collection_name: str, output_dir: str | Path = "") -> Path:
    """The folder meant for a collection's indexes: ``output_dir``, or ``index/<name>/`` with
    the name made folder-safe (``beir/scifact/test`` -> ``index/beir-scifact-test``).

    Two corpora can get the same folder this way (``data/tiny`` and ``data2/tiny``);
    :func:`inpars.indexing.identity.corpus_index_root` picks the one for a given corpus.
    """
    if output_dir:
        return Path(output_dir)
    return Path("index") / slug(collection_name, default="collection")


def slug(text: str, default: str = "model") -> str:
    """A folder-safe form of a name (letters, digits, ``.``, ``_``, ``-``; never hidden)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return cleaned or default


def empty_corpus_error(corpus: Corpus) -> DataError:
    """The error for a corpus without a single document, naming the corpus file."""
    path = getattr(corpus, "corpus_path", None)
    where = f"{path}: the corpus file" if path else f"{corpus.name}: the corpus"
    return DataError(
        f"{where} has 0 documents (every line blank, or skipped as bad), so there is nothing to index "
        "and no judgement can point at a document. Fix: check [data].source (a corpus holds one "
        'document a line, e.g. {"_id": "d1", "title": "...", "text": "..."} in corpus.jsonl)'
    )


def corpus_fingerprint(corpus: Corpus) -> dict[str, Any]:
    """What identifies a corpus's content: its source files with sha256 and size, or (for
    sources without local files, such as ir_datasets) a digest of every document."""
    files = corpus.source_files()
    if files:
        return {
            "kind": "files",
            "files": [
                {"path": str(Path(p).resolve()), "sha256": file_sha256(p), "bytes": Path(p).stat().st_size}
                for p in files
            ],
        }
    digest = hashlib.sha256()
    count = 0
    for doc in corpus.docs():
        for part in (doc.doc_id, doc.title, doc.text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
        count += 1
    return {"kind": "documents", "sha256": digest.hexdigest(), "docs": count}


def fingerprint_of(data: dict[str, Any]) -> str:
    """A short stable hash of JSON-able data (paths of source files left out, so a moved
    but identical corpus still matches)."""
    import json

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "path"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return hashlib.sha256(json.dumps(strip(data), sort_keys=True).encode()).hexdigest()


def read_index_manifest(folder: Path, kind: str) -> dict[str, Any]:
    """The manifest of an index folder, or an :class:`IndexStoreError` that says what to do."""
    if not folder.is_dir():
        raise IndexStoreError(
            f"{folder}: no {kind} index there. Fix: build it first (`inpars index` or "
            f"inpars.indexing.build_{kind}_index), or check the path"
        )
    path = folder / INDEX_MANIFEST
    if not path.is_file():
        raise IndexStoreError(
            f"{folder}: not an inpars {kind} index ({INDEX_MANIFEST} is missing; an interrupted or "
            "foreign build?). Fix: delete the folder and build the index again"
        )
    try:
        data = read_json(path)
    except DataError as exc:
        raise IndexStoreError(
            f"{path}: unreadable index manifest ({exc}). Fix: delete {folder} and rebuild"
        ) from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else None
        raise IndexStoreError(
            f"{path}: this is a {found!r} index, not a {kind!r} one. Fix: point at the {kind} folder "
            f"(index/<collection>/{kind}/...)"
        )
    return data


def existing_manifest(folder: Path, kind: str) -> dict[str, Any] | None:
    """The manifest of the finished index in ``folder``, or ``None`` when there is none.

    A folder that exists but was not written by inpars raises (inpars never deletes
    files it did not write).
    """
    if not folder.exists():
        return None
    if not (folder / INDEX_MANIFEST).is_file():
        if folder.is_dir() and not any(folder.iterdir()):
            return None
        raise IndexStoreError(
            f"{folder}: the folder exists but holds no {INDEX_MANIFEST}, so inpars did not write it. "
            "Fix: delete it (or move it away), or choose another [index].output_dir"
        )
    return read_index_manifest(folder, kind)


def base_manifest(kind: str, fingerprint: str, corpus: Corpus, corpus_id: dict[str, Any]) -> dict[str, Any]:
    """The fields every index manifest has."""
    return {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "collection": corpus.name,
        "corpus": corpus_id,
        "versions": package_versions(),
    }


@contextmanager
def building(folder: Path) -> Iterator[Path]:
    """Yield a fresh hidden sibling folder to build into; on success it replaces ``folder``.

    On an exception the partial build is removed and ``folder`` is left as it was.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(folder)
    work = folder.parent / f".{folder.name}.building-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        yield work
        if not (work / INDEX_MANIFEST).is_file():
            raise IndexStoreError(f"{work}: build finished without a manifest (a bug in inpars)")
        replace_folder(work, folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (one of another user counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs under another user; anything else: assume it runs
        return True
    return True


def remove_stale_builds(folder: Path) -> list[Path]:
    """Remove the ``.<name>.building-<pid>`` folders next to ``folder`` left by builds that
    were killed (their process is gone); returns what was removed."""
    pattern = re.compile(re.escape(f".{folder.name}.building-") + r"(\d+)")
    removed: list[Path] = []
    if not folder.parent.is_dir():
        return removed
    for path in sorted(folder.parent.iterdir()):
        match = pattern.fullmatch(path.name)
        if not match or not path.is_dir():
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or pid_alive(pid):
            continue
        log.info("index: removing %s, left by a build that was killed (process %d is gone)", path, pid)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def replace_folder(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, removing an older inpars index there first."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def write_index_manifest(folder: Path, data: dict[str, Any]) -> None:
    """Write the manifest of an index folder (last step of a build)."""
    write_json(folder / INDEX_MANIFEST, data)
    log.debug("wrote %s", folder / INDEX_MANIFEST)
