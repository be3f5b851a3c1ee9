"""The report's "Pipeline" section: seconds, counts and drops of every stage, from the manifests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inpars.manifest import ALL_SESSIONS_TIMING

INTRO = (
    "Seconds per stage, wall time on this machine. A resumed stage counts its last session "
    "only; a stage that measures its work over all sessions (generation) also gives that."
)


def pipeline_table(manifests: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of stage name -> manifest, in the given order, with a total row."""
    lines = ["| stage | seconds | counts | drops |", "|---|---:|---|---|"]
    total = 0.0
    for stage, data in manifests.items():
        counts = ", ".join(f"{k} {v}" for k, v in data.get("counts", {}).items())
        drops = ", ".join(f"{k} {v}" for k, v in data.get("drops", {}).items())
        seconds = data.get("timings", {}).get("total", 0.0)
        earlier = data.get("timings", {}).get(ALL_SESSIONS_TIMING, 0.0)
        shown = f"{seconds:.0f}" + (f" ({earlier:.0f} over all sessions)" if earlier > seconds else "")
        lines.append(f"| {stage} | {shown} | {counts} | {drops} |")
        total += max(seconds, earlier)
    lines.append(f"| total | {total:.0f} | | |")
    return "\n".join(lines)
