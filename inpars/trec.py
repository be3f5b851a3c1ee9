"""TREC run files: written ranked by score at full precision, read back checked line by line.

Every run file inpars writes (first-stage, expanded, reranked runs) goes through
:func:`write_trec_run`; every run file it reads, its own and those of other tools
(``inpars compare``, ``[evaluate] runs``), through :func:`iter_trec_run`, which names the
file, line and field of a bad line with its fix. What other tools do differently is
accepted: tabs or runs of spaces between fields, scores in scientific notation, a rank
column that disagrees with the scores (it is read, not checked: readers rank by score).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from inpars.errors import BadLineError, DataError
from inpars.io import atomic_open
from inpars.records import ScoredPair


def trec_score(score: float) -> str:
    """A score as run files store it: the shortest text that reads back as the same float
    (``repr``), so scores that differ in memory never tie on disk (a fixed ``%.6f`` made
    saturated sigmoid scores such as 0.99999991 and 0.99999998 equal)."""
    return repr(float(score))


def write_trec_run(path: Path | str, run: Mapping[str, Sequence[ScoredPair]], tag: str) -> int:
    """Write a run (query id -> pairs, any order) as a TREC run file, ranked by score.

    Scores are written at full precision (:func:`trec_score`). Pairs with equal scores keep
    the order they are given in (a stable sort), so ranks are deterministic and
    :func:`read_trec_run` reads each query's pairs back in exactly the written order.
    """
    count = 0
    with atomic_open(path) as handle:
        for query_id in run:
            ranked = sorted(run[query_id], key=lambda p: -p.score)  # stable: ties in given order
            for rank, pair in enumerate(ranked, start=1):
                handle.write(f"{query_id} Q0 {pair.doc_id} {rank} {trec_score(pair.score)} {tag}\n")
                count += 1
    return count


TREC_RUN_FORMAT = "write 'qid Q0 docid rank score tag', six fields separated by spaces or tabs"


class RunEntry(NamedTuple):
    """One line of a TREC run file."""

    query_id: str
    doc_id: str
    score: float
    rank: int | None  # the rank column, None when it is not an integer
    line: int


def iter_trec_run(path: Path | str, *, missing_fix: str = "check the path") -> Iterator[RunEntry]:
    """The entries of a TREC run file (``qid Q0 docid rank score tag``), in file order,
    checked line by line; blank lines are skipped. Bytes that are not UTF-8, a wrong number of
    fields, a score that is not a finite number and a (query, document) pair listed twice raise
    :class:`BadLineError` (file, line, field, fix); a missing file is a :class:`DataError`
    whose fix is ``missing_fix``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: run file not found. Fix: {missing_fix}")
    first_line: dict[str, dict[str, int]] = {}  # query id -> document id -> line
    with open(p, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            entry = _run_entry(p, number, raw)
            if entry is None:
                continue
            docs = first_line.setdefault(entry.query_id, {})
            first = docs.setdefault(entry.doc_id, number)
            if first != number:
                raise BadLineError(
                    p, number, "docid (field 3)",
                    f"document {entry.doc_id!r} is listed twice for query {entry.query_id!r} (first at line "
                    f"{first})", "keep one line per query and document (the tool that wrote the run "
                    "may have merged two rankings)", reason="duplicate query-document pair")
            yield entry


def _run_entry(path: Path, number: int, raw: bytes) -> RunEntry | None:
    """One run line checked (see :func:`iter_trec_run`); ``None`` for a blank line."""
    try:
        parts = raw.decode("utf-8").split()
    except UnicodeDecodeError:
        raise BadLineError(path, number, None, "bytes that are not UTF-8",
                           "write run files as UTF-8", reason="not UTF-8") from None
    if not parts:
        return None
    if len(parts) != 6:
        raise BadLineError(path, number, None, f"{len(parts)} fields instead of 6", TREC_RUN_FORMAT,
                           reason="wrong number of fields")
    try:
        score = float(parts[4])
    except ValueError:
        raise BadLineError(path, number, "score (field 5)", f"not a number: {parts[4]!r}",
                           "write a number such as 12.5 or 1.2e-03 in the fifth field",
                           reason="score not a number") from None
    if not math.isfinite(score):
        raise BadLineError(path, number, "score (field 5)", f"{parts[4]!r} is not a finite number",
                           "write finite scores (replace nan and inf by numbers)", reason="score not finite")
    rank = int(parts[3]) if parts[3].lstrip("-").isdigit() else None
    return RunEntry(parts[0], parts[2], score, rank, number)


def read_trec_run(path: Path | str) -> dict[str, list[ScoredPair]]:
    """Read a TREC run file (``qid Q0 docid rank score tag``, checked by :func:`iter_trec_run`)
    into query id -> pairs, each query's pairs in file order (the written rank order for files
    of :func:`write_trec_run`)."""
    run: dict[str, list[ScoredPair]] = {}
    for entry in iter_trec_run(path, missing_fix="check the path or run the stage that writes it"):
        run.setdefault(entry.query_id, []).append(ScoredPair(entry.query_id, entry.doc_id, entry.score))
    return run
