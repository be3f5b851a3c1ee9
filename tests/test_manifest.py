"""inpars.manifest: skip finished stages, resume interrupted ones, never wipe foreign folders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from inpars.errors import StageError
from inpars.fingerprint import file_sha256
from inpars.io import RecordAppender, read_json, read_records
from inpars.manifest import StageContext, config_dict, input_hash, run_stage
from inpars.records import Query
from inpars.stage_folders import IN_PROGRESS, MANIFEST, read_manifest, require_manifest, work_dir


@dataclass(frozen=True)
class ToyConfig:
    size: int = 3
    label: str = "a"


class Toy:
    """A stage body that writes ``size`` queries, one at a time, and can fail midway."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after
        self.found_on_start: list[str] = []

    def __call__(self, ctx: StageContext) -> None:
        self.calls += 1
        out = ctx.output("queries", ctx.out_dir / "queries.jsonl")
        done = {q.query_id for q in read_records(out, Query)} if out.exists() else set()
        self.found_on_start = sorted(done)
        with RecordAppender(out) as appender:
            for i in range(ctx.config.size):
                if f"q{i}" in done:
                    continue
                if self.fail_after is not None and i >= self.fail_after:
                    raise KeyboardInterrupt  # the user pressed Ctrl-C
                appender.write([Query(f"q{i}", f"{ctx.config.label} {i}")])
        with ctx.timed("count"):
            ctx.counts["queries"] = ctx.config.size
        ctx.drops["too short"] += 2
        ctx.drops["duplicate"] += 1
        ctx.extra["label"] = ctx.config.label


def _run(
    out: Path,
    body: Callable[[StageContext], None],
    config: ToyConfig = ToyConfig(),
    *,
    inputs: dict[str, Path] | None = None,
    force: bool = False,
) -> bool:
    """Run the toy stage; True when it was skipped."""
    return run_stage("toy", out, config, inputs or {}, body, seed=7, force=force).skipped


def test_manifest_records_what_ran(tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text("data")
    out = tmp_path / "run" / "toy"
    result = run_stage("toy", out, ToyConfig(), {"source": source}, Toy(), seed=7)
    manifest = read_json(out / MANIFEST)
    assert manifest == result.manifest and result.out_dir == out and not result.skipped
    assert manifest["status"] == "complete"
    assert manifest["config"] == {"size": 3, "label": "a"}
    assert manifest["inputs"]["source"]["sha256"] == file_sha256(source)
    assert manifest["outputs"]["queries"] == {
        "path": "queries.jsonl", "sha256": file_sha256(out / "queries.jsonl"),
        "bytes": (out / "queries.jsonl").stat().st_size, "files": 1,
    }
    assert manifest["counts"] == {"queries": 3}
    assert list(manifest["drops"].items()) == [("duplicate", 1), ("too short", 2)]
    assert manifest["seed"] == 7 and manifest["extra"] == {"label": "a"}
    assert {"count", "total"} <= set(manifest["timings"]) and "python" in manifest["versions"]
    assert not (out / IN_PROGRESS).exists()
    assert require_manifest(out, "toy") == manifest


def test_second_identical_run_is_skipped(tmp_path: Path) -> None:
    body = Toy()
    out = tmp_path / "toy"
    assert _run(out, body) is False
    assert _run(out, body) is True
    assert body.calls == 1
    assert _run(out, body, force=True) is False  # --force reruns
    assert body.calls == 2


def test_config_or_input_change_reruns_and_clears_old_outputs(tmp_path: Path) -> None:
    body = Toy()
    out = tmp_path / "toy"
    _run(out, body)
    (out / "leftover.txt").write_text("from the old run")
    assert _run(out, body, ToyConfig(size=2, label="b")) is False
    assert not (out / "leftover.txt").exists()
    assert [q.text for q in read_records(out / "queries.jsonl", Query)] == ["b 0", "b 1"]
    source = tmp_path / "input.txt"
    source.write_text("one")
    config = ToyConfig(size=2, label="b")
    assert _run(out, body, config, inputs={"source": source}) is False
    assert _run(out, body, config, inputs={"source": source}) is True
    source.write_text("two")
    assert _run(out, body, config, inputs={"source": source}) is False
    assert body.calls == 4


def test_interrupted_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    with pytest.raises(KeyboardInterrupt):
        _run(out, Toy(fail_after=2), ToyConfig(size=5))
    work = work_dir(out)
    assert work == tmp_path / ".toy.next"
    assert (work / IN_PROGRESS).is_file() and not out.exists() and read_manifest(out) is None
    with pytest.raises(StageError, match=r"has not finished there\. Fix: run `inpars toy` first"):
        require_manifest(out, "toy")
    resumed = Toy()
    assert _run(out, resumed, ToyConfig(size=5)) is False
    assert resumed.found_on_start == ["q0", "q1"]  # kept the work of the interrupted run
    assert [q.query_id for q in read_records(out / "queries.jsonl", Query)] == ["q0", "q1", "q2", "q3", "q4"]
    assert not (out / IN_PROGRESS).exists() and not work.exists()


def test_interrupted_run_with_another_config_starts_over(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    with pytest.raises(KeyboardInterrupt):
        _run(out, Toy(fail_after=2), ToyConfig(size=5))
    fresh = Toy()
    _run(out, fresh, ToyConfig(size=5, label="other"))
    assert fresh.found_on_start == []


def test_missing_output_reruns_a_finished_stage(tmp_path: Path) -> None:
    body = Toy()
    out = tmp_path / "toy"
    _run(out, body)
    (out / "queries.jsonl").unlink()
    assert _run(out, body) is False
    assert (out / "queries.jsonl").is_file()


def test_refuses_to_wipe_a_folder_inpars_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(StageError, match="not empty and was not written by inpars"):
        _run(out, Toy())
    assert (out / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_input_hash_of_a_stage_folder_follows_its_manifest(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _run(out, Toy())
    first = input_hash(out)
    (out / "notes.txt").write_text("not an output")
    assert input_hash(out) == first  # only the manifest's fingerprint and outputs count
    _run(out, Toy(), ToyConfig(size=4))
    assert input_hash(out) != first
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text("a")
    before = input_hash(plain)
    (plain / "a.txt").write_text("b")
    assert input_hash(plain) != before
    assert input_hash(tmp_path / "absent").startswith("missing:")


def test_config_dict_makes_plain_json() -> None:
    assert config_dict({"c": ToyConfig(), "p": Path("/x"), "t": (1, 2)}) == {
        "c": {"size": 3, "label": "a"}, "p": "/x", "t": [1, 2],
    }


def test_a_rewritten_file_of_the_same_size_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "same-size.txt"
    path.write_text("one")
    first = file_sha256(path)
    path.write_text("two")  # same size, possibly the same mtime tick
    assert file_sha256(path) != first


def test_a_damaged_output_is_rebuilt_and_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    body = Toy()
    out = tmp_path / "toy"
    _run(out, body)
    (out / "queries.jsonl").write_text('{"query_id": "q0", "text": "a 0"}\n')  # cut short by hand
    with pytest.raises(StageError, match=r"queries.jsonl was modified after it was written \(\d+ -> \d+"):
        input_hash(out)  # a later stage reading it is stopped
    assert _run(out, body) is False and body.calls == 2
    assert "queries.jsonl was modified after it was written" in caplog.text
    assert len(list(read_records(out / "queries.jsonl", Query))) == 3


# ---------------------------------------------------------------- build beside, swap on success
def _queries(out: Path) -> list[str]:
    return [q.text for q in read_records(out / "queries.jsonl", Query)]


def test_a_failing_rerun_leaves_the_previous_outputs_finished(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "toy"
    _run(out, Toy())
    manifest = read_json(out / MANIFEST)
    digest = input_hash(out)
    with pytest.raises(KeyboardInterrupt):  # a forced rerun that fails (say, a missing model)
        _run(out, Toy(fail_after=1), force=True)
    with pytest.raises(KeyboardInterrupt):  # a rerun with another config that fails
        _run(out, Toy(fail_after=1), ToyConfig(label="b"))
    assert read_json(out / MANIFEST) == manifest and read_manifest(out) == manifest
    assert _queries(out) == ["a 0", "a 1", "a 2"]
    assert input_hash(out) == digest  # still finished, with its outputs, for the stages that read it
    assert "the previous outputs in" in caplog.text and "are kept as they were" in caplog.text
    body = Toy()
    assert _run(out, body) is True and body.calls == 0  # the old config: still complete, skipped
    assert not work_dir(out).exists()  # the unfinished run it did not need is gone


def test_a_successful_rerun_replaces_the_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="inpars.manifest")
    out = tmp_path / "toy"
    _run(out, Toy())
    (out / "notes.txt").write_text("not an output")
    assert _run(out, Toy(), ToyConfig(label="b"), force=True) is False
    assert _queries(out) == ["b 0", "b 1", "b 2"]
    assert read_json(out / MANIFEST)["config"]["label"] == "b"
    assert read_json(out / MANIFEST)["out_dir"] == str(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]  # no work or old folder left
    assert not (out / "notes.txt").exists() and not (out / IN_PROGRESS).exists()
    assert "forced (--force); building the new outputs" in caplog.text
    assert "config or inputs changed" not in caplog.text


def test_an_interrupted_rerun_resumes_from_its_work_folder(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _run(out, Toy(), ToyConfig(size=5))
    with pytest.raises(KeyboardInterrupt):
        _run(out, Toy(fail_after=2), ToyConfig(size=5, label="b"))
    assert _queries(out) == [f"a {i}" for i in range(5)]  # untouched meanwhile
    assert _queries(work_dir(out)) == ["b 0", "b 1"]
    resumed = Toy()
    assert _run(out, resumed, ToyConfig(size=5, label="b")) is False
    assert resumed.found_on_start == ["q0", "q1"]
    assert _queries(out) == [f"b {i}" for i in range(5)]
    assert not work_dir(out).exists()


def test_a_leftover_work_folder_of_another_fingerprint_is_discarded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="inpars.stage_folders")
    out = tmp_path / "toy"
    with pytest.raises(KeyboardInterrupt):
        _run(out, Toy(fail_after=2), ToyConfig(size=5, label="b"))
    fresh = Toy()
    _run(out, fresh, ToyConfig(size=5, label="c"))
    assert fresh.found_on_start == []
    assert _queries(out) == [f"c {i}" for i in range(5)]
    assert "discarding the unfinished run" in caplog.text
    with pytest.raises(KeyboardInterrupt):  # the same fingerprint, forced: starts over too
        _run(out, Toy(fail_after=2), ToyConfig(size=5, label="d"))
    forced = Toy()
    _run(out, forced, ToyConfig(size=5, label="d"), force=True)
    assert forced.found_on_start == []


def test_foreign_files_where_inpars_builds_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    work_dir(out).mkdir()
    (work_dir(out) / "mine.txt").write_text("precious")
    with pytest.raises(StageError, match=r"\.toy\.next: inpars builds the 'toy' stage in this folder"):
        _run(out, Toy())
    assert (work_dir(out) / "mine.txt").read_text() == "precious"


def test_a_swap_stopped_halfway_is_restored(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _run(out, Toy())
    out.rename(tmp_path / ".toy.old")  # stopped between the two renames
    body = Toy()
    assert _run(out, body) is True and body.calls == 0
    assert _queries(out) == ["a 0", "a 1", "a 2"] and not (tmp_path / ".toy.old").exists()


def test_an_unfinished_run_inside_the_stage_folder_resumes(tmp_path: Path) -> None:
    """Runs of earlier inpars versions built in the stage folder itself."""
    out = tmp_path / "toy"
    with pytest.raises(KeyboardInterrupt):
        _run(out, Toy(fail_after=2), ToyConfig(size=5))
    work_dir(out).rename(out)
    resumed = Toy()
    assert _run(out, resumed, ToyConfig(size=5)) is False
    assert resumed.found_on_start == ["q0", "q1"]
    assert _queries(out) == [f"a {i}" for i in range(5)]


def test_an_edit_is_kept_aside_only_when_the_new_outputs_replace_it(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _run(out, Toy())
    (out / "queries.jsonl").write_text('{"query_id": "q0", "text": "mine"}\n')
    with pytest.raises(KeyboardInterrupt):
        _run(out, Toy(fail_after=1), ToyConfig(label="b"))
    assert _queries(out) == ["mine"]  # a failed rerun moves nothing
    assert not list(tmp_path.glob("toy.edited-*"))
    _run(out, Toy(), ToyConfig(label="b"))
    kept = list(tmp_path.glob("toy.edited-*/queries.jsonl"))
    assert len(kept) == 1 and _queries(kept[0].parent) == ["mine"]
    assert _queries(out) == ["b 0", "b 1", "b 2"]
