"""The evaluate stage's declaration: it discovers the runs of every finished earlier stage,
checks the system names the config uses, and compares the report with the committed one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpars.errors import ConfigError
from inpars.manifest import StageContext, StageResult
from inpars.pipeline.graph import Stage
from inpars.pipeline.workspace import Workspace

log = logging.getLogger(__name__)


def check_system_names(ws: Workspace, systems: Sequence[str]) -> None:
    """Every system named in ``[evaluate]`` (baseline, interpolate, fusion) must be one the
    stages will produce; the error lists those that will."""
    from inpars.evaluation.interpolation import interpolated_name

    cfg = ws.config.evaluate
    where = f"{ws.config.source_path or 'config'} [evaluate]"
    valid = ", ".join(systems)
    if cfg.baseline not in systems:
        raise ConfigError(f"{where} baseline = {cfg.baseline!r} is not a system of this run. "
                          f"Fix: use one of {valid}")
    for system in cfg.interpolate:
        if system not in systems:
            raise ConfigError(f"{where} interpolate names {system!r}, which this run will not produce. "
                              f"Fix: use one of {valid}")
    fusable = set(systems) | {interpolated_name(s) for s in cfg.interpolate}
    for group in cfg.fusion:
        unknown = [s for s in group if s not in fusable]
        if unknown:
            raise ConfigError(f"{where} fusion group {group} names {unknown}, which this run will not "
                              f"produce. Fix: use systems among {', '.join(sorted(fusable))}")


def reranked_depths(manifest: dict[str, Any]) -> dict[str, int]:
    """System -> how many first-stage documents it rescored, for the runs a stage made by
    reranking (such a stage records ``extra.systems`` and ``extra.depth``, as
    :func:`inpars.reranking.rerank_stage` does); interpolation normalizes over those only."""
    extra = manifest.get("extra", {})
    if "depth" not in extra or not isinstance(extra.get("systems"), dict):
        return {}
    return {name: int(extra["depth"]) for name in extra["systems"]}


class EvaluateStage(Stage):
    """Score every run there is: the first-stage runs right after ``index``, the reranked and
    fine-tuned ones once their stages have finished."""

    name = "evaluate"
    help = "score the runs with ranx, test significance, write the reports"
    needs = ("index",)
    uses = ("generate", "filter")
    collects_runs = True

    def settings(self, ws: Workspace) -> Any:
        return {"evaluate": ws.config.evaluate, "description": ws.config.experiment.description}

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        check_system_names(ws, systems)

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        from inpars.evaluation import evaluate_stage

        runs: dict[str, Path] = {}
        rescored: dict[str, int] = {}
        for stage in self.collected(ws):
            runs.update(ws.runs(stage))
            rescored.update(reranked_depths(ws.manifest(stage)))
        evaluate_stage(
            ctx, ws.config.evaluate, ws.collection.qrels(ws.config.data.test_split), runs,
            excluded_query_ids=ws.example_query_ids(), command=ws.command,
            synthetic=ws.kept_queries() if ws.finished("filter") else None,
            extra_sections=self.sections(ws),
            title=f"{ws.name}: {ws.config.data.test_split} split",
            query_texts={q.query_id: q.text for q in ws.test_queries()},
            rescored_depth=rescored,
        )

    def finished(self, ws: Workspace, result: StageResult) -> None:
        """Compare the headline numbers with the committed reference (``eval/results/``,
        changed only by ``inpars publish``) and say where they differ."""
        from inpars.pipeline.publish import REFERENCE_NOTE, compare_with_reference

        lines = compare_with_reference(ws)
        log.info("evaluate: %s (%s)", lines[0], ws.run_dir / REFERENCE_NOTE)

    def earlier(self, ws: Workspace) -> tuple[str, ...]:
        """The stages registered before this one (whose runs it evaluates)."""
        names = ws.graph.names
        return names[: names.index(self.name)]

    def collected(self, ws: Workspace) -> list[str]:
        """The earlier stages it reads: finished, and switched on in this config."""
        return [s for s in self.earlier(ws) if ws.graph[s].enabled(ws) and ws.finished(s)]

    def sections(self, ws: Workspace) -> dict[str, str]:
        """Extra report sections: the experiment's description, then the stage table."""
        from inpars.evaluation.pipeline_table import INTRO, pipeline_table

        manifests = {s: ws.manifest(s) for s in self.collected(ws)}
        sections = {"About this experiment": ws.config.experiment.description.strip(),
                    "Pipeline": f"{INTRO}\n\n{pipeline_table(manifests)}"}
        return {title: text for title, text in sections.items() if text}
