"""The built-in stages: index -> generate -> filter -> negatives -> train -> rerank -> evaluate
(``generate``, ``negatives`` and the optional ``expand`` and ``refine`` have modules of their own;
their graph: :mod:`inpars.pipeline.builtin`).

Each declaration only wires: it says what the stage reads and promises and hands its
config section and inputs to the library function of the stage's module
(``inpars.indexing.stage``, ``inpars.generation.stage``...), imported when it runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpars.errors import ConfigError
from inpars.manifest import StageContext
from inpars.pipeline.graph import Output, Stage
from inpars.pipeline.model_checks import check_model, model_inputs
from inpars.pipeline.workspace import Workspace

if TYPE_CHECKING:
    from inpars.reranking import SystemSpec

TRAINED_CE = "bm25+ce-synthetic"  # BM25 reranked by the cross-encoder trained on synthetic data
TRAINED_BI = "bm25+bi-synthetic"  # ... by the sentence encoder fine-tuned on synthetic data
# (trained_system() names the models trained on the real train qrels: bm25+ce-real, bm25+bi-both...)
ZERO_SHOT_BI = "bm25+bi-zero-shot"  # ... by the untuned sentence encoder's cosine
DENSE_TUNED = "dense-synthetic"  # dense retrieval with the fine-tuned encoder


def trained_system(kind: str, labels: str) -> str:
    """The name of BM25 reranked by a model trained on ``labels``: ``bm25+ce-synthetic``,
    ``bm25+bi-real``... (``kind``: ``ce`` or ``bi``)."""
    return f"bm25+{kind}-{labels}"


def trained_models(ws: Workspace) -> dict[str, str]:
    """System name -> model folder under the train stage, for every model ``[train]`` asks for."""
    from inpars.training.stage import CROSS_ENCODER_DIR, DENSE_DIR, model_dir_name

    train = ws.config.train
    models = {trained_system("ce", lab): model_dir_name(CROSS_ENCODER_DIR, lab) for lab in train.labels}
    if train.dense:
        models |= {trained_system("bi", lab): model_dir_name(DENSE_DIR, lab) for lab in train.dense_labels}
    return models


def uses_real_labels(ws: Workspace) -> bool:
    """Whether ``[train]`` trains a model on the collection's real train qrels (the worth
    table's reference columns)."""
    train = ws.config.train
    labels = [*train.labels, *(train.dense_labels if train.dense else [])]
    return any(label != "synthetic" for label in labels)


class IndexStage(Stage):
    name = "index"
    help = "build the BM25 (and dense) index and the first-stage runs"

    def settings(self, ws: Workspace) -> Any:
        columns = ws.config.data.columns  # a corpus column mapping changes the documents read
        return {"index": ws.config.index, "split": ws.config.data.test_split,
                **({"columns": columns} if columns else {})}

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        cfg = ws.config.index
        return ws.corpus_inputs() | (model_inputs("dense", cfg.dense_model) if cfg.dense else {})

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return (Output.run("bm25"),) + ((Output.run("dense"),) if ws.config.index.dense else ())

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        if ws.config.index.dense:
            check_model(ws, "[index] dense_model", ws.config.index.dense_model)

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        from inpars.indexing import index_stage

        index_stage(ctx, ws.config.index, ws.collection, ws.config.data.test_split)
        if ws.config.data.skip_bad_lines:  # every file read once, so every skipped line is counted
            ws.collection.summary()
            ctx.drops.update(ws.collection.line_drops())


class FilterStage(Stage):
    name = "filter"
    help = "keep the best synthetic queries; count every drop with its reason"
    needs = ("generate", "index")

    def settings(self, ws: Workspace) -> Any:
        from inpars.filtering.critic import stage_settings

        return stage_settings(ws.config.filter, ws.config.data.dev_queries)

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        cfg = ws.config.filter
        files = model_inputs("reranker", cfg.reranker_model) if "reranker" in cfg.steps else {}
        if "critic" in cfg.steps:
            files |= model_inputs("critic", cfg.critic_model)
            if cfg.critic_real_queries:
                files["critic_real_queries"] = Path(cfg.critic_real_queries).expanduser()
        return files

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        if "reranker" in ws.config.filter.steps:
            check_model(ws, "[filter] reranker_model", ws.config.filter.reranker_model)
            if ws.config.filter.executor == "ray":
                from inpars.distributed.cluster import check_ray_installed

                check_ray_installed(f"{ws.config.source_path} [filter]")
        if "critic" in ws.config.filter.steps:
            from inpars.filtering.critic import check_critic

            check_critic(ws.config.filter, ws.collection.splits(), ws.config.data.train_split)
            check_model(ws, "[filter] critic_model", ws.config.filter.critic_model)

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return Output("kept", "records", "kept.jsonl"), Output("dropped", "records", "dropped.jsonl")

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        filter_generated(ctx, ws, ws.stage_dir("generate"))


def filter_generated(ctx: StageContext, ws: Workspace, generated: Path) -> None:
    """The ``[filter]`` steps over the queries a generate stage wrote in ``generated`` (the
    run's own, or a refinement round's), with the run's index for the round trip."""
    from inpars.filtering.stage import filter_stage

    cfg = ws.config.filter
    kind = cfg.roundtrip_retriever if "roundtrip" in cfg.steps else ""
    bm25 = ws.bm25() if kind in ("bm25", "hybrid") else None
    dense = ws.dense() if kind in ("dense", "hybrid") else None
    roundtrip: Any = bm25 if kind == "bm25" else dense
    if kind == "hybrid" and bm25 is not None and dense is not None:
        from inpars.teacher import HybridRetriever, HybridTeacher

        roundtrip = HybridRetriever(bm25, dense, HybridTeacher(dense, cfg.hybrid_bm25_weight))
    real: Sequence[Any] = ()
    source = ""
    if "critic" in cfg.steps:  # the critic's real queries: never the dev set nor an evaluated query
        from inpars.filtering.critic import critic_real_queries

        dev = ws.dev_queries()[0] if ws.has_judged_train() else []
        real, source = critic_real_queries(cfg, ws.collection, ws.config.data.train_split,
                                           held_out=[*dev, *ws.eval_queries()])
    try:
        filter_stage(ctx, cfg, generated, ws.collection, eval_queries=ws.eval_queries(),
                     roundtrip=roundtrip, real_queries=real, real_source=source)
    finally:
        if bm25 is not None:
            bm25.close()


class TrainStage(Stage):
    name = "train"
    help = "fine-tune a cross-encoder reranker (and a dense retriever)"
    needs = ("negatives",)

    def settings(self, ws: Workspace) -> Any:
        from inpars.training.weights import fingerprint_settings

        return fingerprint_settings(self.train_config(ws))

    def train_config(self, ws: Workspace) -> Any:
        """``[train]`` with the experiment seed when it sets none."""
        cfg = ws.config.train
        return cfg if cfg.seed is not None else dataclasses.replace(cfg, seed=ws.config.experiment.seed)

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        cfg = ws.config.train
        return model_inputs("start", cfg.model, *((cfg.dense_model,) if cfg.dense else ()))

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        cfg = ws.config.train
        check_model(ws, "[train] model", cfg.model)
        if cfg.dense:
            check_model(ws, "[train] dense_model", cfg.dense_model)
        from inpars.training.weights import check_weighting

        check_weighting(cfg.weighting, ws.config.filter.steps, ws.config.negatives.teacher,
                        ws.config.source_path)

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return tuple(Output(name, "model", name) for name in trained_models(ws).values())

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        from inpars.training.stage import train_stage

        examples = {"synthetic": ws.output("negatives", "examples")}
        if uses_real_labels(ws):
            examples["real"] = ws.output("negatives", "real_examples")
        train_stage(ctx, self.train_config(ws), examples, kept=ws.output("filter", "kept"))


class RerankStage(Stage):
    name = "rerank"
    help = "rerank the BM25 run with each model"
    needs = ("index", "train")
    uses = ("refine",)  # its model, when [refine] rounds turns it on

    def settings(self, ws: Workspace) -> Any:
        from inpars.reranking import stage_settings

        return stage_settings(ws.config.rerank)

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        cfg = ws.config.rerank
        extra = [spec.partition("=")[2].partition(":")[2] for spec in cfg.extra_systems]
        zero_shot = [ws.config.index.dense_model] if cfg.zero_shot else []
        return model_inputs("rerank", *zero_shot, *extra)

    def specs(self, ws: Workspace) -> dict[str, SystemSpec]:
        """System name -> scorer to load: the models the train stage makes (in its folder),
        the refine stage's model, the untuned encoder (``zero_shot``) and ``extra_systems``."""
        from inpars.reranking import SystemSpec
        from inpars.training.stage import DENSE_DIR

        cfg, train = ws.config.rerank, ws.stage_dir("train")
        specs = {system: SystemSpec("bi-encoder" if folder.startswith(DENSE_DIR) else "cross-encoder",
                                    str(train / folder))
                 for system, folder in trained_models(ws).items()}
        refine = ws.config.refine
        if refine.rounds > 0:  # the refine stage's model: bm25+ce-refined or bm25+bi-refined
            dense = refine.model == DENSE_DIR
            specs[trained_system("bi" if dense else "ce", "refined")] = SystemSpec(
                "bi-encoder" if dense else "cross-encoder", str(ws.stage_dir("refine") / refine.model))
        if cfg.zero_shot:
            specs[ZERO_SHOT_BI] = SystemSpec("bi-encoder", ws.config.index.dense_model)
        for spec in cfg.extra_systems:
            name, _, rest = spec.partition("=")
            kind, _, model = rest.partition(":")
            specs[name] = SystemSpec(kind, model)
        return specs

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        tuned = [DENSE_TUNED] if wants_dense_tuned(ws) else []
        return tuple(Output.run(n) for n in [*self.specs(ws), *tuned])

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        first, depth = ws.config.index.depth, ws.config.rerank.depth
        if depth > first:
            raise ConfigError(
                f"{ws.config.source_path}: [rerank] depth = {depth} is deeper than the first-stage run "
                f"([index] depth = {first}). Fix: set [rerank] depth to at most {first}, "
                "or raise [index] depth"
            )
        if ws.config.rerank.executor == "ray":
            from inpars.distributed.cluster import check_ray_installed

            check_ray_installed(f"{ws.config.source_path} [rerank]")
        if ws.config.rerank.zero_shot:
            check_model(ws, "[index] dense_model (the zero_shot encoder)", ws.config.index.dense_model)
        for spec in ws.config.rerank.extra_systems:
            check_model(ws, f"[rerank] extra_systems entry {spec!r}: model",
                        spec.partition("=")[2].partition(":")[2])

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        from inpars.reranking import rerank_stage

        cfg, systems = ws.config.rerank, self.specs(ws)
        indexes = {}  # the corpus embeddings a bi-encoder system reuses instead of encoding the documents
        if wants_dense_tuned(ws):  # first: its re-encoded corpus serves bm25+bi-synthetic
            indexes[trained_system("bi", "synthetic")] = dense_tuned(ctx, ws)
        if ws.config.index.dense:
            indexes[ZERO_SHOT_BI] = Path(ws.manifest("index")["extra"]["dense"]["index"])
        for name, folder in indexes.items():
            if name in systems:
                systems[name] = dataclasses.replace(systems[name], index=str(folder))
        with ws.bm25() as bm25:
            rerank_stage(ctx, cfg, ws.runs("index")["bm25"], ws.test_queries(), bm25, systems)


def wants_dense_tuned(ws: Workspace) -> bool:
    """Dense retrieval with the encoder fine-tuned on synthetic data (the corpus re-encoded)."""
    train = ws.config.train
    return train.dense and ws.config.index.dense and "synthetic" in train.dense_labels


def dense_tuned(ctx: StageContext, ws: Workspace) -> Path:
    """Re-encode the corpus with the fine-tuned encoder and retrieve with it; returns the
    folder of the re-encoded index."""
    from inpars.trec import write_trec_run

    dense = ws.dense()
    if dense is None:
        raise ConfigError("[train] dense = true needs the dense index. Fix: set [index] dense = true")
    with ctx.timed(DENSE_TUNED):
        tuned = dense.reencode(str(ws.output("train", "dense")), ws.collection,
                               out_dir=ctx.out_dir / "dense-index")
        run = tuned.search(ws.test_queries(), ws.config.index.depth,
                           remove_self_hits=ws.config.index.remove_self_hits)
    output = Output.run(DENSE_TUNED)
    write_trec_run(ctx.out_dir / output.path, run, tag=DENSE_TUNED)
    ctx.output(output.name, ctx.out_dir / output.path)
    return tuned.folder
