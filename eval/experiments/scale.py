"""What more synthetic data is worth: the same recipe generating for more documents.

    python eval/experiments/scale.py configs/scifact.toml --docs 2000 --dense-labels synthetic

Needs a finished ``inpars run CONFIG`` (the base run). Runs experiment ``<name>-docs<N>``:
the base config with ``[generate] num_docs = N`` (a new seeded sample of documents, so every
stage from ``generate`` on runs again; the index folder is hard-linked from the base run and
checked, not rebuilt). ``--dense-labels`` narrows the encoders trained (``[train]
dense_labels``), e.g. to leave out the real-label encoder, which more synthetic data does not
change. Every other setting, the interpolation weights included, is the base config's: chosen
on the dev set (train queries) for the base run's data, not re-tuned here. Resumable: a
killed run goes on from its last finished stage.

Writes ``eval/experiments/<name>-docs<N>.{json,md}``: per system present in both runs, the
test score of the base run and of the larger one, their paired t-test (Holm over the
systems compared), and the larger run's worth table and stage times. The test queries are
only scored here.

``--set SECTION.KEY=VALUE ...`` (``[generate]``, ``[negatives]`` or ``[train]`` settings, e.g.
``generate.template=neighbours``, ``negatives.window_start=1`` or ``train.epochs=2``; the number
of documents is ``--docs``'s) runs experiment ``<name>-docs<N>-<tag>``
instead: the larger run's data (its index, generate, filter, expand and negatives folders
hard-linked; that run must be finished; a stage whose settings changed runs again beside its
linked folder) with those settings, compared with that larger run rather than with the base run.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from inpars.config import Config, load_config
from inpars.errors import ConfigError
from inpars.evaluation.metrics import Evaluation, holm, mean_difference_ci
from inpars.evaluation.report_md import md_table
from inpars.evaluation.tables import fmt_p
from inpars.evaluation.worth import load_evaluation, paired_t, worth_json, worth_section, worth_table
from inpars.io import read_json, write_json, write_text
from inpars.pipeline import Executor, Workspace
from inpars.schema import section_from_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_ablation import file_tag  # the sibling scripts' helpers
from seeds import link_shared_stages


def scaled_config(config: Config, docs: int, dense_labels: list[str] | None,
                  settings: list[str] | None = None, tag: str = "") -> Config:
    """Experiment ``<name>-docs<N>``: the base config generating for ``docs`` documents; with
    ``settings`` (``SECTION.KEY=VALUE`` overrides), ``<name>-docs<N>-<tag>``."""
    suffix = f"docs{docs}" if docs else "docs-all"  # num_docs = 0: every document
    if settings:
        if not tag:
            raise SystemExit("--set needs a --tag naming the variant (its experiment name suffix)")
        suffix += f"-{tag}"
        config = overridden_config(config, settings)
    experiment = dataclasses.replace(config.experiment, name=f"{config.experiment.name}-{suffix}",
                                     results_dir="")
    train = config.train
    if dense_labels == ["none"]:  # no encoder trained at all
        train = dataclasses.replace(train, dense=False)
    elif dense_labels is not None:
        train = dataclasses.replace(train, dense_labels=list(dense_labels))  # type: ignore[arg-type]
    generate = dataclasses.replace(config.generate, num_docs=docs)
    trained = train.dense_labels if train.dense else []
    dropped = {f"bm25+bi-{labels}" for labels in ("synthetic", "real", "both") if labels not in trained}
    dropped |= {"dense-synthetic"} if not train.dense else set()
    cfg = config.evaluate  # no weight, mix or fusion naming an encoder this run does not train
    evaluate = dataclasses.replace(
        cfg, interpolate={k: w for k, w in cfg.interpolate.items() if k not in dropped},
        mix={k: m for k, m in cfg.mix.items() if not dropped & set(m)},
        fusion=[group for group in cfg.fusion if not dropped & set(group)])
    return dataclasses.replace(config, experiment=experiment, generate=generate, train=train,
                               evaluate=evaluate)


VARIABLE_SECTIONS = ("generate", "negatives", "train")  # the sections --set may change


def overridden_config(config: Config, overrides: list[str]) -> Config:
    """``config`` with ``SECTION.KEY=VALUE`` overrides, checked by the config's own schema
    (:func:`inpars.schema.section_from_dict`: unknown keys, types and ranges)."""
    tables: dict[str, dict[str, Any]] = {}
    for item in overrides:
        name, sep, raw = item.partition("=")
        section, _, key = name.partition(".")
        if not sep or not key or section not in VARIABLE_SECTIONS:
            raise SystemExit(f"--set {item!r}: expected SECTION.KEY=VALUE with SECTION one of "
                             f"{', '.join(VARIABLE_SECTIONS)}, e.g. train.epochs=2")
        if name == "generate.num_docs":  # scaled_config sets it from --docs, after the overrides
            raise SystemExit(f"--set {item!r}: the number of documents is --docs's; drop it from --set")
        tables.setdefault(section, {})[key] = _toml_value(raw)
    return replaced_sections(config, tables, "--set")


def replaced_sections(config: Config, tables: dict[str, dict[str, Any]], origin: str) -> Config:
    """``config`` with ``tables`` (section -> key -> value) over its sections, each section
    checked by the config's own schema (:func:`inpars.schema.section_from_dict`)."""
    sections = {}
    for section, values in tables.items():
        current = getattr(config, section)
        table = {f.name: getattr(current, f.name) for f in dataclasses.fields(current)} | values
        try:
            sections[section] = section_from_dict(type(current), table, f"{origin} [{section}]")
        except ConfigError as error:
            raise SystemExit(str(error)) from None
    return dataclasses.replace(config, **sections)


def _toml_value(raw: str) -> Any:
    """``raw`` read as a TOML value (``2``, ``1e-4``, ``true``, ``["a"]``); a bare word or a
    path that is not TOML stays a string."""
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def dev_weights(config: Config, path: Path) -> Config:
    """``config`` with the weights chosen on the dev set in ``path`` (a json of
    ``eval/tuning/interpolation.py --docs N --mix``): each reranker's BM25 weight, and the mix
    that scored best there (as the demo keeps its dev-best mix)."""
    tuned = read_json(path)
    if tuned.get("experiment") != config.experiment.name:
        raise SystemExit(f"{path} tuned {tuned.get('experiment')!r}, not {config.experiment.name!r}. "
                         "Fix: run eval/tuning/interpolation.py with the same --docs and --dense-labels")
    best, scores = tuned["best"], tuned["best_ndcg@10"]
    weights = {name: float(w) for name, w in best.items() if "/" not in w}
    mixes = [name for name, w in best.items() if "/" in w]
    mix = {}
    if mixes:
        top = max(mixes, key=lambda name: scores[name])
        encoder, cross = top.removeprefix("bm25+").split("+", 1)
        parts = [float(x) for x in best[top].split("/")]
        mix = {top: dict(zip(("bm25", f"bm25+{encoder}", f"bm25+{cross}"), parts, strict=True))}
    evaluate = dataclasses.replace(config.evaluate, interpolate=weights, mix=mix)
    return dataclasses.replace(config, evaluate=evaluate)


def compare_runs(base: Evaluation, scaled: Evaluation, metric: str) -> list[dict[str, Any]]:
    """Each system of both runs: base and scaled score, difference, CI, paired t, Holm."""
    if base.query_ids != scaled.query_ids:
        raise SystemExit("the two runs were evaluated on different queries: rerun both evaluate stages")
    rows: list[dict[str, Any]] = []
    for system in (s for s in scaled.systems if s in base.systems):
        mine = [scaled.per_query[system][metric][q] for q in scaled.query_ids]
        theirs = [base.per_query[system][metric][q] for q in base.query_ids]
        deltas = [a - b for a, b in zip(mine, theirs, strict=True)]
        if all(d == 0 for d in deltas):
            continue  # untouched by the data (bm25, the zero-shot encoder): nothing to test
        ci = mean_difference_ci(deltas)
        rows.append({"system": system, "base": base.means[system][metric],
                     "scaled": scaled.means[system][metric], "difference": statistics.fmean(deltas),
                     "ci95": None if ci is None else list(ci), "p": paired_t(deltas)})
    for row, adjusted in zip(rows, holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = adjusted
    return rows


def stage_seconds(ws: Workspace) -> dict[str, float]:
    """Each finished stage's wall time from its manifest."""
    manifests = {stage: ws.manifest(stage) for stage in ws.graph.names if ws.finished(stage)}
    return {stage: round(float(m["timings"]["total"]), 1) for stage, m in manifests.items()
            if "total" in m.get("timings", {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--docs", type=int, required=True, help="documents to generate for (0: every one)")
    parser.add_argument("--dense-labels", nargs="+", choices=["synthetic", "real", "both", "none"],
                        help="the encoders to train (default: the config's [train] dense_labels; "
                             "none: no encoder, [train] dense = false)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="the dev-set tuning of the larger run (eval/tuning/interpolation.py --docs N "
                             "--mix json): its weights replace the base config's")
    parser.add_argument("--set", dest="settings", nargs="+", metavar="SECTION.KEY=VALUE",
                        help="[generate] / [negatives] / [train] settings of a variant of the larger "
                             "run (needs --tag)")
    parser.add_argument("--tag", default="", type=file_tag, help="with --set: the variant's name")
    parser.add_argument("--out", type=Path, default=Path("eval/experiments"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    command = " ".join(["python", *sys.argv]) if argv is None else "scale.main"
    config = load_config(args.config)
    started = time.perf_counter()
    if args.settings:  # a variant: compared with the larger run as it stands (its own weights)
        base = Workspace(scaled_config(config, args.docs, args.dense_labels), command=command)
        shared: tuple[str, ...] = ("index", "generate", "filter", "expand", "negatives")
    else:
        base = Workspace(config, command=command)
        Executor(base).run()  # skips what the base run finished
        shared = ("index",)
    scaled = scaled_config(config, args.docs, args.dense_labels, args.settings, args.tag)
    if args.weights is not None:
        scaled = dev_weights(scaled, args.weights)
    ws = Workspace(scaled, command=command)
    link_shared_stages(base, ws, shared)  # each must be finished in base
    Executor(ws).run()
    before, after = load_evaluation(base.stage_dir("evaluate")), load_evaluation(ws.stage_dir("evaluate"))
    metric = after.metrics[0]
    table = worth_table([after], metric)
    result = {
        "command": command, "experiment": ws.config.experiment.name, "split": config.data.test_split,
        "metric": metric, "docs": {"base": base.config.generate.num_docs, "scaled": args.docs},
        "settings": {"base": {s: dataclasses.asdict(getattr(base.config, s)) for s in VARIABLE_SECTIONS},
                     "scaled": {s: dataclasses.asdict(getattr(ws.config, s)) for s in VARIABLE_SECTIONS}},
        "seconds": round(time.perf_counter() - started, 1),
        "stage_seconds": {"base": stage_seconds(base), "scaled": stage_seconds(ws)},
        "kept_queries": {"base": _kept(base), "scaled": _kept(ws)},
        "weights": {"from": str(args.weights) if args.weights else "the base config (not re-tuned)",
                    "interpolate": scaled.evaluate.interpolate, "mix": scaled.evaluate.mix},
        "systems": compare_runs(before, after, metric), "worth": worth_json(table),
    }
    stem = args.out / ws.config.experiment.name
    write_json(stem.with_suffix(".json"), result)
    write_text(stem.with_suffix(".md"), render(result, md_table(worth_section(table))))
    return 0


def _kept(ws: Workspace) -> int:
    """Queries the filter kept (its manifest's count)."""
    counts = ws.manifest("filter").get("counts", {})
    return int(counts.get("kept", 0))


def _weights_text(weights: dict[str, Any]) -> str:
    if weights["from"].startswith("the base config"):
        return "the base config's, chosen on the dev set for the base run's data, not re-tuned"
    chosen = ", ".join(f"{k} {v}" for k, v in weights["interpolate"].items())
    mixes = "; ".join(f"{k} {'/'.join(f'{w:g}' for w in v.values())}" for k, v in weights["mix"].items())
    return (f"chosen on the dev set (train queries) for this run's models, `{weights['from']}` "
            f"(BM25's weight: {chosen}; mix {mixes or 'none'})")


def _columns(result: dict[str, Any]) -> tuple[str, str, str]:
    """The report's title and its two runs' column names: by documents, or for a ``--set``
    variant by the settings that differ."""
    docs = {k: v or "all" for k, v in result["docs"].items()}  # 0: every document
    settings = result.get("settings", {"base": {}, "scaled": {}})
    changed = [(s, k) for s, values in settings["scaled"].items() for k, v in values.items()
               if settings["base"][s].get(k) != v and (s, k) != ("generate", "num_docs")]
    if not changed:
        return (f"{docs['scaled']} documents instead of {docs['base']}", f"{docs['base']} docs",
                f"{docs['scaled']} docs")
    base, scaled = (", ".join(f"{s}.{k}={settings[run][s][k]}" for s, k in changed)
                    for run in ("base", "scaled"))
    return (f"{scaled} instead of {base} ({docs['scaled']} documents)", base, scaled)


def render(result: dict[str, Any], worth: str) -> str:
    metric = result["metric"]
    title, base_name, scaled_name = _columns(result)
    lines = [
        f"# {result['experiment']}: {title}", "",
        f"`{result['command']}`", "",
        f"{result['split']} split, {metric}, one training seed. Same recipe and settings as the base "
        f"run; interpolation and mix weights: {_weights_text(result['weights'])}; queries kept by the "
        f"filter: {result['kept_queries']['base']} -> "
        f"{result['kept_queries']['scaled']}. Paired t-tests over the test queries, Holm over the "
        f"{len(result['systems'])} systems the data changes.", "",
        f"| system | {base_name} | {scaled_name} | difference | 95% CI | p (Holm) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in result["systems"]:
        low, high = row["ci95"] or (float("nan"), float("nan"))
        p = "" if row["p_holm"] is None else fmt_p(row["p_holm"], 3)
        lines.append(f"| {row['system']} | {row['base']:.4f} | {row['scaled']:.4f} | "
                     f"{row['difference']:+.4f} | [{low:+.4f}, {high:+.4f}] | {p} |")
    lines += ["", f"## Worth table of the {scaled_name} run", "", worth, "",
              "## Stage seconds", "", f"| stage | {base_name} | {scaled_name} |",
              "|---|---:|---:|"]
    base_s, scaled_s = result["stage_seconds"]["base"], result["stage_seconds"]["scaled"]
    for stage in scaled_s:
        lines.append(f"| {stage} | {base_s.get(stage, '')} | {scaled_s[stage]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
