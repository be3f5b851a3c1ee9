"""A stage's folder on disk: whether it finished, where a run builds, how the build replaces it.

A finished stage folder holds a complete ``manifest.json`` (:func:`read_manifest`). A run
builds beside it, in ``.<stage>.next/`` (:func:`work_dir`), which holds the in-progress
marker and the partial outputs an interrupted run resumes from (:func:`prepare_work_dir`).
Only a finished build replaces the stage folder (:func:`swap_in`); outputs edited by hand
are moved aside first (:func:`keep_edited_outputs`). :func:`recover` repairs what a run
stopped at the wrong instant leaves, and :func:`remove_temporaries` the temporaries of
atomic writes a kill interrupted. Nothing inpars did not write is ever deleted
(:func:`check_ours`, :func:`discard_work_dir`). :func:`inpars.manifest.run_stage` drives it.
:func:`link_stage` gives another run a finished stage folder as hard links.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
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


def work_dir(out_dir: Path | str) -> Path:
    """Where a stage builds before its outputs replace ``out_dir``: ``.<stage>.next`` beside it.
    It holds the in-progress marker and the partial outputs an interrupted run resumes from."""
    out = Path(out_dir)
    return out.with_name(f".{out.name}{NEXT_SUFFIX}")


def _old_dir(out: Path) -> Path:
    return out.with_name(f".{out.name}{OLD_SUFFIX}")


def recover(out: Path, work: Path, name: str) -> None:
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


def check_ours(out: Path) -> None:
    """Refuse to replace a non-empty folder that inpars did not write."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / MANIFEST).is_file() and not (out / IN_PROGRESS).is_file():
        raise StageError(
            f"{out}: folder is not empty and was not written by inpars. "
            "Fix: choose an empty or new output folder; inpars never deletes files it did not write"
        )


def prepare_work_dir(work: Path, fp: str, name: str, *, force: bool) -> None:
    """Keep a resumable unfinished run with the same fingerprint; otherwise start an empty
    work folder with its in-progress marker."""
    marker = work / IN_PROGRESS
    if marker.is_file() and not force and read_json(marker).get("fingerprint") == fp:
        log.info("%s: resuming the interrupted run in %s", name, work)
        remove_temporaries(work, name)
        return
    discard_work_dir(work, name, "forced (--force)" if force else "it ran with another config or inputs")
    work.mkdir(parents=True)
    write_json(marker, {"stage": name, "fingerprint": fp})


def discard_work_dir(work: Path, name: str, why: str) -> None:
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


def swap_in(work: Path, out: Path) -> None:
    """Put the finished work folder in place of ``out``: the old folder is renamed aside, the
    new one renamed into place, then the old one deleted. Between the two renames ``out`` is
    absent and the old folder beside it, which :func:`recover` restores."""
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


def keep_edited_outputs(out: Path, manifest: Mapping[str, Any]) -> None:
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


def link_stage(source: Path, target: Path) -> None:
    """Another run's finished stage folder ``source`` as ``target``: hard links (no space, no
    time; a copy across file systems), built beside ``target`` and renamed into place, so a
    kill leaves no half folder. Stages never write into a finished folder, so the two runs
    cannot change each other's files; a rebuild replaces the folder, not the linked files."""
    partial = target.with_name(f".{target.name}.link")
    shutil.rmtree(partial, ignore_errors=True)  # left by a kill during the copy
    shutil.copytree(source, partial, copy_function=_link_or_copy)
    partial.rename(target)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
