"""Output shards of the generate stage, written so that a run can be resumed.

For shard ``k`` (``shard_docs`` consecutive chosen documents) the folder holds:

- ``part-0000k.jsonl``           kept :class:`~inpars.records.SyntheticQuery` records
- ``part-0000k.rejects.jsonl``   rejected samples as :class:`~inpars.records.Dropped` (reason, raw text)
- ``part-0000k.progress.jsonl``  one line per finished batch (written after its records)
- ``part-0000k.done.json``       the completion marker, with the shard's counts

and ``threads.json`` records the CPU thread count the model computed with (results depend
on it), which a resumed run reuses (:func:`recorded_threads`).

With ``[generate] executor = "ray"`` a worker generates a shard in a scratch folder of its
own and hands the four files to the driver as a :class:`ShardPayload`; the driver writes them
here (:func:`write_shard_payload`: each file atomically, the completion marker last), so the
folder is the same whichever executor wrote it.

A batch counts as done only once its progress line is complete. On resume, records of
batches without one (the batch in flight when the run stopped) are removed and the
batch runs again, so no (doc_id, sample) pair is ever written twice; a shard is marked
done, and a run complete, only once every query id in them is checked to appear once
(:func:`check_unique_ids`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.errors import DataError, StageError
from inpars.io import (
    RecordAppender,
    atomic_open,
    iter_json_lines,
    read_json,
    read_records,
    write_json,
    write_records,
)
from inpars.records import Dropped, SyntheticQuery

RUN_FILE = "run.json"
SCRATCH_DIR = ".ray-work"  # beside shards/: Ray workers' shards in progress (inpars.distributed.generation)
THREADS_FILE = "threads.json"
FIX_DUPLICATES = "Fix: generate the queries again with `inpars generate CONFIG --force`"


@dataclass(frozen=True)
class BatchDone:
    """A progress line: one finished batch of a shard."""

    batch: int
    doc_ids: tuple[str, ...]
    kept: int
    rejected: int
    empty_docs: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # wall time spent generating the batch (sums to the time of all sessions)


class ShardFiles:
    """The files of one shard."""

    def __init__(self, folder: Path, index: int) -> None:
        stem = folder / f"part-{index:05d}"
        self.queries = stem.with_name(stem.name + ".jsonl")
        self.rejects = stem.with_name(stem.name + ".rejects.jsonl")
        self.progress = stem.with_name(stem.name + ".progress.jsonl")
        self.done = stem.with_name(stem.name + ".done.json")
        self._appenders: list[RecordAppender] = []

    def is_done(self) -> bool:
        return self.done.is_file()

    def prepare(self) -> dict[int, BatchDone]:
        """Finished batches so far; drops records of unfinished ones; opens for appending."""
        batches: dict[int, BatchDone] = {}
        if self.progress.is_file():
            batches = {b.batch: b for b in read_records(self.progress, BatchDone)}
        keep = {doc_id for b in batches.values() for doc_id in b.doc_ids}
        if self.queries.is_file():
            queries = list(read_records(self.queries, SyntheticQuery))
            if any(q.doc_id not in keep for q in queries):
                write_records(self.queries, [q for q in queries if q.doc_id in keep])
        if self.rejects.is_file():
            rejects = list(read_records(self.rejects, Dropped))
            if any(r.doc_id not in keep for r in rejects):
                write_records(self.rejects, [r for r in rejects if r.doc_id in keep])
        self._appenders = [RecordAppender(p) for p in (self.queries, self.rejects, self.progress)]
        return batches

    def write_batch(
        self, queries: Sequence[SyntheticQuery], rejects: Sequence[Dropped], done: BatchDone
    ) -> None:
        """Append a batch's records, then its progress line (the order recovery relies on)."""
        q, r, p = self._appenders
        q.write(queries)
        r.write(rejects)
        p.write([done])

    def finish(self, batches: Sequence[BatchDone]) -> dict[str, Any]:
        """Close the files and write the completion marker with the shard's counts."""
        self.close()
        check_unique_ids([self.queries, self.rejects])
        reasons: Counter[str] = Counter()
        for b in batches:
            reasons.update(b.reasons)
        summary = {
            "docs": sum(len(b.doc_ids) for b in batches),
            "empty_docs": sum(b.empty_docs for b in batches),
            "kept": sum(b.kept for b in batches),
            "rejected": sum(b.rejected for b in batches),
            "reasons": dict(sorted(reasons.items())),
            "seconds": round(sum(b.seconds for b in batches), 3),
        }
        write_json(self.done, summary)
        return summary

    def close(self) -> None:
        for appender in self._appenders:
            appender.close()
        self._appenders = []


@dataclass(frozen=True)
class ShardPayload:
    """The files of one finished shard, as bytes (what a Ray worker sends the driver)."""

    queries: bytes
    rejects: bytes
    progress: bytes
    done: bytes

    @property
    def size(self) -> int:
        return len(self.queries) + len(self.rejects) + len(self.progress) + len(self.done)


def read_shard_payload(files: ShardFiles) -> ShardPayload:
    """The files of a finished shard (a missing records file reads as empty)."""
    if not files.is_done():
        raise StageError(f"{files.done}: the shard has no completion marker, so it is not finished. "
                         "Fix: generate it again (rerun the same command)")

    def read(path: Path) -> bytes:
        return path.read_bytes() if path.is_file() else b""

    return ShardPayload(read(files.queries), read(files.rejects), read(files.progress),
                        files.done.read_bytes())


def write_shard_payload(files: ShardFiles, payload: ShardPayload) -> None:
    """Write a finished shard's files, each atomically, the completion marker last: a shard
    interrupted half-way has no marker and is generated again."""
    for path, data in ((files.queries, payload.queries), (files.rejects, payload.rejects),
                       (files.progress, payload.progress), (files.done, payload.done)):
        with atomic_open(path, "wb") as handle:
            handle.write(data)


def check_run_file(folder: Path, settings: dict[str, Any]) -> None:
    """Record the settings that fix the shard layout; refuse to mix runs in one folder."""
    path = folder / RUN_FILE
    if path.is_file():
        previous = read_json(path)
        if previous != settings:
            changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
            raise StageError(
                f"{folder}: holds queries generated with other settings ({', '.join(changed)} differ). "
                "Fix: use a new output folder, or delete this one to start over"
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, settings)


def shard_paths(path: Path | str, suffix: str = ".jsonl") -> list[Path]:
    """The query shards (or ``.rejects.jsonl`` files) of a generate stage folder or its shards folder."""
    folder = Path(path)
    if (folder / "shards").is_dir():
        folder = folder / "shards"
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder. Fix: run the generate stage first")
    return sorted(p for p in folder.glob(f"part-*{suffix}") if p.name.count(".") == suffix.count("."))


def read_synthetic_queries(path: Path | str) -> Iterator[SyntheticQuery]:
    """Every kept query of a generate run, shard by shard."""
    for shard in shard_paths(path):
        yield from read_records(shard, SyntheticQuery)


def read_rejects(path: Path | str) -> Iterator[Dropped]:
    """Every rejected sample of a generate run, with its reason."""
    for shard in shard_paths(path, ".rejects.jsonl"):
        yield from read_records(shard, Dropped)


def read_done_markers(folder: Path) -> list[dict[str, Any]]:
    return [read_json(p) for p in sorted(folder.glob("part-*.done.json"))]


def unfinished_shards(folder: Path, docs: int, shard_docs: int) -> int:
    """How many of the shards of ``docs`` documents have no completion marker in ``folder``."""
    count = -(-docs // shard_docs)
    return sum(not ShardFiles(folder, index).is_done() for index in range(count))


def run_totals(folder: Path) -> tuple[dict[str, Any], Counter[str]]:
    """The counts of every finished shard in ``folder`` summed (docs, empty_docs, kept,
    rejected, seconds), and the rejects by reason, from the completion markers."""
    totals: dict[str, Any] = {"docs": 0, "empty_docs": 0, "kept": 0, "rejected": 0, "seconds": 0.0}
    reasons: Counter[str] = Counter()
    for marker in read_done_markers(folder):
        for key in ("docs", "empty_docs", "kept", "rejected"):
            totals[key] += marker[key]
        totals["seconds"] += float(marker.get("seconds", 0.0))
        reasons.update(marker["reasons"])
    return totals, reasons


def check_unique_ids(paths: Iterable[Path], seen: dict[str, tuple[Path, int]] | None = None
                     ) -> dict[str, tuple[Path, int]]:
    """Check that no query id appears twice in these query or rejects files (nor in ``seen``,
    the ids of files checked before, with where each was found); returns the ids seen.

    Kept and rejected samples share one id space (``<doc_id>#q<sample>``), so an id in both a
    query file and a rejects file is a duplicate too."""
    found = {} if seen is None else seen
    for path in paths:
        if not path.is_file():
            continue
        for line, obj in iter_json_lines(path):
            query_id = obj.get("query_id")
            if not isinstance(query_id, str):
                continue  # not a record of this run (the readers name such a line)
            first = found.setdefault(query_id, (path, line))
            if first != (path, line):
                raise StageError(
                    f"{path}, line {line}: query id {query_id!r} appears twice (first at {first[0]}, "
                    f"line {first[1]}): the shards were written twice or edited. {FIX_DUPLICATES}"
                )
    return found


def check_run_ids(folder: Path) -> int:
    """Check that every query id of a generate run (all its shards, kept and rejected)
    appears once; returns how many there are."""
    seen: dict[str, tuple[Path, int]] = {}
    for suffix in (".jsonl", ".rejects.jsonl"):
        check_unique_ids(shard_paths(folder, suffix), seen)
    return len(seen)


def recorded_threads(folder: Path) -> int | None:
    """The thread count recorded by an earlier session of the run in ``folder``, if any."""
    path = folder / THREADS_FILE
    if not path.is_file():
        return None
    threads = read_json(path).get("threads")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise StageError(f"{path}: 'threads' is {threads!r}, not a thread count. Fix: write the count "
                         "the run started with, or start over with `inpars generate CONFIG --force`")
    return threads


def record_threads(folder: Path, threads: int, backend: str) -> None:
    """Record the thread count the run's queries are generated with (first session only)."""
    path = folder / THREADS_FILE
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_json(path, {"threads": threads, "backend": backend})
