"""A run's report against the committed reference, and the explicit step that updates it.

A run writes its report into its own folder (``runs/<exp>/evaluate/``); the committed
reference (``eval/results/<exp>/``) changes only with ``inpars publish CONFIG``. After each
evaluation the run's headline numbers are compared with the reference, and the comparison
is written to ``runs/<exp>/reference.md`` and logged, so that a user sees at once where
their numbers differ from the published ones.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from inpars.errors import DataError, StageError
from inpars.io import atomic_path, read_json, write_text
from inpars.pipeline.workspace import Workspace
from inpars.stage_folders import MANIFEST

log = logging.getLogger(__name__)

REPORT_FILES = ("report.md", "report.html", "metrics.json")
RUN_MANIFEST = "run-manifest.json"  # the whole run's manifest, published beside its report
REFERENCE_NOTE = "reference.md"
TOLERANCE = 0.005  # a headline number within this of the reference "matches" it


def _metrics(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as metrics.json ({exc}). Fix: rerun the evaluate stage "
                        "(inpars evaluate CONFIG --force)") from exc
    if not isinstance(data, dict) or not isinstance(data.get("systems"), dict):
        raise DataError(f"{path}: no 'systems' table. Fix: rerun the evaluate stage (inpars evaluate CONFIG "
                        "--force)")
    return data


def compare_with_reference(ws: Workspace) -> list[str]:
    """Lines comparing this run's first metric per system with the committed reference's
    (written to ``runs/<exp>/reference.md`` and returned); no reference, one line saying so."""
    mine = _metrics(ws.stage_dir("evaluate") / "metrics.json")
    reference = ws.results_dir / "metrics.json"
    if not reference.is_file():
        lines = [f"No committed reference in {ws.results_dir} to compare with "
                 f"(`inpars publish {ws.config.source_path or 'CONFIG'}` makes one)."]
    else:
        lines = _differences(mine, _metrics(reference), reference)
    write_text(ws.run_dir / REFERENCE_NOTE, "# This run against the committed reference\n\n"
               + "\n".join(lines) + "\n")
    return lines


def _differences(mine: dict[str, Any], theirs: dict[str, Any], where: Path) -> list[str]:
    metric = (mine.get("metrics") or ["ndcg@10"])[0]
    ours, published = mine["systems"], theirs["systems"]
    rows, differ = [], 0
    for system in [*ours, *(s for s in published if s not in ours)]:
        a, b = ours.get(system, {}).get(metric), published.get(system, {}).get(metric)
        if a is None or b is None:
            state, differ = ("only in this run" if b is None else "only in the reference"), differ + 1
        else:
            close = abs(a - b) <= TOLERANCE
            state, differ = ("matches" if close else "differs"), differ + (not close)
        difference = None if a is None or b is None else a - b
        rows.append(f"| {system} | {_num(a)} | {_num(b)} | {_num(difference, '+')} | {state} |")
    verdict = (f"All {len(rows)} systems match the reference within {TOLERANCE} {metric}."
               if not differ else f"{differ} of {len(rows)} systems differ from the reference by more than "
               f"{TOLERANCE} {metric} (or are missing on one side).")
    return [verdict, "", f"Reference: {where}", "", "| system | this run | reference | difference | |",
            "|---|---:|---:|---:|---|", *rows]


def _num(value: float | None, sign: str = "") -> str:
    return "" if value is None else f"{value:{sign}.4f}"


def publish(ws: Workspace) -> list[Path]:
    """Copy the finished evaluation (report files, the stage manifest, the run manifest) to
    the committed reference folder ``ws.results_dir``, atomically; returns the copies."""
    stage_dir = ws.stage_dir("evaluate")
    if not ws.finished("evaluate"):
        raise StageError(f"{stage_dir}: no finished evaluation to publish. Fix: run `inpars run "
                         f"{ws.config.source_path or 'CONFIG'}` first")
    _metrics(stage_dir / "metrics.json")
    sources = {name: stage_dir / name for name in (*REPORT_FILES, MANIFEST)}
    sources[RUN_MANIFEST] = ws.run_dir / MANIFEST
    copied = []
    for name, source in sources.items():
        if not source.is_file():
            continue
        with atomic_path(ws.results_dir / name) as tmp:
            shutil.copyfile(source, tmp)
        copied.append(ws.results_dir / name)
    log.info("published %d files to %s", len(copied), ws.results_dir)
    return copied
