"""``inpars status CONFIG``: where a run stands, read from its folders; nothing runs or is written.

Each stage of the graph, in order, is one of:

- ``done``: finished, and ``inpars run`` would skip it (same fingerprint, outputs as written);
- ``stale``: finished, but ``inpars run`` would run it again, and why (its config or inputs
  changed, an output was edited, or a stage it reads runs again first);
- ``in progress``: a build in its ``.<stage>.next`` folder (running now, or interrupted and
  resumable), with what it has so far where the stage leaves a trace (documents generated,
  the last training checkpoint);
- ``pending`` (not started) or ``off`` (switched off in the config).

The lock line says whether a process is running the experiment now. Hashing a stage's inputs
reads them (the fingerprint cache makes it quick for files seen before).
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from inpars.errors import InparsError
from inpars.lock import ExperimentLock, holder_state
from inpars.manifest import output_changes, stage_fingerprint
from inpars.pipeline.executor import Executor
from inpars.pipeline.graph import Stage
from inpars.pipeline.workspace import Workspace
from inpars.stage_folders import IN_PROGRESS, read_manifest, work_dir

State = Literal["done", "stale", "in progress", "pending", "off"]


@dataclass(frozen=True)
class StageStatus:
    """One stage's state and a line of detail (counts, progress or the reason for a rerun)."""

    stage: str
    state: State
    detail: str = ""


@dataclass(frozen=True)
class RunStatus:
    run_dir: Path
    stages: tuple[StageStatus, ...]
    lock: str  # who runs the experiment now; "" when nobody holds its lock


def run_status(ws: Workspace) -> RunStatus:
    """The state of every stage of ``ws``'s run (see the module docstring)."""
    executor = Executor(ws)
    states: dict[str, State] = {}
    rows = []
    for stage in ws.graph:
        row = _stage_status(executor, stage, states)
        states[stage.name] = row.state
        rows.append(row)
    return RunStatus(ws.run_dir, tuple(rows), _lock_line(ws.run_dir))


def _stage_status(executor: Executor, stage: Stage, upstream: Mapping[str, State]) -> StageStatus:
    ws = executor.ws
    if not stage.enabled(ws):
        return StageStatus(stage.name, "off")
    out = ws.stage_dir(stage.name)
    previous = read_manifest(out)
    if previous is None:
        progress = _progress(ws, stage.name)
        if progress is not None:
            return StageStatus(stage.name, "in progress", progress)
        return StageStatus(stage.name, "pending")
    rerun_first = [n for n in (*stage.needs, *stage.uses) if upstream.get(n) in ("stale", "in progress")]
    if rerun_first:
        return StageStatus(stage.name, "stale", f"runs again after {', '.join(rerun_first)}")
    try:
        fp, _ = stage_fingerprint(stage.name, stage.settings(ws), executor.inputs(stage),
                                  ws.config.experiment.seed)
    except InparsError as exc:
        return StageStatus(stage.name, "stale", f"cannot be checked: {exc}")
    if previous.get("fingerprint") != fp:
        return StageStatus(stage.name, "stale", "config or inputs changed since it finished")
    changed = output_changes(previous, out)
    if changed:
        return StageStatus(stage.name, "stale", "outputs changed after it finished: " + "; ".join(changed))
    return StageStatus(stage.name, "done", _summary(previous))


def _summary(manifest: Mapping[str, Any]) -> str:
    """Seconds and the first counts of a finished stage, on one line (the manifest has the rest)."""
    parts = [f"{manifest.get('timings', {}).get('total', 0):.0f} s"]
    counts = manifest.get("counts") or {}
    parts += [f"{k} {v}" for k, v in counts.items() if isinstance(v, int | float)][:4]
    return ", ".join(parts)


def _progress(ws: Workspace, stage: str) -> str | None:
    """What an unfinished build of ``stage`` has so far (``None``: no build was started)."""
    work = work_dir(ws.stage_dir(stage))
    marker = work / IN_PROGRESS
    if not marker.is_file():
        return None
    since = datetime.fromtimestamp(marker.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    found = [f"started {since}"]
    if stage == "generate":
        found.append(_generated(ws, work))
    elif stage == "negatives":
        found.append(_mined(ws, work))
    elif stage in ("train", "refine"):
        found.append(_checkpoint(work))
    return "; ".join(p for p in found if p)


def _mined(ws: Workspace, work: Path) -> str:
    """Examples written so far (mining appends them a batch at a time), of the kept queries."""
    from inpars.negatives import EXAMPLES

    path = work / EXAMPLES
    if not path.is_file():
        return "no example yet"
    with path.open("rb") as handle:
        done = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    kept = ((read_manifest(ws.stage_dir("filter")) or {}).get("counts") or {}).get("kept")
    return f"{done} examples mined" + (f" of {kept} kept queries" if isinstance(kept, int) else "")


def _generated(ws: Workspace, work: Path) -> str:
    """Documents done so far, from the generation shards' progress files, and the rate: the
    median of the batches' seconds per document, so that a batch that spanned a pause or a
    busy spell does not set the estimate."""
    docs = 0
    rates: list[float] = []
    for path in sorted(work.glob("shards/*.progress.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                batch = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: the resumed run writes it again
            count = len(batch.get("doc_ids", ()))
            docs += count
            if count:
                rates.append(float(batch.get("seconds", 0.0)) / count)
    if not docs:
        return "no document finished yet"
    total = _planned_docs(ws)
    per_doc = statistics.median(rates)
    left = f" of {total}" if total else ""
    rate = f" ({per_doc:.2f} s per document" + (
        f", about {(total - docs) * per_doc / 60:.0f} min left)" if total else ")")
    return f"{docs}{left} documents generated{rate}"


def _planned_docs(ws: Workspace) -> int | None:
    """How many documents generation writes for: ``num_docs``, at most the corpus (from the index)."""
    wanted = ws.config.generate.num_docs
    index = read_manifest(ws.stage_dir("index")) or {}
    corpus = (index.get("counts") or {}).get("docs")
    if not isinstance(corpus, int):
        return wanted or None
    return min(wanted, corpus) if wanted else corpus


def _checkpoint(work: Path) -> str:
    """The latest training checkpoint in a train build: the trainer's state in
    ``.<model>.checkpoints/<run key>/checkpoint-<step>/`` (:mod:`inpars.training.ce_trainer`),
    with the time left at the median seconds per step of its loss curve."""
    best: tuple[int, int | None, str, Path] | None = None
    for state in work.glob("**/checkpoint-*/trainer_state.json"):
        try:
            data = json.loads(state.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        step = int(data.get("global_step", 0))
        if best is None or step > best[0]:
            root = next((d.name for d in state.parents if d.name.endswith(".checkpoints")), "model")
            best = (step, data.get("max_steps"), root.strip(".").removesuffix(".checkpoints"), state)
    if best is None:
        return "no checkpoint yet"
    step, total, model, state = best
    found = f"{model}: checkpoint at step {step}" + (f" of {total}" if total else "")
    per_step = _seconds_per_step(state)
    if total and per_step is not None:
        found += f" ({per_step:.1f} s per step, about {(total - step) * per_step / 60:.0f} min left)"
    return found


def _seconds_per_step(state: Path) -> float | None:
    """The median seconds per optimizer step between the points of a checkpoint's loss curve
    (the cross-encoder's ``inpars_loss_curve.json``, or the trainer's log, whose entries
    carry training seconds), so that a pause does not set the estimate."""
    from inpars.training.loop import CURVE

    try:
        curve = state.parent / CURVE
        points = (json.loads(curve.read_text(encoding="utf-8")).get("points", []) if curve.is_file()
                  else json.loads(state.read_text(encoding="utf-8")).get("log_history", []))
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    timed = [(int(p["step"]), float(p["seconds"])) for p in points
             if isinstance(p, dict) and "step" in p and "seconds" in p]
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(timed) if b[0] > a[0]]
    return statistics.median(rates) if rates else None


def _lock_line(run_dir: Path) -> str:
    holder = ExperimentLock(run_dir).read_holder()
    if holder is None:
        return ""
    state = holder_state(holder)
    if state == "alive":
        return f"running now: {holder.describe()}"
    if state == "other-host":
        return f"locked from another host: {holder.describe()}"
    return f"stale lock (that process is gone; the next run takes it over): {holder.describe()}"


def render_status(status: RunStatus) -> str:
    """The status as plain text lines (what ``inpars status`` prints)."""
    lines = [f"run folder: {status.run_dir}", status.lock or "not running"]
    width = max((len(s.stage) for s in status.stages), default=0)
    for row in status.stages:
        lines.append(f"{row.stage:{width}s}  {row.state:11s}  {row.detail}".rstrip())
    return "\n".join(lines)
