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
are kept in ``<run>/methods-dev.json``. Writes ``<out>/<name>-methods.{json,md}`` after every
run, with every run's per-query scores. With ``--add`` it grows that table: the (method,
seed) runs it has are kept and not rerun, only those it lacks are run (and the runs they
start from, made again and compared with the table's: within ``DRIFT_LIMIT``, as another
machine's CPU trains slightly other models from the same data, else a stop), so that a table
too long for one session (each run takes 25 to 60 minutes on 2 cores) is built over several,
on fresh machines with the same base data; the rows of a table written before per-query
scores were kept stay as they are while its base scores are within that limit. ``--tag``
writes ``<name>-methods-<tag>.{json,md}``, a table of its own (e.g. on
another machine's base data).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inpars.config import Config, EvaluateConfig, load_config
from inpars.evaluation.interpolation import interpolate
from inpars.evaluation.metrics import evaluate_runs
from inpars.evaluation.worth import load_evaluation
from inpars.io import read_json, write_json, write_text
from inpars.pipeline import Executor, Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev_ablation import as_run, as_scores, file_tag  # the sibling scripts' helpers
from methods_table import Cells, compare, drift, legacy_base, legacy_rows, load_table, render
from scale import replaced_sections, stage_seconds
from seeds import SHARED_STAGES, link_shared_stages

log = logging.getLogger("methods")
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


def run_cell(config: Config, base: Workspace, method: str, seed: int, first_seed: int, depth: int,
             command: str) -> dict[str, Any]:
    """One run: ``method`` trained with ``seed``; its dev and test per-query scores, counts and
    times. Its data stages are hard-linked from the method's first-seed run where that is
    finished on this machine (a method's data is made once, with the experiment seed), else
    from the ``base`` method's first-seed run (its negatives are mined for the cross-encoder
    alone, as theirs; the executor rebuilds beside them what the method changes), and for
    ``base``'s first seed from the base run; a method that changes only ``[refine]`` also
    reuses the ``base`` method's train stage of its seed (the same model)."""
    ws = Workspace(method_config(config, method, seed), command=command)
    first = Workspace(method_config(config, method, first_seed))
    base_first = Workspace(method_config(config, "base", first_seed))
    if seed != first_seed and first.finished("negatives"):
        source = first
    else:
        source = base if method == "base" and seed == first_seed else base_first
    link_shared_stages(source, ws, SHARED_STAGES)
    if reuses_base_model(config, method):
        link_shared_stages(Workspace(method_config(config, "base", seed)), ws, ("train",))
    Executor(ws).run()  # the linked stages are checked: those the method changes run again
    kept = ws.manifest("filter").get("counts", {}).get("kept")
    scores = {"dev": dev_scores(ws, base, depth), "test": test_split_scores(ws)}
    return {"experiment": ws.name, **{split: {name: per_query[name] for name in ("alone", "interp")}
                                      for split, per_query in scores.items()},
            "kept": kept, "stage_seconds": stage_seconds(ws), **_training(ws), **_refined(ws)}


def reuses_base_model(config: Config, method: str) -> bool:
    """Whether ``method`` changes only ``[refine]``: it starts from the ``base`` method's model."""
    return method != "base" and set(METHODS[method](config)) <= {"refine"}


def pending(config: Config, cells: Cells, methods: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    """The (method, seed) runs to do, in order: those the table lacks, and the runs they start
    from, which rerun on a machine without them and are checked against the table's scores:
    ``base``'s first seed (every other method's data), a method's first seed when it makes
    data of its own (its other seeds retrain on that data, made once), ``base``'s seed for a
    method that reuses its model. The table's other runs are kept and not rerun."""
    missing = [(m, s) for m in methods for s in seeds if s not in cells.get(m, {})]
    needed = {("base", seeds[0])} if any(m != "base" for m, _ in missing) else set()
    needed |= {(m, seeds[0]) for m, _ in missing if makes_data(config, m)}
    needed |= {("base", s) for m, s in missing if reuses_base_model(config, m)}
    return [(m, s) for m in methods for s in seeds if (m, s) in needed or (m, s) in missing]


def why(method: str, seed: int, previous: dict[str, Any] | None, cells: Cells) -> str:
    """Why ``pending`` has a run, for the log: a run the table has is made again as the source
    of others' data, an older table's row without per-query scores is remade (an hour that
    ``--seeds`` did not ask for), any other is new."""
    if seed in cells.get(method, {}):
        return "made again: the data or model later runs start from"
    if previous is not None and seed in previous["runs"].get(method, {}):
        return "remade: the table's row has no per-query scores (an older table)"
    return "new"


def makes_data(config: Config, method: str) -> bool:
    """Whether ``method`` changes stages before training (its data is its own)."""
    return bool(set(METHODS[method](config)) - {"train", "refine"})


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
                        help="grow the existing table: keep its runs (not rerun) and its methods, run "
                             "only the (method, seed) runs it lacks (same base data; reruns within "
                             "DRIFT_LIMIT of the table's scores; Holm redone over all)")
    parser.add_argument("--tag", type=file_tag,
                        help="write <name>-methods-<tag>.{json,md}: a table of its own")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    command = " ".join(["python", *sys.argv]) if argv is None else "methods.main"
    config = load_config(args.config)
    base = Workspace(config, command=command)
    seeds = list(dict.fromkeys([config.experiment.seed, *args.seeds]))
    stem = args.out / "-".join([f"{config.experiment.name}-methods", *([args.tag] if args.tag else [])])
    settings = {
        "experiment": config.experiment.name, "seeds": seeds, "base_data": base_data(base),
        "dev_set": f"{config.data.dev_queries} {base.dev_set_kind()}, BM25 top {args.depth}",
        "test_set": f"{config.data.test_split} split, BM25 top {config.rerank.depth}",
        "interpolation_weight": config.evaluate.interpolate.get(CE, 0.5)}
    path = stem.with_suffix(".json")
    previous, cells = _previous(path, settings, config) if args.add else (None, {})
    if previous is not None:
        settings["seeds"] = [*previous["seeds"], *(s for s in seeds if s not in previous["seeds"])]
    table = Table(config, settings, [*_commands(previous), command], previous, path)
    todo = pending(config, cells, ["base", *args.methods], seeds)
    log.info("%d runs to do: %s", len(todo),
             ", ".join(f"{m} seed {s} ({why(m, s, previous, cells)})" for m, s in todo))
    for method, seed in todo:
        cell = run_cell(config, base, method, seed, seeds[0], args.depth, command)
        if seed in cells.get(method, {}):  # kept as it was; how far the rerun is, recorded
            table.drifts += rerun_drift(method, seed, cells[method][seed], cell, path)
        else:
            cells.setdefault(method, {})[seed] = cell
        table.write(cells)  # after every run: a stopped experiment keeps what it finished
    if not todo:
        table.write(cells)
    return 0


@dataclasses.dataclass
class Table:
    """The table a ``methods.py`` command writes, rewritten after each of its runs."""

    config: Config
    settings: dict[str, Any]
    commands: list[str]
    previous: dict[str, Any] | None  # the table ``--add`` grows
    path: Path
    started: float = dataclasses.field(default_factory=time.perf_counter)
    drifts: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # this command's reruns

    def write(self, cells: Cells) -> None:
        previous = self.previous or {"runs": {}, "overrides": {}, "seconds": 0.0}
        legacy, legacy_drift = legacy_rows(previous, cells, self.path) if self.previous else ([], [])
        names = [*cells, *(m for m in previous["runs"] if m not in cells)]
        order = [*(m for m in METHODS if m in names), *(m for m in names if m not in METHODS)]
        seeds = self.settings["seeds"]
        ordered = {m: {s: cells[m][s] for s in seeds if s in cells[m]} for m in order if m in cells}
        result = {
            "commands": self.commands, **self.settings,
            "overrides": {m: METHODS[m](self.config) if m in cells and m in METHODS
                          else previous["overrides"][m] for m in order},
            "rows": sorted(compare(ordered, legacy), key=lambda r: order.index(r["method"])),
            "runs": {m: ordered[m] if m in ordered else previous["runs"][m] for m in order},
            "seconds": round(previous["seconds"] + time.perf_counter() - self.started, 1),
        }
        if legacy:
            result["legacy_base"] = legacy_base(previous)
        drifts = [*previous.get("machine_drift", []), *legacy_drift, *self.drifts]
        if drifts:
            result["machine_drift"] = [dict(t) for t in dict.fromkeys(tuple(d.items()) for d in drifts)]
        write_json(self.path, result)
        write_text(self.path.with_suffix(".md"), render(result))


def _commands(previous: dict[str, Any] | None) -> list[str]:
    return [] if previous is None else previous.get("commands", [previous.get("command")])


def rerun_drift(method: str, seed: int, stored: dict[str, Any], cell: dict[str, Any],
                path: Path) -> list[dict[str, Any]]:
    """A run the table has, made again (the source of others' data), against the stored one:
    on the same dev and test queries, its mean scores within ``DRIFT_LIMIT`` (another
    machine's CPU trains slightly other models; more means another recipe or data)."""
    drifts = []
    for split in ("dev", "test"):
        for name in ("alone", "interp"):
            old, new = stored[split][name], cell[split][name]
            if old.keys() != new.keys():
                raise SystemExit(f"--add: {method} seed {seed} was scored on other {split} queries than in "
                                 f"{path}; use --tag for a table of its own")
            drifts.append(drift(method, seed, split, name, statistics.fmean(old.values()),
                                statistics.fmean(new.values()), path))
    return drifts


def base_data(base: Workspace) -> dict[str, Any]:
    """What the base run generated and kept, and the fingerprint of its generated queries: the
    same code and seed generated 1293 SciFact queries on the machine of the committed demo and
    1274 on another (llama.cpp is built for each machine's CPU), so a table's rows compare runs
    on one dataset only when this matches."""
    generate = base.manifest("generate")
    return {"generated": generate["counts"]["queries"], "kept": base.manifest("filter")["counts"]["kept"],
            "queries_sha256": generate["outputs"]["shards"]["sha256"]}


def _previous(path: Path, settings: dict[str, Any], config: Config) -> tuple[dict[str, Any] | None, Cells]:
    """The table ``--add`` grows and its runs with per-query scores, checked before an hour of
    training: made with the same dev and test sets, weight and base data (its seeds may be
    fewer or others; tables written before ``base_data`` was recorded are checked by their base
    scores, in ``legacy_rows``), and each of its methods with the settings it has now (a
    method's seeds are one recipe)."""
    if not path.is_file():
        return None, {}
    previous, cells = load_table(path)
    for key, value in settings.items():
        if key != "seeds" and previous.get(key, value) != value:
            raise SystemExit(f"--add: {path} has {key} = {previous[key]!r}, this run {value!r}; rerun "
                             "its methods with these settings without --add, or use --tag")
    for method in (m for m in cells if m in METHODS):
        if METHODS[method](config) != previous["overrides"][method]:
            raise SystemExit(f"--add: {path} ran {method} with {previous['overrides'][method]}, this config "
                             f"makes {METHODS[method](config)}: its seeds would mix two recipes; use --tag")
    return previous, cells


if __name__ == "__main__":
    raise SystemExit(main())
