"""Bad input lines: raised at once, or skipped and counted with ``--skip-bad-lines``.

A reader that meets a malformed line builds a :class:`~inpars.errors.BadLineError` (file,
line, field, problem, fix) and hands it to :func:`handle_bad_line`: without a
:class:`LineReport` it is raised; with one (``[data] skip_bad_lines``) the line is skipped
and counted by reason, and a few examples are kept for the report. Fixes that end with
:data:`SKIP_HINT` lose it when the line is skipped already.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from inpars.errors import BadLineError

log = logging.getLogger(__name__)

SKIP_HINT = "or pass --skip-bad-lines to skip such lines"  # ends fixes; not shown for skipped lines
_SKIP_HINT_RE = re.compile(r"[,;]?\s*" + re.escape(SKIP_HINT))


@dataclass
class LineReport:
    """Counts of lines skipped while reading with ``skip_bad_lines``, by reason and by
    (file name, reason)."""

    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    by_file: Counter[tuple[str, str]] = field(default_factory=Counter)
    _seen: set[tuple[str, int, str | None]] = field(default_factory=set, repr=False, compare=False)

    def add(self, error: BadLineError) -> None:
        """Count ``error`` once: a file read again (a corpus is streamed once per pass)
        reports the same bad line again, which is not counted twice."""
        key = (str(error.path), error.line, error.field)
        if key in self._seen:
            return
        self._seen.add(key)
        self.skipped[error.reason] += 1
        self.by_file[(error.path.name, error.reason)] += 1
        fix = _SKIP_HINT_RE.sub("", error.fix).strip()  # the line is skipped already
        shown = str(BadLineError(error.path, error.line, error.field, error.problem, fix))
        if len(self.examples) < 5:
            self.examples.append(shown)
        log.warning("skipped bad line: %s", shown)

    @property
    def total(self) -> int:
        return sum(self.skipped.values())

    def by_reason(self, *, per_file: bool = False) -> dict[str, int]:
        """Most frequent first: ``{reason: n}``, or ``{"<file name>: <reason>": n}``."""
        if per_file:
            return {f"{name}: {reason}": n for (name, reason), n in self.by_file.most_common()}
        return dict(self.skipped.most_common())


def handle_bad_line(error: BadLineError, report: LineReport | None) -> None:
    """Raise ``error`` unless a report collects skipped lines."""
    if report is None:
        raise error
    report.add(error)
