"""A run's report stays in its run folder; ``inpars publish`` alone updates the committed
reference, and every evaluation says where it differs from that reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inpars.cli import main
from inpars.config import Config, DataConfig, ExperimentConfig
from inpars.errors import StageError
from inpars.io import write_json
from inpars.manifest import StageContext, run_stage
from inpars.pipeline import RUN_MANIFEST, Workspace, compare_with_reference, publish


def workspace(tmp: Path) -> Workspace:
    config = Config(experiment=ExperimentConfig(name="toy", run_dir=str(tmp / "run"),
                                                results_dir=str(tmp / "results")),
                    data=DataConfig(source=str(tmp / "unused")))
    return Workspace(config)


def evaluated(ws: Workspace, means: dict[str, float]) -> None:
    """A finished evaluate stage whose metrics.json holds ``means`` as nDCG@10."""
    def body(ctx: StageContext) -> None:
        path = ctx.out_dir / "metrics.json"
        write_json(path, {"metrics": ["ndcg@10"], "systems": {s: {"ndcg@10": v} for s, v in means.items()}})
        (ctx.out_dir / "report.md").write_text("# report\n")
        ctx.output("metrics", path)

    run_stage("evaluate", ws.stage_dir("evaluate"), {"means": means}, {}, body, seed=1, force=True)
    write_json(ws.run_dir / "manifest.json", {"experiment": "toy"})


def test_publish_is_explicit_and_the_comparison_names_what_differs(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with pytest.raises(StageError, match=r"no finished evaluation to publish\. Fix: run `inpars run"):
        publish(ws)
    evaluated(ws, {"bm25": 0.6789, "bm25+ce-synthetic": 0.7})
    assert compare_with_reference(ws)[0].startswith("No committed reference in")
    assert not ws.results_dir.exists()  # evaluating never writes the reference

    copied = publish(ws)
    assert {p.name for p in copied} == {"metrics.json", "report.md", "manifest.json", RUN_MANIFEST}
    assert compare_with_reference(ws)[0] == "All 2 systems match the reference within 0.005 ndcg@10."

    evaluated(ws, {"bm25": 0.6789, "bm25+ce-synthetic": 0.71, "bm25+bi-real": 0.72})
    lines = compare_with_reference(ws)
    assert lines[0].startswith("2 of 3 systems differ from the reference")
    assert "| bm25+ce-synthetic | 0.7100 | 0.7000 | +0.0100 | differs |" in lines
    assert "| bm25+bi-real | 0.7200 |  |  | only in this run |" in lines
    assert (ws.run_dir / "reference.md").read_text().count("differs") == 1
    published = json.loads((ws.results_dir / "metrics.json").read_text())
    assert published["systems"]["bm25+ce-synthetic"]["ndcg@10"] == 0.7  # unchanged until published


def test_publish_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "toy.toml"
    config.write_text(f'[experiment]\nname = "toy"\nrun_dir = "{tmp_path / "run"}"\n'
                      f'results_dir = "{tmp_path / "results"}"\n[data]\nsource = "{tmp_path}"\n')
    assert main(["publish", str(config)]) == 2
    assert "no finished evaluation to publish" in capsys.readouterr().err
    evaluated(workspace(tmp_path), {"bm25": 0.5})
    assert main(["publish", str(config)]) == 0
    assert (tmp_path / "results" / "metrics.json").is_file()
