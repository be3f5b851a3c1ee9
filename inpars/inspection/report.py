"""Write ``runs/<experiment>/inspect/``: ``quality.json``, ``quality.md`` and ``index.html``."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpars.inspection.data import RunData, load_run
from inpars.inspection.page import render_page
from inpars.inspection.quality import quality_report
from inpars.inspection.summary import render_markdown
from inpars.io import write_json, write_text

if TYPE_CHECKING:
    from inpars.inspection.embeddings import Encode
    from inpars.pipeline import Workspace

log = logging.getLogger(__name__)

FOLDER = "inspect"
DATA_PAGE = "data.html"  # the browsable page of the data beside an evaluate stage's report


@dataclass(frozen=True)
class InspectResult:
    """Where the report went, and its numbers."""

    out_dir: Path
    quality_json: Path
    quality_md: Path
    page: Path
    report: dict[str, Any]


def build_report(
    run: RunData, *, embeddings: bool = True, encoder: Encode | None = None
) -> dict[str, Any]:
    """``quality.json``'s content: :func:`quality_report` plus the embedding similarity
    (``{"skipped": why}`` when turned off or the encoder is missing)."""
    report = quality_report(run)
    if not embeddings:
        report["embedding"] = {"skipped": "turned off (--no-embeddings)"}
        return report
    from inpars.inspection.embeddings import embedding_similarity

    groups = {"kept synthetic": [s.text for s in run.kept()]}
    if run.real:
        groups["real train"] = list(dict.fromkeys(text for _, text, _ in run.real))
    report["embedding"] = embedding_similarity(groups, seed=run.settings.seed, encoder=encoder)
    return report


def write_inspection(
    run: RunData, out_dir: Path, *, command: str = "", embeddings: bool = True, encoder: Encode | None = None
) -> InspectResult:
    """Measure ``run`` and write the three files to ``out_dir`` (atomically, each)."""
    started = time.monotonic()
    report = build_report(run, embeddings=embeddings, encoder=encoder)
    if command:
        report["command"] = command
    paths = (out_dir / "quality.json", out_dir / "quality.md", out_dir / "index.html")
    write_json(paths[0], report)
    write_text(paths[1], render_markdown(report, command=command))
    log.info("rendering the page of %d queries", len(run.samples))
    write_text(paths[2], render_page(run, report, command=command))
    log.info("inspection written to %s in %.1f s", out_dir, time.monotonic() - started)
    return InspectResult(out_dir, *paths, report)


def inspect_run(
    ws: Workspace, *, config_path: str = "CONFIG", command: str = "", embeddings: bool = True
) -> InspectResult:
    """The data-quality report of the finished generate and filter stages of ``ws``, in
    ``<run_dir>/inspect/`` (a :class:`~inpars.errors.StageError` naming the command to run
    when they have not finished). Nothing is trained; no stage output is changed."""
    run = load_run(ws, config_path)
    return write_inspection(run, ws.run_dir / FOLDER, command=command, embeddings=embeddings)



def quality_section(ws: Workspace, page: Path, *, config_path: str = "CONFIG", command: str = "") -> str:
    """The report section on the synthetic data of ``ws`` (the tables of ``inpars inspect``,
    as markdown) after writing its browsable page to ``page``."""
    from inpars.evaluation.report_md import md_table
    from inpars.inspection.summary import sections

    run = load_run(ws, config_path)
    report = build_report(run)
    write_text(page, render_page(run, report, command=command))
    lines = [f"The generated queries, measured without training (`inpars inspect {config_path}` writes the "
             f"same numbers to `quality.json`). Every query, kept or dropped and why, is in `{page.name}` "
             "beside this report in the run folder (not published: it quotes the documents)."]
    for title, table, _ in sections(report):
        lines += ["", f"### {title}", "", md_table(table)]
    return "\n".join(lines)
