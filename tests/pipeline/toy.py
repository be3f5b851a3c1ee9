"""Toy stages for the executor's tests: tiny, fast, no models; they count their runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpars.config import Config, DataConfig, ExperimentConfig
from inpars.manifest import StageContext
from inpars.pipeline import Output, Stage, StageGraph, Workspace

RUNS: Counter[str] = Counter()  # stage name -> how many times its body ran


@dataclass(frozen=True)
class WordsConfig:
    count: int = 3


class Words(Stage):
    """Writes ``count`` words, one per line; reads a 'model' file whose content prefixes them."""

    name = "words"
    help = "toy: write words"

    def __init__(self, model: Path, count: int = 3) -> None:
        self.model, self.count = model, count

    def settings(self, ws: Workspace) -> Any:
        return WordsConfig(self.count)

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        return {"model:toy": self.model}

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return (Output("words", "records", "words.txt"),)

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        RUNS[self.name] += 1
        prefix = self.model.read_text().strip()
        path = ctx.out_dir / "words.txt"
        path.write_text("".join(f"{prefix}-{i}\n" for i in range(ctx.config.count)))
        ctx.output("words", path)
        ctx.counts["words"] = ctx.config.count


class Shout(Stage):
    """Reads the words and writes them in capitals, plus a 'run' file (a system)."""

    name = "shout"
    help = "toy: shout the words"
    needs = ("words",)

    def settings(self, ws: Workspace) -> Any:
        return {}

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return Output("loud", "records", "loud.txt"), Output.run("shouty")

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        RUNS[self.name] += 1
        words = ws.output("words", "words").read_text().split()
        loud = ctx.out_dir / "loud.txt"
        loud.write_text("".join(w.upper() + "\n" for w in words))
        ctx.output("loud", loud)
        run = ctx.out_dir / Output.run("shouty").path
        run.parent.mkdir(parents=True, exist_ok=True)
        run.write_text("".join(f"q1 Q0 {w} {i + 1} {1.0 / (i + 1)} shouty\n" for i, w in enumerate(words)))
        ctx.output("run:shouty", run)


def toy_workspace(tmp: Path, source: Path, graph: StageGraph) -> Workspace:
    config = Config(experiment=ExperimentConfig(name="toy", run_dir=str(tmp / "run"),
                                                results_dir=str(tmp / "results")),
                    data=DataConfig(source=str(source)))
    return Workspace(config, graph=graph, command="pytest")
