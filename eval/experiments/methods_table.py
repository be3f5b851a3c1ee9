"""``methods.py``'s table: its rows (each method against ``base``) from the per-query scores of
every (method, seed) run it holds, and their markdown, from the json result alone, so that a
table is re-rendered, or grown a run at a time, without rerunning anything."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from inpars.evaluation.metrics import holm, mean_difference_ci
from inpars.evaluation.tables import fmt_p
from inpars.evaluation.worth import paired_t
from inpars.io import read_json

# method -> training seed -> that run's record: its dev and test per-query scores
# (``{"alone": {query_id: ndcg}, "interp": {...}}``), counts, times and loss curve
Cells = dict[str, dict[int, dict[str, Any]]]
ALPHA = 0.05  # significance level of the ▲/▼ marks and of a method's win on dev


def load_table(path: Any) -> tuple[dict[str, Any], Cells]:
    """A table written by ``methods.py`` and its runs with per-query scores (json turns the
    seeds into strings; they are ints again here). Runs without them (tables written before
    the scores were kept) stay in the table's ``runs`` and ``rows`` only: see ``legacy_rows``."""
    table = read_json(path)
    table["runs"] = {m: {int(s): run for s, run in runs.items()} for m, runs in table["runs"].items()}
    cells = {m: runs for m, runs in table["runs"].items() if all("dev" in r for r in runs.values())}
    return table, cells


# nDCG@10: the most two runs of one (method, seed) on the same base data may differ by. Another
# machine's CPU trains slightly other models from the same data and seed (SciFact base seed 42:
# test 0.6170 on the machine of the first table, 0.6160 on another); more than this means
# other code or data, not the machine
DRIFT_LIMIT = 0.005


def drift(method: str, seed: int, split: str, system: str, stored: float, rerun: float,
          source: Any) -> dict[str, Any]:
    """The record of a run made again (on another machine) against the table's, or a stop
    when they differ by more than ``DRIFT_LIMIT``."""
    if abs(rerun - stored) > DRIFT_LIMIT:
        raise SystemExit(
            f"--add: {method} seed {seed} scores {rerun:.4f} on {split} ({system}) made again, {source} "
            f"has {stored:.4f}: more than {DRIFT_LIMIT} apart, so not the same recipe on the same data "
            "(code or settings changed?); rerun without --add, or use --tag for a table of its own")
    return {"method": method, "seed": seed, "split": split, "system": system, "stored": stored,
            "rerun": rerun}


def legacy_rows(previous: dict[str, Any], cells: Cells,
                source: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of ``previous``'s methods that have no per-query scores, kept as they are, and
    how far this table's ``base`` runs score from the base rows they were compared with
    (``legacy_base``: the table's base rows when they were written), seed by seed: within
    ``DRIFT_LIMIT`` (another machine), or a stop after the first base run rather than at the end."""
    old = [m for m, runs in previous["runs"].items() if m != "base" and m not in cells]
    if not old:
        return [], []
    base, drifts = cells.get("base", {}), []
    for row in legacy_base(previous):
        for seed, score in zip(row["seeds"], row["per_seed"], strict=True):
            if seed in base:
                now = statistics.fmean(base[seed][row["split"]][row["system"]].values())
                drifts.append(drift("base", seed, row["split"], row["system"], score, now, source))
    return [r for r in previous["rows"] if r["method"] in old], drifts


def legacy_base(previous: dict[str, Any]) -> list[dict[str, Any]]:
    """The base rows a table's rows without per-query scores were compared with: kept in the
    table (``legacy_base``) once its base rows are recomputed from runs, which may not yet
    cover every seed."""
    return previous.get("legacy_base") or [r for r in previous["rows"] if r["method"] == "base"]


def compare(cells: Cells, legacy: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method, split and system (alone / interp): mean ± sd over the method's seeds, and
    for each method but ``base`` the difference with base on the same seeds (per-query means
    over seeds), its 95% CI and paired t; then the ``legacy`` rows; Holm over every difference."""
    rows = [_row(method, split, name, runs, cells.get("base", {}))
            for method, runs in cells.items() for split in ("dev", "test") for name in ("alone", "interp")]
    rows += [dict(r) for r in legacy]
    tested = [r for r in rows if r["p"] is not None]
    for row, adjusted in zip(tested, holm([r["p"] for r in tested]), strict=True):
        row["p_holm"] = adjusted
    return rows


def _row(method: str, split: str, name: str, runs: dict[int, dict[str, Any]],
         base: dict[int, dict[str, Any]]) -> dict[str, Any]:
    per_seed = [statistics.fmean(run[split][name].values()) for run in runs.values()]
    row: dict[str, Any] = {"method": method, "split": split, "system": name, "seeds": list(runs),
                           "per_seed": per_seed, "mean": statistics.fmean(per_seed),
                           "sd": statistics.stdev(per_seed) if len(per_seed) > 1 else None,
                           "difference": None, "ci95": None, "p": None, "p_holm": None}
    if method == "base":
        return row
    missing = [seed for seed in runs if seed not in base]
    if missing:
        raise SystemExit(f"{method} has runs for seeds {missing} that base has not: rerun methods.py "
                         f"with --add and those --seeds")
    mine, theirs = _seed_mean(runs, split, name), _seed_mean({s: base[s] for s in runs}, split, name)
    if mine.keys() != theirs.keys():
        raise SystemExit(f"{method} and base were scored on different {split} queries")
    deltas = [mine[q] - theirs[q] for q in sorted(mine)]
    ci = mean_difference_ci(deltas)
    row.update(difference=statistics.fmean(deltas), ci95=None if ci is None else list(ci), p=paired_t(deltas))
    return row


def _seed_mean(runs: dict[int, dict[str, Any]], split: str, name: str) -> dict[str, float]:
    """Query id -> its score averaged over the seeds."""
    scores = [run[split][name] for run in runs.values()]
    return {q: statistics.fmean(s[q] for s in scores) for q in scores[0]}


def _command_lines(commands: list[str]) -> list[str]:
    """The commands that made the table, each once, with how often it ran (``--add`` reruns the
    same command to grow the table by the runs it finishes)."""
    counts = Counter(commands)
    return [f"`{c}`" + (f" (run {counts[c]} times)" if counts[c] > 1 else "") for c in counts]


def render(result: dict[str, Any]) -> str:
    seeds = [s for s in result["seeds"] if any(s in runs for runs in result["runs"].values())]
    lines = [
        f"# {result['experiment']}: each method against the demo recipe, training seeds "
        f"{', '.join(map(str, seeds))}", "",
        *_command_lines(result.get("commands", [result.get("command")])), "",
        *_data_line(result.get("base_data")),
        f"nDCG@10 of the cross-encoder trained on each method's synthetic data (the refined one for "
        f"`refine`), alone and interpolated with BM25 (BM25 weight {result['interpolation_weight']}, "
        f"the config's, the same for every method). Dev: {result['dev_set']}. Test: "
        f"{result['test_set']}. Mean ± sd over the method's seeds (settings table); difference "
        "with `base` on per-query scores averaged over those seeds, 95% CI, paired t-test, Holm "
        "over every difference in this file; "
        f"▲/▼ significant at {ALPHA}; the tests see query sampling over the seeds' mean, not the one "
        "synthetic dataset each method makes (once, with the experiment seed; the seeds retrain on it; "
        "`refine` writes new queries per seed). The demo's settings were chosen on this dev set and "
        "`refine` picks its round on it: the dev columns lean towards `base` and `refine`, the test "
        "columns are the held-out comparison. A method that keeps more or fewer queries also trains "
        "more or fewer optimizer steps in its one epoch (settings table)." + _critic_note(result), "",
    ]
    for split in ("dev", "test"):
        lines += [f"## {split}", "", "| method | alone | vs base | +BM25 | vs base |",
                  "|---|---:|---:|---:|---:|"]
        for method in result["overrides"]:
            cells = [_cell(r) for name in ("alone", "interp") for r in result["rows"]
                     if r["method"] == method and r["split"] == split and r["system"] == name]
            lines.append(f"| {method} | " + " | ".join(f"{a} | {b}" for a, b in cells) + " |")
        lines.append("")
    lines += [_best_on_dev(result["rows"]), "", *_drift_note(result.get("machine_drift", [])),
              "## Settings", "",
              "| method | seeds | overrides | kept queries | cross-encoder steps | loss at steps 10 / 100 / "
              "last | critic held-out accuracy / ROC AUC | experiment (first seed) |",
              "|---|---|---|---:|---:|---|---|---|"]
    for method, overrides in result["overrides"].items():
        first = next(iter(result["runs"][method].values()))
        refined = [f"{seed}: round {run['refine_best_round']}" for seed, run in result["runs"][method].items()
                   if "refine_best_round" in run]
        note = f" (rounds kept: {', '.join(refined)})" if refined else ""
        critic = (f"{first['critic_accuracy']:.3f} / {first['critic_roc_auc']:.3f}"
                  if first["critic_accuracy"] is not None else "")
        ran = ", ".join(map(str, result["runs"][method]))
        lines.append(f"| {method} | {ran} | `{overrides or 'none'}`{note} | {first['kept']} | "
                     f"{first['steps']} | {_losses(first['loss_curve'])} | {critic} | "
                     f"{first['experiment']} |")
    return "\n".join(lines) + "\n"


def _best_on_dev(rows: list[dict[str, Any]]) -> str:
    """The demo's recipe (``base``) unless a method beats it on dev (+BM25) on all of base's
    seeds with a Holm-significant gain; among those, the largest difference with ``base``
    (not mean: a method's mean over fewer seeds is over other seeds than base's). A nominal
    lead on one seed is named but does not win: it is within the seeds' spread."""
    dev = [r for r in rows if r["split"] == "dev" and r["system"] == "interp"]
    base_seeds = next(r["seeds"] for r in dev if r["method"] == "base")
    others = [r for r in dev if r["method"] != "base" and r["difference"] is not None]
    winners = [r for r in others if r["difference"] > 0 and _significant(r)
               and set(base_seeds) <= set(r["seeds"])]
    rule = (f"a significant gain over `base` (Holm p < {ALPHA}) on all of base's seeds "
            f"({', '.join(map(str, base_seeds))})")
    if winners:
        best = max(winners, key=lambda r: r["difference"])
        return (f"Best on dev (+BM25, {rule}): `{best['method']}` "
                f"({best['difference']:+.4f}); the demo's defaults should take it.")
    line = (f"Best on dev (+BM25, {rule}): `base`, the demo's recipe, which its defaults keep: "
            "no method has such a gain")
    if others:
        lead = max(others, key=lambda r: r["difference"])
        if lead["difference"] > 0:
            line += (f"; the largest difference, `{lead['method']}` {lead['difference']:+.4f} "
                     f"(seeds {', '.join(map(str, lead['seeds']))}, Holm p {fmt_p(lead['p_holm'], 3)}), "
                     "is not one")
    return line + "."


def _significant(row: dict[str, Any]) -> bool:
    """A row's difference with ``base`` is significant after Holm (the ▲/▼ marks, a win)."""
    return row["p_holm"] is not None and row["p_holm"] < ALPHA


def _drift_note(drifts: list[dict[str, Any]]) -> list[str]:
    if not drifts:
        return []
    gap = max(abs(d["rerun"] - d["stored"]) for d in drifts)
    return [f"Runs made again (same base data and seed, as the source of later runs' data; another "
            f"machine's CPU trains slightly other models) scored within {gap:.4f} of this table's "
            f"({len(drifts)} comparisons, `machine_drift` in the json): the table keeps the runs it had, "
            "and rows without per-query scores (an older table's) were compared with the base runs in "
            "`legacy_base`.", ""]


def _critic_note(result: dict[str, Any]) -> str:
    if "critic" not in result["overrides"]:
        return ""
    return (" `critic` keeps half of the queries (`[filter] critic_keep`): less data and more realistic "
            "data at once, and so fewer steps; `critic-same-steps` trains it for as many steps as `base`.")


def _data_line(data: dict[str, Any] | None) -> list[str]:
    if data is None:
        return []
    return [f"Base data: {data['generated']} generated queries, {data['kept']} kept by the filter "
            f"(generated queries' sha256 {data['queries_sha256'][:12]}).", ""]


def _losses(curve: list[dict[str, float]]) -> str:
    """The logged loss at steps 10 and 100 and at the last step: the cross-encoder's loss stays
    on a plateau for about its first 100 steps, so a method that trains fewer steps stops early."""
    at = {point["step"]: point["loss"] for point in curve}
    return " / ".join(f"{at[s]:.3f}" if s in at else "-" for s in (10, 100, max(at, default=0)))


def _cell(row: dict[str, Any]) -> tuple[str, str]:
    sd = "" if row["sd"] is None else f" ± {row['sd']:.4f}"
    if row["difference"] is None:
        return f"{row['mean']:.4f}{sd}", ""
    low, high = row["ci95"] or (float("nan"), float("nan"))
    p = row["p_holm"]
    mark = "" if not _significant(row) else ("▲" if row["difference"] > 0 else "▼")
    p_text = "" if p is None else f", p {fmt_p(p, 3)}{mark}"
    return f"{row['mean']:.4f}{sd}", f"{row['difference']:+.4f} [{low:+.4f}, {high:+.4f}]{p_text}"




def main(argv: list[str] | None = None) -> int:
    """``python eval/experiments/methods_table.py TABLE.json``: writes ``TABLE.md`` again from
    the json (after a change to this rendering; the numbers are the json's)."""
    import argparse
    from pathlib import Path

    from inpars.io import write_text

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("table", type=Path)
    path = parser.parse_args(argv).table
    result, _ = load_table(path)
    write_text(path.with_suffix(".md"), render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
