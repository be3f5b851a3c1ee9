"""report.md: the command that produced it, the comparison tables, exclusions, extra sections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from inpars.evaluation import tables
from inpars.evaluation.metrics import Evaluation
from inpars.evaluation.worth import worth_section, worth_table
from inpars.records import SyntheticQuery


def md_cell(text: str) -> str:
    """A table cell: pipes escaped, newlines flattened."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def md_table(table: tables.Table) -> str:
    lines = [
        "| " + " | ".join(md_cell(h) for h in table.header) + " |",
        "|" + "|".join("---" for _ in table.header) + "|",
        *("| " + " | ".join(md_cell(c) for c in row) + " |" for row in table.rows),
    ]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def command_block(command: str) -> str:
    fence = "```"
    while fence in command:
        fence += "`"
    return f"{fence}bash\n{command.strip()}\n{fence}"


def render_markdown(
    ev: Evaluation,
    *,
    command: str,
    title: str = "Evaluation",
    digits: int = 4,
    synthetic: Sequence[SyntheticQuery] | None = None,
    extra_sections: Mapping[str, str] | None = None,
) -> str:
    """The Markdown report of an evaluation.

    ``command`` is the command line that produced the report (shown first, so the report
    says how to reproduce it); ``extra_sections`` maps section titles to Markdown bodies
    (timings per stage, synthetic-data statistics, ...) and is appended as given.
    """
    parts = [
        f"# {title}",
        "Produced by:",
        command_block(command),
        "## Results",
        md_table(tables.comparison_table(ev, digits)),
    ]
    worth = worth_table([ev], ev.metrics[0])
    if worth.rows:
        parts += ["## What the synthetic data is worth", md_table(worth_section(worth, digits))]
    if ev.others:
        parts += [
            f"## Against the baseline ({ev.baseline})",
            md_table(tables.baseline_table(ev, digits)),
            "## Per-query wins / ties / losses",
            md_table(tables.win_tie_loss_table(ev)),
        ]
    parts += ["## Queries", "\n".join(f"- {line}" for line in tables.exclusion_lines(ev))]
    if synthetic:
        parts += ["## Synthetic queries", md_table(tables.synthetic_table(synthetic))]
    for heading, body in (extra_sections or {}).items():
        parts += [f"## {heading}", body.strip()]
    return "\n\n".join(parts) + "\n"
