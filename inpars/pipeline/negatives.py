"""The ``negatives`` stage: hard negatives and teacher labels for each kept synthetic query
(and for the real train queries when ``[train]`` asks for them), by
:func:`inpars.negatives.negatives_stage`; also used by a refinement round."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpars.errors import ConfigError
from inpars.manifest import StageContext
from inpars.pipeline.graph import Output, Stage
from inpars.pipeline.model_checks import check_teacher, model_inputs
from inpars.pipeline.stages import uses_real_labels
from inpars.pipeline.workspace import Workspace


class NegativesStage(Stage):
    name = "negatives"
    help = "mine hard negatives with BM25 and export training examples"
    needs = ("filter", "index")

    def settings(self, ws: Workspace) -> Any:
        negatives = negatives_settings(ws)
        if not ws.has_judged_train():  # the label-free dev set is held out of training
            held_out = {"dev_queries": ws.config.data.dev_queries, "seed": ws.config.experiment.seed}
            return {"negatives": negatives, "held_out_dev": held_out}
        if not uses_real_labels(ws):
            return negatives
        data = ws.config.data
        real = {"train_split": data.train_split, "dev_queries": data.dev_queries,
                "seed": ws.config.experiment.seed}
        return {"negatives": negatives, "real_labels": real}

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        cfg = ws.config.negatives
        teacher = model_inputs("teacher", cfg.teacher_model) if cfg.teacher == "cross-encoder" else {}
        return (ws.corpus_inputs() if uses_real_labels(ws) else {}) | teacher

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        real = (Output("real_examples", "records", "real-examples.jsonl"),) if uses_real_labels(ws) else ()
        return (Output("examples", "records", "examples.jsonl"), *real)

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        from inpars.negatives import needs_dense

        cfg = ws.config.negatives
        if needs_dense(cfg) and not ws.config.index.dense:
            raise ConfigError(f"{ws.config.source_path}: [negatives] retriever = {cfg.retriever!r}, "
                              f"teacher = {cfg.teacher!r}, dense_count = {cfg.dense_count} need the dense "
                              "index. Fix: set [index] dense = true")
        if uses_real_labels(ws) and not ws.has_judged_train():
            raise ConfigError(f"{ws.config.source_path}: [train] labels 'real' and 'both' train on the "
                              f"judged train queries, but the collection has no judged split "
                              f"{ws.config.data.train_split!r}. Fix: name the split in [data] train_split, "
                              "or set labels and dense_labels to ['synthetic']")
        uses_teacher = ws.config.train.loss == "margin-mse" or (
            ws.config.train.dense and ws.config.train.dense_loss == "margin-mse")
        if uses_teacher and cfg.teacher == "none":
            raise ConfigError(f"{ws.config.source_path}: a margin-mse loss in [train] distils teacher "
                              "scores. Fix: set [negatives] teacher = 'hybrid' or 'cross-encoder'")
        if cfg.teacher == "cross-encoder":
            check_teacher(ws, cfg.teacher_model)

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        mine_examples(ctx, ws, ws.output("filter", "kept"), real=uses_real_labels(ws))


def mine_examples(ctx: StageContext, ws: Workspace, kept: Path, *, real: bool = False) -> None:
    """The ``[negatives]`` examples of the synthetic queries in ``kept`` (the run's, or a
    refinement round's) into ``ctx.out_dir``, and those of the real train queries when ``real``."""
    from inpars.negatives import needs_dense, negatives_stage
    from inpars.teacher import HybridTeacher

    cfg = ws.config.negatives
    dense = ws.dense() if needs_dense(cfg) else None
    teacher = None
    if dense is not None and (cfg.retriever == "hybrid" or cfg.teacher == "hybrid"):
        teacher = HybridTeacher(dense, cfg.teacher_bm25_weight)
    labeller = cross_encoder_teacher(ws) if cfg.teacher == "cross-encoder" else None
    with ws.bm25() as bm25:
        negatives_stage(ctx, cfg, kept, bm25, dense=dense, teacher=teacher, held_out=ws.held_out_ids(),
                        labeller=labeller)
        ctx.extra["dev_set"] = ws.dev_set_kind()
        if real:
            from inpars.negatives import real_examples_stage

            pairs, qrels = ws.real_training_queries()
            real_examples_stage(ctx, cfg, pairs, qrels, bm25, dense=dense, teacher=teacher, labeller=labeller)


TEACHER_KEYS = ("teacher_model", "teacher_logits")  # read with teacher = "cross-encoder" only


def negatives_settings(ws: Workspace) -> dict[str, Any]:
    """``[negatives]`` as the stage is fingerprinted with it: :data:`TEACHER_KEYS` only with a
    cross-encoder teacher, with the settings its scores depend on (``[rerank]``'s max_length,
    dtype and device), so that runs finished before the keys existed stay valid."""
    from inpars.manifest import config_dict

    cfg = ws.config.negatives
    settings = {k: v for k, v in config_dict(cfg).items() if k not in TEACHER_KEYS}
    if cfg.teacher == "cross-encoder":
        rerank = ws.config.rerank
        settings |= {"teacher_model": cfg.teacher_model, "teacher_logits": cfg.teacher_logits}
        settings["teacher_scoring"] = {"max_length": rerank.max_length, "dtype": rerank.dtype,
                                       "device": rerank.device, "quantize": rerank.quantize}
    return settings


def cross_encoder_teacher(ws: Workspace, cfg: Any = None) -> Any:
    """The ``teacher_model`` cross-encoder of ``cfg`` (default ``[negatives]``) as a teacher,
    scoring as ``[rerank]`` scores the run's cross-encoders."""
    from inpars.scoring import load_scorer
    from inpars.teacher import CrossEncoderTeacher

    rerank, cfg = ws.config.rerank, cfg or ws.config.negatives
    scorer = load_scorer("cross-encoder", cfg.teacher_model, batch_size=rerank.batch_size,
                         max_length=rerank.max_length, device=rerank.device, dtype=rerank.dtype,
                         threads=rerank.threads, quantize=rerank.quantize, raw=cfg.teacher_logits)
    return CrossEncoderTeacher(scorer)
