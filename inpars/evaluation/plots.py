"""Report plots, rendered with matplotlib's Agg canvas into base64 PNG data URIs.

Figures are built with the object API (``Figure`` + ``FigureCanvasAgg``), never pyplot,
so that the library neither changes the caller's backend nor keeps global figures.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

from inpars.evaluation.metrics import Evaluation
from inpars.evaluation.tables import LOSS, WIN, metric_label
from inpars.records import SyntheticQuery


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig: Any) -> str:
    """A figure as a ``data:image/png;base64,...`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def metric_bars(ev: Evaluation) -> str:
    """Grouped bars: one group per metric, one bar per system, marks for significant
    wins and losses against the baseline."""
    fig = _figure(max(6.0, 1.2 * len(ev.metrics) * max(len(ev.systems), 2) / 2), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / len(ev.systems)
    for i, system in enumerate(ev.systems):
        xs = [j + (i - (len(ev.systems) - 1) / 2) * width for j in range(len(ev.metrics))]
        heights = [ev.means[system][m] for m in ev.metrics]
        ax.bar(xs, heights, width, label=system)
        for x, h, metric in zip(xs, heights, ev.metrics, strict=True):
            mark = ev.marks.get(system, {}).get(metric, "")
            if mark:
                ax.annotate(WIN if mark == "win" else LOSS, (x, h), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(ev.metrics)), [metric_label(m) for m in ev.metrics])
    top = max((v for s in ev.systems for v in ev.means[s].values()), default=1.0)
    ax.set_ylim(0, max(top * 1.15, 0.05))
    ax.set_title(f"Mean over {len(ev.query_ids)} queries ({WIN}/{LOSS}: significant vs {ev.baseline})")
    ax.legend(fontsize=8, ncols=min(len(ev.systems), 4), loc="upper left")
    return to_data_uri(fig)


def delta_histograms(ev: Evaluation, metric: str) -> str:
    """One histogram per system of its per-query difference with the baseline."""
    others = ev.others
    cols = min(3, len(others))
    rows = math.ceil(len(others) / cols)
    fig = _figure(4.0 * cols, 3.0 * rows)
    for i, system in enumerate(others):
        ax = fig.add_subplot(rows, cols, i + 1)
        deltas = ev.deltas(system, metric)
        ax.hist(deltas, bins=21, range=(-1, 1), color="tab:blue")
        ax.axvline(0, color="black", linewidth=0.8)
        wtl = ev.win_tie_loss[system][metric]
        ax.set_title(f"{system} − {ev.baseline}\nW/T/L {wtl}", fontsize=9)
        ax.set_xlabel(f"Δ {metric_label(metric)} per query")
        ax.set_ylabel("queries")
    return to_data_uri(fig)


def synthetic_distributions(queries: Sequence[SyntheticQuery]) -> str:
    """Query length (words) and, when the backend gave them, mean token log-probs."""
    logprobs = [q.mean_logprob for q in queries if q.mean_logprob is not None]
    fig = _figure(9.0 if logprobs else 4.5, 3.2)
    ax = fig.add_subplot(1, 2 if logprobs else 1, 1)
    lengths = [len(q.text.split()) for q in queries]
    ax.hist(lengths, bins=range(0, max(lengths, default=1) + 2), color="tab:green", align="left", rwidth=0.8)
    ax.set_title(f"{len(queries)} synthetic queries", fontsize=10)
    ax.set_xlabel("synthetic query length (words)")
    ax.set_ylabel("queries")
    if logprobs:
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.hist(logprobs, bins=30, color="tab:orange")
        ax2.locator_params(axis="x", nbins=6)
        ax2.set_title(f"{len(logprobs)} with log-probs", fontsize=10)
        ax2.set_xlabel("mean token log-prob")
        ax2.set_ylabel("queries")
    return to_data_uri(fig)
