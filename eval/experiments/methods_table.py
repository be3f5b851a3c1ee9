"""The markdown of ``methods.py``'s table: from its json result alone, so that a table is
re-rendered without rerunning anything."""

from __future__ import annotations

from typing import Any

from inpars.evaluation.tables import fmt_p


def render(result: dict[str, Any]) -> str:
    seeds = result["seeds"]
    lines = [
        f"# {result['experiment']}: each method against the demo recipe, {len(seeds)} training "
        f"seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))})", "",
        *(f"`{command}`" for command in result["commands"]), "",
        *_data_line(result.get("base_data")),
        f"nDCG@10 of the cross-encoder trained on each method's synthetic data (the refined one for "
        f"`refine`), alone and interpolated with BM25 (BM25 weight {result['interpolation_weight']}, "
        f"the config's, the same for every method). Dev: {result['dev_set']}. Test: "
        f"{result['test_set']}. Mean ± sd over seeds; difference with `base` on per-query scores "
        "averaged over seeds, 95% CI, paired t-test, Holm over every difference in this file; "
        "▲/▼ significant at 0.05; the tests see query sampling over the seeds' mean, not the one "
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
    dev_best = max((r for r in result["rows"] if r["split"] == "dev" and r["system"] == "interp"),
                   key=lambda r: r["mean"])
    lines += [f"Best on dev (+BM25, mean over seeds): `{dev_best['method']}`.", "", "## Settings", "",
              "| method | overrides | kept queries | cross-encoder steps | loss at steps 10 / 100 / last "
              "| critic held-out accuracy / ROC AUC | experiment (first seed) |",
              "|---|---|---:|---:|---|---|---|"]
    for method, overrides in result["overrides"].items():
        first = next(iter(result["runs"][method].values()))
        refined = [f"{seed}: round {run['refine_best_round']}" for seed, run in result["runs"][method].items()
                   if "refine_best_round" in run]
        note = f" (rounds kept: {', '.join(refined)})" if refined else ""
        critic = (f"{first['critic_accuracy']:.3f} / {first['critic_roc_auc']:.3f}"
                  if first["critic_accuracy"] is not None else "")
        lines.append(f"| {method} | `{overrides or 'none'}`{note} | {first['kept']} | {first['steps']} | "
                     f"{_losses(first['loss_curve'])} | {critic} | {first['experiment']} |")
    return "\n".join(lines) + "\n"


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
    mark = "" if p is None or p >= 0.05 else ("▲" if row["difference"] > 0 else "▼")
    p_text = "" if p is None else f", p {fmt_p(p, 3)}{mark}"
    return f"{row['mean']:.4f}{sd}", f"{row['difference']:+.4f} [{low:+.4f}, {high:+.4f}]{p_text}"


