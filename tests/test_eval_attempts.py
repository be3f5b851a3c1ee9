"""eval/experiments/attempts.py: every dev-set number gathered, kinds told apart, and each
source's best synthetic system compared with its best label-free one on that same dev set."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.eval_scripts import load_script


@pytest.fixture(scope="module")
def attempts() -> ModuleType:
    return load_script("attempts")


@pytest.mark.parametrize(("system", "kind"), [
    ("bm25", "label-free"), ("bi-zero-shot+interp", "label-free"), ("bm25+bi-zero-shot", "label-free"),
    ("bm25-expanded", "synthetic"), ("bm25+bi-zero-shot+ce-synthetic", "synthetic"),
    ("ce-margin-mse-real", "real"), ("bm25+bi-real", "real"), ("bi-margin-mse-both+interp", "both"),
    ("bm25+bi-real+ce-synthetic", "both"), ("ce-critic+interp", "synthetic"),
])
def test_kind(attempts: ModuleType, system: str, kind: str) -> None:
    assert attempts.kind(system) == kind


def _tuning(tmp_path: Path) -> Path:
    folder = tmp_path / "eval" / "tuning"
    folder.mkdir(parents=True)
    path = folder / "x-interpolation.json"
    path.write_text(json.dumps({
        "command": "python eval/tuning/interpolation.py configs/x.toml", "queries": 100, "depth": 100,
        "seed": 42, "excluded_example_queries": 4,
        "models": {"bm25+ce-synthetic": "runs/x/train/cross-encoder", "bm25+bi-zero-shot": "MiniLM"},
        "ndcg@10": {"bm25": 0.70, "bm25+ce-synthetic w=0.0": 0.60, "bm25+ce-synthetic w=0.5": 0.74,
                    "bm25+bi-zero-shot w=0.0": 0.68, "bm25+bi-zero-shot w=0.3": 0.75},
        "best": {"bm25+ce-synthetic": "0.5", "bm25+bi-zero-shot": "0.3"},
        "best_ndcg@10": {"bm25+ce-synthetic": 0.74, "bm25+bi-zero-shot": 0.75},
    }))
    return path


def test_tuning_source_and_summary(attempts: ModuleType, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attempts, "ROOT", tmp_path)
    source = attempts.read_source(_tuning(tmp_path))
    by_name = {(r.system, r.note.split(",")[0]): r.ndcg for r in source.rows}
    assert by_name[("ce-synthetic", "alone")] == 0.60
    assert by_name[("bi-zero-shot", "alone")] == 0.68
    assert by_name[("bm25+ce-synthetic", "weights 0.5")] == 0.74
    assert "4 few-shot example queries left out" in source.dev_set
    row = attempts.summary_row(source)
    assert row["best_label_free"] == {"system": "bm25+bi-zero-shot", "ndcg@10": 0.75}
    assert row["best_synthetic"] == {"system": "bm25+ce-synthetic", "ndcg@10": 0.74}
    assert row["difference"] == pytest.approx(-0.01)


def test_main_writes_both_files(attempts: ModuleType, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attempts, "ROOT", tmp_path)
    _tuning(tmp_path)
    attempts.main(["--prefix", "x", "--out", "out/x-attempts"])
    text = (tmp_path / "out" / "x-attempts.md").read_text()
    assert "| `eval/tuning/x-interpolation.json` |" in text and "-0.0100" in text
    payload = json.loads((tmp_path / "out" / "x-attempts.json").read_text())
    assert payload["command"] == "python eval/experiments/attempts.py --prefix x --out out/x-attempts"
    with pytest.raises(SystemExit, match="no dev-set results named y"):
        attempts.main(["--prefix", "y"])


def test_a_result_missing_a_field_is_named(attempts: ModuleType, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attempts, "ROOT", tmp_path)
    path = _tuning(tmp_path)
    data = json.loads(path.read_text())
    del data["best_ndcg@10"]
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match=r"x-interpolation.json: no field 'best_ndcg@10'.*Fix: rerun"):
        attempts.read_source(path)
