"""External runs in the pipeline report: ``[evaluate] runs`` and ``inpars evaluate --run
NAME=PATH``. Their names are checked against the run's systems, their files are inputs of the
evaluate stage's fingerprint (not settings, so runs without them keep their fingerprints), and
they are read, checked and ranked as ``inpars compare`` reads them. The index stage is faked;
ranx too in the fast tests."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import inpars.evaluation.stage as stage_module
from inpars.cli import _executor, build_parser
from inpars.config import Config, DataConfig, EvaluateConfig, ExperimentConfig, parse_config
from inpars.errors import BadLineError, ConfigError
from inpars.evaluation import Evaluation
from inpars.manifest import StageContext, config_dict, run_stage
from inpars.pipeline import Executor, Output, Workspace
from inpars.pipeline.evaluate import EvaluateStage
from inpars.records import ScoredPair
from tests.conftest import BeirWriter, write_lines
from tests.evaluation.crafted import hand_evaluation

# tabs, scientific notation, a tie (d2 and d1: broken by doc id descending, d2 first)
SPLADE = ["q1\tQ0\td1\t1\t2.0e+00\tsplade", "q1\tQ0\td2\t2\t2.0e+00\tsplade", "q2  Q0  d2  1  1e-1  splade"]


def workspace(source: Path, tmp: Path, evaluate: EvaluateConfig | None = None) -> Workspace:
    experiment = ExperimentConfig(name="x", run_dir=str(tmp / "run"), results_dir=str(tmp / "ref"))
    config = Config(experiment=experiment, data=DataConfig(source=str(source)),
                    evaluate=evaluate or EvaluateConfig(plots=False))
    return Workspace(config)


def with_runs(ws: Workspace, **settings: Any) -> Workspace:
    evaluate = dataclasses.replace(ws.config.evaluate, **settings)
    return Workspace(dataclasses.replace(ws.config, evaluate=evaluate))


@pytest.fixture
def ws(write_beir: BeirWriter, tmp_path: Path) -> Workspace:
    """A run folder whose index stage 'finished' with a bm25 run."""
    ws = workspace(write_beir(), tmp_path)

    def index(ctx: StageContext) -> None:
        path = ctx.out_dir / Output.run("bm25").path
        path.parent.mkdir(parents=True)
        path.write_text("q1 Q0 d2 1 3.0 bm25\nq1 Q0 d1 2 2.0 bm25\nq2 Q0 d2 1 1.0 bm25\n")
        ctx.output("run:bm25", path)

    run_stage("index", ws.stage_dir("index"), {}, {}, index)
    return ws


@pytest.fixture
def splade(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "splade.trec", SPLADE)


@pytest.mark.parametrize(("name", "message"), [
    ("bm25", r"runs: 'bm25' is also the name of a system of this run\. Fix: give the external run another "
             r"name, e.g\. 'bm25-external' \(this run's systems: bm25, dense, "),
    ("bm25+dense", r"'bm25\+dense' is also the name of a system"),  # the default fusion's name
])
def test_an_external_name_must_not_clash_with_a_system(ws: Workspace, splade: Path, name: str, message: str
                                                       ) -> None:
    with pytest.raises(ConfigError, match=message):
        Executor(with_runs(ws, runs={name: str(splade)})).validate()


def test_external_runs_need_a_file_and_can_be_the_baseline(ws: Workspace, splade: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[evaluate\] runs: splade = '.*nope\.trec' is not a file\. Fix"):
        Executor(with_runs(ws, runs={"splade": str(splade.with_name("nope.trec"))})).validate()
    Executor(with_runs(ws, runs={"splade": str(splade)}, baseline="splade",
                       fusion=[["bm25", "splade"]])).validate()
    typo = r"'splad' is not a system of this run \(did you mean 'splade'\?\)\. Fix: .*splade"
    with pytest.raises(ConfigError, match=typo):
        Executor(with_runs(ws, runs={"splade": str(splade)}, baseline="splad")).validate()


def test_files_are_inputs_not_settings_so_old_fingerprints_stay(ws: Workspace, splade: Path) -> None:
    stage, external = EvaluateStage(), with_runs(ws, runs={"splade": str(splade)})
    plain = {k: v for k, v in config_dict(ws.config.evaluate).items() if k != "runs"}
    assert config_dict(stage.settings(ws))["evaluate"] == plain  # what it was before the key existed
    assert stage.settings(external) == stage.settings(ws)
    assert stage.inputs(ws) == {} and stage.inputs(external) == {"external-run:splade": splade}
    assert Executor(external).inputs(stage)["external-run:splade"] == splade


def test_the_config_key_and_the_cli_option(tmp_path: Path, write_beir: BeirWriter) -> None:
    config = parse_config({"evaluate": {"runs": {"splade": "s.trec"}}}, "x.toml")
    assert config.evaluate.runs == {"splade": "s.trec"}
    with pytest.raises(ConfigError, match=r"runs: 'my run' = 's\.trec': name each run without spaces"):
        parse_config({"evaluate": {"runs": {"my run": "s.trec"}}}, "x.toml")
    path = tmp_path / "x.toml"
    path.write_text(f'[data]\nsource = "{write_beir()}"\n[evaluate]\nruns = {{ "splade" = "s.trec" }}\n')
    args = build_parser().parse_args(["evaluate", str(path), "--run", "splade=other.trec",
                                      "--run", "colbert=c"])
    assert _executor(args).ws.config.evaluate.runs == {"splade": "other.trec", "colbert": "c"}
    args = build_parser().parse_args(["evaluate", str(path)])
    assert _executor(args).ws.config.evaluate.runs == {"splade": "s.trec"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", str(path), "--run", "splade"])


def test_the_report_includes_the_external_run_beside_the_pipeline_runs(
    ws: Workspace, splade: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring, fast (ranx replaced by the hand-built evaluation)."""
    seen: dict[str, Any] = {}

    def fake_evaluate_runs(qrels: Any, runs: dict[str, dict[str, list[ScoredPair]]], cfg: EvaluateConfig,
                           **kwargs: Any) -> Evaluation:
        seen.update(runs=runs, cfg=cfg)
        return hand_evaluation()

    monkeypatch.setattr(stage_module, "evaluate_runs", fake_evaluate_runs)
    external = with_runs(ws, runs={"splade": str(splade)})
    result = Executor(external).run_single("evaluate")
    assert set(seen["runs"]) == {"bm25", "splade"}
    assert [p.doc_id for p in seen["runs"]["splade"]["q1"]] == ["d2", "d1"]  # the tie, by doc id
    manifest = result.manifest
    assert manifest["inputs"]["external-run:splade"]["path"] == str(splade)
    assert manifest["outputs"]["external-run:splade"]["path"] == "external/splade.trec"
    assert manifest["counts"]["external_runs"] == 1
    assert manifest["extra"]["external_runs"] == {"splade": str(splade)}
    assert "runs" not in manifest["config"]["evaluate"]
    report = (external.stage_dir("evaluate") / "report.md").read_text()
    assert "## External runs" in report and "tied scores on 1 queries (broken by document id)" in report
    assert Executor(external).run_single("evaluate").skipped  # same file: nothing to redo
    splade.write_text(splade.read_text() + "q3 Q0 d4 1 0.5 splade\n")
    assert not Executor(external).run_single("evaluate").skipped  # its file is an input


def test_a_malformed_external_run_stops_the_stage_with_file_and_line(ws: Workspace, tmp_path: Path) -> None:
    bad = write_lines(tmp_path / "bad.trec", ["q1 Q0 d1 1 0.5 x", "q1 Q0 d2 1 x"])
    with pytest.raises(BadLineError, match=r"bad\.trec, line 2: 5 fields instead of 6\. Fix: "):
        Executor(with_runs(ws, runs={"bad": str(bad)})).run_single("evaluate")


@pytest.mark.slow  # ranx (numba) scores the runs
def test_a_pipeline_report_with_an_external_run_scored_by_ranx(ws: Workspace, splade: Path) -> None:
    external = with_runs(ws, runs={"splade": str(splade)}, metrics=["ndcg@10"], fusion=[])
    Executor(external).run_single("evaluate")
    metrics = json.loads((external.stage_dir("evaluate") / "metrics.json").read_text())
    assert list(metrics["systems"]) == ["bm25", "splade"]
    # q1 (d1 relevant 1): bm25 d2 d1 -> 1 / log2(3); splade d2 d1 (tie by doc id) -> the same
    # q2 (d2 relevant 2): both rank d2 first -> 1
    expected = (1 / 1.584962500721156 + 1) / 2
    assert metrics["systems"]["bm25"]["ndcg@10"] == pytest.approx(expected)
    assert metrics["systems"]["splade"]["ndcg@10"] == pytest.approx(expected)
