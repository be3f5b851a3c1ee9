"""The evaluate stage's declaration: it discovers the runs of every finished earlier stage,
adds the external runs of ``[evaluate] runs`` (checked and ranked by
:func:`inpars.compare.read_run`; their files are inputs of its fingerprint), checks the system
names the config uses, and compares the report with the committed one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inpars.errors import ConfigError, did_you_mean
from inpars.manifest import StageContext, StageResult, config_dict
from inpars.pipeline.graph import Stage
from inpars.pipeline.workspace import Workspace

log = logging.getLogger(__name__)

EXTERNAL_PREFIX = "external-run:"  # input and output names of the [evaluate] runs files
EXTERNAL_DIR = "external"  # the external runs as evaluated (checked, ties broken), in the stage folder


def external_runs(ws: Workspace) -> dict[str, Path]:
    """System name -> run file of ``[evaluate] runs`` (relative paths from the current folder)."""
    return {name: Path(path) for name, path in ws.config.evaluate.runs.items()}


def check_external_runs(ws: Workspace, systems: Sequence[str]) -> None:
    """An external run needs its own name (not a system, fusion or interpolation of this run)
    and a file that is there."""
    from inpars.evaluation.interpolation import interpolated_name

    cfg = ws.config.evaluate
    where = f"{ws.config.source_path or 'config'} [evaluate] runs"
    produced = [*systems, *(interpolated_name(s) for s in cfg.interpolate), *cfg.mix,
                *("+".join(group) for group in cfg.fusion)]
    for name, path in external_runs(ws).items():
        if name in produced:
            raise ConfigError(f"{where}: {name!r} is also the name of a system of this run. Fix: give the "
                              f"external run another name, e.g. '{name}-external' (this run's systems: "
                              f"{', '.join(dict.fromkeys(produced))})")
        if not path.is_file():
            raise ConfigError(f"{where}: {name} = '{path}' is not a file. Fix: check the path (relative "
                              f"paths are read from {Path.cwd()})")


def check_system_names(ws: Workspace, systems: Sequence[str]) -> None:
    """Every system named in ``[evaluate]`` (baseline, interpolate, fusion) must be one the
    stages will produce; the error lists those that will."""
    from inpars.evaluation.interpolation import interpolated_name

    cfg = ws.config.evaluate
    where = f"{ws.config.source_path or 'config'} [evaluate]"
    valid = ", ".join(systems)
    if cfg.baseline not in systems:
        raise ConfigError(f"{where} baseline = {cfg.baseline!r} is not a system of this run"
                          f"{did_you_mean(cfg.baseline, systems)}. "
                          f"Fix: use one of {valid}")
    for system in cfg.interpolate:
        if system not in systems:
            raise ConfigError(f"{where} interpolate names {system!r}, which this run will not produce"
                              f"{did_you_mean(system, systems)}. "
                              f"Fix: use one of {valid}")
    interpolated = set(systems) | {interpolated_name(s) for s in cfg.interpolate}
    for name, members in cfg.mix.items():
        unknown = [s for s in members if s not in interpolated]
        if unknown:
            raise ConfigError(f"{where} mix {name!r} names {unknown}, which this run will not produce. "
                              f"Fix: use systems among {', '.join(sorted(interpolated))}")
        if name in interpolated:
            raise ConfigError(f"{where} mix {name!r} is already the name of a system. "
                              "Fix: give the mix another name")
    fusable = interpolated | set(cfg.mix)
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
    reusable = False  # the reports are titled with the experiment's name: another run's would mislead

    def settings(self, ws: Workspace) -> Any:
        # the external runs are inputs (their names and file hashes), not settings: a run that
        # names none keeps the fingerprint it had before [evaluate] runs existed
        evaluate = {k: v for k, v in config_dict(ws.config.evaluate).items() if k != "runs"}
        return {"evaluate": evaluate, "description": ws.config.experiment.description}

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        return {f"{EXTERNAL_PREFIX}{name}": path for name, path in external_runs(ws).items()}

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        check_external_runs(ws, systems)
        check_system_names(ws, [*systems, *external_runs(ws)])

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        from inpars.evaluation import evaluate_stage

        runs: dict[str, Path] = {}
        rescored: dict[str, int] = {}
        for stage in self.collected(ws):
            runs.update(ws.runs(stage))
            rescored.update(reranked_depths(ws.manifest(stage)))
        qrels = ws.collection.qrels(ws.config.data.test_split)
        sections = self.sections(ws)
        if ws.config.evaluate.quality and ws.finished("generate") and ws.finished("filter"):
            from inpars.inspection.report import DATA_PAGE, quality_section

            with ctx.timed("quality"):
                sections["Synthetic data quality"] = quality_section(
                    ws, ctx.output("data_page", ctx.out_dir / DATA_PAGE),
                    config_path=ws.config.source_path or "CONFIG", command=ws.command)
        if ws.config.evaluate.runs:
            judged = {q.query_id for q in qrels} - ws.example_query_ids()
            with ctx.timed("read_external_runs"):
                external, sections["External runs"] = self.external(ctx, ws, judged)
            runs.update(external)
        evaluate_stage(
            ctx, ws.config.evaluate, qrels, runs,
            excluded_query_ids=ws.example_query_ids(), command=ws.command,
            synthetic=ws.kept_queries() if ws.finished("filter") else None,
            extra_sections=sections,
            title=f"{ws.name}: {ws.config.data.test_split} split",
            query_texts={q.query_id: q.text for q in ws.test_queries()},
            rescored_depth=rescored,
        )

    def external(self, ctx: StageContext, ws: Workspace, judged: set[str]) -> tuple[dict[str, Path], str]:
        """The external runs read and checked, written as evaluated into ``external/<name>.trec``
        (ranked by score, ties broken by document id), and the report section on them."""
        from inpars.compare import read_run, runs_section
        from inpars.trec import write_trec_run

        files = [read_run(path, name).judge(judged) for name, path in external_runs(ws).items()]
        written: dict[str, Path] = {}
        for run in files:
            written[run.name] = ctx.output(f"{EXTERNAL_PREFIX}{run.name}",
                                           ctx.out_dir / EXTERNAL_DIR / f"{run.name}.trec")
            write_trec_run(written[run.name], run.pairs, tag=run.name)
        ctx.counts["external_runs"] = len(files)
        ctx.extra["external_runs"] = {run.name: str(run.path) for run in files}
        intro = ("Systems from outside this pipeline (`[evaluate] runs`, or `--run NAME=PATH`), each read "
                 f"from its file and evaluated as written to `{EXTERNAL_DIR}/` in this folder.")
        return written, f"{intro}\n\n{runs_section(files)}"

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
