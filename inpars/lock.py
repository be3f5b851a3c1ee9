"""One inpars run per experiment at a time: the lock file ``<run_dir>/.lock``.

:class:`ExperimentLock` creates the file atomically (``O_CREAT | O_EXCL``) and writes into
it who holds it: PID, host, start time and command line (:class:`LockHolder`). A second
run of the same experiment is refused with a :class:`~inpars.errors.LockError` that names
the holder and the fix. A lock left behind by a run that died (same host, no such process,
or the PID now belongs to another process, or the machine has restarted since) is taken
over with a warning. A lock from another host cannot be checked from here and is refused.

Why not ``filelock`` or ``fcntl.flock`` alone: an OS lock tells nothing about who holds it
(the message could not say which PID to wait for or stop), and a plain lock file without
a recorded holder cannot tell a live run from a crashed one. The lock file is the lock;
``flock`` on the run folder only serializes the rare takeover of a stale one, so that two
runs that find the same dead lock do not both take it over. POSIX only (``os.kill(pid, 0)``
would end the process on Windows).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Literal

from inpars.errors import LockError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_UNREADABLE_GRACE_S = 2.0  # a lock file this young may still be being written by its holder
_RETRY_S = 0.05
_MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class LockHolder:
    """What a lock file says about the run that holds it."""

    pid: int
    host: str
    started: str  # ISO 8601, local time with its UTC offset
    command: str
    token: str = ""  # unique per acquisition: release removes the file only while it is still ours
    boot_id: str = ""  # Linux: a different boot id on the same host means the holder is gone
    pid_start: int | None = None  # Linux: the holder's start in clock ticks since boot (PID reuse check)

    @classmethod
    def current(cls, command: str) -> LockHolder:
        """This process, as a holder."""
        stat = _proc_stat(os.getpid())
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now().astimezone().isoformat(timespec="seconds"),
            command=command,
            token=uuid.uuid4().hex,
            boot_id=_boot_id() or "",
            pid_start=stat[1] if stat else None,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, raw: bytes | str) -> LockHolder:
        """Parse a lock file's content; ``ValueError`` when it is not a holder."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        pid, host = data.get("pid"), data.get("host")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise ValueError(f"pid = {pid!r}: not a process id")
        if not isinstance(host, str) or not host:
            raise ValueError(f"host = {host!r}: not a host name")
        pid_start = data.get("pid_start")
        return cls(
            pid=pid,
            host=host,
            started=str(data.get("started", "?")),
            command=str(data.get("command", "?")),
            token=str(data.get("token", "")),
            boot_id=str(data.get("boot_id", "")),
            pid_start=pid_start if isinstance(pid_start, int) and not isinstance(pid_start, bool) else None,
        )

    def describe(self) -> str:
        return f"PID {self.pid} on host {self.host}, since {self.started}, running: {self.command}"


class ExperimentLock:
    """Hold ``<run_dir>/.lock`` while a run writes into ``run_dir``.

    Use as a context manager (``with ExperimentLock(run_dir): ...``) or call
    :meth:`acquire` / :meth:`release`. ``command`` is what the lock file records as the
    holder's command line (default: this process's ``sys.argv``).
    """

    def __init__(self, run_dir: Path | str, *, command: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.command = command if command is not None else shlex.join(sys.argv)
        self._holder: LockHolder | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock (it may have been taken from it since; see release)."""
        return self._holder is not None

    def read_holder(self) -> LockHolder | None:
        """Who holds the lock now, per the file (``None``: no lock file, or an unreadable one)."""
        raw = _read_bytes(self.path)
        if raw is None:
            return None
        try:
            return LockHolder.from_json(raw)
        except ValueError:
            return None

    def acquire(self) -> LockHolder:
        """Take the lock; raise :class:`LockError` when another run that may be alive holds it."""
        if self._holder is not None:
            raise RuntimeError(f"{self.path}: this ExperimentLock is already held")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        me = LockHolder.current(self.command)
        data = me.to_json().encode("utf-8")
        for _ in range(_MAX_ATTEMPTS):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._check_existing()  # raises if it may be held; else it went away or was stale
                continue
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
                raise
            os.close(fd)
            self._holder = me
            log.debug("%s: lock taken (PID %d)", self.path, me.pid)
            return me
        raise LockError(
            f"{self.path}: could not take the lock in {_MAX_ATTEMPTS} tries; other runs keep taking it. "
            "Fix: run one inpars command per experiment at a time"
        )

    def release(self) -> None:
        """Remove the lock file if it is still ours (not taken over, not from another process)."""
        me, self._holder = self._holder, None
        if me is None or me.pid != os.getpid():  # never held, or a forked child's copy
            return
        raw = _read_bytes(self.path)
        if raw is None:
            log.warning("%s: the lock file was already removed by someone else", self.path)
            return
        try:
            current: LockHolder | None = LockHolder.from_json(raw)
        except ValueError:
            current = None
        if current is None or current.token != me.token:
            log.warning(
                "%s: the lock file no longer belongs to this run (%s); leaving it in place",
                self.path,
                current.describe() if current else "unreadable content",
            )
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        log.debug("%s: lock released", self.path)

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # ------------------------------------------------------------------ internals
    def _check_existing(self) -> None:
        """The lock file exists: raise if its holder may be running, remove it if stale."""
        raw = _read_bytes(self.path)
        if raw is None:
            return  # released meanwhile: try again
        try:
            holder = LockHolder.from_json(raw)
        except ValueError:
            age = _age_s(self.path)
            if age is None:
                return  # removed meanwhile: try again
            if age < _UNREADABLE_GRACE_S:
                time.sleep(_RETRY_S)  # its holder is probably writing it right now
                return
            raise LockError(
                f"{self.path}: the lock file is unreadable, so whether another inpars run holds this "
                f"experiment cannot be told. Fix: if no inpars run of it is going on, delete {self.path}"
            ) from None
        state = holder_state(holder)
        if state == "alive":
            raise LockError(
                f"{self.path}: another inpars run is using this experiment ({holder.describe()}). "
                f"Fix: wait for it to finish, or stop it (kill {holder.pid}); "
                f"if it is not running, delete {self.path}"
            )
        if state == "other-host":
            raise LockError(
                f"{self.path}: an inpars run on another host holds this experiment ({holder.describe()}); "
                f"it cannot be checked from {socket.gethostname()}. Fix: wait for it to finish; "
                f"if that run is gone, delete {self.path}"
            )
        self._take_over(raw, holder)

    def _take_over(self, raw: bytes, holder: LockHolder) -> None:
        """Remove a stale lock, unless another run took it over first."""
        fd = os.open(self.run_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by close, also when this process dies
            if _read_bytes(self.path) != raw:
                return  # taken over (or released) by another run meanwhile: look again
            os.unlink(self.path)
            log.warning(
                "%s: taking over the lock of PID %d on %s (since %s, running: %s), "
                "which is no longer running",
                self.path,
                holder.pid,
                holder.host,
                holder.started,
                holder.command,
            )
        finally:
            os.close(fd)


def holder_state(holder: LockHolder) -> Literal["alive", "dead", "other-host"]:
    """Whether the process a lock file names still runs (``other-host``: cannot be told from here)."""
    if holder.host != socket.gethostname():
        return "other-host"
    boot_id = _boot_id()
    if holder.boot_id and boot_id and holder.boot_id != boot_id:
        return "dead"  # the machine restarted since the lock was taken
    if not _pid_exists(holder.pid):
        return "dead"
    stat = _proc_stat(holder.pid)
    if stat is not None:
        state, start = stat
        if state in ("Z", "X"):
            return "dead"  # exited, not yet reaped by its parent
        if holder.pid_start is not None and start != holder.pid_start:
            return "dead"  # the PID now belongs to another process
    return "alive"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user; anything else: assume alive
        return True
    return True


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from Linux's ``/proc/<pid>/stat``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)", comm may hold spaces
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _age_s(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


__all__ = ["LOCK_NAME", "ExperimentLock", "LockHolder"]
