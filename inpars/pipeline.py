"""``inpars run``: index -> generate -> filter -> negatives -> train -> rerank -> evaluate.

Each stage writes into its own folder of one run directory (``runs/<experiment>/<stage>``)
through :func:`inpars.manifest.run_stage`, so a stage whose config and inputs did not
change is skipped, and changing one setting reruns only that stage and the later ones.
A top-level ``manifest.json`` in the run directory records the resolved config, input
hashes, versions, seed, per-stage timings and the final metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.config import Config
from inpars.errors import ConfigError, StageError
from inpars.io import read_json, write_json, write_trec_run
from inpars.manifest import (
    ALL_SESSIONS_TIMING,
    MANIFEST,
    StageContext,
    StageResult,
    config_dict,
    package_versions,
    require_manifest,
    run_stage,
)

log = logging.getLogger(__name__)

RUN_MANIFEST = "run-manifest.json"  # in the results folder: the run manifest of the run that wrote it
STAGES = ("index", "generate", "filter", "negatives", "train", "rerank", "evaluate")


@dataclass
class Experiment:
    """One experiment: its config, its collection and its run directory."""

    config: Config
    command: str = ""
    force: frozenset[str] = frozenset()
    results: dict[str, StageResult] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from inpars.data import open_from_config

        data = self.config.data
        if not data.source and not data.fallback:
            raise ConfigError(
                f"{self.config.source_path} [data]: no 'source'. Fix: set source to a BEIR folder or an "
                "ir_datasets id such as 'beir/scifact/test'"
            )
        self.collection = open_from_config(data)

    # ------------------------------------------------------------------ paths
    @property
    def name(self) -> str:
        return self.config.experiment.name

    @property
    def run_dir(self) -> Path:
        return Path(self.config.experiment.run_dir or f"runs/{self.name}")

    @property
    def results_dir(self) -> Path:
        return Path(self.config.experiment.results_dir or f"eval/results/{self.name}")

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage

    def _run(
        self, stage: str, section: Any, inputs: dict[str, Path], body: Callable[[StageContext], None]
    ) -> StageResult:
        result = run_stage(
            stage,
            self.stage_dir(stage),
            section,
            inputs,
            body,
            seed=self.config.experiment.seed,
            force=stage in self.force,
        )
        self.results[stage] = result
        return result

    def _needs(self, *stages: str) -> dict[str, Path]:
        for stage in stages:
            require_manifest(self.stage_dir(stage), stage)
        return {stage: self.stage_dir(stage) for stage in stages}

    def corpus_inputs(self) -> dict[str, Path]:
        return {f"collection:{p.name}": p for p in self.collection.source_files()}

    # ------------------------------------------------------------------ shared inputs
    def _index_extra(self) -> dict[str, Any]:
        return dict(require_manifest(self.stage_dir("index"), "index").get("extra", {}))

    def bm25(self) -> Any:
        from inpars.indexing import Bm25Searcher

        info = self._index_extra().get("bm25")
        if not info:
            raise StageError(f"{self.stage_dir('index')}: no BM25 index recorded. Fix: rerun `inpars index`")
        return Bm25Searcher(info["index"], k1=self.config.index.k1, b=self.config.index.b)

    def dense(self) -> Any | None:
        from inpars.indexing import DenseIndex

        info = self._index_extra().get("dense")
        if not info:
            return None
        index = DenseIndex.load(info["index"])
        index.collection = self.collection
        return index

    def test_queries(self) -> list[Any]:
        return self.collection.split_queries(self.config.data.test_split)

    def eval_queries(self) -> list[Any]:
        """Every query of a split with judgements that is not the training split
        (what the contamination check compares synthetic queries against)."""
        splits = [s for s in self.collection.splits() if s != self.config.data.train_split]
        return [q for split in splits for q in self.collection.split_queries(split)]

    def excluded_query_ids(self) -> set[str]:
        manifest = require_manifest(self.stage_dir("generate"), "generate")
        return set(manifest.get("extra", {}).get("example_query_ids", []))

    # ------------------------------------------------------------------ stages
    def index(self) -> StageResult:
        from inpars.indexing import index_stage

        cfg = self.config.index
        return self._run("index", {"index": cfg, "split": self.config.data.test_split}, self.corpus_inputs(),
                         lambda ctx: index_stage(ctx, cfg, self.collection, self.config.data.test_split))

    def generate(self) -> StageResult:
        from inpars.generation.stage import generate_stage

        cfg, data = self.config.generate, self.config.data
        section = {"generate": cfg, "train_split": data.train_split, "test_split": data.test_split}
        return self._run("generate", section, self.corpus_inputs(),
                         lambda ctx: generate_stage(ctx, cfg, self.collection, train_split=data.train_split,
                                                    test_split=data.test_split))

    def filter(self) -> StageResult:
        from inpars.filtering.stage import filter_stage

        cfg = self.config.filter
        inputs = self._needs("generate", "index")

        def body(ctx: StageContext) -> None:
            uses = set(cfg.steps)
            bm25 = self.bm25() if "roundtrip" in uses and cfg.roundtrip_retriever == "bm25" else None
            dense = self.dense() if "roundtrip" in uses and cfg.roundtrip_retriever == "dense" else None
            try:
                filter_stage(ctx, cfg, self.stage_dir("generate"), self.collection,
                             eval_queries=self.eval_queries(), bm25=bm25, dense=dense)
            finally:
                if bm25 is not None:
                    bm25.close()

        return self._run("filter", cfg, inputs, body)

    def negatives(self) -> StageResult:
        from inpars.filtering.stage import KEPT
        from inpars.negatives import negatives_stage

        cfg = self.config.negatives
        inputs = self._needs("filter", "index")

        def body(ctx: StageContext) -> None:
            dense = self.dense() if cfg.dense_count else None
            with self.bm25() as bm25:
                negatives_stage(ctx, cfg, self.stage_dir("filter") / KEPT, bm25, dense=dense)

        return self._run("negatives", cfg, inputs, body)

    def train(self) -> StageResult:
        from inpars.negatives import EXAMPLES
        from inpars.training.stage import train_stage

        cfg = self.config.train
        if cfg.seed is None:
            cfg = replace_seed(cfg, self.config.experiment.seed)
        inputs = self._needs("negatives")
        return self._run("train", cfg, inputs,
                         lambda ctx: train_stage(ctx, cfg, self.stage_dir("negatives") / EXAMPLES))

    def rerank(self) -> StageResult:
        from inpars.reranking import rerank_stage, systems_from_config
        from inpars.training.stage import CROSS_ENCODER_DIR, DENSE_DIR

        cfg = self.config.rerank
        inputs = self._needs("index", "train")

        def body(ctx: StageContext) -> None:
            trained = self.stage_dir("train") / CROSS_ENCODER_DIR
            tuned = self.stage_dir("train") / DENSE_DIR
            systems = systems_from_config(cfg, trained if trained.is_dir() else None,
                                          zero_shot_model=self.config.index.dense_model,
                                          trained_bi_encoder=tuned if tuned.is_dir() else None)
            first_stage = self.stage_dir("index") / "runs" / "bm25.trec"
            with self.bm25() as bm25:
                rerank_stage(ctx, cfg, first_stage, self.test_queries(), bm25, systems)
            dense_model = self.stage_dir("train") / DENSE_DIR
            dense = self.dense()
            if dense_model.is_dir() and dense is not None:
                with ctx.timed("dense-synthetic"):
                    tuned = dense.reencode(str(dense_model), self.collection,
                                           out_dir=ctx.out_dir / "dense-index")
                    run = tuned.search(self.test_queries(), self.config.index.depth,
                                       remove_self_hits=self.config.index.remove_self_hits)
                path = ctx.out_dir / "runs" / "dense-synthetic.trec"
                write_trec_run(path, run, tag="dense-synthetic")
                ctx.output("run:dense-synthetic", path)

        return self._run("rerank", cfg, inputs, body)

    def evaluate(self) -> StageResult:
        """Evaluate every run there is: the first-stage runs always, the reranked and
        fine-tuned ones once those stages have finished (so `inpars evaluate` right after
        `inpars index` gives the BM25 / dense baselines)."""
        from inpars.evaluation import evaluate_stage, publish_results
        from inpars.manifest import read_manifest

        cfg = self.config.evaluate
        inputs = self._needs("index")
        for stage in ("generate", "filter", "rerank"):
            if read_manifest(self.stage_dir(stage)) is not None:
                inputs[stage] = self.stage_dir(stage)

        def body(ctx: StageContext) -> None:
            runs: dict[str, Path] = {}
            for stage in ("index", "rerank"):
                if stage in inputs:
                    runs.update({p.stem: p for p in sorted((self.stage_dir(stage) / "runs").glob("*.trec"))})
            excluded = self.excluded_query_ids() if "generate" in inputs else set()
            evaluate_stage(
                ctx, cfg, self.collection.qrels(self.config.data.test_split), runs,
                excluded_query_ids=excluded, command=self.command,
                synthetic=self._kept_queries() if "filter" in inputs else None,
                extra_sections=self.report_sections(),
                title=f"{self.name}: {self.config.data.test_split} split",
                query_texts={q.query_id: q.text for q in self.test_queries()},
            )

        section = {"evaluate": cfg, "description": self.config.experiment.description}
        result = self._run("evaluate", section, inputs, body)
        publish_results(self.stage_dir("evaluate"), self.results_dir)
        return result

    # ------------------------------------------------------------------ whole runs
    def _kept_queries(self) -> list[Any]:
        from inpars.filtering.stage import KEPT
        from inpars.io import read_records
        from inpars.records import SyntheticQuery

        return list(read_records(self.stage_dir("filter") / KEPT, SyntheticQuery))

    def report_sections(self) -> dict[str, str]:
        """Extra report sections: the experiment's description, then the stage table."""
        sections = {"About this experiment": self.config.experiment.description.strip()}
        sections["Pipeline"] = (
            "Seconds per stage, wall time on this machine. A resumed stage counts its last session "
            "only; a stage that measures its work over all sessions (generation) also gives that.\n\n"
            + self.stage_table()
        )
        return {title: text for title, text in sections.items() if text}

    def stage_table(self) -> str:
        """A markdown table of the stages: time, counts, drops (from their manifests)."""
        lines = ["| stage | seconds | counts | drops |", "|---|---:|---|---|"]
        total = 0.0
        for stage in STAGES:
            path = self.stage_dir(stage) / MANIFEST
            if not path.is_file():
                continue
            data = read_json(path)
            counts = ", ".join(f"{k} {v}" for k, v in data.get("counts", {}).items())
            drops = ", ".join(f"{k} {v}" for k, v in data.get("drops", {}).items())
            seconds = data.get("timings", {}).get("total", 0.0)
            earlier = data.get("timings", {}).get(ALL_SESSIONS_TIMING, 0.0)
            shown = f"{seconds:.0f}" + (f" ({earlier:.0f} over all sessions)" if earlier > seconds else "")
            lines.append(f"| {stage} | {shown} | {counts} | {drops} |")
            total += max(seconds, earlier)
        lines.append(f"| total | {total:.0f} | | |")
        return "\n".join(lines)

    def run(self, stages: tuple[str, ...] = STAGES) -> dict[str, Any]:
        """Run ``stages`` in order (each skipped when already done) and write the run manifest."""
        started = time.perf_counter()
        for stage in stages:
            getattr(self, stage)()
        summary = {
            "experiment": self.name,
            "command": self.command,
            "config": config_dict(self.config),
            "inputs": {k: str(v) for k, v in self.corpus_inputs().items()},
            "collection": self.collection.name,
            "seed": self.config.experiment.seed,
            "versions": package_versions(),
            "stages": {
                name: {
                    "skipped": result.skipped,
                    "fingerprint": result.manifest.get("fingerprint"),
                    "seconds": result.manifest.get("timings", {}).get("total"),
                    "counts": result.manifest.get("counts", {}),
                }
                for name, result in self.results.items()
            },
            "seconds": round(time.perf_counter() - started, 1),
        }
        metrics = self.stage_dir("evaluate") / "metrics.json"
        if metrics.is_file():
            summary["metrics"] = read_json(metrics).get("systems", {})
        write_json(self.run_dir / MANIFEST, summary)
        if "evaluate" in stages:  # the whole run's manifest goes next to the report it produced
            write_json(self.results_dir / RUN_MANIFEST, summary)
        return summary


def replace_seed(cfg: Any, seed: int) -> Any:
    """A section with its ``seed`` setting filled from the experiment seed."""
    import dataclasses

    return dataclasses.replace(cfg, seed=seed)


def stages_until(until: str | None) -> tuple[str, ...]:
    """The stages from the start up to and including ``until``."""
    if until is None:
        return STAGES
    if until not in STAGES:
        raise ConfigError(f"unknown stage '{until}'. Fix: use one of {', '.join(STAGES)}")
    return STAGES[: STAGES.index(until) + 1]

