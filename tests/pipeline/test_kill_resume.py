"""A ``kill -9`` at a random point of every stage, then ``inpars run`` again, ends byte-identical
to an uninterrupted run (configs/smoke.toml on a small cut of SciFact, real models).

One uninterrupted run is the reference (once per module). Each case starts from a copy of the
reference's folders of the stages *before* the target stage (the executor skips them: same
fingerprints), runs ``inpars run`` in its own process group, waits for the target stage's work
folder (``.<stage>.next/``) to appear, waits a random part of that stage's reference duration
(``random.Random(seed)``), kills the whole group with SIGKILL, and runs ``inpars run`` again to
completion. The filter's kept/dropped queries, the generated queries, the negatives' examples,
the trained cross-encoder's weights, every TREC run and the evaluation's metrics must then be
the reference's, byte for byte, with no work folder, temporary file or lock left behind.

Generation is killed mid-shard: after a random number of its batches have finished (at least
one, and before the last), a random part of a batch later. ``[generate] threads`` is pinned,
as llama.cpp's samples depend on the thread count, which ``threads = 0`` times at start.

``INPARS_KILL_SEEDS`` (default 2) sets how many seeds each stage is killed with.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from inpars.errors import StageError
from inpars.io import write_json, write_text
from inpars.manifest import StageContext, run_stage
from inpars.pipeline import STAGES, Executor, StageGraph
from inpars.stage_folders import IN_PROGRESS, MANIFEST, NEXT_SUFFIX, OLD_SUFFIX, read_manifest, work_dir
from tests.conftest import BeirWriter
from tests.pipeline.test_smoke_run import _toml, run_cli, smoke_config
from tests.pipeline.toy import Shout, Words, toy_workspace

KILL_SEEDS_ENV = "INPARS_KILL_SEEDS"
SEEDS = range(int(os.environ.get(KILL_SEEDS_ENV) or 2))
KILLED = [stage for stage in STAGES if stage not in ("expand", "refine")]  # off in the smoke config
# (refine's resume from each step is tested on fake steps: tests/refinement/test_rounds.py)
FOLDERS = ("run", "index")  # what a run writes (config: run_dir, [index] output_dir)
SHARD = Path("shards") / "part-00000"  # the smoke run's 24 documents fit one shard
POLL_S = 0.002
WAIT_S = 900.0  # for the target stage to start (the stages before it are skipped)
# leftovers of an interrupted write: work folders, moved-aside folders, temporary files
LEFTOVER_MARKS = (NEXT_SUFFIX, OLD_SUFFIX, ".old-", ".tmp", ".building-", ".edited-", IN_PROGRESS)


def compared_outputs(run: Path) -> list[str]:
    """The outputs that must be byte-identical (paths relative to the work folder)."""
    paths = ["run/filter/kept.jsonl", "run/filter/dropped.jsonl", "run/negatives/examples.jsonl",
             "run/train/cross-encoder/model.safetensors", "run/evaluate/metrics.json",
             "run/evaluate/per_query.json", f"run/generate/{SHARD}.jsonl",
             f"run/generate/{SHARD}.rejects.jsonl"]
    for folder in ("index", "rerank"):
        paths += sorted(f"run/{folder}/runs/{p.name}" for p in (run / folder / "runs").glob("*.trec"))
    return paths


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for folder in FOLDERS for p in (root / folder).rglob("*")
            if p.is_file() or p.is_symlink()}


@dataclass(frozen=True)
class Reference:
    config: Path
    work: Path  # where every run writes (the config's paths point here)
    saved: Path  # the uninterrupted run's folders, copied aside
    seconds: dict[str, float]  # stage -> timings.total of the uninterrupted run
    batches: list[float]  # generation: seconds of each batch of the shard
    digests: dict[str, str]  # compared output -> sha256
    files: set[str]  # every file the uninterrupted run left

    def restore(self, before: str) -> None:
        """An empty work folder but the reference's index and the folders of the stages before
        ``before`` (so that only ``before`` and the stages after it run)."""
        for folder in FOLDERS:
            shutil.rmtree(self.work / folder, ignore_errors=True)
        (self.work / "run").mkdir()
        done = KILLED[: KILLED.index(before)]
        if done:  # the index stage's BM25 index lives outside the run folder
            shutil.copytree(self.saved / "index", self.work / "index", symlinks=True)
        for stage in done:
            shutil.copytree(self.saved / "run" / stage, self.work / "run" / stage, symlinks=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Reference:
    base = tmp_path_factory.mktemp("kill-resume")
    work = base / "work"
    work.mkdir()
    config = smoke_config(work, shared_data)
    data = tomllib.loads(config.read_text())
    data["generate"]["threads"] = 1
    config.write_text(_toml(data))
    run_cli(config, work)
    saved = base / "reference"
    for folder in FOLDERS:
        shutil.copytree(work / folder, saved / folder, symlinks=True)
    seconds = {stage: json.loads((saved / "run" / stage / MANIFEST).read_text())["timings"]["total"]
               for stage in KILLED}
    progress = (saved / "run" / "generate" / f"{SHARD}.progress.jsonl").read_text().splitlines()
    batches = [float(json.loads(line)["seconds"]) for line in progress]
    assert len(batches) >= 3, "the mid-shard kill needs a shard of three batches or more"
    digests = {rel: sha256(saved / rel) for rel in compared_outputs(saved / "run")}
    return Reference(config, work, saved, seconds, batches, digests, all_files(saved))


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for(proc: subprocess.Popen[bytes], check: Callable[[], bool]) -> bool:
    """Poll until ``check()`` is true (``True``) or the process ends (``False``)."""
    deadline = time.monotonic() + WAIT_S
    while proc.poll() is None:
        if check():
            return True
        if time.monotonic() > deadline:
            raise AssertionError(f"the stage did not start in {WAIT_S:.0f} s")
        time.sleep(POLL_S)
    return False


def kill_plan(stage: str, seed: int, ref: Reference) -> tuple[Callable[[], bool], float, str]:
    """When to kill: a condition on the work folder, then a delay (seconds), and its description."""
    rng = random.Random(seed)
    work = ref.work / "run" / f".{stage}{NEXT_SUFFIX}"
    if stage == "generate":  # mid-shard: after `done` batches (1 .. all but the last), during the next
        progress = work / f"{SHARD}.progress.jsonl"
        done = rng.randint(1, len(ref.batches) - 2)
        delay = rng.uniform(0, ref.batches[done])
        return (lambda: lines(progress) >= done), delay, f"{done} batches done + {delay:.2f} s"
    delay = rng.uniform(0, ref.seconds[stage])
    return work.is_dir, delay, f"{delay:.2f} s of {ref.seconds[stage]:.2f} s"


def leftovers(root: Path) -> list[str]:
    found = [str(p.relative_to(root)) for folder in FOLDERS for p in (root / folder).rglob("*")
             if any(mark in p.name for mark in LEFTOVER_MARKS)]
    return found + ([".lock"] if (root / "run" / ".lock").exists() else [])


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stage", KILLED)
def test_kill_9_then_rerun_ends_byte_identical(reference: Reference, stage: str, seed: int) -> None:
    ref = reference
    ref.restore(before=stage)
    check, delay, plan = kill_plan(stage, seed, ref)
    log = ref.work / f"killed-{stage}-{seed}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "inpars.cli", "run", str(ref.config)], cwd=ref.work,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            started = wait_for(proc, check)
            if started:
                time.sleep(delay)
        finally:  # the whole group: pyserini's JVM, llama.cpp and torch threads die with it
            alive = proc.poll() is None
            if alive:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if not alive:
        assert proc.returncode == 0, f"the run to be killed failed:\n{log.read_text()[-4000:]}"
    next_dir = ref.work / "run" / f".{stage}{NEXT_SUFFIX}"
    finished = (ref.work / "run" / stage / MANIFEST).is_file() and not next_dir.exists()
    state = ("the whole run ended before the kill" if not alive else
             "the stage had finished before the kill" if finished else "killed mid-stage")
    print(f"kill {stage} seed {seed}: {plan}: {state}")
    if stage == "generate" and alive and not finished:
        assert lines(next_dir / f"{SHARD}.progress.jsonl") >= 1
        assert not (next_dir / f"{SHARD}.done.json").exists(), "killed mid-shard"

    summary = run_cli(ref.config, ref.work)

    stages = summary["stages"]
    assert isinstance(stages, dict)
    skipped = {name: info["skipped"] for name, info in stages.items()}
    before = KILLED[: KILLED.index(stage)]
    assert all(skipped[name] for name in before), f"the copied stages are skipped: {skipped}"
    differ = [rel for rel, digest in ref.digests.items()
              if not (ref.work / rel).is_file() or sha256(ref.work / rel) != digest]
    assert not differ, f"kill in {stage} ({plan}, {state}): not byte-identical: {differ}"
    assert compared_outputs(ref.work / "run") == list(ref.digests)  # no run more, none less
    assert not leftovers(ref.work), f"left behind after the rerun: {leftovers(ref.work)}"
    files = all_files(ref.work)
    assert files == ref.files, f"extra: {sorted(files - ref.files)}, missing: {sorted(ref.files - files)}"


# --------------------------------------------------------------------------- what a kill leaves
# (fast: the instants the random kills above rarely hit, planted by hand)
def _stage(out: Path, body: Callable[[StageContext], None]) -> bool:
    """Run stage ``toy`` into ``out``; whether it was skipped."""
    return run_stage("toy", out, {"size": 1}, {}, body).skipped


def _one_file(ctx: StageContext) -> None:
    write_text(ctx.out_dir / "a.txt", "a\n")
    ctx.output("a", ctx.out_dir / "a.txt")


def test_a_resumed_stage_drops_the_temporaries_of_writes_a_kill_stopped(tmp_path: Path) -> None:
    out = tmp_path / "toy"

    def killed(ctx: StageContext) -> None:
        write_text(ctx.out_dir / "part.jsonl", "kept\n")
        (ctx.out_dir / ".model.x1y2.tmp").mkdir()  # inpars.training.loop.atomic_dir, mid-save
        (ctx.out_dir / ".model.x1y2.tmp" / "model.safetensors").write_bytes(b"half")
        (ctx.out_dir / ".model.old-4242").mkdir()  # ... between its two renames
        (ctx.out_dir / "runs").mkdir()
        (ctx.out_dir / "runs" / ".a.trec.k3j4.tmp").write_text("half")  # inpars.io.atomic_path
        raise KeyboardInterrupt  # stands for the kill: the work folder stays as it is

    def resumed(ctx: StageContext) -> None:
        assert (ctx.out_dir / "part.jsonl").read_text() == "kept\n"
        assert sorted(p.name for p in ctx.out_dir.rglob("*")) == [IN_PROGRESS, "part.jsonl", "runs"]
        write_text(ctx.out_dir / "runs" / "a.trec", "whole\n")
        ctx.output("a", ctx.out_dir / "runs" / "a.trec")

    with pytest.raises(KeyboardInterrupt):
        _stage(out, killed)
    assert _stage(out, resumed) is False
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        MANIFEST, "part.jsonl", "runs", "runs/a.trec"]


def test_a_kill_while_the_marker_was_written_does_not_block_the_stage(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    work_dir(out).mkdir()
    (work_dir(out) / f"{IN_PROGRESS}.q8w7.tmp").write_text('{"sta')  # killed inside write_json
    assert _stage(out, _one_file) is False
    assert read_manifest(out) is not None and not work_dir(out).exists()
    (work_dir(out)).mkdir()  # a folder with anything else in it is still refused
    (work_dir(out) / "notes.txt").write_text("mine")
    with pytest.raises(StageError, match="holds files inpars did not write"):
        _stage(out, lambda ctx: None)


def test_a_kill_between_the_swap_and_the_marker_removal_leaves_no_marker(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    assert _stage(out, _one_file) is False
    write_json(out / IN_PROGRESS, {"stage": "toy"})  # stopped just after the rename into place
    assert _stage(out, lambda ctx: None) is True
    assert not (out / IN_PROGRESS).exists()


def test_a_run_drops_what_a_kill_left_in_the_run_folder(tmp_path: Path, write_beir: BeirWriter) -> None:
    model = tmp_path / "toy-model.bin"
    model.write_text("alpha")
    ws = toy_workspace(tmp_path, write_beir(), StageGraph([Words(model), Shout()]))
    Executor(ws).run()
    stopped = ws.run_dir / ".manifest.json.r4nd.tmp"  # killed writing the run manifest
    stopped.write_text('{"experi')
    Executor(ws).run_single("shout")
    assert not stopped.exists()
    stopped.write_text('{"experi')
    Executor(ws).run()
    assert sorted(p.name for p in ws.run_dir.iterdir()) == [MANIFEST, "shout", "words"]
