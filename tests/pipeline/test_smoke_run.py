"""`inpars run configs/smoke.toml` end to end, with real models on a small cut of SciFact."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from inpars.config import load_config
from inpars.pipeline import STAGES

REPO = Path(__file__).resolve().parents[2]


def cut_scifact(shared: Path, out: Path, *, test_queries: int = 30, train_queries: int = 20,
                other_docs: int = 120) -> Path:
    """A small BEIR folder: some test and train queries, their judged documents, more documents."""
    src = shared / "scifact"

    def qrels(split: str, n: int) -> list[list[str]]:
        rows = [line.rstrip("\n").split("\t") for line in (src / "qrels" / f"{split}.tsv").open()][1:]
        keep = sorted({r[0] for r in rows}, key=int)[:n]
        return [r for r in rows if r[0] in keep]

    test, train = qrels("test", test_queries), qrels("train", train_queries)
    doc_ids = {r[1] for r in test + train}
    query_ids = {r[0] for r in test + train}
    (out / "qrels").mkdir(parents=True)
    with (out / "corpus.jsonl").open("w") as handle:
        for number, line in enumerate((src / "corpus.jsonl").open()):
            if json.loads(line)["_id"] in doc_ids or number < other_docs:
                handle.write(line)
    with (out / "queries.jsonl").open("w") as handle:
        for line in (src / "queries.jsonl").open():
            if json.loads(line)["_id"] in query_ids:
                handle.write(line)
    for split, rows in (("test", test), ("train", train)):
        lines = ["query-id\tcorpus-id\tscore"] + ["\t".join(r) for r in rows]
        (out / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return out


def smoke_config(tmp: Path, shared: Path, sections: dict[str, dict[str, Any]] | None = None,
                 **filter_overrides: object) -> Path:
    """configs/smoke.toml on a cut of SciFact in ``tmp``; ``sections`` adds or replaces
    whole sections, ``filter_overrides`` keys of ``[filter]``."""
    data = tomllib.loads((REPO / "configs" / "smoke.toml").read_text()) | (sections or {})
    collection = tmp / "smoke-collection"
    if not collection.exists():
        cut_scifact(shared, collection)
    data["data"]["source"] = str(collection)
    data["data"].pop("fallback", None)
    data["experiment"]["run_dir"] = str(tmp / "run")
    data["experiment"]["results_dir"] = str(tmp / "results")
    data["index"]["output_dir"] = str(tmp / "index")
    data["filter"].update(filter_overrides)
    path = tmp / "smoke.toml"
    path.write_text(_toml(data))
    return path


def _toml(data: dict[str, dict[str, object]]) -> str:
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def run_cli(config: Path, cwd: Path, *extra: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "inpars.cli", "run", str(config), *extra], cwd=cwd,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((cwd / "run" / "manifest.json").read_text())


def test_every_shipped_config_validates() -> None:
    for path in sorted((REPO / "configs").glob("*.toml")):
        config = load_config(path)
        assert config.experiment.name == path.stem


@pytest.mark.slow
@pytest.mark.needs_data
def test_smoke_run_end_to_end_then_skips_then_reruns_from_filter(tmp_path: Path, shared_data: Path) -> None:
    config = smoke_config(tmp_path, shared_data)
    summary = run_cli(config, tmp_path)

    stages = summary["stages"]
    assert isinstance(stages, dict)
    assert list(stages) == [s for s in STAGES if s not in ("expand", "refine")]  # off in the smoke config
    assert not any(info["skipped"] for info in stages.values())
    for stage in stages:
        manifest = json.loads((tmp_path / "run" / stage / "manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["stage"] == stage
        assert manifest["versions"]["python"] and manifest["timings"]["total"] > 0
    generated = json.loads((tmp_path / "run" / "generate" / "manifest.json").read_text())
    assert generated["counts"]["queries"] > 0
    assert generated["extra"]["example_query_ids"], "promptagator examples are recorded"
    kept = (tmp_path / "run" / "filter" / "kept.jsonl").read_text().splitlines()
    assert kept, "some synthetic queries survive the filters"
    assert (tmp_path / "run" / "train" / "cross-encoder" / "config.json").is_file()
    assert (tmp_path / "run" / "rerank" / "runs" / "bm25+ce-synthetic.trec").is_file()
    evaluated = tmp_path / "run" / "evaluate"
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert {"bm25", "bm25+ce-synthetic"} <= set(metrics["systems"])
    assert 0 < metrics["systems"]["bm25"]["ndcg@10"] <= 1
    assert "bm25+ce-synthetic+interp" in metrics["systems"]
    report = (evaluated / "report.md").read_text()
    assert report.startswith("#") and "## About this experiment" in report and "Smoke run:" in report
    assert "## Synthetic data quality" in report and "### Drops by reason" in report
    page = (evaluated / "data.html").read_text()  # every generated query, in the run folder only
    first_kept = json.loads(kept[0])["doc_id"]
    assert page.startswith("<!DOCTYPE html>") and f'"id":{json.dumps(first_kept)}' in page
    assert summary["metrics"] == metrics["systems"]
    # the committed reference changes only with `inpars publish`
    assert not (tmp_path / "results").exists()
    assert "No committed reference" in (tmp_path / "run" / "reference.md").read_text()
    done = subprocess.run([sys.executable, "-m", "inpars.cli", "publish", str(config)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "results" / "manifest.json").is_file()
    assert not (tmp_path / "results" / "data.html").exists()  # it quotes the documents: not published
    published = json.loads((tmp_path / "results" / "run-manifest.json").read_text())
    assert published["stages"].keys() == set(stages) and published["metrics"] == metrics["systems"]

    again = run_cli(config, tmp_path, "--force", "evaluate")
    assert all(info["skipped"] for name, info in again["stages"].items() if name != "evaluate")
    assert "All " in (tmp_path / "run" / "reference.md").read_text()  # same numbers as published

    changed = smoke_config(tmp_path, shared_data, min_words=3)
    third = run_cli(changed, tmp_path)
    skipped = {stage: info["skipped"] for stage, info in third["stages"].items()}
    assert skipped["index"] and skipped["generate"]
    assert not skipped["filter"]
