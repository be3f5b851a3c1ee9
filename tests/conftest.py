"""Shared fixtures: the real test collections in ../shared/data, and tiny BEIR folders."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

SHARED_DATA_ENV = "INPARS_SHARED_DATA"


def shared_data_path() -> Path:
    """Where the shared collections live: ``$INPARS_SHARED_DATA`` or ``<repo>/../shared/data``."""
    override = os.environ.get(SHARED_DATA_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reads the shared collections is ``needs_data`` and ``slow``.

    Using the ``shared_data`` fixture (directly or through another fixture) is enough:
    ``pytest -m "not slow"`` (the fast suite) then never reads ../shared/data.
    """
    for item in items:
        uses_data = "shared_data" in getattr(item, "fixturenames", ())
        if uses_data and item.get_closest_marker("needs_data") is None:
            item.add_marker(pytest.mark.needs_data)
        if (uses_data or item.get_closest_marker("needs_data")) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder with the real collections (scifact, cranfield, cisi in BEIR layout).

    Skips the test when it is absent (a checkout without ../shared/data).
    """
    path = shared_data_path()
    if not (path / "scifact" / "corpus.jsonl").is_file():
        pytest.skip(
            f"shared test collections not found at {path} "
            f"(put them in <repo>/../shared/data or set {SHARED_DATA_ENV})"
        )
    return path


Line = Mapping[str, Any] | str | bytes
"""A line of a tiny file: a record (written as JSON), or raw text/bytes (for bad lines)."""


def _encode(line: Line) -> bytes:
    if isinstance(line, bytes):
        return line
    if isinstance(line, str):
        return line.encode("utf-8")
    return json.dumps(dict(line), ensure_ascii=False).encode("utf-8")


def write_lines(path: Path, lines: Sequence[Line], *, final_newline: bool = True) -> Path:
    """Write ``lines`` to ``path`` (records as JSON), one a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(_encode(line) for line in lines)
    path.write_bytes(data + (b"\n" if final_newline and lines else b""))
    return path


TINY_DOCS: list[dict[str, Any]] = [
    {"_id": "d1", "title": "Cats", "text": "Cats are small domesticated felines that purr."},
    {"_id": "d2", "title": "Dogs", "text": "Dogs are loyal companions and descend from wolves."},
    {"_id": "d3", "title": "", "text": "The Eiffel tower stands in Paris, France."},
    {"_id": "d4", "title": "Rivers", "text": "The Amazon carries more water than any other river.",
     "metadata": {"source": "tiny"}},
]
TINY_QUERIES: list[dict[str, Any]] = [
    {"_id": "q1", "text": "do cats purr", "metadata": {}},
    {"_id": "q2", "text": "where do dogs come from"},
    {"_id": "q3", "text": "largest river by volume"},
]
TINY_QRELS: dict[str, list[tuple[str, str, int]]] = {
    "test": [("q1", "d1", 1), ("q2", "d2", 2)],
    "train": [("q3", "d4", 1)],
}


class BeirWriter(Protocol):
    def __call__(
        self,
        docs: Sequence[Line] | None = ...,
        queries: Sequence[Line] | None = ...,
        qrels: Mapping[str, Sequence[tuple[str, str, Any] | str]] | None = ...,
        *,
        name: str = ...,
        qrels_header: bool = ...,
    ) -> Path: ...


@pytest.fixture
def write_beir(tmp_path: Path) -> BeirWriter:
    """A function that writes a tiny BEIR folder under ``tmp_path`` and returns it.

    Defaults give a valid collection (4 docs, 3 queries, test and train qrels); pass raw
    lines to plant bad input. ``queries=[]`` / ``qrels={}`` leave those files out.
    """

    def write(
        docs: Sequence[Line] | None = None,
        queries: Sequence[Line] | None = None,
        qrels: Mapping[str, Sequence[tuple[str, str, Any] | str]] | None = None,
        *,
        name: str = "tiny",
        qrels_header: bool = True,
    ) -> Path:
        root = tmp_path / name
        write_lines(root / "corpus.jsonl", TINY_DOCS if docs is None else docs)
        query_lines = TINY_QUERIES if queries is None else queries
        if query_lines:
            write_lines(root / "queries.jsonl", query_lines)
        for split, rows in (TINY_QRELS if qrels is None else qrels).items():
            lines = ["query-id\tcorpus-id\tscore"] if qrels_header else []
            lines += [row if isinstance(row, str) else "\t".join(str(c) for c in row) for row in rows]
            write_lines(root / "qrels" / f"{split}.tsv", lines)
        return root

    return write


@pytest.fixture
def snapshot_files() -> Callable[[Path], dict[str, bytes]]:
    """Bytes of every file under a folder, to show that reading never modified input."""

    def snapshot(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    return snapshot


@pytest.fixture(autouse=True, scope="session")
def _private_hash_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the file-hash cache of the tests out of the user's ~/.cache/inpars."""
    os.environ["INPARS_CACHE_DIR"] = str(tmp_path_factory.mktemp("inpars-cache"))
