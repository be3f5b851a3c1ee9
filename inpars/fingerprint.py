"""Fingerprints of real files and folders: what a stage read and wrote, checked, not trusted.

A file's fingerprint is the sha256 of its bytes; a folder's is the sha256 of its files'
relative paths and hashes (hidden files left out). Hashing a 250 MB GGUF on every run
would be wasteful, so hashes are cached by ``(absolute path, size, mtime_ns)``: the
cheap ``stat`` is the fast path, and a file whose size or modification time changed is
hashed again. The cache lives in memory and in ``$INPARS_CACHE_DIR`` (default
``~/.cache/inpars``) as ``file-hashes.json``; losing it only costs time.

:func:`record` describes a path as a stage manifest keeps it; :func:`changes` compares
a recorded description with the disk and says in words what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FILE = "file-hashes.json"
RACY_NS = 2_000_000_000  # files modified this recently are always hashed again
_MEMORY: dict[str, tuple[int, int, str]] = {}
_loaded_from: Path | None = None
_dirty = False


def cache_dir() -> Path:
    """Where the persistent hash cache lives."""
    return Path(os.environ.get("INPARS_CACHE_DIR") or Path.home() / ".cache" / "inpars")


def _load_cache() -> None:
    global _loaded_from
    where = cache_dir() / CACHE_FILE
    if _loaded_from == where:
        return
    _loaded_from = where
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list) and len(value) == 3:
                _MEMORY.setdefault(key, (int(value[0]), int(value[1]), str(value[2])))


def save_cache() -> None:
    """Write the hash cache to disk (atomically; failures only cost time later)."""
    global _dirty
    if not _dirty:
        return
    from inpars.io import write_json

    for gone in [k for k in _MEMORY if not os.path.exists(k)]:
        del _MEMORY[gone]
    try:
        write_json(cache_dir() / CACHE_FILE, {k: list(v) for k, v in sorted(_MEMORY.items())})
        _dirty = False
    except OSError as exc:
        log.debug("could not save the hash cache: %s", exc)


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes (cached by path, size and mtime)."""
    global _dirty
    p = Path(path)
    stat = p.stat()
    key = str(p.resolve())
    _load_cache()
    cached = _MEMORY.get(key)
    if cached is not None and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
        return cached[2]
    digest = hashlib.sha256()
    with open(p, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    # File times tick in coarse steps (a few ms): a file written again within the same tick
    # keeps its size and mtime. Like git's "racy" entries, a hash is cached only for a file
    # last modified well before it was read.
    if time.time_ns() - stat.st_mtime_ns > RACY_NS:
        _MEMORY[key] = (stat.st_size, stat.st_mtime_ns, value)
        _dirty = True
    return value


def _files(folder: Path) -> list[Path]:
    return sorted(q for q in folder.rglob("*") if q.is_file() and not q.name.startswith("."))


def path_sha256(path: Path | str) -> str:
    """sha256 of a file, or of a folder's files (relative paths and hashes); ``missing:<path>``
    when there is nothing there."""
    p = Path(path)
    if p.is_file():
        return file_sha256(p)
    if not p.is_dir():
        return f"missing:{p}"
    digest = hashlib.sha256()
    for child in _files(p):
        digest.update(str(child.relative_to(p)).encode())
        digest.update(file_sha256(child).encode())
    return digest.hexdigest()


def _stats(path: Path) -> tuple[int, int]:
    """(bytes, files) of a file or folder."""
    if path.is_file():
        return path.stat().st_size, 1
    files = _files(path)
    return sum(f.stat().st_size for f in files), len(files)


def record(path: Path | str) -> dict[str, Any]:
    """What a manifest keeps of a path: its hash, size in bytes and number of files."""
    p = Path(path)
    size, files = _stats(p) if p.exists() else (0, 0)
    return {"sha256": path_sha256(p), "bytes": size, "files": files}


def changes(recorded: dict[str, Any], path: Path | str) -> str | None:
    """``None`` when ``path`` still is what ``recorded`` describes, else what changed, in words."""
    p = Path(path)
    if not p.exists():
        return f"{p} was deleted"
    sha = path_sha256(p)
    if sha == recorded.get("sha256"):
        return None
    size, files = _stats(p)
    before = recorded.get("bytes")
    what = [f"{before} -> {size} bytes" if before is not None and before != size else "same size"]
    if p.is_dir() and recorded.get("files") is not None and recorded["files"] != files:
        what.append(f"{recorded['files']} -> {files} files")
    return f"{p} was modified after it was written ({', '.join(what)})"
