"""A pipeline worker of the ceiling benchmark: one process, one backend, the demo's
``generate_queries`` on the documents it is sent, timed.

Started by ``ceiling_bench.py`` (with ``PYTHONPATH`` on an older inpars for
``--baseline``), it reads one JSON line per job from stdin, ``{"ids": [...], "timed":
true}``, generates into a fresh folder with the demo's settings, and answers one JSON
line on stdout with the documents, seconds, samples and backend counts. The first job is
a warm-up (it evaluates and caches the few-shot prefix, as a real run does once).

Every ``llama_decode`` call is timed (:class:`DecodeClock`), so the answer also says where
the time went: prompt calls (some tokens want no logits), decoding steps by width (every
token wants logits), and the rest (Python: sampling, checks, writing).

    python eval/benchmarks/ceiling_worker.py CONFIG THREADS
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ceiling_demo import Demo, load_demo

log = logging.getLogger("ceiling_worker")


WIDTHS = (1, 4, 16, 32, 48)  # decoding steps are counted by the largest of these not above their width


class DecodeClock:
    """Wraps ``llama_cpp.llama_decode``: calls, tokens and seconds by kind of call."""

    def __init__(self) -> None:
        import llama_cpp

        self._real = llama_cpp.llama_decode
        llama_cpp.llama_decode = self
        self.kinds: dict[str, list[float]] = {}  # kind -> [calls, tokens, seconds]

    def __call__(self, ctx: Any, batch: Any) -> int:
        n = int(batch.n_tokens)
        outputs = sum(1 for j in range(n) if batch.logits[j])
        start = time.perf_counter()
        code = int(self._real(ctx, batch))
        seconds = time.perf_counter() - start
        if outputs < n:
            kind = "prompt (+ riding samples)"
        else:
            kind = f"decode {max(w for w in WIDTHS if w <= max(n, 1))}+ sequences"
        row = self.kinds.setdefault(kind, [0, 0, 0.0])
        row[0] += 1
        row[1] += n
        row[2] += seconds
        return code

    def since(self, before: dict[str, list[float]]) -> dict[str, list[float]]:
        """The counts added since a copy of :attr:`kinds`."""
        return {kind: [now - then for now, then in zip(row, before.get(kind, [0, 0, 0.0]), strict=True)]
                for kind, row in self.kinds.items() if row[0] > before.get(kind, [0])[0]}


def run_settings(demo: Demo, template: str) -> Any:
    """The demo's RunSettings, built as the generate stage of this inpars builds them."""
    cfg = demo.generate
    try:
        from inpars.generation.stage import run_settings as stage_run_settings
    except ImportError:  # an inpars from before run_settings
        from inpars.generation.parsing import QueryCheck
        from inpars.generation.runner import RunSettings
        from inpars.generation.stage import sampling_settings

        return RunSettings(template=template, model=cfg.model, queries_per_doc=cfg.queries_per_doc,
                           seed=demo.seed, sampling=sampling_settings(cfg),
                           limits=QueryCheck(cfg.min_query_words, cfg.max_query_words),
                           batch_docs=cfg.batch_docs, shard_docs=cfg.shard_docs)
    return stage_run_settings(cfg, template, demo.seed)


def serve(config: Path, threads: int) -> None:
    import inpars
    from inpars.generation.backends import load_backend
    from inpars.generation.runner import generate_queries
    from inpars.generation.templates import load_template

    clock = DecodeClock()
    demo = load_demo(config, choose=False)
    cfg = dataclasses.replace(demo.generate, threads=threads)
    demo.config = dataclasses.replace(demo.config, generate=cfg)
    backend = load_backend(cfg)
    builder = demo.builder(backend.truncate)
    run = run_settings(demo, load_template(cfg.template).name)
    print(json.dumps({"ready": True, "inpars": str(Path(inpars.__file__).parent),
                      "batch_docs": cfg.batch_docs, "threads": threads}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        docs = demo.documents(job["ids"])
        before = dict(backend.stats)
        timed = {kind: list(row) for kind, row in clock.kinds.items()}
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            result = generate_queries(docs, Path(folder) / "shards", backend=backend, builder=builder,
                                      run=run, progress=False)
            seconds = time.perf_counter() - start
        stats = {k: v - before.get(k, 0) for k, v in backend.stats.items()}
        print(json.dumps({"docs": len(docs), "seconds": seconds, "kept": result.queries,
                          "rejected": result.rejected, "rejects": dict(result.rejects), "stats": stats,
                          "llama_decode": clock.since(timed)}), flush=True)
    backend.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    serve(Path(sys.argv[1]), int(sys.argv[2]))
