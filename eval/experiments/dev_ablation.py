"""Dev-set ablation of the training recipe: which losses and labels make the synthetic data pay.

    python eval/experiments/dev_ablation.py configs/scifact-dev.toml --queries 100 --depth 20

Never touches the test split. Needs a finished ``inpars run CONFIG --until negatives`` (with
``[negatives] teacher = "hybrid"`` for the distillation variants). Draws a seeded sample of
the collection's *train* queries (few-shot example queries left out) as the dev set,
retrieves BM25 top ``--depth`` for them, trains each variant of ``[train]`` on the run's
synthetic examples (``<work>/<variant>/``, reused when already trained), reranks the dev
candidates with each model and scores nDCG@10 with ranx, alone and interpolated with BM25
(the weight picked on these same dev queries from 0.1..0.9, so the interpolated numbers
are optimistic for every system alike). The zero-shot systems (BM25, the untuned encoder,
the hybrid teacher) are the rows to beat. Writes ``<out>/<experiment>-dev-ablation.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path
from typing import Any

from inpars.config import EvaluateConfig, TrainConfig, load_config
from inpars.evaluation.interpolation import interpolate
from inpars.evaluation.metrics import evaluate_runs
from inpars.io import read_json, write_json, write_text
from inpars.pipeline import Workspace
from inpars.records import ScoredPair
from inpars.reranking import SystemSpec, load_system, rerank

# variant -> (model kind, training data, [train] overrides); the rest comes from the config.
# Data: "synthetic" (the run's examples), "real" (the collection's train queries with their
# judged documents as positives, the dev queries left out), "both" (the two together).
MSE, DMSE = {"loss": "margin-mse"}, {"dense_loss": "margin-mse"}
VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bi-mnrl": ("bi-encoder", "synthetic", {"dense_loss": "mnrl"}),
    "bi-margin-mse": ("bi-encoder", "synthetic", {"dense_loss": "margin-mse"}),
    "bi-margin-mse-real": ("bi-encoder", "real", {"dense_loss": "margin-mse"}),
    "bi-margin-mse-both": ("bi-encoder", "both", {"dense_loss": "margin-mse"}),
    "ce-listwise-one-lr": ("cross-encoder", "synthetic", {"loss": "listwise", "head_learning_rate": 0.0}),
    "ce-listwise-head-lr": ("cross-encoder", "synthetic", {"loss": "listwise"}),
    "ce-margin-mse": ("cross-encoder", "synthetic", {"loss": "margin-mse"}),
    "ce-margin-mse-real": ("cross-encoder", "real", {"loss": "margin-mse"}),
    "ce-margin-mse-both": ("cross-encoder", "both", {"loss": "margin-mse"}),
    "ce-margin-mse-2ep": ("cross-encoder", "synthetic", {**MSE, "epochs": 2}),
    "ce-margin-mse-3ep": ("cross-encoder", "synthetic", {**MSE, "epochs": 3}),
    "ce-margin-mse-lr1e-4": ("cross-encoder", "synthetic", {**MSE, "learning_rate": 1e-4}),
    "ce-margin-mse-logprob": ("cross-encoder", "synthetic", {**MSE, "weighting": "logprob"}),
    "ce-margin-mse-margin": ("cross-encoder", "synthetic", {**MSE, "weighting": "teacher_margin"}),
    "bi-margin-mse-3ep": ("bi-encoder", "synthetic", {**DMSE, "dense_epochs": 3}),
    "bi-margin-mse-logprob": ("bi-encoder", "synthetic", {**DMSE, "weighting": "logprob"}),
    "ce-margin-mse-top3": ("cross-encoder", "synthetic", MSE),
    "ce-margin-mse-top20": ("cross-encoder", "synthetic", MSE),
    "ce-margin-mse-neg7": ("cross-encoder", "synthetic", {**MSE, "negatives_per_example": 7}),
}
# variants trained on the run's kept queries with negatives (and teacher labels) mined again
# under these [negatives] overrides: the 3 best-ranked non-positive documents; 3 drawn from the
# top 20 instead of ranks 3-100 (the ranks a top-100 rerank must order); 7 instead of 3
NEGATIVES: dict[str, dict[str, Any]] = {
    "ce-margin-mse-top3": {"sampling": "top", "window_start": 1},
    "ce-margin-mse-top20": {"window_start": 1, "depth": 20},
    "ce-margin-mse-neg7": {"count": 7},
}
WEIGHTS = [round(0.1 * i, 1) for i in range(1, 10)]
Run = dict[str, list[ScoredPair]]



def file_tag(text: str) -> str:
    """An argparse type for a ``--tag`` that goes into file and experiment names: letters,
    digits, ``_`` and ``-`` (empty: no tag); a ``/`` would write into a subfolder, and a ``.``
    would be taken for a suffix (``v1.2`` writing ``...-v1.json``)."""
    if text and not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use letters, digits, '_' and '-' only, "
                                         "e.g. neighbours")
    return text

def real_examples(ws: Workspace, out: Path) -> Path:
    """Training examples from the collection's judged train queries (the dev set left out),
    negatives and teacher labels mined as for the synthetic queries."""
    if not out.is_file():
        pairs, judged = ws.real_training_queries()
        mine_examples(ws, out, pairs, judged, {})
    return out


def remined_examples(ws: Workspace, out: Path, overrides: dict[str, Any]) -> Path:
    """Training examples of the run's kept queries (the negatives stage's held-out ones left
    out), negatives and teacher labels mined again with ``[negatives]`` ``overrides``."""
    if not out.is_file():
        held_out = ws.held_out_ids()
        pairs = [q for q in ws.kept_queries() if q.query_id not in held_out]
        mine_examples(ws, out, pairs, [], overrides)
    return out


def mine_examples(ws: Workspace, out: Path, pairs: list[Any], judged: list[Any],
                  overrides: dict[str, Any]) -> None:
    """Mine ``pairs``' negatives and teacher labels (the config's teacher) into ``out`` (atomically)."""
    from inpars.io import write_records
    from inpars.negatives import mine_negatives
    from inpars.pipeline.negatives import cross_encoder_teacher
    from inpars.teacher import HybridTeacher

    dense = ws.dense()
    if dense is None:
        raise SystemExit("the run has no dense index; set [index] dense = true")
    cfg = dataclasses.replace(ws.config.negatives, **overrides)
    labeller = cross_encoder_teacher(ws, cfg) if cfg.teacher == "cross-encoder" else None
    with ws.bm25() as bm25:
        teacher = HybridTeacher(dense, cfg.teacher_bm25_weight)
        write_records(out, mine_negatives(pairs, bm25, cfg, dense=dense, teacher=teacher, qrels=judged,
                                          seed=ws.config.experiment.seed, labeller=labeller))


def training_data(data: str, synthetic: Path, real: Path, work: Path) -> Path:
    """The examples file of a variant's training data."""
    if data == "synthetic":
        return synthetic
    if data == "real":
        return real
    both = work / "both-examples.jsonl"
    if not both.is_file():
        both.write_text(synthetic.read_text(encoding="utf-8") + real.read_text(encoding="utf-8"),
                        encoding="utf-8")
    return both


def train_variant(kind: str, overrides: dict[str, Any], cfg: TrainConfig, examples: Path, out: Path,
                  seed: int, kept: Path) -> dict[str, Any]:
    """Train one variant into ``out`` (reused when its training.json is there); its summary.
    ``kept``: the filter stage's kept queries, the source of query-level weighting signals."""
    import importlib

    from inpars.training.weights import QUERY_SIGNALS, query_signals

    if not (out / "training.json").is_file():
        settings = dataclasses.replace(cfg, seed=seed, dense=kind == "bi-encoder", **overrides)
        module, function = (("dense", "train_dense") if kind == "bi-encoder"
                            else ("cross_encoder", "train_cross_encoder"))
        train = getattr(importlib.import_module(f"inpars.training.{module}"), function)
        signals = (query_signals(kept, settings.weighting) if settings.weighting in QUERY_SIGNALS
                   else None)
        train(examples, out, settings, seed=seed, signals=signals)
    summary = read_json(out / "training.json")
    keep = ("loss", "steps", "pairs", "pairs_per_second", "first_loss", "last_loss")
    return {k: summary.get(k) for k in keep}


def as_scores(run: Run) -> dict[str, dict[str, float]]:
    return {q: {p.doc_id: p.score for p in pairs} for q, pairs in run.items()}


def as_run(scores: dict[str, dict[str, float]]) -> Run:
    return {q: [ScoredPair(q, d, s) for d, s in docs.items()] for q, docs in scores.items()}


def best_interpolation(name: str, base: Run, other: Run, depth: int, qrels: list[Any], seed: int
                       ) -> tuple[float, Run]:
    """The BM25 weight (0.1..0.9) that gives ``other`` its best dev nDCG@10, and that run."""
    cfg = EvaluateConfig(metrics=["ndcg@10"], fusion=[])
    tried = {w: as_run(interpolate(as_scores(base), as_scores(other), w, depth)) for w in WEIGHTS}
    named = {"bm25": base, **{f"{name} w={w}": r for w, r in tried.items()}}
    ev = evaluate_runs(qrels, named, cfg, seed=seed)
    weight = max(WEIGHTS, key=lambda w: ev.means[f"{name} w={w}"]["ndcg@10"])
    return weight, tried[weight]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--queries", type=int, default=100, help="train queries in the dev set (seeded)")
    parser.add_argument("--depth", type=int, default=20, help="BM25 candidates reranked per query")
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--work", type=Path, default=None,
                        help="model folders (default runs/<exp>/dev-ablation)")
    parser.add_argument("--out", type=Path, default=Path("eval/experiments"))
    parser.add_argument("--tag", default="", type=file_tag,
                        help="output name suffix: <experiment>-dev-ablation-<tag>")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, dev_queries=args.queries))
    ws, seed = Workspace(config), config.experiment.seed
    work = args.work or ws.run_dir / "dev-ablation"
    queries, qrels = ws.dev_queries()
    synthetic = ws.output("negatives", "examples")
    started = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    real = work / "real-examples.jsonl"
    if any(VARIANTS[name][1] != "synthetic" for name in args.only):
        real = real_examples(ws, real)
    runs: dict[str, Run] = {}
    training: dict[str, Any] = {}
    specs = {"bi-zero-shot": SystemSpec("bi-encoder", config.index.dense_model)}
    for name in args.only:
        kind, data, overrides = VARIANTS[name]
        examples = (remined_examples(ws, work / f"{name}-examples.jsonl", NEGATIVES[name])
                    if name in NEGATIVES else training_data(data, synthetic, real, work))
        training[name] = train_variant(kind, overrides, config.train, examples, work / name, seed,
                                       ws.output("filter", "kept"))
        specs[name] = SystemSpec(kind, str(work / name))
    with ws.bm25() as bm25:
        runs["bm25"] = bm25.search(queries, args.depth)
        for name, spec in specs.items():
            runs[name] = rerank(runs["bm25"], queries, bm25, load_system(spec, config.rerank), args.depth)
    weights = {}
    for name in specs:
        weights[name], runs[f"{name}+interp"] = best_interpolation(name, runs["bm25"], runs[name], args.depth,
                                                                   qrels, seed)
    ev = evaluate_runs(qrels, runs, EvaluateConfig(metrics=["ndcg@10", "mrr@10"], fusion=[]), seed=seed)
    result = {
        "command": " ".join(["python", *sys.argv]) if argv is None else "dev_ablation.main",
        "experiment": config.experiment.name, "split": config.data.train_split, "queries": len(ev.query_ids),
        "depth": args.depth, "seed": seed, "seconds": round(time.perf_counter() - started, 1),
        "ndcg@10": {s: ev.means[s]["ndcg@10"] for s in ev.systems},
        "p_vs_bm25_holm": {s: ev.adjusted_p_values[s]["ndcg@10"] for s in ev.others},
        "interpolation_weights": weights, "training": training,
        "variants": {n: {**dict(zip(("kind", "data", "overrides"), VARIANTS[n], strict=True)),
                         "negatives_overrides": NEGATIVES.get(n, {})} for n in args.only},
        "train_config": dataclasses.asdict(config.train),
        "negatives_config": dataclasses.asdict(config.negatives),
    }
    stem = args.out / f"{config.experiment.name}-dev-ablation{'-' + args.tag if args.tag else ''}"
    write_json(stem.with_suffix(".json"), result)
    write_text(stem.with_suffix(".md"), render(result))
    print(render(result))
    return 0


def render(result: dict[str, Any]) -> str:
    lines = [
        f"# {result['experiment']}: training recipes on the dev set", "", f"`{result['command']}`", "",
        f"{result['queries']} {result['split']}-split queries (seed {result['seed']}; few-shot example "
        f"queries left out), BM25 top-{result['depth']} reranked; never the test split. `+interp`: "
        "BM25 weight picked on these same queries (optimistic for every system alike). "
        "p: paired t-test against bm25, Holm-corrected over the table.", "",
        "| system | nDCG@10 | p vs bm25 (Holm) | BM25 weight | loss first -> last | steps | pairs/s |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for system, value in result["ndcg@10"].items():
        base = system.removesuffix("+interp")
        p = result["p_vs_bm25_holm"].get(system)
        weight = result["interpolation_weights"].get(base) if system.endswith("+interp") else None
        train = result["training"].get(system, {})
        losses = f"{train['first_loss']} -> {train['last_loss']}" if train else ""
        lines.append(f"| {system} | {value:.4f} | {'' if p is None else f'{p:.4f}'} | "
                     f"{'' if weight is None else weight} | {losses} | {train.get('steps', '')} | "
                     f"{train.get('pairs_per_second', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
