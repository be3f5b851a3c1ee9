"""inpars.lock: one run per experiment; a live holder is refused, a dead one taken over."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inpars.errors import InparsError, LockError, StageError
from inpars.lock import LOCK_NAME, ExperimentLock, LockHolder

HOST = socket.gethostname()


def _write_lock(run_dir: Path, **fields: object) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {"pid": 1, "host": HOST, "started": "2024-01-01T00:00:00+00:00", "command": "inpars run x.toml"}
    data.update(fields)
    path = run_dir / LOCK_NAME
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not this one."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: no such process any more
    return proc.pid


def test_lock_error_is_a_stage_error() -> None:
    assert issubclass(LockError, StageError) and issubclass(LockError, InparsError)


def test_acquire_records_the_holder_and_release_removes_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "exp"  # created on acquire
    lock = ExperimentLock(run_dir, command="inpars run configs/exp.toml")
    holder = lock.acquire()
    assert lock.held and lock.path == run_dir / ".lock"
    data = json.loads(lock.path.read_text(encoding="utf-8"))
    assert data["pid"] == os.getpid() and data["host"] == HOST
    assert data["command"] == "inpars run configs/exp.toml" and data["started"]
    assert lock.read_holder() == holder
    lock.release()
    assert not lock.held and not lock.path.exists()
    lock.release()  # a second release is a no-op


def test_context_manager_releases_on_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError), ExperimentLock(tmp_path) as lock:
        assert (tmp_path / LOCK_NAME).exists() and lock.held
        raise KeyError("boom")
    assert not (tmp_path / LOCK_NAME).exists()
    with ExperimentLock(tmp_path):  # free again
        pass


def test_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with ExperimentLock(tmp_path), pytest.raises(LockError, match=rf"PID {os.getpid()} on host"):
        ExperimentLock(tmp_path).acquire()


def test_refused_while_another_process_holds_it(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from inpars.lock import ExperimentLock
        with ExperimentLock({str(tmp_path)!r}, command="inpars run held.toml"):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        with pytest.raises(LockError) as info:
            ExperimentLock(tmp_path).acquire()
        message = str(info.value)
        assert f"PID {child.pid} on host {HOST}" in message and "inpars run held.toml" in message
        assert f"kill {child.pid}" in message and f"delete {tmp_path / LOCK_NAME}" in message
        assert (tmp_path / LOCK_NAME).exists()  # the refused run left it alone
    finally:
        child.communicate("done\n", timeout=30)
    assert child.returncode == 0 and not (tmp_path / LOCK_NAME).exists()
    with ExperimentLock(tmp_path):
        pass


def test_lock_of_a_live_process_is_refused_with_the_fix(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    path = _write_lock(tmp_path, pid=sleeper.pid, started="2024-05-01T09:30:00+02:00")
    with pytest.raises(LockError) as info:
        ExperimentLock(tmp_path).acquire()
    assert str(info.value) == (
        f"{path}: another inpars run is using this experiment (PID {sleeper.pid} on host {HOST}, "
        "since 2024-05-01T09:30:00+02:00, running: inpars run x.toml). Fix: wait for it to finish, "
        f"or stop it (kill {sleeper.pid}); if it is not running, delete {path}"
    )
    assert json.loads(path.read_text(encoding="utf-8"))["pid"] == sleeper.pid


def test_stale_lock_is_taken_over_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dead = _dead_pid()
    _write_lock(tmp_path, pid=dead)
    lock = ExperimentLock(tmp_path)
    with caplog.at_level(logging.WARNING, logger="inpars.lock"):
        lock.acquire()
    assert f"taking over the lock of PID {dead} on {HOST}" in caplog.text
    assert "no longer running" in caplog.text
    assert json.loads(lock.path.read_text(encoding="utf-8"))["pid"] == os.getpid()
    lock.release()
    assert not lock.path.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_reused_pid_or_restarted_machine_counts_as_stale(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    # The PID is alive, but it started at another time than the lock's holder did.
    _write_lock(tmp_path, pid=sleeper.pid, pid_start=1)
    with ExperimentLock(tmp_path) as lock:
        assert lock.read_holder() is not None and lock.read_holder().pid == os.getpid()  # type: ignore[union-attr]
    # The machine restarted since the lock was taken.
    if Path("/proc/sys/kernel/random/boot_id").exists():
        _write_lock(tmp_path, pid=sleeper.pid, boot_id="not-this-boot")
        with ExperimentLock(tmp_path):
            pass


def test_lock_from_another_host_is_refused(tmp_path: Path) -> None:
    path = _write_lock(tmp_path, pid=4242, host="other-machine.example")
    with pytest.raises(LockError) as info:
        ExperimentLock(tmp_path).acquire()
    message = str(info.value)
    assert "PID 4242 on host other-machine.example" in message and "another host" in message
    assert f"if that run is gone, delete {path}" in message
    assert path.exists()


def test_unreadable_lock_is_refused(tmp_path: Path) -> None:
    path = tmp_path / LOCK_NAME
    path.write_text("{not json", encoding="utf-8")
    os.utime(path, (0, 0))  # old: not a lock its holder is still writing
    with pytest.raises(LockError, match=r"unreadable.*if no inpars run of it is going on, delete"):
        ExperimentLock(tmp_path).acquire()
    _write_lock(tmp_path, pid=0)  # not a process id: unreadable too
    os.utime(path, (0, 0))
    with pytest.raises(LockError, match="unreadable"):
        ExperimentLock(tmp_path).acquire()


def test_release_leaves_someone_elses_lock(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lock = ExperimentLock(tmp_path)
    lock.acquire()
    # Another run judged this one dead and took the lock over.
    other = _write_lock(tmp_path, pid=4242, token="theirs")
    with caplog.at_level(logging.WARNING, logger="inpars.lock"):
        lock.release()
    assert other.exists() and json.loads(other.read_text(encoding="utf-8"))["token"] == "theirs"
    assert "no longer belongs to this run" in caplog.text and "PID 4242" in caplog.text
    assert not lock.held


def test_holder_json_round_trip() -> None:
    holder = LockHolder.current("inpars run a.toml")
    assert LockHolder.from_json(holder.to_json()) == holder
    for bad in ("[]", '{"pid": true, "host": "h"}', '{"pid": 5}', '{"pid": -1, "host": "h"}'):
        with pytest.raises(ValueError):
            LockHolder.from_json(bad)


def _race(run_dir: str, barrier: Any, results: Any) -> None:
    lock = ExperimentLock(run_dir)
    try:
        lock.acquire()
        won = True
    except LockError:
        won = False
    results.put(won)
    barrier.wait(timeout=60)  # the winner holds the lock until every racer has tried
    lock.release()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_racing_runs_on_a_stale_lock_have_one_winner(tmp_path: Path) -> None:
    _write_lock(tmp_path, pid=_dead_pid())
    ctx = multiprocessing.get_context("fork")
    racers = 4
    barrier = ctx.Barrier(racers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), barrier, results)) for _ in range(racers)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert sorted(outcomes) == [False] * (racers - 1) + [True]
    assert not (tmp_path / LOCK_NAME).exists()
