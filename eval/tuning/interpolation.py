"""Choose the BM25 interpolation weight of the trained rerankers on *train* queries.

    python eval/tuning/interpolation.py configs/scifact.toml --queries 100

Needs a finished ``inpars run`` of the config up to ``train``. It draws a seeded sample of
the collection's train-split queries (``Workspace.dev_queries``: never the test split, never
a query used as a few-shot example in generation; held-out synthetic queries when the
collection has no train queries), retrieves BM25 top-``[rerank] depth`` for them, reranks
them with each model the train stage made and with the untuned encoder, and scores
``w * bm25 + (1 - w) * reranker`` (per-query min-max normalized,
:func:`inpars.evaluation.interpolate`) for w = 0, 0.1, ..., 1 with ranx.
Writes ``eval/tuning/<experiment>-interpolation.{json,md}``; the chosen weight goes into the
config's ``[evaluate] interpolate`` by hand, with this file as its evidence.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from inpars.config import EvaluateConfig, load_config
from inpars.evaluation.interpolation import interpolate
from inpars.evaluation.metrics import evaluate_runs
from inpars.io import write_json
from inpars.pipeline import Workspace
from inpars.pipeline.stages import ZERO_SHOT_BI, RerankStage, trained_models
from inpars.records import ScoredPair
from inpars.reranking import load_system, rerank

WEIGHTS = [round(0.1 * i, 1) for i in range(11)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--queries", type=int, default=None,
                        help="dev queries (seeded train queries; default [data] dev_queries)")
    parser.add_argument("--out", type=Path, default=Path("eval/tuning"))
    args = parser.parse_args(argv)

    config = load_config(args.config)
    if args.queries is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, dev_queries=args.queries))
    experiment = Workspace(config)
    seed = config.experiment.seed
    queries, qrels = experiment.dev_queries()

    tuned = {*trained_models(experiment), ZERO_SHOT_BI}  # each system gets its own dev-best weight
    models = {name: spec for name, spec in RerankStage().specs(experiment).items()
              if name in tuned and (name == ZERO_SHOT_BI or Path(spec.model).is_dir())}
    started = time.perf_counter()
    reranked: dict[str, dict[str, dict[str, float]]] = {}
    with experiment.bm25() as bm25:
        first = bm25.search(queries, config.rerank.depth)
        for name, spec in models.items():
            run = rerank(first, queries, bm25, load_system(spec, config.rerank), config.rerank.depth)
            reranked[name] = {q: {p.doc_id: p.score for p in pairs} for q, pairs in run.items()}
    seconds = time.perf_counter() - started

    base = {q: {p.doc_id: p.score for p in pairs} for q, pairs in first.items()}
    runs = {"bm25": first}
    for name, scores in reranked.items():
        for weight in WEIGHTS[:-1]:
            mixed = interpolate(base, scores, weight)
            runs[f"{name} w={weight}"] = {
                q: [ScoredPair(q, d, s) for d, s in docs.items()] for q, docs in mixed.items()
            }
    ev = evaluate_runs(qrels, runs, EvaluateConfig(metrics=["ndcg@10", "recall@100"], fusion=[]), seed=seed)
    best = {
        name: max((s for s in ev.others if s.startswith(f"{name} w=")), key=lambda s: ev.means[s]["ndcg@10"])
        for name in reranked
    }
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
        "ndcg@10": {s: ev.means[s]["ndcg@10"] for s in ev.systems},
        "p_vs_bm25": {s: ev.p_values[s]["ndcg@10"] for s in ev.others},
        "best": {name: float(system.rsplit("w=", 1)[1]) for name, system in best.items()},
        "note": "w is the weight of BM25; w=0.0 is the reranker alone, bm25 is w=1.0",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{config.experiment.name}-interpolation"
    write_json(stem.with_suffix(".json"), result)
    lines = [
        f"# {config.experiment.name}: BM25 interpolation weight of the trained reranker",
        "",
        f"`{result['command']}`",
        "",
        f"{len(ev.query_ids)} dev queries: {experiment.dev_set_kind()} (seed {seed}; few-shot "
        f"example queries excluded; training leaves them out), BM25 top-{config.rerank.depth} "
        f"reranked by the trained models in {seconds:.0f} s.",
        "w is BM25's weight in `w * bm25 + (1 - w) * reranker` (per-query min-max normalized).",
        "",
        "| system | nDCG@10 | p vs bm25 |",
        "|---|---:|---:|",
    ]
    for system in ev.systems:
        p = ev.p_values.get(system, {}).get("ndcg@10")
        lines.append(f"| {system} | {ev.means[system]['ndcg@10']:.4f} | {'' if p is None else f'{p:.4f}'} |")
    lines += [""] + [f"Best for {name}: w = {w}." for name, w in result["best"].items()]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
