"""The stage graph and its executor, on toy stages: order, skip, checked outputs, model swaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inpars.errors import ConfigError, StageError
from inpars.manifest import StageContext
from inpars.pipeline import Executor, Output, Stage, StageGraph, Workspace
from inpars.pipeline.evaluate import EvaluateStage
from tests.conftest import BeirWriter
from tests.pipeline.toy import RUNS, Shout, Words, toy_workspace


def test_graph_keeps_readers_after_what_they_read(model: Path) -> None:
    graph = StageGraph([Words(model)])
    with pytest.raises(ConfigError, match="registered twice"):
        graph.register(Words(model))
    with pytest.raises(ConfigError, match="reads \\['words'\\], which would not run before it"):
        StageGraph([Shout(), Words(model)])
    with pytest.raises(ConfigError, match=r"unknown stage 'nope'\. Fix: use one of words"):
        graph.until("nope")
    graph.register(Shout())
    assert graph.names == ("words", "shout")
    assert graph.upstream("shout") == ("words",)


class Whisper(Stage):
    """A stage added by a test: one class plus one registration."""

    name = "whisper"
    needs = ("words",)

    def settings(self, ws: Workspace) -> Any:
        return {"volume": 1}

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return (Output("quiet", "records", "quiet.txt"),)

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        words = ws.output("words", "words").read_text().split()
        ctx.output("quiet", ctx.out_dir / "quiet.txt").write_text("".join(w.lower() + "\n" for w in words))


def test_a_new_stage_is_one_class_plus_one_registration(ws: Workspace) -> None:
    ws.graph.register(Whisper(), before="shout")
    assert ws.graph.names == ("words", "whisper", "shout")
    summary = Executor(ws).run()
    assert list(summary["stages"]) == ["words", "whisper", "shout"]
    assert (ws.stage_dir("whisper") / "quiet.txt").read_text() == "alpha-0\nalpha-1\nalpha-2\n"
    assert summary["stages"]["shout"]["systems"] == ["shouty"]
    assert ws.graph.systems(ws) == ("shouty",)


def test_until_and_single_stage_and_needs(ws: Workspace) -> None:
    with pytest.raises(StageError, match=r"'words' stage has not finished.*Fix: run `inpars words`"):
        Executor(ws).run_single("shout")
    summary = Executor(ws).run(ws.graph.until("words"))
    assert list(summary["stages"]) == ["words"]
    assert Executor(ws).run_single("shout").skipped is False


def test_finished_stages_are_skipped_and_force_reruns(ws: Workspace) -> None:
    Executor(ws).run()
    again = Executor(ws).run()
    assert all(info["skipped"] for info in again["stages"].values())
    assert RUNS == {"words": 1, "shout": 1}
    Executor(ws, force=["shout"]).run()
    assert RUNS == {"words": 1, "shout": 2}
    with pytest.raises(ConfigError, match=r"unknown stage 'shoot' \(did you mean 'shout'\?\)"):
        Executor(ws, force=["shoot"])


def test_an_edited_output_reruns_its_stage_and_the_edit_is_kept(ws: Workspace, caplog: Any) -> None:
    Executor(ws).run()
    words = ws.stage_dir("words") / "words.txt"
    words.write_text("alpha-0\n")  # truncated by hand
    summary = Executor(ws).run()
    assert not summary["stages"]["words"]["skipped"]
    # rebuilt byte for byte as before, so what reads it has nothing new to do
    assert summary["stages"]["shout"]["skipped"]
    assert words.read_text() == "alpha-0\nalpha-1\nalpha-2\n"
    kept = list(ws.run_dir.glob("words.edited-*/words.txt"))
    assert len(kept) == 1 and kept[0].read_text() == "alpha-0\n"
    assert "words.txt was modified after it was written" in caplog.text
    assert RUNS == {"words": 2, "shout": 1}


def test_a_deleted_output_reruns_its_stage(ws: Workspace, caplog: Any) -> None:
    Executor(ws).run()
    (ws.stage_dir("shout") / "loud.txt").unlink()
    summary = Executor(ws).run()
    assert summary["stages"]["words"]["skipped"] and not summary["stages"]["shout"]["skipped"]
    assert "loud.txt was deleted" in caplog.text
    assert (ws.stage_dir("shout") / "loud.txt").read_text().startswith("ALPHA-0")


def test_a_stage_alone_refuses_damaged_inputs_with_the_fix(ws: Workspace) -> None:
    Executor(ws).run()
    (ws.stage_dir("words") / "words.txt").write_text("tampered\n")
    with pytest.raises(StageError, match=r"'words' stage changed.*inpars words CONFIG --force"):
        Executor(ws).run_single("shout")


def test_a_swapped_model_file_reruns_the_stage_and_its_dependants(ws: Workspace, model: Path) -> None:
    Executor(ws).run()
    model.write_text("beta")
    summary = Executor(ws).run()
    assert not summary["stages"]["words"]["skipped"] and not summary["stages"]["shout"]["skipped"]
    assert (ws.stage_dir("shout") / "loud.txt").read_text().startswith("BETA-0")


class Liar(Stage):
    name = "liar"

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return (Output("promised", "file", "promised.txt"),)

    def settings(self, ws: Workspace) -> Any:
        return {}

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        ctx.counts["nothing"] = 0


def test_a_stage_must_record_what_it_promised(tmp_path: Path, write_beir: BeirWriter) -> None:
    ws = toy_workspace(tmp_path, write_beir(), StageGraph([Liar()]))
    with pytest.raises(StageError, match=r"without its promised outputs \['promised'\]"):
        Executor(ws).run()


def test_a_second_run_of_the_experiment_is_refused_while_one_holds_the_lock(ws: Workspace) -> None:
    from inpars.errors import LockError
    from inpars.lock import ExperimentLock

    with ExperimentLock(ws.run_dir, command="inpars run first"), \
            pytest.raises(LockError, match=r"another inpars run is using this experiment.*Fix: wait"):
        Executor(ws).run()
    assert not ws.stage_dir("words").exists()
    assert Executor(ws).run()["stages"]["words"]["skipped"] is False


def test_a_failed_forced_rerun_keeps_the_finished_outputs(ws: Workspace, model: Path, caplog: Any) -> None:
    caplog.set_level("INFO", logger="inpars.manifest")
    Executor(ws).run()
    words = (ws.stage_dir("words") / "words.txt").read_text()
    manifest = ws.manifest("words")
    model.unlink()  # say, `inpars words --force` with the model gone
    with pytest.raises(FileNotFoundError):
        Executor(ws, force=["words"]).run_single("words")
    assert "forced (--force); building the new outputs" in caplog.text
    assert ws.finished("words") and ws.manifest("words") == manifest
    assert (ws.stage_dir("words") / "words.txt").read_text() == words
    assert Executor(ws).run_single("shout").skipped  # what reads it still finds it finished, unchanged
    model.write_text("alpha")
    assert Executor(ws, force=["words"]).run_single("words").skipped is False
    assert not list(ws.run_dir.glob(".words.*"))  # no work or old folder left behind


def test_reuse_links_the_stages_another_run_finished_with_the_same_fingerprint(
    ws: Workspace, model: Path, tmp_path: Path, write_beir: BeirWriter, caplog: Any
) -> None:
    """``inpars run --reuse runs/<other>``: an ablation rebuilds only what it changes."""
    caplog.set_level("INFO")
    Executor(ws).run()
    same = toy_workspace(tmp_path / "same", write_beir(), StageGraph([Words(model), Shout()]))
    summary = Executor(same, reuse=ws.run_dir).run()
    assert all(info["skipped"] for info in summary["stages"].values())
    assert RUNS == {"words": 1, "shout": 1}
    linked, original = same.stage_dir("words") / "words.txt", ws.stage_dir("words") / "words.txt"
    assert linked.stat().st_ino == original.stat().st_ino  # a hard link, not a copy
    assert "words: reused from" in caplog.text
    more = toy_workspace(tmp_path / "more", write_beir(), StageGraph([Words(model, count=4), Shout()]))
    summary = Executor(more, reuse=ws.run_dir).run()  # other settings: built here, and what reads it too
    assert not summary["stages"]["words"]["skipped"] and not summary["stages"]["shout"]["skipped"]
    assert RUNS == {"words": 2, "shout": 2}
    assert original.read_text() == "alpha-0\nalpha-1\nalpha-2\n"  # the other run is untouched
    with pytest.raises(ConfigError, match=r"--reuse .*no such run folder"):
        Executor(ws, reuse=tmp_path / "nope")


class Titled(Shout):
    """A stage whose output names its own experiment, as the evaluate stage's report does."""

    reusable = False


def test_reuse_never_links_a_stage_that_names_its_own_experiment(
    ws: Workspace, model: Path, tmp_path: Path, write_beir: BeirWriter
) -> None:
    Executor(ws).run()
    runs = dict(RUNS)
    other = toy_workspace(tmp_path / "other", write_beir(), StageGraph([Words(model), Titled()]))
    summary = Executor(other, reuse=ws.run_dir).run()
    assert summary["stages"]["words"]["skipped"]  # the data is linked ...
    assert not summary["stages"]["shout"]["skipped"]  # ... the titled stage is built here
    assert dict(RUNS) == {"words": runs["words"], "shout": runs["shout"] + 1}
    assert EvaluateStage.reusable is False
