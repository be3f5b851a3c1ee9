"""Every recipe tried on SciFact, each with its dev-set nDCG@10, gathered in one table.

    python eval/experiments/attempts.py [--prefix scifact] [--out eval/experiments/scifact-attempts]

Issue 11 asks, where a target is missed, for each thing tried with its dev-set number. Those
numbers are spread over the json results of ``dev_ablation.py``, ``eval/tuning/interpolation.py``,
``methods.py`` and ``refine_rounds.py``, each with its own layout and each on its own dev set
(train-split queries only; the rerank depth and the left-out few-shot queries differ). This reads
them, and nothing else, and writes one table per source plus a summary: the best system that
uses synthetic data against the best label-free one *on the same dev set* (comparing numbers
across sources would compare dev sets). Test-split results (``seeds.py``, ``scale.py``,
``inpars compare``, ``eval/results/``) are left out on purpose: they are the report, not the search.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpars.io import read_json, write_json, write_text

ROOT = Path(__file__).resolve().parents[2]
# parts of a system name that use neither synthetic queries nor real train labels
LABEL_FREE_PARTS = {"bm25", "bi-zero-shot", "interp"}


@dataclass(frozen=True)
class Row:
    system: str
    ndcg: float
    note: str = ""


@dataclass(frozen=True)
class Source:
    path: Path
    command: str
    dev_set: str
    rows: tuple[Row, ...]


def kind(system: str) -> str:
    """label-free, synthetic, real (train qrels) or both, from the system's name parts."""
    parts = system.split(" (")[0].split("+")
    real = any(p.endswith(("-real", "-both")) for p in parts)
    synthetic = any(p not in LABEL_FREE_PARTS and not p.endswith("-real") for p in parts)
    if real and synthetic:
        return "both"
    return "real" if real else "synthetic" if synthetic else "label-free"


def _dev_set(data: dict[str, Any]) -> str:
    left_out = data.get("excluded_example_queries")
    extra = f", {left_out} few-shot example queries left out" if left_out else ""
    return (f"{data['queries']} train-split queries (seed {data.get('seed', 42)}{extra}), "
            f"BM25 top {data['depth']}")


def from_ablation(data: dict[str, Any]) -> tuple[str, list[Row]]:
    weights, variants = data.get("interpolation_weights", {}), data.get("variants", {})
    rows = []
    for name, value in data["ndcg@10"].items():
        base = name.removesuffix("+interp")
        overrides = variants.get(base, {}).get("overrides", {})
        note = ", ".join(f"{k} {v}" for k, v in overrides.items())
        if name != base and base in weights:
            note = ", ".join(filter(None, [note, f"BM25 weight {weights[base]}"]))
        rows.append(Row(name, value, note))
    return _dev_set(data), rows


def from_tuning(data: dict[str, Any]) -> tuple[str, list[Row]]:
    scores = data["ndcg@10"]
    rows = [Row(name, scores[name]) for name in scores if " w=" not in name]
    for model in data["models"]:
        alone = scores.get(f"{model} w=0.0")
        if alone is not None:
            rows.append(Row(model.removeprefix("bm25+"), alone, "alone"))
    for name, value in data["best_ndcg@10"].items():
        rows.append(Row(name, value, f"weights {data['best'][name]}, chosen on this dev set"))
    return _dev_set(data), rows


def from_methods(data: dict[str, Any]) -> tuple[str, list[Row]]:
    rows = []
    for row in data["rows"]:
        if row["split"] != "dev":
            continue
        seeds = len(row["seeds"])
        spread = f" ± {row['sd']:.4f}" if row.get("sd") is not None and seeds > 1 else ""
        system = f"ce-{row['method']}" + ("+interp" if row["system"] == "interp" else "")
        note = f"mean of {seeds} seed{'s' * (seeds > 1)}{spread}"
        if row["system"] == "interp":
            note += f", BM25 weight {data['interpolation_weight']}"
        rows.append(Row(system, row["mean"], note))
    return data["dev_set"], rows


def from_refine(data: dict[str, Any]) -> tuple[str, list[Row]]:
    model = {"dense": "bi", "cross-encoder": "ce"}.get(data["refine"]["model"], data["refine"]["model"])
    rows = []
    for entry in data["rounds"]:
        for metric, value in entry["dev"]["scores"].items():
            suffix = "+interp" if metric.endswith("+interp") else ""
            rows.append(Row(f"{model}-refine-round{entry['round']}{suffix}", value,
                            f"{entry['examples']} training examples"))
    return data["dev_set"], rows


def read_source(path: Path) -> Source | None:
    """The dev rows of one result file, or None for a file that holds no dev-set numbers."""
    data = read_json(path)
    command = data.get("command") or "; ".join(data.get("commands", []))
    if path.parent.name == "tuning":
        reader = from_tuning
    elif "dev-ablation" in path.name:
        reader = from_ablation
    elif "rows" in data and "overrides" in data:
        reader = from_methods
    elif "rounds" in data and "refine" in data:
        reader = from_refine
    else:
        return None
    try:
        dev_set, rows = reader(data)
    except KeyError as missing:
        raise SystemExit(f"{path}: no field {missing} where {reader.__name__} expects it. Fix: rerun "
                         f"the command that made the file ({command or 'named in it'})") from None
    return Source(path.relative_to(ROOT), command, dev_set, tuple(rows))


def _best(rows: tuple[Row, ...], wanted: str) -> Row | None:
    matching = [r for r in rows if kind(r.system) == wanted]
    return max(matching, key=lambda r: r.ndcg) if matching else None


def summary_row(source: Source) -> dict[str, Any]:
    synthetic, label_free = _best(source.rows, "synthetic"), _best(source.rows, "label-free")
    return {
        "source": str(source.path), "dev_set": source.dev_set,
        "best_synthetic": synthetic and {"system": synthetic.system, "ndcg@10": synthetic.ndcg},
        "best_label_free": label_free and {"system": label_free.system, "ndcg@10": label_free.ndcg},
        "difference": (synthetic.ndcg - label_free.ndcg) if synthetic and label_free else None,
    }


def _system_cell(best: dict[str, Any] | None) -> str:
    return f"`{best['system']}` {best['ndcg@10']:.4f}" if best else "—"


def render(sources: list[Source], command: str) -> str:
    summary = [summary_row(s) for s in sources]
    lines = [
        "# SciFact: every recipe tried, with its dev-set nDCG@10", "", f"`{command}`", "",
        "Gathered from the json results in `eval/experiments/` and `eval/tuning/` (each made by "
        "the command quoted under its table); train-split queries only, never test. Each source "
        "has its own dev set, so numbers compare within a table, not across tables. Kinds: "
        "`label-free` uses neither synthetic queries nor real train labels (BM25, the untuned "
        "MiniLM encoder and their interpolation); `synthetic` is trained on (or expanded with) "
        "generated queries; `real` on SciFact's train qrels (dev queries left out); `both` on both. "
        "`+interp` and `bm25+…` rows interpolate with BM25; a weight chosen on the same dev set "
        "flatters every system alike.", "",
        "## Summary: best synthetic against best label-free, on the same dev set", "",
        "| source | dev set | best label-free | best synthetic | difference |",
        "|---|---|---|---|---:|",
    ]
    for row in summary:
        diff = f"{row['difference']:+.4f}" if row["difference"] is not None else "—"
        lines.append(f"| `{row['source']}` | {row['dev_set']} | {_system_cell(row['best_label_free'])} "
                     f"| {_system_cell(row['best_synthetic'])} | {diff} |")
    lines += ["", "A source without label-free rows (`methods.py`, `refine_rounds.py`) compares "
              "synthetic recipes with each other; its label-free reference is the tuning table "
              "on the same depth.", ""]
    for source in sources:
        lines += [f"## `{source.path}`", "", f"`{source.command}`", "", f"Dev set: {source.dev_set}.",
                  "", "| system | kind | nDCG@10 | note |", "|---|---|---:|---|"]
        lines += [f"| {r.system} | {kind(r.system)} | {r.ndcg:.4f} | {r.note} |"
                  for r in sorted(source.rows, key=lambda r: -r.ndcg)]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="scifact", help="result files whose name starts so")
    parser.add_argument("--out", default="eval/experiments/scifact-attempts",
                        help="output path without extension (.md and .json are written)")
    args = parser.parse_args(argv)
    paths = sorted([*ROOT.glob(f"eval/experiments/{args.prefix}*.json"),
                    *ROOT.glob(f"eval/tuning/{args.prefix}*.json")])
    sources = [s for s in map(read_source, paths) if s is not None]
    if not sources:
        raise SystemExit(f"no dev-set results named {args.prefix}*.json in eval/experiments or eval/tuning")
    command = "python eval/experiments/attempts.py" + "".join(
        f" --{k} {v}" for k, v in (("prefix", args.prefix), ("out", args.out))
        if v != parser.get_default(k))
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out.with_suffix(".md"), render(sources, command) + "\n")
    payload = {"command": command, "summary": [summary_row(s) for s in sources],
               "sources": [{"source": str(s.path), "command": s.command, "dev_set": s.dev_set,
                            "rows": [{"system": r.system, "kind": kind(r.system), "ndcg@10": r.ndcg,
                                      "note": r.note} for r in s.rows]} for s in sources]}
    write_json(out.with_suffix(".json"), payload)


if __name__ == "__main__":
    main()
