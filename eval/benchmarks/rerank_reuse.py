"""Reranking with the untuned encoder, encoding the documents or reusing the dense index's embeddings.

    python eval/benchmarks/rerank_reuse.py configs/scifact.toml

Needs a finished ``inpars run`` of the config up to ``index`` with ``[index] dense = true``.
The pairs are the dev set's (``Workspace.dev_queries()``: seeded train queries, never the test
split) BM25 top ``[rerank] depth``. ``bm25+bi-zero-shot`` reranks them twice with the rerank
stage's settings, each time with a freshly loaded scorer: once encoding every document, once
with the document embeddings of the index stage's dense index (:func:`inpars.reranking.reuse_index`,
what the rerank stage does). Reports the seconds of each (reuse included), how far the scores
differ, the top-10 overlap and nDCG@10 of both runs. Writes
``eval/benchmarks/<experiment>-rerank-reuse.{json,md}``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from inpars.config import load_config
from inpars.data.lookup import DocumentLookup
from inpars.evaluation.metrics import mean_scores
from inpars.io import write_json
from inpars.pipeline import Workspace
from inpars.pipeline.stages import ZERO_SHOT_BI, RerankStage
from inpars.records import ScoredPair
from inpars.reranking import load_system, rerank, reuse_index

Run = dict[str, list[ScoredPair]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, default=Path("eval/benchmarks"))
    args = parser.parse_args(argv)
    ws = Workspace(load_config(args.config))
    cfg = ws.config.rerank
    queries, qrels = ws.dev_queries()
    encoded_spec = RerankStage().specs(ws)[ZERO_SHOT_BI]
    reused_spec = type(encoded_spec)(encoded_spec.kind, encoded_spec.model,
                                     index=ws.manifest("index")["extra"]["dense"]["index"])
    runs: dict[str, Run] = {}
    timing: dict[str, dict[str, Any]] = {}
    with ws.bm25() as bm25:
        first = bm25.search(queries, cfg.depth)
        needed = sorted({p.doc_id for pairs in first.values() for p in pairs})
        lookup = DocumentLookup(bm25, needed=needed)
        for doc_id in needed:  # read before timing: both variants look the documents up alike
            lookup.get(doc_id)
        for label, spec in (("encoded", encoded_spec), ("reused", reused_spec)):
            scorer = load_system(spec, cfg)
            start = time.perf_counter()
            reused = reuse_index(scorer, spec, cfg, lookup, needed)
            runs[label] = rerank(first, queries, lookup, scorer, cfg.depth, desc=label)
            timing[label] = {"seconds": round(time.perf_counter() - start, 2), "reused_documents": reused}
    result = {
        "command": " ".join(["python", *sys.argv]) if argv is None else "rerank_reuse.main",
        "experiment": ws.config.experiment.name, "dev_set": ws.dev_set_kind(), "queries": len(queries),
        "depth": cfg.depth, "documents": len(needed), "pairs": sum(len(p) for p in first.values()),
        "model": encoded_spec.model, "dtype": cfg.dtype,
        "machine": platform.processor() or platform.machine(),
        "timing": timing, "speedup": round(timing["encoded"]["seconds"] / timing["reused"]["seconds"], 1),
        **agreement(runs["encoded"], runs["reused"]),
        "ndcg@10": mean_scores(qrels, runs),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{result['experiment']}-rerank-reuse"
    write_json(stem.with_suffix(".json"), result)
    stem.with_suffix(".md").write_text(render(result), encoding="utf-8")
    return 0


def agreement(a: Run, b: Run) -> dict[str, float]:
    """How far two runs of the same pairs differ: scores and top-10 sets."""
    diffs = [abs(x.score - y.score) for q in a
             for x, y in zip(sorted(a[q], key=lambda p: p.doc_id), sorted(b[q], key=lambda p: p.doc_id),
                             strict=True)]
    overlap = [len({p.doc_id for p in a[q][:10]} & {p.doc_id for p in b[q][:10]}) / max(1, min(10, len(a[q])))
               for q in a]
    return {"mean_abs_score_diff": round(statistics.mean(diffs), 6),
            "max_abs_score_diff": round(max(diffs), 6),
            "mean_top10_overlap": round(statistics.mean(overlap), 4)}


def render(r: dict[str, Any]) -> str:
    t = r["timing"]
    return "\n".join([
        f"# {r['experiment']}: {ZERO_SHOT_BI}, documents encoded or their index embeddings reused", "",
        f"`{r['command']}`", "",
        f"{r['queries']} dev queries ({r['dev_set']}) x BM25 top {r['depth']}: {r['pairs']} pairs, "
        f"{r['documents']} distinct documents; {r['model']}, rerank dtype {r['dtype']}, "
        f"on {r['machine']}.", "",
        "| variant | seconds | documents reused | nDCG@10 |", "|---|---:|---:|---:|",
        *(f"| {k} | {t[k]['seconds']:.1f} | {t[k]['reused_documents']} | {r['ndcg@10'][k]:.4f} |"
          for k in ("encoded", "reused")), "",
        f"Speed-up {r['speedup']}x. Scores differ by {r['mean_abs_score_diff']:.4f} on average (max "
        f"{r['max_abs_score_diff']:.4f}): the index holds float32 embeddings, the scorer encodes in its "
        f"dtype. Top-10 overlap {r['mean_top10_overlap']:.3f}.", "",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
