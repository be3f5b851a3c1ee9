"""``inpars status``: each stage's state read from the run folder, on the toy stages; nothing written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from inpars.lock import ExperimentLock
from inpars.pipeline import Executor, StageGraph, Workspace
from inpars.pipeline.status import _progress, render_status, run_status
from tests.conftest import BeirWriter
from tests.pipeline.toy import toy_workspace


def states(ws: Workspace) -> dict[str, tuple[str, str]]:
    return {row.stage: (row.state, row.detail) for row in run_status(ws).stages}


def files(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")} if folder.exists() else {}


def test_a_new_run_is_pending_and_a_finished_one_done(ws: Workspace) -> None:
    assert states(ws) == {"words": ("pending", ""), "shout": ("pending", "")}
    Executor(ws).run()
    before = files(ws.run_dir)
    status = run_status(ws)
    assert files(ws.run_dir) == before  # read only
    assert [(r.stage, r.state) for r in status.stages] == [("words", "done"), ("shout", "done")]
    assert status.stages[0].detail.endswith(" s, words 3")
    text = render_status(status)
    assert text.splitlines()[:2] == [f"run folder: {ws.run_dir}", "not running"]
    assert "words  done" in text
    assert Executor(ws).run()["stages"]["words"]["skipped"]  # "done" is what a rerun skips


def test_an_edited_output_or_a_changed_input_is_stale_with_the_reason(ws: Workspace, model: Path) -> None:
    Executor(ws).run()
    (ws.stage_dir("words") / "words.txt").write_text("edited\n")
    found = states(ws)
    assert found["words"][0] == "stale" and found["words"][1].startswith("outputs changed after it finished")
    assert found["shout"] == ("stale", "runs again after words")
    Executor(ws).run()
    model.write_text("beta")  # the words stage's model: its fingerprint changes
    assert states(ws)["words"] == ("stale", "config or inputs changed since it finished")


def test_an_interrupted_build_is_in_progress(ws: Workspace) -> None:
    Executor(ws).run(ws.graph.until("words"))
    work = ws.run_dir / ".shout.next"
    work.mkdir()
    (work / ".in-progress.json").write_text(json.dumps({"stage": "shout", "fingerprint": "x"}))
    state, detail = states(ws)["shout"]
    assert state == "in progress" and detail.startswith("started ") and detail.endswith(" UTC")


def test_generation_and_training_progress(tmp_path: Path, write_beir: BeirWriter) -> None:
    """The traces the real generate and train stages leave (_progress reads them by stage name)."""
    ws = toy_workspace(tmp_path, write_beir(), StageGraph([]))
    ws = Workspace(dataclasses.replace(
        ws.config, generate=dataclasses.replace(ws.config.generate, num_docs=10)), graph=ws.graph)
    shards = ws.run_dir / ".generate.next" / "shards"
    shards.mkdir(parents=True)
    (shards.parent / ".in-progress.json").write_text("{}")
    batches = [{"doc_ids": ["a", "b"], "seconds": 4.0}, {"doc_ids": ["c"], "seconds": 2.0},
               {"doc_ids": ["e"], "seconds": 600.0}]  # a batch that spanned a pause
    (shards / "part-00000.progress.jsonl").write_text(
        "".join(json.dumps(b) + "\n" for b in batches) + '{"doc_ids": ["d"], "sec')  # a line cut by a kill
    assert _progress(ws, "generate") is not None
    assert str(_progress(ws, "generate")).endswith(
        "; 4 of 10 documents generated (2.00 s per document, about 0 min left)")
    checkpoints = ws.run_dir / ".train.next" / ".cross-encoder.checkpoints" / "0123456789abcdef"
    for step in (50, 100):
        (checkpoints / f"checkpoint-{step}").mkdir(parents=True)
        (checkpoints / f"checkpoint-{step}" / "trainer_state.json").write_text(
            json.dumps({"global_step": step, "max_steps": 280}))
    (ws.run_dir / ".train.next" / ".in-progress.json").write_text("{}")
    assert str(_progress(ws, "train")).endswith("; cross-encoder: checkpoint at step 100 of 280")
    # the time left, at the median seconds per step of the checkpoint's loss curve (a pause
    # between steps 40 and 50 does not set it)
    points = [{"step": 10 * i, "seconds": 20.0 * i + (500.0 if i >= 5 else 0.0)} for i in range(1, 11)]
    (checkpoints / "checkpoint-100" / "inpars_loss_curve.json").write_text(json.dumps({"points": points}))
    assert str(_progress(ws, "train")).endswith(
        "; cross-encoder: checkpoint at step 100 of 280 (2.0 s per step, about 6 min left)")
    dense = ws.run_dir / ".train.next" / ".dense.checkpoints" / "fedcba9876543210" / "checkpoint-200"
    dense.mkdir(parents=True)  # the encoder's trainer logs its seconds in the trainer state
    history = [{"step": step, "seconds": step - 50.0} for step in (100, 150, 200)]
    (dense / "trainer_state.json").write_text(json.dumps({"global_step": 200, "max_steps": 800,
                                                          "log_history": history}))
    assert str(_progress(ws, "train")).endswith(
        "; dense: checkpoint at step 200 of 800 (1.0 s per step, about 10 min left)")
    assert _progress(ws, "rerank") is None  # never started
    mining = ws.run_dir / ".negatives.next"
    mining.mkdir()
    (mining / ".in-progress.json").write_text("{}")
    assert str(_progress(ws, "negatives")).endswith("; no example yet")
    (mining / "examples.jsonl").write_text('{"query_id": "q1"}\n{"query_id": "q2"}\n{"query_id": "q3"}\n')
    assert str(_progress(ws, "negatives")).endswith("; 3 examples mined")  # no finished filter here
    (ws.run_dir / "filter").mkdir()
    (ws.run_dir / "filter" / "manifest.json").write_text(json.dumps({"status": "complete",
                                                                     "counts": {"kept": 10}}))
    assert str(_progress(ws, "negatives")).endswith("; 3 examples mined of 10 kept queries")


def test_the_lock_line_names_the_running_command(ws: Workspace) -> None:
    with ExperimentLock(ws.run_dir, command="inpars run toy.toml"):
        line = run_status(ws).lock
    assert line.startswith("running now: PID ") and line.endswith("running: inpars run toy.toml")
    assert run_status(ws).lock == ""
