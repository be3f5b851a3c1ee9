"""The ``expand`` stage in the graph: off by default (left out of runs, systems unchanged), and
when on it reads the filter's kept queries (or every generated one) and adds ``bm25-expanded``
to the runs the evaluate stage collects. Upstream stages are faked, BM25 too (no JVM)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import inpars.expansion as expansion
from inpars.config import Config, DataConfig, ExpandConfig, ExperimentConfig
from inpars.io import write_records
from inpars.manifest import StageContext, run_stage
from inpars.pipeline import Executor, Output, Workspace
from inpars.pipeline.evaluate import EvaluateStage
from inpars.records import SyntheticQuery
from inpars.trec import read_trec_run
from tests.conftest import BeirWriter
from tests.indexing.fakes import FakeBm25

QUERIES = [{"_id": "q1", "text": "landmark photographs"}, {"_id": "q2", "text": "where do dogs come from"}]
QRELS = {"test": [("q1", "d3", 1), ("q2", "d2", 1)]}


def synthetic(doc_id: str, text: str, sample: int = 0) -> SyntheticQuery:
    return SyntheticQuery(SyntheticQuery.make_id(doc_id, sample), doc_id, text, "inpars", "toy", sample, 1)


KEPT = [synthetic("d3", "photographs of a famous landmark"), synthetic("d1", "purring pets")]
DROPPED = synthetic("d4", "landmark photographs on the amazon", 1)  # generated, filtered out


def workspace(source: Path, tmp: Path, expand: ExpandConfig | None = None) -> Workspace:
    config = Config(experiment=ExperimentConfig(name="x", run_dir=str(tmp / "run")),
                    data=DataConfig(source=str(source)))
    return Workspace(dataclasses.replace(config, expand=expand or ExpandConfig()))


@pytest.fixture
def ws(write_beir: BeirWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A run folder where index, generate and filter have 'finished' (fake bodies)."""
    bm25 = FakeBm25()
    monkeypatch.setattr(expansion, "ensure_bm25_index", bm25.ensure)
    monkeypatch.setattr(expansion, "Bm25Searcher", bm25.searcher)
    ws = workspace(write_beir(queries=QUERIES, qrels=QRELS), tmp_path)

    def index(ctx: StageContext) -> None:
        path = ctx.out_dir / Output.run("bm25").path
        path.parent.mkdir(parents=True)
        path.write_text("q1 Q0 d1 1 1.0 bm25\n")
        ctx.output("run:bm25", path)

    def generate(ctx: StageContext) -> None:
        write_records(ctx.out_dir / "shards" / "part-00000.jsonl", [*KEPT, DROPPED])
        ctx.output("shards", ctx.out_dir / "shards")

    def filtered(ctx: StageContext) -> None:
        ctx.output("kept", ctx.out_dir / "kept.jsonl")
        write_records(ctx.out_dir / "kept.jsonl", KEPT)
        ctx.extra["steps"] = ["contamination", "rules"]

    for name, body in (("index", index), ("generate", generate), ("filter", filtered)):
        run_stage(name, ws.stage_dir(name), {}, {}, body)
    return ws


def on(ws: Workspace, **settings: object) -> Workspace:
    return Workspace(dataclasses.replace(ws.config, expand=ExpandConfig(enabled=True, **settings)))  # type: ignore[arg-type]


def test_off_by_default_it_promises_nothing_and_leaves_the_systems_alone(
    write_beir: BeirWriter, tmp_path: Path
) -> None:
    ws = workspace(write_beir(), tmp_path)
    assert ws.graph.names.index("expand") == ws.graph.names.index("filter") + 1
    assert ws.graph.upstream("expand") == ("index", "generate", "filter")
    assert ws.graph.systems(ws) == ("bm25", "dense", "bm25+ce-synthetic", "bm25+bi-zero-shot")
    assert not ws.graph["expand"].enabled(ws)
    enabled = on(ws)
    assert enabled.graph.systems(enabled) == (
        "bm25", "dense", "bm25-expanded", "bm25+ce-synthetic", "bm25+bi-zero-shot")
    assert "expand" in EvaluateStage().earlier(enabled)  # so evaluate collects its run


def test_off_it_is_left_out_of_runs_and_refused_alone(ws: Workspace) -> None:
    from inpars.errors import ConfigError

    assert "expand" not in Executor(ws).run(["index", "generate", "filter", "expand"])["stages"]
    assert not ws.stage_dir("expand").exists()
    with pytest.raises(ConfigError, match=r"'expand' stage is switched off\. Fix: .*\[expand\]"):
        Executor(ws).run_single("expand")


def test_on_it_expands_with_the_kept_queries_and_adds_a_run(ws: Workspace) -> None:
    ws = on(ws, repeat=2)
    result = Executor(ws).run_one("expand")
    manifest = result.manifest
    run = read_trec_run(ws.runs("expand")["bm25-expanded"])
    assert [p.doc_id for p in run["q1"]] == ["d3"]  # only d3's expansion has these words
    assert manifest["counts"]["appended_queries"] == 2 and manifest["counts"]["expanded_documents"] == 2
    assert manifest["extra"]["contamination_checked"] and manifest["extra"]["source"] == "kept"
    assert manifest["extra"]["bm25"]["index"] == str(ws.stage_dir("expand") / "bm25")
    assert manifest["config"]["expand"]["k1"] == ws.config.index.k1  # resolved from [index]
    assert set(manifest["inputs"]) >= {"filter", "index", "collection:corpus.jsonl"}
    assert Executor(ws).run_one("expand").skipped  # same queries, same config

    generated = on(ws, source="generated")
    manifest = Executor(generated).run_one("expand").manifest
    assert manifest["counts"]["appended_queries"] == 3 and "generate" in manifest["inputs"]
    assert not manifest["extra"]["contamination_checked"]
    run = read_trec_run(generated.runs("expand")["bm25-expanded"])
    assert {p.doc_id for p in run["q1"]} == {"d3", "d4"}  # the dropped query expands d4 too

    # turned off again, its old run is not collected by evaluate any more
    off = Workspace(dataclasses.replace(ws.config, expand=ExpandConfig()))
    assert "expand" not in EvaluateStage().collected(off) and "expand" in EvaluateStage().collected(ws)
