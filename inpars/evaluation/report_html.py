"""report.html: the tables of report.md plus plots, in one self-contained page.

Plots are embedded as base64 PNG; every text that comes from data (system names, query
and document texts, ids, the command, extra sections) is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from inpars.evaluation import plots, tables
from inpars.evaluation.markdown_html import markdown_to_html
from inpars.evaluation.metrics import Evaluation
from inpars.evaluation.tables import metric_label
from inpars.evaluation.worth import worth_section, worth_table
from inpars.records import SyntheticQuery

# the look every inpars page shares (reports and the inspection page)
BASE_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #555; font-size: 0.85em; }
"""
_STYLE = BASE_STYLE + """pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
img { max-width: 100%; }
"""


def html_table(table: tables.Table, numeric_from: int = 99) -> str:
    """A table; cells from column ``numeric_from`` on are right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = []
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{html.escape(c)}</td>' if j >= numeric_from else f"<td>{html.escape(c)}</td>"
            for j, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def _img(uri: str, alt: str) -> str:
    return f'<p><img src="{uri}" alt="{html.escape(alt, quote=True)}"></p>'


def render_html(
    ev: Evaluation,
    *,
    command: str,
    title: str = "Evaluation",
    digits: int = 4,
    with_plots: bool = True,
    synthetic: Sequence[SyntheticQuery] | None = None,
    examples: int = 20,
    extra_sections: Mapping[str, str] | None = None,
    query_texts: Mapping[str, str] | None = None,
    doc_texts: Mapping[str, str] | None = None,
) -> str:
    """The HTML report of an evaluation (same tables as report.md, plus plots).

    ``query_texts`` (test query id -> text) labels the largest per-query changes;
    ``doc_texts`` (doc id -> text) shows the documents of the listed synthetic queries.
    """
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        "<p>Produced by:</p>",
        f"<pre><code>{html.escape(command.strip())}</code></pre>",
        "<h2>Results</h2>",
        html_table(tables.comparison_table(ev, digits), numeric_from=2),
    ]
    if with_plots:
        parts.append(_img(plots.metric_bars(ev), "mean of each metric per system"))
    worth = worth_table([ev], ev.metrics[0])
    if worth.rows:
        parts += ["<h2>What the synthetic data is worth</h2>", html_table(worth_section(worth, digits))]
    if ev.others:
        parts += [
            f"<h2>Against the baseline ({html.escape(ev.baseline)})</h2>",
            html_table(tables.baseline_table(ev, digits), numeric_from=1),
            "<h2>Per-query wins / ties / losses</h2>",
            html_table(tables.win_tie_loss_table(ev), numeric_from=1),
        ]
        main = ev.metrics[0]
        if with_plots:
            parts += [
                f"<h3>Per-query difference with {html.escape(ev.baseline)} "
                f"({html.escape(metric_label(main))})</h3>",
                _img(plots.delta_histograms(ev, main), "per-query differences with the baseline"),
            ]
        for system in ev.others:
            parts += [
                f"<h3>{html.escape(system)}: largest changes</h3>",
                html_table(tables.largest_changes(ev, system, main, query_texts), numeric_from=2),
            ]
    parts += [
        "<h2>Queries</h2>",
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in tables.exclusion_lines(ev)) + "</ul>",
    ]
    if synthetic:
        parts += ["<h2>Synthetic queries</h2>", html_table(tables.synthetic_table(synthetic))]
        if with_plots:
            parts.append(_img(plots.synthetic_distributions(synthetic), "synthetic query distributions"))
        if examples:
            parts += [
                f"<h3>First {min(examples, len(synthetic))} synthetic queries</h3>",
                html_table(tables.synthetic_examples(synthetic, examples, doc_texts)),
            ]
    for heading, body in (extra_sections or {}).items():
        parts += [f"<h2>{html.escape(heading)}</h2>", markdown_to_html(body)]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
