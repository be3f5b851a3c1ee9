"""eval/experiments/methods.py and methods_table.py: a table grown a (method, seed) run at a
time, each method compared with base on the seeds it has, older rows kept where base agrees."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from inpars.config import load_config
from tests.eval_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def methods() -> ModuleType:
    return load_script("methods")


@pytest.fixture(scope="module")
def table() -> ModuleType:
    return load_script("methods_table")


def _cell(dev: list[float], test: list[float], experiment: str = "x") -> dict[str, Any]:
    """A run scoring ``dev`` / ``test`` per query alone, and 0.1 more interpolated."""
    def split(scores: list[float]) -> dict[str, dict[str, float]]:
        alone = {f"q{i}": s for i, s in enumerate(scores)}
        return {"alone": alone, "interp": {q: s + 0.1 for q, s in alone.items()}}
    return {"experiment": experiment, "dev": split(dev), "test": split(test), "kept": 10, "steps": 5,
            "loss_curve": [{"step": 10, "loss": 0.5}], "critic_accuracy": None, "critic_roc_auc": None}


def test_method_compared_with_base_on_its_own_seeds(table: ModuleType) -> None:
    cells = {"base": {42: _cell([0.5, 0.7], [0.4, 0.6]), 1: _cell([0.1, 0.1], [0.1, 0.1])},
             "weighting-logprob": {42: _cell([0.6, 0.9], [0.4, 0.6])}}
    rows = {(r["method"], r["split"], r["system"]): r for r in table.compare(cells, [])}
    base = rows[("base", "dev", "alone")]
    assert base["seeds"] == [42, 1] and base["mean"] == pytest.approx((0.6 + 0.1) / 2)
    dev = rows[("weighting-logprob", "dev", "alone")]
    # against base seed 42 only: deltas 0.1 and 0.2
    assert dev["seeds"] == [42] and dev["difference"] == pytest.approx(0.15) and dev["sd"] is None
    assert rows[("weighting-logprob", "test", "interp")]["difference"] == pytest.approx(0.0)
    tested = [r for r in rows.values() if r["p"] is not None]
    assert len(tested) == 4 and all(r["p_holm"] >= r["p"] for r in tested)


def test_method_without_base_seed_stops(table: ModuleType) -> None:
    cells = {"base": {42: _cell([0.5], [0.5])}, "critic": {1: _cell([0.5], [0.5])}}
    with pytest.raises(SystemExit, match="seeds \\[1\\] that base has not"):
        table.compare(cells, [])


def test_pending_runs_only_what_the_table_lacks(methods: ModuleType) -> None:
    config = load_config(ROOT / "configs" / "smoke.toml")
    done = {"base": {42: {}, 1: {}, 2: {}}, "weighting-logprob": {42: {}}}
    todo = methods.pending(config, done, ["base", "weighting-logprob", "refine"], [42, 1, 2])
    # base 42 again: every other method's data comes from it; base 1 and 2 for refine's models
    assert todo == [("base", 42), ("base", 1), ("base", 2), ("weighting-logprob", 1),
                    ("weighting-logprob", 2), ("refine", 42), ("refine", 1), ("refine", 2)]
    # a method with data of its own: its first seed again, for the data its other seeds train on
    critic = methods.pending(config, {**done, "critic": {42: {}}}, ["base", "critic"], [42, 1])
    assert critic == [("base", 42), ("critic", 42), ("critic", 1)]
    only_weighting = methods.pending(config, done, ["base", "weighting-logprob"], [42, 1])
    assert only_weighting == [("base", 42), ("weighting-logprob", 1)]
    assert methods.pending(config, done, ["base"], [42, 1, 2]) == []


def test_why_a_run_is_pending(methods: ModuleType) -> None:
    cells = {"base": {42: {}}}
    previous = {"runs": {"base": {42: {}}, "critic": {42: {"kept": 492}}}}
    assert methods.why("base", 42, previous, cells).startswith("made again")
    assert "no per-query scores" in methods.why("critic", 42, previous, cells)
    assert methods.why("critic", 1, previous, cells) == "new"
    assert methods.why("critic", 42, None, {}) == "new"


def test_legacy_rows_kept_while_base_within_drift(table: ModuleType) -> None:
    base = _cell([0.5, 0.7], [0.4, 0.6])
    legacy_base = [{"method": "base", "split": split, "system": name, "seeds": [42, 1],
                    "per_seed": [0.602 + (0.1 if name == "interp" else 0) - (0.1 if split == "test" else 0),
                                 0.0]}
                   for split in ("dev", "test") for name in ("alone", "interp")]
    neighbours = {"method": "neighbours", "split": "dev", "system": "alone", "seeds": [42, 1],
                  "per_seed": [0.7, 0.7], "p": 0.01, "difference": 0.1}
    previous = {"runs": {"base": {42: {}, 1: {}}, "neighbours": {42: {}, 1: {}}},
                "rows": [*legacy_base, neighbours]}
    rows, drifts = table.legacy_rows(previous, {"base": {42: base}}, "t.json")
    assert rows == [neighbours] and len(drifts) == 4  # 0.002 apart: another machine
    assert drifts[0]["rerun"] - drifts[0]["stored"] == pytest.approx(-0.002)
    assert table.legacy_rows(previous, {}, "t.json") == ([neighbours], [])  # no base run yet
    with pytest.raises(SystemExit, match=r"base seed 1 scores 0\.6000 on dev"):  # 0.6 apart: not the same
        table.legacy_rows(previous, {"base": {42: base, 1: base}}, "t.json")
    # once written, the base rows they were compared with stay in the table
    grown = {"runs": previous["runs"], "rows": [], "legacy_base": legacy_base}
    assert table.legacy_base(grown) == legacy_base


def test_table_written_after_each_run_and_read_back(methods: ModuleType, table: ModuleType,
                                                     tmp_path: Path) -> None:
    config = load_config(ROOT / "configs" / "smoke.toml")
    settings = {"experiment": "smoke", "seeds": [42, 1], "base_data": None, "dev_set": "d",
                "test_set": "t", "interpolation_weight": 0.8}
    path = tmp_path / "smoke-methods.json"
    writer = methods.Table(config, settings, ["python methods.py"], None, path)
    cells = {"base": {1: _cell([0.5], [0.5], "b1"), 42: _cell([0.5], [0.5], "b42")},
             "weighting-margin": {42: _cell([0.6], [0.4], "w42")}}
    writer.write(cells)
    written = json.loads(path.read_text())
    assert list(written["runs"]["base"]) == ["42", "1"]  # in the table's seed order
    loaded, read_cells = table.load_table(path)
    assert read_cells["weighting-margin"][42]["dev"]["alone"] == {"q0": 0.6}
    markdown = path.with_suffix(".md").read_text()
    assert "| weighting-margin | 42 | `{'train': {'weighting': 'teacher_margin'}}`" in markdown
    assert "| base | 42, 1 |" in markdown and loaded["commands"] == ["python methods.py"]


def test_commands_each_once_with_their_count(table: ModuleType) -> None:
    lines = table._command_lines(["python a.py", "python a.py --add", "python a.py --add"])
    assert lines == ["`python a.py`", "`python a.py --add` (run 2 times)"]


def test_rerun_within_drift_recorded_else_stops(methods: ModuleType) -> None:
    stored = _cell([0.5, 0.6], [0.4])
    same = methods.rerun_drift("base", 42, stored, _cell([0.5, 0.6], [0.4]), Path("t.json"))
    assert [d["rerun"] - d["stored"] for d in same] == [0.0] * 4
    near = methods.rerun_drift("base", 42, stored, _cell([0.5, 0.604], [0.4]), Path("t.json"))
    assert near[0]["rerun"] - near[0]["stored"] == pytest.approx(0.002)
    with pytest.raises(SystemExit, match=r"more than 0\.005 apart"):
        methods.rerun_drift("base", 42, stored, _cell([0.5, 0.62], [0.4]), Path("t.json"))
    with pytest.raises(SystemExit, match="other dev queries"):
        methods.rerun_drift("base", 42, stored, _cell([0.5], [0.4]), Path("t.json"))


@pytest.mark.slow
@pytest.mark.needs_data
def test_methods_on_the_smoke_run_then_grown(methods: ModuleType, table: ModuleType, tmp_path: Path,
                                             shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pipeline.test_smoke_run import run_cli, smoke_config

    config = smoke_config(tmp_path, shared_data)
    run_cli(config, tmp_path)
    monkeypatch.chdir(tmp_path)  # the method runs go to runs/<name>-m-<method>
    out = tmp_path / "out"
    common = [str(config), "--depth", "10", "--out", str(out)]
    assert methods.main([*common, "--methods", "weighting-logprob", "--seeds", "8"]) == 0
    path = out / "smoke-methods.json"
    first, cells = table.load_table(path)
    assert set(cells) == {"base", "weighting-logprob"} and set(cells["base"]) == {7, 8}
    assert cells["weighting-logprob"][8]["experiment"] == "smoke-m-weighting-logprob-seed8"
    assert cells["base"][7]["dev"]["alone"] and cells["base"][7]["test"]["interp"]
    assert (tmp_path / "runs" / "smoke-m-weighting-logprob" / "train" / "manifest.json").is_file()

    # grown by a seed: the table's runs are kept, base seed 7 is made again (the other runs'
    # data comes from it) and scores as before; base and weighting-logprob seed 8 are not rerun
    assert methods.main([*common, "--add", "--methods", "weighting-logprob", "--seeds", "9"]) == 0
    grown, cells = table.load_table(path)
    assert set(cells["base"]) == {7, 8, 9} and set(cells["weighting-logprob"]) == {7, 8, 9}
    assert grown["seeds"] == [7, 8, 9] and len(grown["commands"]) == 2
    assert grown["runs"]["base"][8] == first["runs"]["base"][8]
    assert all(grown["runs"]["base"][7][s] == first["runs"]["base"][7][s] for s in ("dev", "test"))
    rows = {(r["method"], r["split"], r["system"]): r for r in grown["rows"]}
    assert rows[("weighting-logprob", "dev", "alone")]["seeds"] == [7, 8, 9]
    assert "| weighting-logprob | 7, 8, 9 |" in path.with_suffix(".md").read_text()


def test_best_on_dev_by_difference_with_base(table: ModuleType) -> None:
    rows = [{"method": "base", "split": "dev", "system": "interp", "mean": 0.70, "difference": None,
             "seeds": [7, 8, 9], "p_holm": None},
            {"method": "a", "split": "dev", "system": "interp", "mean": 0.75, "difference": -0.01,
             "seeds": [7, 8, 9], "p_holm": 0.01},
            {"method": "b", "split": "dev", "system": "interp", "mean": 0.60, "difference": 0.02,
             "seeds": [7, 8, 9], "p_holm": 0.01},
            {"method": "c", "split": "dev", "system": "interp", "mean": 0.60, "difference": 0.01,
             "seeds": [7, 8, 9], "p_holm": 0.02},
            {"method": "b", "split": "test", "system": "interp", "mean": 0.90, "difference": 0.5,
             "seeds": [7, 8, 9], "p_holm": 0.001}]
    line = table._best_on_dev(rows)  # a's higher mean is over other seeds than base's
    assert "): `b` (+0.0200); the demo's defaults should take it." in line
    assert "`base`, the demo's recipe" in table._best_on_dev(
        [r | {"difference": -0.1} if r["method"] != "base" else r for r in rows])


def test_best_on_dev_needs_a_significant_gain_on_all_base_seeds(table: ModuleType) -> None:
    """A lead that is not significant, or on fewer seeds than base's, is named, not a win."""
    base = {"method": "base", "split": "dev", "system": "interp", "mean": 0.70, "difference": None,
            "seeds": [7, 8, 9], "p_holm": None}
    lead = {"method": "b", "split": "dev", "system": "interp", "mean": 0.71, "difference": 0.0001,
            "seeds": [7], "p_holm": 0.001}
    # p is None where the test is undefined (fewer than two queries, one constant difference)
    for row in (lead, lead | {"seeds": [7, 8, 9], "p_holm": 0.4}, lead | {"p_holm": None}):
        line = table._best_on_dev([base, row])
        assert "`base`, the demo's recipe, which its defaults keep" in line
        assert f"`b` +0.0001 (seeds {', '.join(map(str, row['seeds']))}, Holm p " in line
    assert table._best_on_dev([base]).endswith("no method has such a gain.")


def test_legacy_table_grown(methods: ModuleType, table: ModuleType, tmp_path: Path) -> None:
    """An older table's rows without per-query scores: kept with the base rows they were
    compared with while its method has no runs, dropped once it has."""
    config = load_config(ROOT / "configs" / "smoke.toml")
    base = _cell([0.5, 0.7], [0.4, 0.6], "b")
    old_base = [{"method": "base", "split": sp, "system": n, "seeds": [7], "difference": None, "sd": None,
                 "per_seed": [statistics.fmean(base[sp][n].values())], "mean": 0.5, "p": None,
                 "ci95": None, "p_holm": None}
                for sp in ("dev", "test") for n in ("alone", "interp")]
    old_run = {k: v for k, v in _cell([0.1], [0.1], "old").items() if k not in ("dev", "test")}
    old = [{**r, "method": "weighting-logprob", "difference": 0.01, "p": 0.5, "ci95": [0.0, 0.02]}
           for r in old_base]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({
        "command": "old", "experiment": "smoke", "seeds": [7], "dev_set": "d", "test_set": "t",
        "interpolation_weight": 0.8, "overrides": {"base": {}, "weighting-logprob": {"x": 1}},
        "rows": [*old_base, *old], "runs": {"base": {"7": old_run}, "weighting-logprob": {"7": old_run}},
        "seconds": 10.0}))
    previous, cells = methods._previous(path, {"experiment": "smoke", "seeds": [7, 8]}, config)
    assert cells == {}
    writer = methods.Table(config, {"experiment": "smoke", "seeds": [7, 8], "dev_set": "d", "test_set": "t",
                                    "interpolation_weight": 0.8}, ["old", "new"], previous, path)
    writer.write({"base": {7: base}})
    grown, cells = table.load_table(path)
    kept = [r for r in grown["rows"] if r["method"] == "weighting-logprob"]
    assert len(kept) == 4 and grown["legacy_base"] == old_base and grown["runs"]["weighting-logprob"][7]
    assert "training seeds 7\n" in path.with_suffix(".md").read_text()  # seed 8 has no run yet
    writer.write({"base": {7: base}, "weighting-logprob": {7: _cell([0.6, 0.7], [0.4, 0.6])}})
    grown, _ = table.load_table(path)
    rows = [r for r in grown["rows"] if r["method"] == "weighting-logprob"]
    assert "legacy_base" not in grown and rows[0]["difference"] == pytest.approx(0.05)
    assert rows[0]["seeds"] == [7] and rows[0]["p_holm"] is not None
    methods._previous(path, {"experiment": "smoke"}, config)
    changed = json.loads(path.read_text())
    changed["overrides"]["weighting-logprob"] = {"train": {"weighting": "critic"}}
    path.write_text(json.dumps(changed))  # as if the method's settings had changed since
    with pytest.raises(SystemExit, match="would mix two recipes"):
        methods._previous(path, {"experiment": "smoke"}, config)


def test_tag_with_a_dot_refused(methods: ModuleType) -> None:
    assert methods.file_tag("seeds-2_b") == "seeds-2_b"
    for bad in ("v1.2", "a/b"):
        with pytest.raises(argparse.ArgumentTypeError, match="letters, digits"):
            methods.file_tag(bad)
