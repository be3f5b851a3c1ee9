"""The one error hierarchy of inpars.

Every error a user can cause is an :class:`InparsError`; its message names what was
wrong (file, line, field where known) and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def did_you_mean(given: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a mistyped name, or ``""``.

    One helper so that every "unknown name" message suggests the same way (difflib's
    ratio, cutoff 0.6: 'sorce' -> 'source', 'oops' -> nothing)."""
    close = difflib.get_close_matches(given, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class InparsError(Exception):
    """Base class of every error inpars raises on purpose."""


class ConfigError(InparsError):
    """An experiment config or a stage setting is invalid."""


class DataError(InparsError):
    """Input data (corpus, queries, qrels, records) is missing or malformed."""


class BadLineError(DataError):
    """One line of an input file is malformed.

    Carries the location so that readers that skip bad lines can count them.
    """

    def __init__(
        self,
        path: Path | str,
        line: int,
        field: str | None,
        problem: str,
        fix: str,
        *,
        reason: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.problem = problem
        self.fix = fix
        # The category skipped lines are counted under; ``problem`` may name values.
        self.reason = reason or problem
        where = f"{self.path}, line {line}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}. Fix: {fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by the constructor's arguments (worker processes send errors back).
        return (_bad_line_error, (str(self.path), self.line, self.field, self.problem, self.fix, self.reason))


def _bad_line_error(
    path: str, line: int, field: str | None, problem: str, fix: str, reason: str
) -> BadLineError:
    return BadLineError(path, line, field, problem, fix, reason=reason)


class IndexStoreError(InparsError):
    """An index is missing, corrupt or was built from something else."""


class ModelError(InparsError):
    """A model cannot be found, loaded or run."""


class BackendError(InparsError):
    """A generation or scoring backend failed (server down, bad response)."""


class DependencyError(InparsError):
    """An optional dependency (or Java) is missing; the message says what to install."""


class StageError(InparsError):
    """A pipeline stage cannot run: missing inputs from an earlier stage, or a failed step."""


class LockError(StageError):
    """Another inpars run holds the experiment's lock (``<run_dir>/.lock``); the message names it."""


__all__ = [
    "BackendError",
    "BadLineError",
    "ConfigError",
    "DataError",
    "DependencyError",
    "IndexStoreError",
    "InparsError",
    "LockError",
    "ModelError",
    "StageError",
]
