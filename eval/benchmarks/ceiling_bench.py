"""How fast can the demo generate on this machine, and how close does the pipeline come?

    python eval/benchmarks/ceiling_bench.py             # writes ceiling.json and ceiling.md here (~10 min)
    python eval/benchmarks/ceiling_bench.py --docs 24 --rounds 2 --out /tmp/ceiling   # a quick look

1. llama.cpp's own throughput for the demo's model (``[generate] model`` of the config,
   Gemma 3 270M GGUF for configs/scifact.toml), through the bare low-level API in the
   generate stage's KV layout (:mod:`ceiling_measure`), at the thread count the pipeline
   uses: prompt evaluation tokens/s at the chunk sizes a step can have, and batched
   decoding tokens/s (one token per sequence per ``llama_decode``) as the parallel
   sequences grow.
2. The ceiling in documents/s for the demo's settings (:mod:`ceiling_demo`): each document
   costs its prompt suffix at the best prompt rate (the few-shot prefix is cached) plus
   ``queries_per_doc`` x the typical kept query's tokens at the best decoding rate.
3. The pipeline: ``generate_queries`` with the demo's settings on the demo's own documents
   (:mod:`ceiling_worker`, one process per inpars version), and beside it the inpars of
   git commit ``--baseline`` (550e96d, the code issue 12 measured, unless told otherwise).

Everything runs interleaved in rounds (the order rotates), so that a shared machine slows
all alike and the ratios hold. With ``--threads 0`` (the default) the thread count is the
one the generate stage's own timing picks at the start (2 on an idle 2-core machine, 1
when another process holds a core), then fixed for every measurement.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from ceiling_demo import Demo, kept_query_tokens, load_demo, run_rejects, spread, suffix_tokens
from ceiling_measure import BareLlama, demo_llama, prompt_suffixes
from ceiling_report import ceiling, markdown, pipeline_totals

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
log = logging.getLogger("ceiling_bench")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--config", type=Path, default=Path("configs/scifact.toml"))
    add("--docs", type=int, default=128, help="documents the pipeline generates for, in all")
    add("--rounds", type=int, default=4, help="interleaved rounds (the documents split evenly)")
    add("--threads", type=int, default=0,
        help="0: the count the pipeline's own timing picks (measured once, then fixed)")
    add("--parallel", default="1,4,16,32,48,64", help="parallel sequences of the decoding steps")
    add("--chunks", default="64,128,256,512", help="prompt tokens per llama_decode")
    add("--steps", type=int, default=8, help="timed decoding steps per parallel count and round")
    add("--prompt-docs", type=int, default=6, help="documents whose prompts each chunk size times")
    add("--suffix-docs", type=int, default=0, help="documents whose prompts are counted (0: all)")
    add("--baseline", default="550e96d",
        help="also run the inpars of this git commit (default: issue 12's reference; '' for none)")
    add("--run", type=Path, default=None,
        help="the finished generate stage with the typical query (default: runs/<experiment>/generate)")
    add("--out", type=Path, default=HERE)
    return parser.parse_args(argv)


class Worker:
    """A :mod:`ceiling_worker` process: one inpars version, its backend loaded once."""

    def __init__(self, name: str, config: Path, threads: int, source: Path | None) -> None:
        env = dict(os.environ)
        if source is not None:
            env["PYTHONPATH"] = str(source)
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "ceiling_worker.py"), str(config), str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )
        self.info = self._read()
        log.info("worker %s: inpars from %s, batch_docs %s, %s threads", name, self.info["inpars"],
                 self.info["batch_docs"], self.info["threads"])

    def _read(self) -> dict[str, Any]:
        if self.proc.stdout is None:
            raise SystemExit(f"worker {self.name}: no output pipe")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise SystemExit(f"worker {self.name} ended (exit code {code}); see its messages above")
        return dict(json.loads(line))

    def run(self, ids: list[str]) -> dict[str, Any]:
        if self.proc.stdin is None:
            raise SystemExit(f"worker {self.name}: no input pipe")
        self.proc.stdin.write(json.dumps({"ids": ids}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


def export_tree(ref: str, folder: Path) -> Path:
    """The ``inpars`` package of git commit ``ref``, unpacked under ``folder``."""
    archive = subprocess.run(["git", "archive", ref, "inpars"], cwd=ROOT, capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"--baseline {ref}: git archive failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def pipeline_threads(demo: Demo) -> int:
    """The thread count the generate stage would compute with here (its own timing)."""
    from inpars.generation.backends import load_backend

    backend = load_backend(demo.generate)
    try:
        threads = backend.thread_count()
    finally:
        backend.close()
    return int(threads or 1)


def bare_round(bare: BareLlama, suffixes: list[list[int]], args: argparse.Namespace) -> dict[str, Any]:
    """One round of llama.cpp measurements: (tokens, seconds) per chunk size and parallel count."""
    prompts = {c: bare.prompt_rate(suffixes[: args.prompt_docs], c) for c in parse_ints(args.chunks)}
    decodes = {p: bare.decode_rate(suffixes, p, args.steps) for p in parse_ints(args.parallel)}
    log.info("llama.cpp tokens/s: prompt %s, decode %s", {c: round(t / s) for c, (t, s) in prompts.items()},
             {p: round(t / s, 1) for p, (t, s) in decodes.items()})
    return {"prompt": prompts, "decode": decodes}


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def rounds(jobs: dict[str, Callable[[int], Any]], count: int) -> dict[str, list[Any]]:
    """Run every job once per round, the order rotating by one each round."""
    names = list(jobs)
    out: dict[str, list[Any]] = {name: [] for name in names}
    for r in range(count):
        for name in names[r % len(names):] + names[: r % len(names)]:
            out[name].append(jobs[name](r))
        log.info("round %d of %d done", r + 1, count)
    return out


@dataclass
class Workload:
    """What the ceiling is computed from, measured before the rounds."""

    threads: int
    prefix_tokens: int
    suffix_tokens: list[int]
    query_tokens: list[int]
    run_folder: Path
    load_start: tuple[float, float, float]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    os.chdir(ROOT)
    demo = load_demo(args.config)
    load_start = os.getloadavg()
    threads = args.threads or pipeline_threads(demo)
    bare, builder, prefix_tokens = demo_llama(demo, threads, max(parse_ints(args.parallel)))
    counted = suffix_tokens(demo, builder, bare.vocab.count_tokens, args.suffix_docs or len(demo.doc_ids))
    run_folder = args.run or Path("runs") / demo.config.experiment.name / "generate"
    queries = kept_query_tokens(run_folder)
    workload = Workload(threads, prefix_tokens, counted, queries, run_folder, load_start)
    if not workload.query_tokens:
        raise SystemExit(f"{run_folder}: no kept queries to take the typical query length from. "
                         "Fix: run the demo's generate stage first, or pass --run FOLDER")
    suffixes = prompt_suffixes(bare, builder, demo, 64)
    with tempfile.TemporaryDirectory() as tmp:
        workers = {"pipeline": Worker("pipeline", args.config, threads, None)}
        if args.baseline:
            source = export_tree(args.baseline, Path(tmp))
            workers["baseline"] = Worker("baseline", args.config, threads, source)
        results = interleave(args, demo, bare, suffixes, workers)
    bare.close()
    report = build_report(args, argv, demo, workload, results, {name: w.info for name, w in workers.items()})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ceiling.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "ceiling.md").write_text(markdown(report), encoding="utf-8")
    log.info("%s", json.dumps(report["headline"]))
    return 0


def interleave(args: argparse.Namespace, demo: Demo, bare: BareLlama, suffixes: list[list[int]],
               workers: dict[str, Worker]) -> dict[str, list[Any]]:
    """The rounds: llama.cpp alone, then each pipeline on that round's documents."""
    ids = demo.doc_ids[: args.docs]
    n = args.rounds
    chunks = [ids[r * len(ids) // n : (r + 1) * len(ids) // n] for r in range(n)]
    for worker in workers.values():
        worker.run(demo.doc_ids[-1:])  # the prefix evaluated and cached, as once per real run
    jobs: dict[str, Callable[[int], Any]] = {"llama.cpp": lambda r: bare_round(bare, suffixes, args)}
    for name, worker in workers.items():
        jobs[name] = partial(lambda r, w: w.run(chunks[r]), w=worker)
    try:
        return rounds(jobs, n)
    finally:
        for worker in workers.values():
            worker.close()


def build_report(args: argparse.Namespace, argv: list[str] | None, demo: Demo, work: Workload,
                 results: dict[str, list[Any]], workers: dict[str, Any]) -> dict[str, Any]:
    """Everything measured, the ceiling and each pipeline's share of it."""
    cfg = demo.generate
    workload = {
        "prompt_prefix_tokens": work.prefix_tokens,
        "document_suffix_tokens": spread([float(x) for x in work.suffix_tokens]),
        "queries_per_doc": cfg.queries_per_doc,
        "query_tokens": spread([float(x) for x in work.query_tokens]),
        "query_tokens_from": str(work.run_folder / "shards"),
        "finished_run": run_rejects(work.run_folder),
    }
    top = ceiling(results.pop("llama.cpp"), workload)
    pipelines = {name: pipeline_totals(rows) | {"worker": workers[name]} for name, rows in results.items()}
    headline: dict[str, Any] = {"ceiling_docs_per_s": top["docs_per_s"]}
    for name, totals in pipelines.items():
        headline[f"{name}_docs_per_s"] = totals["docs_per_s"]
        headline[f"{name}_share_of_ceiling"] = round(totals["docs_per_s"] / top["docs_per_s"], 3)
    if "baseline" in pipelines:
        headline["pipeline_vs_baseline"] = round(
            pipelines["pipeline"]["docs_per_s"] / pipelines["baseline"]["docs_per_s"], 2)
    given = argv if argv is not None else sys.argv[1:]
    settings = {"config": str(args.config), "model": cfg.model, "template": cfg.template,
                "threads": work.threads, "doc_max_tokens": cfg.doc_max_tokens, "docs": args.docs,
                "rounds": args.rounds, "steps": args.steps, "baseline": args.baseline or None,
                "context_tokens": cfg.context_tokens}
    return {"command": " ".join(["python eval/benchmarks/ceiling_bench.py", *given]), "headline": headline,
            "ceiling": top, "pipelines": pipelines, "workload": workload, "settings": settings,
            "machine": machine(work.load_start)}


def machine(load_start: tuple[float, float, float]) -> dict[str, Any]:
    import llama_cpp

    return {"cpu": cpu_name(), "cores": os.cpu_count(),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "llama-cpp-python": metadata.version("llama-cpp-python"),
            "llama.cpp build": llama_cpp.llama_print_system_info().decode().strip()}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
