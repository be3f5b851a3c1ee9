"""Int8 vs float32 scoring of a finished run's rerankers on its dev set: speed and nDCG@10.

    python eval/benchmarks/scoring_int8.py configs/scifact.toml --queries 100 --depth 20

Needs a finished ``inpars run`` of the config up to ``train``. The dev set is
``Workspace.dev_queries()`` (seeded train queries, never the test split; held-out synthetic
queries when the collection has none); each query's BM25 top ``--depth`` documents are the
(query, document) pairs. The trained cross-encoder (``bm25+ce-synthetic``) and bi-encoder
(``bm25+bi-synthetic``, else the untuned encoder ``bm25+bi-zero-shot``) score the same pairs
on the CPU in float32 and with ``[rerank] quantize = "int8"`` (torch dynamic quantization,
:mod:`inpars.scoring.quantize`); ``--variants`` adds ``auto`` (bfloat16 where the CPU has it).
Variants run interleaved, round after round, so that a busy machine slows them alike; the
median round counts. Reports pairs/s, the speed-up over float32, nDCG@10 of each reranked run,
its difference from float32 (paired test, ranx) and how closely int8 ranks like float32
(mean per-query Spearman). Writes ``eval/benchmarks/<experiment>-scoring-int8.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scoring_bench import cpu_name, timed_rounds  # beside this file (run as a script)

from inpars.config import EvaluateConfig, load_config
from inpars.data.lookup import DocumentLookup
from inpars.evaluation.metrics import evaluate_runs
from inpars.io import write_json
from inpars.pipeline import Workspace
from inpars.pipeline.stages import ZERO_SHOT_BI, RerankStage, trained_system
from inpars.records import ScoredPair
from inpars.reranking import SystemSpec
from inpars.scoring import Scorer, document_text, load_scorer
from inpars.scoring.quantize import quantize_int8

HERE = Path(__file__).resolve().parent
# variant -> (dtype, quantize) of the scorer
VARIANTS = {"float32": ("float32", "none"), "int8": ("auto", "int8"), "auto": ("auto", "none")}
# int8 on one group of a BERT layer's linear layers only (float32 elsewhere): which of them
# cost the accuracy; not a scorer setting, the benchmark quantizes the loaded float32 model
LAYER_GROUPS: dict[str, Callable[[str], bool]] = {
    "int8:attention": lambda name: ".attention." in name,
    "int8:ffn-in": lambda name: name.endswith("intermediate.dense"),
    "int8:ffn-out": lambda name: name.endswith(".output.dense") and ".attention." not in name,
    "int8:not-ffn-out": lambda name: not (name.endswith(".output.dense") and ".attention." not in name),
}
VARIANTS |= {group: ("float32", "none") for group in LAYER_GROUPS}


def pick_systems(ws: Workspace) -> dict[str, SystemSpec]:
    """The trained cross-encoder, and the trained bi-encoder or else the untuned one."""
    specs = RerankStage().specs(ws)
    found: dict[str, SystemSpec] = {}
    for name in (trained_system("ce", "synthetic"), trained_system("bi", "synthetic"), ZERO_SHOT_BI):
        spec = specs.get(name)
        if spec is None or any(s.kind == spec.kind for s in found.values()):
            continue
        if name != ZERO_SHOT_BI and not Path(spec.model).is_dir():
            continue  # not trained (yet)
        found[name] = spec
    if not found:
        raise SystemExit(f"{ws.run_dir}: no trained model found. Fix: run `inpars run CONFIG --until train`")
    return found


def clear_cache(scorer: Scorer) -> None:
    """Empty the scorer's embedding cache: the bi-encoder keeps embeddings between calls, and
    every round must encode."""
    cache = getattr(scorer, "_cache", None)
    if cache is not None:
        cache.clear()


def as_run(keys: Sequence[tuple[str, str]], scores: Sequence[float]) -> dict[str, list[ScoredPair]]:
    run: dict[str, list[ScoredPair]] = {}
    for (qid, doc_id), score in zip(keys, scores, strict=True):
        run.setdefault(qid, []).append(ScoredPair(qid, doc_id, float(score)))
    return {q: sorted(p, key=lambda x: (-x.score, x.doc_id)) for q, p in run.items()}


def rank_agreement(keys: Sequence[tuple[str, str]], a: Sequence[float], b: Sequence[float]) -> float:
    """Mean over queries of the Spearman correlation of two scorings of its documents."""
    from scipy.stats import spearmanr  # type: ignore[import-untyped]

    by_query: dict[str, list[int]] = {}
    for i, (qid, _) in enumerate(keys):
        by_query.setdefault(qid, []).append(i)
    values = [float(spearmanr([a[i] for i in rows], [b[i] for i in rows])[0])
              for rows in by_query.values() if len(rows) > 2]
    values = [v for v in values if not np.isnan(v)]  # a query whose scores all tie
    return float(np.mean(values)) if values else float("nan")


def bench_system(name: str, spec: SystemSpec, args: argparse.Namespace, ws: Workspace,
                 keys: Sequence[tuple[str, str]], pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Time every variant of one system on the pairs (interleaved rounds) and evaluate its runs."""
    cfg = ws.config.rerank
    scorers = {variant: load_scorer(spec.kind, spec.model, batch_size=cfg.batch_size,
                                    max_length=cfg.max_length, device="cpu", threads=args.threads, raw=True,
                                    dtype=VARIANTS[variant][0], quantize=VARIANTS[variant][1])
               for variant in args.variants}
    for variant in (v for v in scorers if v in LAYER_GROUPS):
        scorer = scorers[variant]
        net = scorer.model if spec.kind == "cross-encoder" else scorer.encoder  # type: ignore[attr-defined]
        quantize_int8(net, LAYER_GROUPS[variant])
    for scorer in scorers.values():
        scorer.score(pairs[: cfg.batch_size])  # warm-up
    scoring: dict[str, Callable[[], Sequence[float]]] = {
        variant: functools.partial(scorer.score, pairs) for variant, scorer in scorers.items()
    }
    seconds, scores = timed_rounds(scoring, args.rounds, label=f"{name} ",
                                   before=lambda variant: clear_cache(scorers[variant]))
    rate = {v: len(pairs) / statistics.median(s) for v, s in seconds.items()}
    runs = {f"{name} {v}": as_run(keys, scores[v]) for v in scorers}
    qrels = ws.dev_queries()[1]
    metrics = EvaluateConfig(metrics=["ndcg@10"], baseline=f"{name} float32", fusion=[])
    ev = evaluate_runs(qrels, runs, metrics, seed=ws.config.experiment.seed)
    ndcg = {v: ev.means[f"{name} {v}"]["ndcg@10"] for v in scorers}
    return {
        "kind": spec.kind,
        "model": spec.model,
        "dtype": {v: str(getattr(s, "dtype", "")).replace("torch.", "") for v, s in scorers.items()},
        "pairs_per_s": {v: round(r, 2) for v, r in rate.items()},
        "speedup_vs_float32": {v: round(rate[v] / rate["float32"], 3) for v in scorers},
        "ndcg@10": ndcg,
        "ndcg@10_diff_vs_float32": {v: round(ndcg[v] - ndcg["float32"], 4) for v in scorers},
        "p_vs_float32": {v: ev.p_values.get(f"{name} {v}", {}).get("ndcg@10")
                         for v in scorers if v != "float32"},
        "spearman_vs_float32": {v: round(rank_agreement(keys, scores["float32"], scores[v]), 4)
                                for v in scorers},
        "seconds_per_round": {v: [round(x, 2) for x in s] for v, s in seconds.items()},
    }


def render_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Command: `{result['command']}`",
        "",
        f"# {result['experiment']}: int8 vs float32 scoring of the rerankers",
        "",
        f"{result['queries']} dev queries ({result['dev_set']}), BM25 top-{result['depth']}: "
        f"{result['pairs']} (query, document) pairs, max length {result['max_length']}, batch size "
        f"{result['batch_size']}, {result['threads']} torch threads on {result['cpu']} ({result['cores']} "
        f"cores), median of {result['rounds']} interleaved rounds.",
        "",
        "| system | variant | dtype | pairs/s | speed-up vs float32 | nDCG@10 | diff vs float32 | p | "
        "Spearman vs float32 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["systems"].items():
        for v in row["pairs_per_s"]:
            p = row["p_vs_float32"].get(v)
            lines.append(
                f"| {name} ({row['kind']}) | {v} | {row['dtype'][v]} | {row['pairs_per_s'][v]:.2f} | "
                f"{row['speedup_vs_float32'][v]:.2f}x | {row['ndcg@10'][v]:.4f} | "
                f"{row['ndcg@10_diff_vs_float32'][v]:+.4f} | {'' if p is None else f'{p:.3f}'} | "
                f"{row['spearman_vs_float32'][v]:.4f} |")
    lines += [
        "",
        "int8: `[rerank] quantize = \"int8\"`, torch dynamic quantization of every `nn.Linear` "
        "(int8 weights, activations quantized per batch), float32 elsewhere; `int8:<group>`: only that "
        "group of each layer's linear layers in int8 (attention: query, key, value and output; ffn-in: "
        "the feed-forward expansion; ffn-out: its projection back; not-ffn-out: all but that). "
        "p: paired test of nDCG@10 against the same model in float32 (ranx). Spearman: mean over queries "
        "of the rank correlation of the two scorings of its documents.",
        "",
        f"Load average {result['load_average_start_end'][0]} at the start, "
        f"{result['load_average_start_end'][1]} at the end.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--queries", type=int, default=None, help="dev queries (default [data] dev_queries)")
    parser.add_argument("--depth", type=int, default=20, help="BM25 documents per query scored")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    parser.add_argument("--variants", type=lambda s: s.split(","), default=["float32", "int8"],
                        help="comma-separated, from float32 (always), int8, auto, "
                        f"{', '.join(LAYER_GROUPS)} (int8 on those layers only)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    args.variants = ["float32", *[v for v in dict.fromkeys(args.variants) if v != "float32"]]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants {unknown}: use {', '.join(VARIANTS)}")

    config = load_config(args.config)
    if args.queries is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, dev_queries=args.queries))
    ws = Workspace(config)
    queries, _ = ws.dev_queries()
    texts = {q.query_id: q.text for q in queries}
    with ws.bm25() as bm25:
        first = bm25.search(queries, args.depth)
        keys = [(qid, p.doc_id) for qid, hits in first.items() for p in hits]
        lookup = DocumentLookup(bm25, needed={d for _, d in keys}, fix="use the run's own index")
        pairs = [(texts[qid], document_text(lookup.get(doc_id))) for qid, doc_id in keys]
    load_start = os.getloadavg()[0]
    systems = {name: bench_system(name, spec, args, ws, keys, pairs)
               for name, spec in pick_systems(ws).items()}

    import torch

    result = {
        "command": " ".join(["python eval/benchmarks/scoring_int8.py",
                             *(sys.argv[1:] if argv is None else argv)]),
        "experiment": config.experiment.name,
        "dev_set": ws.dev_set_kind(),
        "queries": len(first),
        "depth": args.depth,
        "pairs": len(pairs),
        "max_length": config.rerank.max_length,
        "batch_size": config.rerank.batch_size,
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "systems": systems,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_average_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": __import__("transformers").__version__,
                     "quantized_engine": torch.backends.quantized.engine},
    }
    stem = args.out / f"{config.experiment.name}-scoring-int8"
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(stem.with_suffix(".json"), result)
    stem.with_suffix(".md").write_text(render_markdown(result), encoding="utf-8")
    print(render_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
