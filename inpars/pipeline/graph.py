"""Stages as declared objects, and the graph they form.

A :class:`Stage` declares its name, the config it is fingerprinted with, the stages whose
outputs it reads (``needs``: they must have finished; ``uses``: read when they have),
the files beyond those it reads (corpus files, model weights), the outputs it promises
(:class:`Output`: runs, models, record files) and one :meth:`Stage.run` method.
A :class:`StageGraph` orders registered stages so that every stage comes after those it
reads; adding a stage is one module that declares it plus one :meth:`StageGraph.register`.

The systems of a run (``bm25``, ``bm25+ce-synthetic``...) are the stages' ``run``
outputs: the evaluate stage discovers them, and the names a config uses (interpolation,
fusion, baseline) are checked against :meth:`StageGraph.systems` before anything runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from inpars.errors import ConfigError, did_you_mean
from inpars.pipeline.workspace import RUN_PREFIX

if TYPE_CHECKING:
    from inpars.manifest import StageContext, StageResult
    from inpars.pipeline.workspace import Workspace

OutputKind = Literal["run", "model", "records", "report", "file"]


@dataclass(frozen=True)
class Output:
    """An output a stage promises: its name in the manifest, its kind, its path in the stage folder."""

    name: str
    kind: OutputKind
    path: str

    @classmethod
    def run(cls, system: str) -> Output:
        """The TREC run file of a system (``runs/<system>.trec``)."""
        return cls(f"{RUN_PREFIX}{system}", "run", f"runs/{system}.trec")

    @property
    def system(self) -> str | None:
        """The system name of a run output, else ``None``."""
        return self.name[len(RUN_PREFIX):] if self.kind == "run" else None


class Stage(ABC):
    """One step of the pipeline. Subclasses set the class attributes and implement :meth:`run`."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()  # finished stages whose outputs it reads
    uses: ClassVar[tuple[str, ...]] = ()  # stages whose outputs it reads when they have finished
    collects_runs: ClassVar[bool] = False  # also reads the runs of every earlier finished stage
    # whether ``inpars run --reuse`` may hard-link another run's folder of this stage; off for a
    # stage whose outputs name their own experiment (a report titled with it)
    reusable: ClassVar[bool] = True

    def enabled(self, ws: Workspace) -> bool:
        """Whether the config switches this stage on (an optional stage, e.g. ``[expand]
        enabled``). A stage that is off is left out of ``inpars run``: no folder, no
        manifest, no runs; the outputs of an earlier run with it on are not read."""
        return True

    def settings(self, ws: Workspace) -> Any:
        """What the stage is fingerprinted with: by default its config section."""
        return getattr(ws.config, self.name)

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        """Files it reads besides other stages' outputs (corpus files, model weights)."""
        return {}

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        """The outputs it promises for this config (checked when it finishes)."""
        return ()

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:  # noqa: B027 (optional hook)
        """Validate what this stage will need before any stage runs (raise :class:`ConfigError`).
        ``systems`` are the run names the whole graph will produce."""

    @abstractmethod
    def run(self, ctx: StageContext, ws: Workspace) -> None:
        """Do the work into ``ctx.out_dir``; register outputs with ``ctx.output``."""

    def finished(self, ws: Workspace, result: StageResult) -> None:  # noqa: B027 (optional hook)
        """Called after the stage's manifest is written (or it was skipped)."""


class StageGraph:
    """Registered stages in an order where every stage follows the stages it reads."""

    def __init__(self, stages: Iterable[Stage] = ()) -> None:
        self._stages: dict[str, Stage] = {}
        for stage in stages:
            self.register(stage)

    def register(self, stage: Stage, *, before: str | None = None) -> None:
        """Add ``stage`` at the end, or just before stage ``before``; every stage must still
        come after the stages it reads."""
        if stage.name in self._stages:
            raise ConfigError(f"stage '{stage.name}' is registered twice. "
                              "Fix: give the new stage another name")
        order = list(self._stages.values())
        order.insert(order.index(self[before]) if before is not None else len(order), stage)
        placed: set[str] = set()
        for item in order:
            late = [s for s in (*item.needs, *item.uses) if s not in placed]
            if late:
                raise ConfigError(
                    f"stage '{item.name}' reads {late}, which would not run before it. Fix: register "
                    f"those first, or earlier with before=... (order: {', '.join(s.name for s in order)})"
                )
            placed.add(item.name)
        self._stages = {item.name: item for item in order}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._stages)

    def __getitem__(self, name: str) -> Stage:
        try:
            return self._stages[name]
        except KeyError:
            raise ConfigError(
                f"unknown stage '{name}'{did_you_mean(name, self._stages)}. "
                f"Fix: use one of {', '.join(self._stages)}"
            ) from None

    def __iter__(self) -> Any:
        return iter(self._stages.values())

    def until(self, name: str | None) -> tuple[str, ...]:
        """The stages from the first up to and including ``name`` (all when ``None``)."""
        if name is None:
            return self.names
        self[name]
        return self.names[: self.names.index(name) + 1]

    def upstream(self, name: str) -> tuple[str, ...]:
        """Every stage ``name`` reads, directly or not, in graph order."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            stage = self[todo.pop()]
            for dep in (*stage.needs, *stage.uses):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return tuple(n for n in self.names if n in seen)

    def systems(self, ws: Workspace, before: str | None = None) -> tuple[str, ...]:
        """The run names the stages (those before ``before``, or all) will produce for this config."""
        names = self.upstream(before) if before is not None else self.names
        found: list[str] = []
        for name in (n for n in names if self[n].enabled(ws)):
            found.extend(o.system for o in self[name].outputs(ws) if o.system is not None)
        return tuple(found)
