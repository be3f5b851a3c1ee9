"""Walk a :class:`~inpars.pipeline.graph.StageGraph`: ``inpars run``, ``--until``, ``--force``,
one stage alone, skip and resume.

Before any stage runs, every stage's :meth:`~inpars.pipeline.graph.Stage.check` sees the
config (and the system names the graph will produce): a typo, a template or a model path
that names nothing (:mod:`inpars.pipeline.model_checks`) fails before anything is
indexed or replaced. Each stage then goes through :func:`inpars.manifest.run_stage`:
skipped when its fingerprint (config, hashes of its inputs, seed) is unchanged and its
outputs are still what it wrote, resumed when interrupted, run again otherwise, beside
its folder, which the new outputs replace only when the stage succeeds (a failed rerun,
``--force`` included, leaves the previous outputs finished and usable). The whole run
holds the experiment's lock and ends with a run manifest in the run folder (and next to
the report when it evaluated).

``reuse`` names another run's folder (``inpars run CONFIG --reuse runs/<other>``): a stage
this run has not built is hard-linked from there when that run finished it with the very
fingerprint this run gives it (same settings, same input hashes, same seed), so an
ablation that changes, say, only ``[negatives]`` regenerates nothing. The link is checked
like any finished stage (its outputs against its manifest) before it is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from inpars.errors import ConfigError, StageError
from inpars.io import read_json, write_json
from inpars.manifest import StageResult, config_dict, package_versions, run_stage, stage_fingerprint
from inpars.pipeline.graph import Stage
from inpars.pipeline.workspace import RUN_PREFIX, Workspace
from inpars.stage_folders import MANIFEST, link_stage, read_manifest, remove_temporaries

log = logging.getLogger(__name__)


class Executor:
    """Runs the stages of one experiment's graph."""

    def __init__(self, ws: Workspace, *, force: Collection[str] = (),
                 reuse: Path | str | None = None) -> None:
        for name in force:
            ws.graph[name]  # unknown stage names fail here, with the valid ones
        if reuse is not None and not Path(reuse).is_dir():
            raise ConfigError(f"--reuse {reuse}: no such run folder. Fix: name another experiment's run "
                              "folder, e.g. runs/scifact")
        self.ws = ws
        self.force = frozenset(force)
        self.reuse = Path(reuse) if reuse is not None else None
        self.results: dict[str, StageResult] = {}

    @property
    def graph(self) -> Any:
        return self.ws.graph

    def validate(self) -> None:
        """Every stage's checks (config values, system names, templates, model settings),
        before anything runs or is replaced."""
        systems = self.graph.systems(self.ws)
        for stage in self.graph:
            stage.check(self.ws, systems)

    def inputs(self, stage: Stage) -> dict[str, Path]:
        """The stage folders and files ``stage`` reads (what its fingerprint hashes)."""
        ws = self.ws
        found = {name: ws.stage_dir(name) for name in stage.needs if ws.manifest(name)}
        found |= {name: ws.stage_dir(name) for name in stage.uses if ws.finished(name)}
        if stage.collects_runs:
            names = self.graph.names
            for name in names[: names.index(stage.name)]:
                if self.graph[name].enabled(ws) and ws.finished(name) and ws.runs(name):
                    found[name] = ws.stage_dir(name)
        return found | stage.inputs(ws)

    def run_one(self, name: str) -> StageResult:
        """Run (or skip, or resume) one stage; the stages it needs must have finished."""
        stage, ws = self.graph[name], self.ws
        if self.reuse is not None and name not in self.force:
            self.link_reused(name, self.reuse)
        result = run_stage(name, ws.stage_dir(name), stage.settings(ws), self.inputs(stage),
                           lambda ctx: stage.run(ctx, ws), seed=ws.config.experiment.seed,
                           force=name in self.force)
        recorded = result.manifest.get("outputs", {})
        missing = [o.name for o in stage.outputs(ws) if o.name not in recorded]
        if missing:
            raise StageError(f"stage '{name}' finished without its promised outputs {missing}. "
                             f"Fix: rerun `inpars {name} --force`; if it persists, report it as a bug")
        stage.finished(ws, result)
        self.results[name] = result
        return result

    def link_reused(self, name: str, run_dir: Path) -> bool:
        """Hard-link stage ``name`` from the run folder ``run_dir`` when this run has no folder
        for it and that run finished it with this run's fingerprint; whether it did."""
        stage, ws, source = self.graph[name], self.ws, run_dir / name
        target = ws.stage_dir(name)
        other = read_manifest(source)
        if not stage.reusable or target.exists() or other is None or source.resolve() == target.resolve():
            return False
        fingerprint, _ = stage_fingerprint(name, stage.settings(ws), self.inputs(stage),
                                           ws.config.experiment.seed)
        if other.get("fingerprint") != fingerprint:
            log.info("%s: not reused from %s (other settings or inputs)", name, source)
            return False
        link_stage(source, target)
        log.info("%s: reused from %s (same fingerprint; hard-linked)", name, source)
        return True

    def run_single(self, name: str) -> StageResult:
        """``inpars <stage> CONFIG``: one stage, under the lock, after every stage's checks."""
        from inpars.lock import ExperimentLock

        if not self.graph[name].enabled(self.ws):
            where = self.ws.config.source_path or "config"
            raise ConfigError(f"{where}: the '{name}' stage is switched off. "
                              f"Fix: switch it on in the config's [{name}] section (enabled = true)")
        with ExperimentLock(self.ws.run_dir, command=self.ws.command or None):
            remove_temporaries(self.ws.run_dir, "run", deep=False)
            self.validate()
            return self.run_one(name)

    def run(self, stages: Collection[str] | None = None) -> dict[str, Any]:
        """Run ``stages`` (all by default) in graph order under the experiment's lock, then
        write the run manifest; returns it."""
        from inpars.lock import ExperimentLock

        names = [n for n in self.graph.names
                 if (stages is None or n in stages) and self.graph[n].enabled(self.ws)]
        started = time.perf_counter()
        with ExperimentLock(self.ws.run_dir, command=self.ws.command or None):
            remove_temporaries(self.ws.run_dir, "run", deep=False)  # e.g. a run manifest a kill stopped
            self.validate()
            for name in names:
                self.run_one(name)
            summary = run_manifest(self.ws, self.results, time.perf_counter() - started)
            write_json(self.ws.run_dir / MANIFEST, summary)
        return summary


def run_manifest(ws: Workspace, results: Mapping[str, StageResult], seconds: float) -> dict[str, Any]:
    """The run manifest: config, inputs, versions, seed, what each stage did, the metrics."""
    summary: dict[str, Any] = {
        "experiment": ws.name,
        "command": ws.command,
        "config": config_dict(ws.config),
        "inputs": {k: str(v) for k, v in ws.corpus_inputs().items()},
        "collection": ws.collection.name,
        "seed": ws.config.experiment.seed,
        "versions": package_versions(),
        "stages": {
            name: {
                "skipped": result.skipped,
                "fingerprint": result.manifest.get("fingerprint"),
                "seconds": result.manifest.get("timings", {}).get("total"),
                "counts": result.manifest.get("counts", {}),
                "systems": sorted(k[len(RUN_PREFIX):] for k in result.manifest.get("outputs", {})
                                  if k.startswith(RUN_PREFIX)),
            }
            for name, result in results.items()
        },
        "seconds": round(seconds, 1),
    }
    metrics = ws.stage_dir("evaluate") / "metrics.json"
    if "evaluate" in results and metrics.is_file():
        summary["metrics"] = read_json(metrics).get("systems", {})
    return summary
