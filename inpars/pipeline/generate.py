"""The ``generate`` stage's declaration: which documents, prompt and model, and the
dense vectors ``doc_sampling = "clusters"`` clusters. The work is in
:func:`inpars.generation.stage.generate_stage`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpars.errors import StageError
from inpars.manifest import StageContext
from inpars.pipeline.graph import Output, Stage
from inpars.pipeline.model_checks import check_model, model_inputs
from inpars.pipeline.workspace import Workspace


class GenerateStage(Stage):
    name = "generate"
    help = "write synthetic queries for documents with a language model"

    def settings(self, ws: Workspace) -> Any:
        from inpars.generation.neighbours import neighbour_settings
        from inpars.generation.selection import fingerprint_settings

        data, cfg = ws.config.data, ws.config.generate
        vectors = {"doc_vectors": cluster_vectors(ws)[0]} if cfg.doc_sampling == "clusters" else {}
        generate = neighbour_settings(fingerprint_settings(cfg), cfg, ws.config.index)
        columns = {"columns": data.columns} if data.columns else {}  # it changes the documents read
        return {"generate": generate, "train_split": data.train_split,
                "test_split": data.test_split, **vectors, **columns}

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        from inpars.generation.clusters import CLUSTER_ENCODER

        cfg = ws.config.generate
        template = Path(cfg.template).expanduser()
        files = {"template": template} if template.is_file() else {}
        models = model_inputs("generator", cfg.model) if cfg.backend != "openai" else {}
        if cfg.doc_sampling == "clusters" and not ws.config.index.dense:
            models |= model_inputs("clusters", CLUSTER_ENCODER)
        return ws.corpus_inputs() | files | models

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return Output("shards", "records", "shards"), Output("prompt_prefix", "file", "prompt_prefix.txt")

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        from inpars.generation.templates import load_template

        cfg = ws.config.generate
        load_template(cfg.template)
        if cfg.executor == "ray":
            from inpars.distributed.cluster import check_ray_installed

            check_ray_installed(f"{ws.config.source_path} [generate]")
        if cfg.backend != "openai":
            check_model(ws, "[generate] model", cfg.model,
                        kind="gguf" if cfg.backend == "llama-cpp" else "transformers")
        elif cfg.tokenizer:
            check_model(ws, "[generate] tokenizer", cfg.tokenizer)
        if cfg.doc_sampling == "clusters" and not ws.config.index.dense:
            from inpars.generation.clusters import CLUSTER_ENCODER

            check_model(ws, "[generate] doc_sampling = 'clusters': its encoder", CLUSTER_ENCODER)

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        from inpars.generation.neighbours import neighbour_search
        from inpars.generation.stage import generate_stage

        data, cfg = ws.config.data, ws.config.generate
        dense_dir = cluster_vectors(ws)[1] if cfg.doc_sampling == "clusters" else None
        if cfg.doc_sampling == "clusters" and ws.config.index.dense and dense_dir is None:
            raise StageError("[generate] doc_sampling = 'clusters' clusters the vectors of the dense index "
                             "([index] dense = true), which is not built yet. Fix: run `inpars index` first")
        with neighbour_search(cfg, ws.bm25) as neighbours:  # the neighbours template: BM25 of the run's index
            generate_stage(ctx, cfg, ws.collection, train_split=data.train_split, test_split=data.test_split,
                           dense_dir=dense_dir, neighbours=neighbours)


def cluster_vectors(ws: Workspace) -> tuple[dict[str, Any], Path | None]:
    """What ``[generate] doc_sampling = "clusters"`` clusters (as fingerprinted) and the dense index
    folder holding it: with ``[index] dense``, the finished index stage's vectors (``None`` before
    it has run), else the corpus encoded with the packaged MiniLM (folder ``None``)."""
    from inpars.generation.clusters import CLUSTER_ENCODER, ENCODER_MAX_LENGTH

    if not ws.config.index.dense:
        return {"encoder": CLUSTER_ENCODER, "max_length": ENCODER_MAX_LENGTH}, None
    dense = (ws.manifest("index").get("extra", {}).get("dense") if ws.finished("index") else None) or {}
    folder = Path(dense["index"]) if dense else None
    return {"dense_index": dense.get("fingerprint"), "model": dense.get("model")}, folder
