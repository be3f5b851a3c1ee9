"""Inspection: a data-quality report of a generate + filter run, without training.

``inpars inspect CONFIG`` (:func:`inspect_run`) reads the finished generate and filter
stages and writes ``runs/<experiment>/inspect/``:

* ``quality.json`` / ``quality.md``: counts, drops by reason, diversity (distinct-1/2,
  exact and near duplicates), coverage, copy rate, query length and term overlap against
  the collection's real train queries, mean log-prob of kept and dropped queries, and
  (optional) the mean pairwise embedding similarity (:mod:`.quality`, :mod:`.embeddings`);
* ``index.html``: a self-contained page listing every generated query by document, with a
  search box and filters (:mod:`.page`).
"""

from __future__ import annotations

from inpars.inspection.data import RunData, Sample, Settings, load_run
from inpars.inspection.report import InspectResult, build_report, inspect_run, write_inspection

__all__ = [
    "InspectResult",
    "RunData",
    "Sample",
    "Settings",
    "build_report",
    "inspect_run",
    "load_run",
    "write_inspection",
]
