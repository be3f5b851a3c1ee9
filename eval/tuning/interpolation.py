"""Choose the BM25 interpolation weight of the trained rerankers on *train* queries.

    python eval/tuning/interpolation.py configs/scifact.toml --queries 100

Needs a finished ``inpars run`` of the config up to ``train``. It draws a seeded sample of
the collection's train-split queries (``Workspace.dev_queries``: never the test split, never
a query used as a few-shot example in generation; held-out synthetic queries when the
collection has no train queries), retrieves BM25 top-``[rerank] depth`` for them, reranks
them with each model the train stage made and with the untuned encoder, and scores
``w * bm25 + (1 - w) * reranker`` (per-query min-max normalized,
:func:`inpars.evaluation.interpolate`) for w = 0, 0.1, ..., 1 with ranx.
With ``--mix`` it also scores every three-way mix of BM25, an encoder (the untuned one and
each trained one) and each trained cross-encoder, weights from 0.1 in steps of 0.1
(:func:`inpars.evaluation.interpolation.mix`, normalized over the cross-encoder's candidates,
as ``[evaluate] mix`` does). With ``--expanded`` as well, mixes of four: BM25, ``bm25-expanded``
(the run's expand stage index, documents with their synthetic queries appended, searched with
the dev queries), an encoder and a cross-encoder, still over the cross-encoder's candidates
(BM25's top ``depth``). ``--model NAME=KIND:PATH`` adds a model the run did not train (e.g.
the cross-encoder of another run, which a config reports as an external run).
Writes ``eval/tuning/<experiment>-interpolation.{json,md}``; the
chosen weights go into the config's ``[evaluate] interpolate`` and ``mix`` by hand, with this
file as their evidence.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from inpars.config import Config, EvaluateConfig, load_config
from inpars.evaluation.interpolation import interpolate, mix
from inpars.evaluation.metrics import evaluate_runs, mean_scores
from inpars.io import write_json, write_text
from inpars.pipeline import Workspace
from inpars.pipeline.stages import ZERO_SHOT_BI, RerankStage, trained_models
from inpars.records import ScoredPair
from inpars.reranking import SystemSpec, load_system, rerank

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
from dev_ablation import file_tag  # the experiment scripts' helpers
from scale import scaled_config

WEIGHTS = [round(0.1 * i, 1) for i in range(11)]
# BM25 / encoder / cross-encoder weights of a three-way mix: each at least 0.1, adding up to 1
MIX_WEIGHTS = [(a / 10, b / 10, round(1 - (a + b) / 10, 1)) for a in range(1, 9) for b in range(1, 10 - a)]
# BM25 / bm25-expanded / encoder / cross-encoder weights of a four-way mix (84 points)
MIX4_WEIGHTS = [(a / 10, e / 10, b / 10, round(1 - (a + e + b) / 10, 1))
                for a in range(1, 8) for e in range(1, 9 - a) for b in range(1, 10 - a - e)]
Scores = dict[str, dict[str, float]]


def as_run(scores: Scores) -> dict[str, list[ScoredPair]]:
    return {q: [ScoredPair(q, d, s) for d, s in docs.items()] for q, docs in scores.items()}


def mixes(base: Scores, reranked: dict[str, Scores], depth: int,
          expanded: Scores | None = None) -> dict[str, dict[str, list[ScoredPair]]]:
    """``bm25+<encoder>+<cross-encoder> w=a/b/c`` for every encoder, cross-encoder and weights;
    with ``expanded`` (bm25-expanded's scores) also ``bm25+expanded+<encoder>+<cross-encoder>
    w=a/e/b/c``."""
    encoders = [name for name in reranked if "+bi-" in name]
    cross = [name for name in reranked if "+ce-" in name]
    runs = {}
    for bi in encoders:
        for ce in cross:
            pair = f"{bi.removeprefix('bm25+')}+{ce.removeprefix('bm25+')}"
            for w in MIX_WEIGHTS:
                mixed = mix([base, reranked[bi], reranked[ce]], w, depth, head_from=2)
                runs[f"bm25+{pair} w={'/'.join(f'{x:g}' for x in w)}"] = as_run(mixed)
            for w in MIX4_WEIGHTS if expanded is not None else ():
                mixed = mix([base, expanded, reranked[bi], reranked[ce]], w, depth, head_from=3)
                runs[f"bm25+expanded+{pair} w={'/'.join(f'{x:g}' for x in w)}"] = as_run(mixed)
    return runs


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--queries", type=int, default=None,
                        help="dev queries (seeded train queries; default [data] dev_queries)")
    parser.add_argument("--depth", type=int, default=None,
                        help="BM25 candidates reranked per query (default [rerank] depth)")
    parser.add_argument("--systems", nargs="*", default=None,
                        help="tune only these systems (default: every trained model and the untuned encoder)")
    parser.add_argument("--model", dest="models", action="append", metavar="NAME=KIND:PATH", default=[],
                        help="(repeatable) also rerank with this model, e.g. bm25+ce-synthetic=cross-encoder:"
                             "runs/<exp>/train/cross-encoder (another run's, an external run here)")
    parser.add_argument("--mix", action="store_true",
                        help="also tune BM25 + encoder + cross-encoder mixes ([evaluate] mix)")
    parser.add_argument("--expanded", action="store_true",
                        help="with --mix: also mixes with bm25-expanded (needs the run's expand stage)")
    parser.add_argument("--docs", type=int, default=None,
                        help="tune the run of eval/experiments/scale.py --docs N (the config's recipe on N "
                             "documents, experiment <name>-docs<N>) instead of the config's own run")
    parser.add_argument("--dense-labels", nargs="+", default=None,
                        help="with --docs: the --dense-labels that scale.py was given")
    parser.add_argument("--set", dest="settings", nargs="+", metavar="SECTION.KEY=VALUE", default=None,
                        help="with --docs: the --set variant that scale.py was given")
    parser.add_argument("--variant", default="", help="with --set: the --tag that scale.py was given")
    parser.add_argument("--out", type=Path, default=Path("eval/tuning"))
    parser.add_argument("--tag", default="", type=file_tag,
                        help="output name suffix: <experiment>-interpolation-<tag>")
    return parser.parse_args(argv)


def _config(args: argparse.Namespace) -> Config:
    """The config of the run to tune: the file's, or scale.py's larger run of it (``--docs``)."""
    config = load_config(args.config)
    if args.docs is not None:
        config = scaled_config(config, args.docs, args.dense_labels, args.settings, args.variant)
    if args.queries is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, dev_queries=args.queries))
    return config


def _best(means: dict[str, float]) -> dict[str, str]:
    """Each tuned system's best weights (``<system> w=<weights>``), BM25 left out."""
    best: dict[str, str] = {}
    for system in sorted(means, key=lambda s: -means[s]):
        best.setdefault(system.rsplit(" w=", 1)[0], system)
    best.pop("bm25")
    best.pop("bm25-expanded", None)  # a first stage, not tuned
    return best


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    config = _config(args)
    experiment = Workspace(config)
    seed = config.experiment.seed
    queries, qrels = experiment.dev_queries()
    depth = args.depth or config.rerank.depth

    started = time.perf_counter()
    first, reranked, models = rerank_dev(experiment, queries, depth, args.systems, _specs(args.models))
    seconds = time.perf_counter() - started

    base = {q: {p.doc_id: p.score for p in pairs} for q, pairs in first.items()}
    runs = {"bm25": first}
    expanded = expanded_dev(experiment, queries, depth) if args.expanded else None
    if expanded is not None:
        runs["bm25-expanded"] = as_run(expanded)
    for name, scores in reranked.items():
        for weight in WEIGHTS[:-1]:
            runs[f"{name} w={weight}"] = as_run(interpolate(base, scores, weight))
    mixed = mixes(base, reranked, depth, expanded) if args.mix else {}
    means = mean_scores(qrels, {**runs, **mixed})
    best = _best(means)
    # paired tests against BM25: every interpolation weight, and each mix's best weights only
    # (the grid of a mix has 36 points; testing each pair of them is not needed)
    tested = runs | {system: mixed[system] for system in best.values() if system in mixed}
    ev = evaluate_runs(qrels, tested, EvaluateConfig(metrics=["ndcg@10", "recall@100"], fusion=[]), seed=seed)
    result = {
        "command": " ".join(["python", *sys.argv]) if argv is None else "interpolation.main",
        "experiment": config.experiment.name,
        "split": config.data.train_split,
        "dev_set": experiment.dev_set_kind(),
        "queries": len(ev.query_ids),
        "excluded_example_queries": len(experiment.example_query_ids()),
        "seed": seed,
        "models": {name: spec.model for name, spec in models.items()},
        "seconds": round(seconds, 1),
        "depth": depth,
        "ndcg@10": means,
        "p_vs_bm25": {s: ev.p_values[s]["ndcg@10"] for s in ev.others},
        "best": {name: system.rsplit("w=", 1)[1] for name, system in best.items()},
        "best_ndcg@10": {name: means[system] for name, system in best.items()},
        "note": "w is the weight of BM25; w=0.0 is the reranker alone, bm25 is w=1.0; a mix's w is "
                "BM25 / encoder / cross-encoder (BM25 / bm25-expanded / encoder / cross-encoder in "
                "bm25+expanded+...)",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{config.experiment.name}-interpolation{'-' + args.tag if args.tag else ''}"
    write_json(stem.with_suffix(".json"), result)
    text = render(result, ev.systems)
    write_text(stem.with_suffix(".md"), text)
    print(text)
    return 0


def _specs(models: list[str]) -> dict[str, SystemSpec]:
    """``--model NAME=KIND:PATH`` as system specs."""
    specs = {}
    for text in models:
        name, _, rest = text.partition("=")
        kind, _, model = rest.partition(":")
        if not (name and kind in ("cross-encoder", "bi-encoder") and Path(model).is_dir()):
            raise SystemExit(f"--model {text}: write NAME=KIND:PATH, KIND cross-encoder or bi-encoder, "
                             "PATH a model folder")
        specs[name] = SystemSpec(kind, model)
    return specs


def rerank_dev(experiment: Workspace, queries: list[Any], depth: int, only: list[str] | None = None,
               extra: dict[str, SystemSpec] | None = None
               ) -> tuple[dict[str, list[ScoredPair]], dict[str, Scores], dict[str, SystemSpec]]:
    """BM25's top ``depth`` for the dev queries, reranked by each trained model, the untuned
    encoder and the ``extra`` models."""
    config = experiment.config
    tuned = {*trained_models(experiment), ZERO_SHOT_BI}  # each system gets its own dev-best weight
    if only is not None:
        tuned &= set(only)
    models = {name: spec for name, spec in RerankStage().specs(experiment).items()
              if name in tuned and (name == ZERO_SHOT_BI or Path(spec.model).is_dir())} | (extra or {})
    reranked: dict[str, Scores] = {}
    with experiment.bm25() as bm25:
        first = bm25.search(queries, depth)
        for name, spec in models.items():
            run = rerank(first, queries, bm25, load_system(spec, config.rerank), depth)
            reranked[name] = {q: {p.doc_id: p.score for p in pairs} for q, pairs in run.items()}
    return first, reranked, models


def expanded_dev(experiment: Workspace, queries: list[Any], depth: int) -> Scores:
    """bm25-expanded's top ``depth`` for the dev queries: the run's expand stage index (the
    documents with their synthetic queries appended), searched as that stage searches the test
    queries. Dev queries are train-split queries, which never enter that index."""
    from inpars.indexing import Bm25Searcher

    if not experiment.finished("expand"):
        raise SystemExit(f"{experiment.stage_dir('expand')}: no expanded index. Fix: set [expand] enabled = "
                         "true and run `inpars expand CONFIG`, or leave out --expanded")
    from inpars.expansion import INDEX_DIR

    info = experiment.manifest("expand")["extra"]["bm25"]
    index = experiment.config.index
    # the index in this run's expand folder, not the path recorded there: a folder linked from
    # another run (inpars run --reuse, the experiment scripts) records that run's
    folder = experiment.stage_dir("expand") / INDEX_DIR
    with Bm25Searcher(folder, k1=info["k1"], b=info["b"]) as searcher:
        run = searcher.search(queries, depth, threads=index.threads, remove_self_hits=index.remove_self_hits)
    return {q: {p.doc_id: p.score for p in pairs} for q, pairs in run.items()}


def render(result: dict[str, Any], tested: list[str]) -> str:
    """The markdown page: every interpolation weight and each mix's best weights."""
    lines = [
        f"# {result['experiment']}: BM25 interpolation weight of the trained reranker",
        "",
        f"`{result['command']}`",
        "",
        f"{result['queries']} dev queries: {result['dev_set']} (seed {result['seed']}; few-shot "
        f"example queries excluded; training leaves them out), BM25 top-{result['depth']} "
        f"reranked by the trained models in {result['seconds']:.0f} s.",
        "w is BM25's weight in `w * bm25 + (1 - w) * reranker` (per-query min-max normalized); "
        "in a mix `bm25+X+Y`, w is the weights of BM25 / X / Y (in `bm25+expanded+X+Y`, of BM25 / "
        "bm25-expanded / X / Y; only each mix's best weights are "
        "listed; every point of its grid is in the json).",
        "",
        "| system | nDCG@10 | p vs bm25 |",
        "|---|---:|---:|",
    ]
    for system in tested:
        p = result["p_vs_bm25"].get(system)
        lines.append(f"| {system} | {result['ndcg@10'][system]:.4f} | {'' if p is None else f'{p:.4f}'} |")
    lines += [""] + [f"Best for {name}: w = {w} ({result['best_ndcg@10'][name]:.4f})."
                     for name, w in result["best"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
