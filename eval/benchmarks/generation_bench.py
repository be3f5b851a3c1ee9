"""Query generation speed: inpars' default path vs a plain InPars-style loop.

Both write queries for the same SciFact documents with the same packaged model (Gemma 3
270M GGUF in llama.cpp), the same prompt (the ``inpars`` template, documents cut to the
same token budget) and the same number of threads:

- ``loop``: one document at a time, the whole prompt evaluated from scratch each time,
  greedy, one query per document (the InPars recipe; no log-probs asked, which only
  helps it);
- ``ours``: :func:`inpars.generation.generate_queries` with the default ``[generate]``
  settings: few-shot prefix evaluated once and kept, the samples of a document forked after
  its prompt, up to ``sequences`` samples decoded together with continuous batching (a
  finished sample's slot goes to the next document at once), with log-probs; a round is
  one batch (``batch_docs``) so that its schedule is the stage's.

They run interleaved in rounds (alternating which goes first), so that a busy machine
slows both alike. Queries/s counts every completion the model wrote (kept or not);
``kept`` counts those that pass the same cleaning and checks.

    python eval/benchmarks/generation_bench.py            # writes generation.json and generation.md here
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[2] / "shared" / "data" / "scifact"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def load_docs(root: Path, count: int) -> list[Any]:
    from inpars.records import Document

    docs = []
    with open(root / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            obj = json.loads(line)
            if obj.get("text") or obj.get("title"):
                docs.append(Document(obj["_id"], obj.get("text", ""), obj.get("title", "")))
            if len(docs) == count:
                break
    return docs


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="a BEIR folder (default: shared SciFact)"
    )
    parser.add_argument("--docs", type=int, default=128)
    parser.add_argument("--round-docs", type=int, default=32,
                        help="documents per interleaved round (default: [generate] batch_docs)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads of both (default 1: the same for both; 0: ours tunes its own, the loop "
        "uses the free cores)",
    )
    parser.add_argument("--out", type=Path, default=HERE)
    return parser.parse_args(argv)


class Race:
    """The two contestants on one model, prompt and settings, with their running totals."""

    def __init__(self, threads: int, cfg_threads: int) -> None:
        from llama_cpp import Llama

        from inpars.config import GenerateConfig
        from inpars.generation import PromptBuilder, RunSettings, load_backend, load_template
        from inpars.generation.parsing import QueryCheck, content_stems
        from inpars.generation.runner import prompt_queries
        from inpars.generation.stage import sampling_settings
        from inpars.models import resolve_model

        self.cfg = cfg = GenerateConfig(threads=cfg_threads)
        self.backend = load_backend(cfg)
        self.builder = PromptBuilder(
            load_template(cfg.template), truncate=self.backend.truncate, doc_max_tokens=cfg.doc_max_tokens
        )
        self.prefix_tokens = self.backend.count_tokens(self.builder.prefix)
        self.limits = QueryCheck(cfg.min_query_words, cfg.max_query_words)
        self.run = RunSettings(
            template=cfg.template,
            model=cfg.model,
            queries_per_doc=cfg.queries_per_doc,
            seed=42,
            sampling=sampling_settings(cfg),
            limits=self.limits,
            batch_docs=cfg.batch_docs,
            shard_docs=cfg.shard_docs,
        )
        self.llm = Llama(
            resolve_model(cfg.model),
            n_ctx=2048,
            n_batch=512,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self.examples = prompt_queries(self.builder.prefix)
        self.words = content_stems(self.builder.prefix)
        self.totals: dict[str, dict[str, float]] = {
            name: {"seconds": 0.0, "docs": 0, "queries": 0, "kept": 0, "generated_tokens": 0,
                   "prompt_tokens": 0}
            for name in ("ours", "loop")
        }

    def loop(self, chunk: list[Any]) -> None:
        """The InPars-style loop: each document's whole prompt from position 0, greedy."""
        from inpars.generation.parsing import check_query, clean_query
        from inpars.generation.prompts import join_title

        t, cfg = self.totals["loop"], self.cfg
        start = time.perf_counter()
        for doc in chunk:
            self.llm.reset()  # the whole prompt again, from position 0
            out = self.llm.create_completion(
                self.builder.build(doc).text, max_tokens=cfg.max_new_tokens, temperature=0.0,
                stop=list(cfg.stop)
            )
            choice = out["choices"][0]
            reason = check_query(
                clean_query(choice["text"]),
                finished=choice["finish_reason"] == "stop",
                limits=self.limits,
                document=join_title(doc.title, doc.text),
                example_queries=self.examples,
                prompt_words=self.words,
            )
            t["kept"] += not reason
            t["queries"] += 1
            t["generated_tokens"] += out["usage"]["completion_tokens"]
            t["prompt_tokens"] += out["usage"]["prompt_tokens"]
        t["seconds"] += time.perf_counter() - start
        t["docs"] += len(chunk)

    def ours(self, chunk: list[Any], folder: Path) -> None:
        """inpars' generation path with the default settings."""
        from inpars.generation import generate_queries

        t, stats = self.totals["ours"], self.backend.stats
        before = dict(stats)
        start = time.perf_counter()
        result = generate_queries(chunk, folder, backend=self.backend, builder=self.builder, run=self.run,
                                  progress=False)
        t["seconds"] += time.perf_counter() - start
        t["docs"] += len(chunk)
        t["queries"] += result.queries + result.rejected
        t["kept"] += result.queries
        t["generated_tokens"] += stats["generated_tokens"] - before.get("generated_tokens", 0)
        t["prompt_tokens"] += stats["prompt_tokens"] - before.get("prompt_tokens", 0)

    def rounds(self, docs: list[Any], round_docs: int) -> None:
        """Both contestants on each round of documents, alternating which goes first."""
        with tempfile.TemporaryDirectory() as tmp:
            for number, start in enumerate(range(0, len(docs), round_docs)):
                chunk = docs[start : start + round_docs]
                order = ("loop", "ours") if number % 2 == 0 else ("ours", "loop")
                for name in order:
                    if name == "loop":
                        self.loop(chunk)
                    else:
                        self.ours(chunk, Path(tmp) / f"round-{number}")
                rates = ", ".join(f"{n} {self.totals[n]['queries'] / self.totals[n]['seconds']:.2f} q/s"
                                  for n in ("ours", "loop"))
                print(f"round {number + 1}: {rates}", flush=True)
        self.backend.close()


def _rates(t: dict[str, float]) -> dict[str, float]:
    s = t["seconds"]
    return {
        **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in t.items()},
        "docs_per_s": round(t["docs"] / s, 3),
        "queries_per_s": round(t["queries"] / s, 3),
        "kept_queries_per_s": round(t["kept"] / s, 3),
        "tokens_per_s": round(t["generated_tokens"] / s, 1),
        "prompt_tokens_per_s": round(t["prompt_tokens"] / s, 1),
    }


def _report(race: Race, args: argparse.Namespace, docs: int, threads: int, load_start: tuple[float, ...],
            command: str) -> dict[str, Any]:
    ours, loop = _rates(race.totals["ours"]), _rates(race.totals["loop"])
    cfg = race.cfg
    return {
        "command": command.strip(),
        "speedup": round(ours["queries_per_s"] / loop["queries_per_s"], 2),
        "speedup_kept_queries": round(ours["kept_queries_per_s"] / loop["kept_queries_per_s"], 2),
        "speedup_docs": round(ours["docs_per_s"] / loop["docs_per_s"], 2),
        "tokens_per_s": ours["tokens_per_s"],
        "ours": ours,
        "loop": loop,
        "settings": {
            "model": cfg.model,
            "template": cfg.template,
            "docs": docs,
            "round_docs": args.round_docs,
            "threads": args.threads or f"ours tuned, loop {threads}",
            "queries_per_doc": cfg.queries_per_doc,
            "batch_docs": cfg.batch_docs,
            "sequences": cfg.sequences,
            "doc_max_tokens": cfg.doc_max_tokens,
            "max_new_tokens": cfg.max_new_tokens,
            "prompt_prefix_tokens": race.prefix_tokens,
        },
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "llama-cpp-python": metadata.version("llama-cpp-python"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    from inpars.generation.backends import free_cores

    threads = args.threads or free_cores()
    load_start = os.getloadavg()
    docs = load_docs(args.data, args.docs)
    race = Race(threads, args.threads)
    race.rounds(docs, args.round_docs)
    command = "python eval/benchmarks/generation_bench.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    report = _report(race, args, len(docs), threads, load_start, command)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "generation.md").write_text(markdown(report), encoding="utf-8")
    keys = ("speedup", "speedup_kept_queries", "speedup_docs", "tokens_per_s")
    print(json.dumps({k: report[k] for k in keys}))
    return 0


def markdown(r: dict[str, Any]) -> str:
    o, lp, s, m = r["ours"], r["loop"], r["settings"], r["machine"]
    rows = [
        ("documents per second", "docs_per_s"),
        ("queries per second (all completions)", "queries_per_s"),
        ("kept queries per second (after cleaning and checks)", "kept_queries_per_s"),
        ("generated tokens per second", "tokens_per_s"),
        ("prompt tokens evaluated", "prompt_tokens"),
        ("generated tokens", "generated_tokens"),
        ("queries", "queries"),
        ("kept queries", "kept"),
        ("seconds", "seconds"),
    ]
    lines = [
        "# Query generation speed: inpars vs a plain InPars-style loop",
        "",
        "```",
        r["command"],
        "```",
        "",
        f"**Speedup {r['speedup']}x in queries per second** ({r['speedup_kept_queries']}x in kept queries, "
        f"{r['speedup_docs']}x in documents per second).",
        "",
        f"Same model ({s['model']}, llama.cpp), same {s['docs']} SciFact documents, same prompt (template "
        f"`{s['template']}`, documents cut to {s['doc_max_tokens']} tokens), {s['threads']} thread(s) each, "
        f"run interleaved in rounds of {s['round_docs']} documents.",
        "",
        "- **loop**: one document at a time, the whole prompt evaluated from scratch, greedy, one query per "
        "document, no log-probs.",
        f"- **ours**: `generate_queries` with the default settings: {s['queries_per_doc']} queries per "
        "document (greedy + sampled), few-shot prefix evaluated once and kept, "
        f"{s['batch_docs']} documents per batch, samples forked after the document, up to "
        f"{s.get('sequences', '?')} samples decoded together (continuous batching), log-probs kept.",
        "",
        "| | ours | loop |",
        "|---|---:|---:|",
        *[f"| {label} | {o[key]} | {lp[key]} |" for label, key in rows],
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; load average {m['load_average_start']} at the start and "
        f"{m['load_average_end']} at the end (other processes shared the cores); Python {m['python']}, "
        f"llama-cpp-python {m['llama-cpp-python']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
