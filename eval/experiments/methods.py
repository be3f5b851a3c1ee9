"""Issue 13's methods against the demo recipe: each one's effect on dev and test, over seeds.

    python eval/experiments/methods.py configs/scifact.toml --seeds 1 2 \
        --methods weighting-logprob weighting-margin critic neighbours refine

Needs a finished ``inpars run CONFIG`` (the base run): its data stages are hard-linked, and
the executor rebuilds (beside them) the stages a method's settings change. Each method is a
set of config overrides (``METHODS``); for each method, ``base`` (the config unchanged)
included, and each training seed (the experiment seed first, then ``--seeds``) it runs
experiment ``<name>-m-<method>[-seed<S>]`` with the cross-encoder alone trained (``[train]
dense = false``: the methods are measured on the model the synthetic data trains from
scratch; the encoders would triple the time). A method's data is made once, with the
experiment seed, and the other seeds retrain on it, as ``seeds.py`` does; ``refine`` alone
writes new queries per seed (from that seed's model).

Each run's cross-encoder is scored alone and interpolated with BM25 (the config's weight
for ``bm25+ce-synthetic``, the same for every method, not re-tuned) on the dev set (the base
run's: ``[data] dev_queries`` *train* queries, BM25 top ``--depth``) and on the test split
(the run's own evaluate stage, BM25 top ``[rerank] depth``). The demo's settings were chosen
on that same dev set and ``refine`` picks its round on it, so the dev columns lean towards
``base`` and ``refine``; the test columns are the held-out comparison. Each method is
compared with ``base``: paired t-test on per-query scores averaged over seeds, 95% CI, Holm
over every comparison of the table (the tests see query sampling, not the one synthetic
dataset a method makes). Resumable: each run skips its finished stages; a run's dev scores
are kept in ``<run>/methods-dev.json``. Writes ``<out>/<name>-methods.{json,md}``; with
``--add``, the methods of the existing table that this run does not measure are kept in it
(``merged``), so that a table is built over several sessions; ``--tag`` writes
``<name>-methods-<tag>.{json,md}``, a table of its own (e.g. on another machine's base data).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inpars.config import Config, EvaluateConfig, load_config
from inpars.evaluation.interpolation import interpolate
from inpars.evaluation.metrics import evaluate_runs, holm, mean_difference_ci
from inpars.evaluation.worth import load_evaluation, paired_t
from inpars.io import read_json, write_json, write_text
from inpars.pipeline import Executor, Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_ablation import as_run, as_scores, file_tag  # the sibling scripts' helpers
from methods_table import render
from scale import replaced_sections, stage_seconds
from seeds import SHARED_STAGES, link_shared_stages

CE = "bm25+ce-synthetic"
REFINED = "bm25+ce-refined"
Overrides = dict[str, dict[str, Any]]


def _with_critic(config: Config) -> list[str]:
    return [*(s for s in config.filter.steps if s != "critic"), "critic"]


# method -> the config overrides it makes (section -> key -> value), given the base config
METHODS: dict[str, Callable[[Config], Overrides]] = {
    "base": lambda c: {},
    "weighting-logprob": lambda c: {"train": {"weighting": "logprob"}},
    "weighting-margin": lambda c: {"train": {"weighting": "teacher_margin"}},
    "critic": lambda c: {"filter": {"steps": _with_critic(c)}},
    # the critic filter at the base's number of optimizer steps: keeping ``critic_keep`` of the
    # queries also cuts the steps of one epoch, so this separates what it keeps from how long it trains
    "critic-same-steps": lambda c: {
        "filter": {"steps": _with_critic(c)},
        "train": {"epochs": max(1, round(c.train.epochs / c.filter.critic_keep))}},
    "critic-weighting": lambda c: {"filter": {"steps": _with_critic(c)}, "train": {"weighting": "critic"}},
    "neighbours": lambda c: {"generate": {"template": "neighbours"}},
    "refine": lambda c: {"refine": {"rounds": 1, "model": "cross-encoder"}},
}


def method_config(config: Config, method: str, seed: int) -> Config:
    """Experiment ``<name>-m-<method>[-seed<S>]``: ``config`` with the method's overrides
    (checked by the config's own schema), the cross-encoder alone trained with ``seed``."""
    config = replaced_sections(config, METHODS[method](config), f"method {method}")
    suffix = "" if seed == config.experiment.seed else f"-seed{seed}"
    experiment = dataclasses.replace(config.experiment, name=f"{config.experiment.name}-m-{method}{suffix}",
                                     run_dir="", results_dir="")
    train = dataclasses.replace(config.train, dense=False, labels=["synthetic"],
                                seed=None if seed == config.experiment.seed else seed)
    rerank = dataclasses.replace(config.rerank, zero_shot=False)
    weight = config.evaluate.interpolate.get(CE, 0.5)  # refine picks its round by CE's weight too
    evaluate = dataclasses.replace(config.evaluate, interpolate={CE: weight, system(config): weight},
                                   mix={}, fusion=[])
    return dataclasses.replace(config, experiment=experiment, train=train, rerank=rerank, evaluate=evaluate)


def system(config: Config) -> str:
    """The cross-encoder system a method's run is judged by: the refined one when it refines."""
    return REFINED if config.refine.rounds > 0 else CE


def dev_scores(ws: Workspace, base: Workspace, depth: int) -> dict[str, dict[str, float]]:
    """Per-query dev nDCG@10 of ``ws``'s cross-encoder, alone and interpolated with BM25
    (kept in ``<run>/methods-dev.json``); the dev set is ``base``'s, the same for every run."""
    from inpars.pipeline.stages import RerankStage
    from inpars.reranking import load_system, rerank

    cache = ws.run_dir / "methods-dev.json"
    model = RerankStage().specs(ws)[system(ws.config)]
    weight = ws.config.evaluate.interpolate[system(ws.config)]
    key = {"model_trained": _trained_at(Path(model.model)), "depth": depth, "weight": weight}
    cached = read_json(cache) if cache.is_file() else {}
    if {k: cached.get(k) for k in key} == key:
        return cached["per_query"]
    queries, qrels = base.dev_queries()
    with base.bm25() as bm25:
        first = bm25.search(queries, depth)
        reranked = rerank(first, queries, bm25, load_system(model, ws.config.rerank), depth)
    runs = {"bm25": first, "alone": reranked,
            "interp": as_run(interpolate(as_scores(first), as_scores(reranked), weight, depth))}
    cfg = EvaluateConfig(metrics=["ndcg@10"], fusion=[])
    ev = evaluate_runs(qrels, runs, cfg, seed=ws.config.experiment.seed)
    per_query = {name: ev.per_query[name]["ndcg@10"] for name in runs}
    write_json(cache, {**key, "per_query": per_query})
    return per_query


def _trained_at(model: Path) -> float:
    """The model folder's modification time: a retrained model invalidates its dev scores."""
    return model.stat().st_mtime


def _refined(ws: Workspace) -> dict[str, Any]:
    """The refine stage's round choice (on the dev set itself) and why it stopped."""
    if ws.config.refine.rounds == 0:
        return {}
    extra = ws.manifest("refine").get("extra", {})
    return {"refine_best_round": extra.get("best_round"), "refine_stopped": extra.get("stopped")}


def _training(ws: Workspace) -> dict[str, Any]:
    """The cross-encoder's optimizer steps and loss curve (train manifest), and the critic's
    held-out accuracy where the filter ran one (filter manifest)."""
    ce = ws.manifest("train").get("extra", {}).get("cross_encoder", {})
    critic = ws.manifest("filter").get("extra", {}).get("critic", {})
    return {"steps": ce.get("steps"), "loss_curve": ce.get("loss_curve", []),
            "critic_accuracy": critic.get("accuracy"), "critic_roc_auc": critic.get("roc_auc")}


def test_split_scores(ws: Workspace) -> dict[str, dict[str, float]]:
    """Per-query test nDCG@10 of the run's cross-encoder, alone and interpolated, and BM25."""
    ev = load_evaluation(ws.stage_dir("evaluate"))
    metric, name = ev.metrics[0], system(ws.config)
    return {"bm25": ev.per_query["bm25"][metric], "alone": ev.per_query[name][metric],
            "interp": ev.per_query[f"{name}+interp"][metric]}


def run_method(config: Config, base: Workspace, method: str, seeds: list[int], depth: int,
               command: str, trained: dict[int, Workspace]) -> dict[int, dict[str, Any]]:
    """Every seed's run of ``method``: its dev and test per-query scores, counts and times.
    ``trained``: the ``base`` method's run per seed, filled in by its own call. The first
    seed's data stages come from ``base`` for the ``base`` method, from its first run for the
    others (its negatives are mined for the cross-encoder alone, as theirs), the other
    seeds' from the method's first run; a method that changes only ``[refine]`` also reuses
    the ``base`` method's train stage (the same model)."""
    runs: dict[int, dict[str, Any]] = {}
    first: Workspace | None = None
    for seed in seeds:
        ws = Workspace(method_config(config, method, seed), command=command)
        source = first or (base if method == "base" else trained[seeds[0]])
        link_shared_stages(source, ws, SHARED_STAGES)
        if method != "base" and set(METHODS[method](config)) <= {"refine"}:
            link_shared_stages(trained[seed], ws, ("train",))
        Executor(ws).run()  # the linked stages are checked: those the method changes run again
        first = first or ws
        if method == "base":
            trained[seed] = ws
        kept = ws.manifest("filter").get("counts", {}).get("kept")
        runs[seed] = {"experiment": ws.name, "dev": dev_scores(ws, base, depth),
                      "test": test_split_scores(ws), "kept": kept, "stage_seconds": stage_seconds(ws),
                      **_training(ws), **_refined(ws)}
    return runs


def compare(results: dict[str, dict[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per method, split and system (alone / interp): mean ± sd over seeds, and for each
    method but ``base`` the difference with base (per-query means over seeds), its 95% CI
    and paired t; Holm over every difference of the table."""
    rows: list[dict[str, Any]] = []
    for method, runs in results.items():
        for split in ("dev", "test"):
            for name in ("alone", "interp"):
                rows.append(_row(method, split, name, runs, results["base"]))
    _holm(rows)
    return rows


def _holm(rows: list[dict[str, Any]]) -> None:
    """Sets each tested row's ``p_holm``: Holm over every difference of the table."""
    tested = [r for r in rows if r["p"] is not None]
    for row, adjusted in zip(tested, holm([r["p"] for r in tested]), strict=True):
        row["p_holm"] = adjusted


def merged(result: dict[str, Any], previous: dict[str, Any], source: Path) -> dict[str, Any]:
    """``result`` with the methods of ``previous`` (this experiment's earlier table, read from
    ``source`` and checked by ``_previous``) that it did not measure, so that a table too long
    for one session (each method takes about 25 minutes per seed on 2 cores) is built over
    several. Only where their ``base`` rows agree (training is deterministic, so equal base
    scores mean the same base models, and the earlier differences with base still hold); Holm
    is redone over every difference of the union."""
    old, new = _base_scores(previous), _base_scores(result)
    if old.keys() != new.keys() or any(not math.isclose(a, b, abs_tol=1e-9)
                                       for k in old for a, b in zip(old[k], new[k], strict=True)):
        raise SystemExit(f"--add: base scores {new} differ from those in {source} ({old}): the base "
                         "models are not the ones its methods were compared with; rerun every method "
                         "without --add")
    kept = [m for m in previous["overrides"] if m not in result["overrides"]]
    order = [*(m for m in METHODS if m in result["overrides"] or m in kept),
             *(m for m in kept if m not in METHODS)]  # a method since renamed or removed
    rows = sorted([*result["rows"], *(r for r in previous["rows"] if r["method"] in kept)],
                  key=lambda r: order.index(r["method"]))
    _holm(rows)
    both = {key: {m: (result if m in result[key] else previous)[key][m] for m in order}
            for key in ("overrides", "runs")}
    return {**result, **both, "rows": rows,
            "commands": [*previous.get("commands", [previous.get("command")]), *result["commands"]],
            "seconds": round(previous["seconds"] + result["seconds"], 1)}


def _base_scores(result: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    return {(r["split"], r["system"]): r["per_seed"] for r in result["rows"] if r["method"] == "base"}


def _row(method: str, split: str, name: str, runs: dict[int, dict[str, Any]],
         base: dict[int, dict[str, Any]]) -> dict[str, Any]:
    per_seed = [statistics.fmean(run[split][name].values()) for run in runs.values()]
    row: dict[str, Any] = {"method": method, "split": split, "system": name, "seeds": list(runs),
                           "per_seed": per_seed, "mean": statistics.fmean(per_seed),
                           "sd": statistics.stdev(per_seed) if len(per_seed) > 1 else None,
                           "difference": None, "ci95": None, "p": None, "p_holm": None}
    if method != "base":
        mine, theirs = _seed_mean(runs, split, name), _seed_mean(base, split, name)
        if mine.keys() != theirs.keys():
            raise SystemExit(f"{method} and base were scored on different {split} queries")
        deltas = [mine[q] - theirs[q] for q in sorted(mine)]
        ci = mean_difference_ci(deltas)
        row.update(difference=statistics.fmean(deltas), ci95=None if ci is None else list(ci),
                   p=paired_t(deltas))
    return row


def _seed_mean(runs: dict[int, dict[str, Any]], split: str, name: str) -> dict[str, float]:
    """Query id -> its score averaged over the seeds."""
    scores = [run[split][name] for run in runs.values()]
    return {q: statistics.fmean(s[q] for s in scores) for q in scores[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--methods", nargs="+", default=[m for m in METHODS if m != "base"],
                        choices=[m for m in METHODS if m != "base"])
    parser.add_argument("--seeds", type=int, nargs="*", default=[],
                        help="training seeds besides the experiment seed")
    parser.add_argument("--depth", type=int, default=100, help="BM25 candidates reranked per dev query")
    parser.add_argument("--out", type=Path, default=Path("eval/experiments"))
    parser.add_argument("--add", action="store_true",
                        help="keep the methods of the existing table that this run does not measure "
                             "(same seeds, base data and base scores; Holm redone over all)")
    parser.add_argument("--tag", type=file_tag,
                        help="write <name>-methods-<tag>.{json,md}: a table of its own")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    command = " ".join(["python", *sys.argv]) if argv is None else "methods.main"
    config = load_config(args.config)
    base = Workspace(config, command=command)
    seeds = [config.experiment.seed, *(s for s in args.seeds if s != config.experiment.seed)]
    stem = args.out / "-".join([f"{config.experiment.name}-methods", *([args.tag] if args.tag else [])])
    settings = {
        "experiment": config.experiment.name, "seeds": seeds, "base_data": base_data(base),
        "dev_set": f"{config.data.dev_queries} {base.dev_set_kind()}, BM25 top {args.depth}",
        "test_set": f"{config.data.test_split} split, BM25 top {config.rerank.depth}",
        "interpolation_weight": config.evaluate.interpolate.get(CE, 0.5)}
    previous = _previous(stem.with_suffix(".json"), settings) if args.add else None
    started = time.perf_counter()
    trained: dict[int, Workspace] = {}
    results = {method: run_method(config, base, method, seeds, args.depth, command, trained)
               for method in ["base", *args.methods]}
    result = {
        "commands": [command], **settings,
        "overrides": {m: METHODS[m](config) for m in results}, "rows": compare(results),
        "runs": {m: {seed: {k: v for k, v in run.items() if k not in ("dev", "test")}
                     for seed, run in runs.items()} for m, runs in results.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    if previous is not None:
        result = merged(result, previous, stem.with_suffix(".json"))
    write_json(stem.with_suffix(".json"), result)
    write_text(stem.with_suffix(".md"), render(result))
    return 0


def base_data(base: Workspace) -> dict[str, Any]:
    """What the base run generated and kept, and the fingerprint of its generated queries: the
    same code and seed generated 1293 SciFact queries on the machine of the committed demo and
    1274 on another (llama.cpp is built for each machine's CPU), so a table's rows compare runs
    on one dataset only when this matches."""
    generate = base.manifest("generate")
    return {"generated": generate["counts"]["queries"], "kept": base.manifest("filter")["counts"]["kept"],
            "queries_sha256": generate["outputs"]["shards"]["sha256"]}


def _previous(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The table ``--add`` adds to, checked before an hour of training: made with the same
    seeds, dev and test sets, weight and base data (tables written before ``base_data`` was
    recorded are checked by their base scores only, at the end, in ``merged``)."""
    if not path.is_file():
        return None
    previous = read_json(path)
    for key, value in settings.items():
        if previous.get(key, value) != value:
            raise SystemExit(f"--add: {path} has {key} = {previous[key]!r}, this run {value!r}; rerun "
                             "its methods with these settings without --add, or use --tag")
    return previous


if __name__ == "__main__":
    raise SystemExit(main())
