"""``index.html``: one static, self-contained page to browse every generated query by document.

The quality summary is rendered here (HTML-escaped); the entries are rendered in the
browser from JSON embedded in a ``<script type="application/json">`` element, with ``<``,
``>`` and ``&`` written as JSON escapes so that no text can close the element. A
Content-Security-Policy admits only the page's own script (by hash) and loads nothing.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from inpars.evaluation.report_html import html_table
from inpars.inspection.assets import SCRIPT, STYLE
from inpars.inspection.data import RunData, Sample
from inpars.inspection.summary import sections

SNIPPET_CHARS = 400
DETAIL_CHARS = 240
PAGE_SIZE = 25


def clip(text: str, limit: int) -> str:
    """``text`` with spaces collapsed, cut to ``limit`` characters (an ellipsis when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _query(s: Sample) -> dict[str, Any]:
    detail = "" if s.detail.strip() == s.text.strip() else clip(s.detail, DETAIL_CHARS)
    lp = s.mean_logprob if s.mean_logprob is not None and math.isfinite(s.mean_logprob) else None
    return {"t": s.text, "lp": lp, "s": s.status, "r": s.reason, "d": detail}


def _sample_order(s: Sample) -> tuple[int, str]:
    """Samples of a document by number (``<doc>#q<n>``), others after them by id."""
    _, _, number = s.query_id.rpartition("#q")
    return (int(number), "") if number.isdigit() else (1 << 30, s.query_id)


def page_data(run: RunData) -> dict[str, Any]:
    """The entries of the page: every document generated for, with its queries."""
    by_doc: dict[str, list[Sample]] = {doc_id: [] for doc_id in run.doc_ids}
    for s in run.samples:
        by_doc.setdefault(s.doc_id, []).append(s)
    docs = []
    for doc_id, samples in by_doc.items():
        doc = run.documents.get(doc_id)
        docs.append({
            "id": doc_id,
            "title": doc.title if doc else "",
            "text": clip(doc.text, SNIPPET_CHARS) if doc else "(not in the collection)",
            "q": [_query(s) for s in sorted(samples, key=_sample_order)],
        })
    reasons = Counter(s.reason for s in sorted(run.samples, key=lambda s: s.reason) if s.reason).most_common()
    return {
        "experiment": run.name,
        "page_size": PAGE_SIZE,
        "reasons": [{"name": r, "count": n} for r, n in reasons],
        "docs": docs,
    }


def script_json(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` (written as
    ``\\u003c`` ...), nor the line separators JavaScript once treated as newlines."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _csp() -> str:
    """The policy: nothing loaded, inline style, and only the script with this hash (plain
    ASCII without quotes or ``&``, so it needs no escaping in the attribute)."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"


def summary_html(report: Mapping[str, Any]) -> str:
    parts = []
    for title, table, numeric_from in sections(report):
        parts.append(f'<section><h3>{html.escape(title)}</h3>{html_table(table, numeric_from)}</section>')
    return '<div class="summary">' + "\n".join(parts) + "</div>"


_CONTROLS = """<div id="controls">
<input type="search" id="search" placeholder="search queries and documents" aria-label="search">
<select id="status" aria-label="kept or dropped"><option value="">kept and dropped</option>
<option value="kept">kept</option><option value="dropped">dropped</option></select>
<select id="reason" aria-label="drop reason"><option value="">any reason</option></select>
<span class="pager"><button id="prev" type="button">&larr; previous</button>
<button id="next" type="button">next &rarr;</button></span>
<div id="info"></div>
</div>"""


def render_page(run: RunData, report: Mapping[str, Any], *, command: str = "") -> str:
    """The whole page as one string."""
    title = f"Generated queries: {run.name}"
    made_by = f'<p class="note">Made by <code>{html.escape(command)}</code>.</p>' if command else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_csp()}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
{made_by}
<details open id="summary"><summary>Quality summary</summary>
{summary_html(report)}
</details>
<h2>Queries by document</h2>
{_CONTROLS}
<main id="entries"><noscript>This page needs JavaScript to list the queries.</noscript></main>
<script type="application/json" id="inspect-data">{script_json(page_data(run))}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""
