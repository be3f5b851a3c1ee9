"""The ``refine`` stage's declaration: iterative refinement of a trained model
(:mod:`inpars.refinement`), on with ``[refine] rounds >= 1``; its model is the system
``bm25+ce-refined`` (or ``bm25+bi-refined``), reranked and reported beside the others.

:class:`PipelineSteps` does a round's work with the run's own stages: the generate stage's
library function for the picked documents (the documents the model wrongly preferred fill
the template's ``{neighbours}``), the ``[filter]`` steps, ``[negatives]`` mining, ``[train]``
from the start model, and the dev score (BM25's top ``dev_depth`` for the dev queries,
reranked; interpolated with BM25 at the ``[evaluate] interpolate`` weight of the trained
system when the config gives one, and then that score decides).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from inpars.errors import ConfigError
from inpars.manifest import StageContext
from inpars.pipeline.graph import Output, Stage
from inpars.pipeline.model_checks import model_inputs
from inpars.pipeline.negatives import mine_examples
from inpars.pipeline.stages import TrainStage, filter_generated, trained_system
from inpars.pipeline.workspace import Workspace
from inpars.records import ScoredPair, SyntheticQuery
from inpars.refinement.failures import Failure
from inpars.refinement.rounds import DevScore

KINDS = {"cross-encoder": "ce", "dense": "bi"}  # [refine] model -> the system name's kind


def refined_system(ws: Workspace) -> str:
    """``bm25+ce-refined`` or ``bm25+bi-refined``."""
    return trained_system(KINDS[ws.config.refine.model], "refined")


def dev_weight(ws: Workspace) -> float | None:
    """BM25's weight in the dev score: the ``[evaluate] interpolate`` weight of the trained
    system refined (``None``: the model's ranking alone is scored)."""
    return ws.config.evaluate.interpolate.get(trained_system(KINDS[ws.config.refine.model], "synthetic"))


class RefineStage(Stage):
    name = "refine"
    help = "iterative refinement: new queries where the trained model fails; retrain on the union"
    needs = ("train", "negatives", "filter", "index")

    def enabled(self, ws: Workspace) -> bool:
        return ws.config.refine.rounds > 0

    def settings(self, ws: Workspace) -> Any:
        cfg = ws.config
        rounds = {name: ws.graph[name].settings(ws) for name in ("generate", "filter", "negatives", "train")}
        dev = {"dev_queries": cfg.data.dev_queries, "interpolate": dev_weight(ws),
               "rerank_max_length": cfg.rerank.max_length}
        return {"refine": cfg.refine, "rounds_use": rounds, "dev": dev}

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        generate = ws.config.generate
        models = model_inputs("generator", generate.model) if generate.backend != "openai" else {}
        return ws.corpus_inputs() | models

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        from inpars.refinement.rounds import ROUNDS_FILE, ROUNDS_PAGE

        model = ws.config.refine.model
        return (Output(model, "model", model), Output("rounds", "file", ROUNDS_FILE),
                Output("rounds_page", "report", ROUNDS_PAGE))

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        from inpars.generation.templates import load_template

        if not self.enabled(ws):
            return  # off (rounds = 0): nothing to refine, whatever [train] trains
        cfg, train = ws.config.refine, ws.config.train
        where = f"{ws.config.source_path} [refine]"
        if not load_template(cfg.template).uses_neighbours:
            raise ConfigError(f"{where} template = {cfg.template!r} has no {{neighbours}}: a round shows the "
                              "documents the model wrongly preferred there. Fix: template = 'neighbours'")
        trained = "synthetic" in (train.labels if cfg.model == "cross-encoder" else
                                  (train.dense_labels if train.dense else []))
        if not trained:
            raise ConfigError(f"{where} model = {cfg.model!r} refines the {cfg.model} [train] trains on "
                              "synthetic data, and it trains none. Fix: add 'synthetic' to [train] "
                              + ("labels" if cfg.model == "cross-encoder" else "dense_labels (dense = true)"))

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        from inpars.refinement.rounds import Start, refine

        cfg = ws.config.refine
        start = Start(kept=ws.output("filter", "kept"), examples=ws.output("negatives", "examples"),
                      model=ws.output("train", cfg.model))
        held_out = ws.held_out_ids()
        exclude = {q.doc_id for q in ws.kept_queries() if q.query_id in held_out} if held_out else set()
        refine(ctx, cfg, PipelineSteps(ws), start, model_name=cfg.model, exclude_docs=exclude)
        ctx.extra["dev_set"] = ws.dev_set_kind()


@dataclasses.dataclass
class PipelineSteps:
    """A refinement round's work done with the run's stages
    (:class:`~inpars.refinement.rounds.RoundSteps`)."""

    ws: Workspace

    @property
    def scorer_kind(self) -> str:
        return "cross-encoder" if self.ws.config.refine.model == "cross-encoder" else "bi-encoder"

    def _scorer(self, model: Path) -> Any:
        from inpars.reranking import SystemSpec, load_system

        return load_system(SystemSpec(self.scorer_kind, str(model)), self.ws.config.rerank)

    def probe(self, queries: Sequence[SyntheticQuery], model: Path) -> list[Failure]:
        from inpars.refinement.failures import probe

        cfg = self.ws.config.refine
        with self.ws.bm25() as bm25:
            return probe(queries, bm25, self._scorer(model), candidates=cfg.candidates, top_k=cfg.top_k)

    def generate(self, ctx: StageContext, docs: Mapping[str, Sequence[str]]) -> None:
        from inpars.generation.stage import generate_stage

        ws, refine = self.ws, self.ws.config.refine
        cfg = dataclasses.replace(ws.config.generate, template=refine.template, num_docs=len(docs),
                                  queries_per_doc=refine.queries_per_doc, neighbours=refine.neighbours)
        with ws.bm25() as bm25:
            def preferred(doc: Any) -> list[Any]:
                return [bm25.document(doc_id) for doc_id in docs.get(doc.doc_id, ())]

            generate_stage(ctx, cfg, ws.collection, train_split=ws.config.data.train_split,
                           test_split=ws.config.data.test_split, neighbours=preferred, doc_ids=list(docs))

    def filter(self, ctx: StageContext, generated: Path) -> Path:
        filter_generated(ctx, self.ws, generated)
        return ctx.out_dir / "kept.jsonl"

    def negatives(self, ctx: StageContext, kept: Path) -> Path:
        mine_examples(ctx, self.ws, kept)
        return ctx.out_dir / "examples.jsonl"

    def train(self, examples: Path, kept: Path, model_dir: Path, seed: int) -> dict[str, Any]:
        from inpars.training.stage import train_model, weighting_signals

        cfg = TrainStage().train_config(self.ws)
        return train_model(self.ws.config.refine.model, examples, model_dir, cfg, seed=seed,
                           signals=weighting_signals(cfg, kept))

    def dev(self, model: Path) -> DevScore:
        from inpars.evaluation.interpolation import interpolate
        from inpars.evaluation.metrics import mean_scores
        from inpars.reranking import rerank

        ws, depth = self.ws, self.ws.config.refine.dev_depth
        queries, qrels = ws.dev_queries()
        with ws.bm25() as bm25:
            first = bm25.search(queries, depth)
            reranked = rerank(first, queries, bm25, self._scorer(model), depth, desc="refine dev")
        runs: dict[str, Mapping[str, Sequence[ScoredPair]]] = {"ndcg@10": reranked}
        weight = dev_weight(ws)
        if weight is not None:
            mixed = interpolate(_scores(first), _scores(reranked), weight, depth)
            runs["ndcg@10+interp"] = {q: [ScoredPair(q, d, s) for d, s in docs.items()]
                                      for q, docs in mixed.items()}
        scores = mean_scores(qrels, runs)
        return DevScore("ndcg@10+interp" if weight is not None else "ndcg@10", scores)


def _scores(run: Mapping[str, Sequence[ScoredPair]]) -> dict[str, dict[str, float]]:
    return {q: {p.doc_id: p.score for p in pairs} for q, pairs in run.items()}
