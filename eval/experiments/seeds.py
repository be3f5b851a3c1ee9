"""The worth table over several training seeds (mean ± sd, paired tests, Holm).

    python eval/experiments/seeds.py configs/scifact.toml --seeds 1 2

Needs a finished ``inpars run CONFIG`` (its training seed is the experiment seed and counts
as the first seed). For every other seed ``S`` it runs the train, rerank and evaluate
stages again as experiment ``<name>-seed<S>`` with ``[train] seed = S``, on the base run's
data: the index, generate, filter, expand and negatives folders are hard-linked from
``runs/<name>/`` (same settings, so the executor checks and skips them), so only the
training changes between seeds. Resumable: each seed's run skips what it finished; a killed
seed goes on from its last finished stage. The models trained per seed are the config's
``[train] labels`` / ``dense_labels``. Writes ``eval/experiments/<name>-seeds.{json,md}``: the worth
table of all seeds together and each seed's headline numbers. Test queries are only scored
here, never used to choose anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Any

from inpars.config import Config, load_config
from inpars.evaluation.report_md import md_table
from inpars.evaluation.worth import load_evaluation, worth_json, worth_section, worth_table
from inpars.io import write_json, write_text
from inpars.pipeline import Executor, Workspace
from inpars.stage_folders import link_stage

SHARED_STAGES = ("index", "generate", "filter", "expand", "negatives")  # those switched on are linked


def seed_config(config: Config, seed: int) -> Config:
    """Experiment ``<name>-seed<S>``: the base config training with ``seed`` (the data
    settings, and so the data stages' fingerprints, stay the base run's)."""
    train = config.train
    experiment = dataclasses.replace(config.experiment, name=f"{config.experiment.name}-seed{seed}",
                                     results_dir="")
    return dataclasses.replace(config, experiment=experiment, train=dataclasses.replace(train, seed=seed))


def link_shared_stages(base: Workspace, ws: Workspace, stages: tuple[str, ...] = SHARED_STAGES) -> None:
    """Hard-link the base run's finished ``stages`` into another run's folder (once)."""
    for stage in (s for s in stages if base.graph[s].enabled(base)):
        target = ws.stage_dir(stage)
        if not base.finished(stage):
            raise SystemExit(f"{base.stage_dir(stage)} is not finished: run `inpars run CONFIG` first")
        if not target.exists():
            link_stage(base.stage_dir(stage), target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", required=True,
                        help="training seeds besides the base run's")
    parser.add_argument("--out", type=Path, default=Path("eval/experiments"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    command = " ".join(["python", *sys.argv]) if argv is None else "seeds.main"
    config = load_config(args.config)
    base = Workspace(config, command=command)
    started = time.perf_counter()
    Executor(base).run()  # skips what the base run finished
    base_seed = config.experiment.seed if config.train.seed is None else config.train.seed
    folders = {base_seed: base.stage_dir("evaluate")}
    for seed in args.seeds:
        ws = Workspace(seed_config(config, seed), command=command)
        link_shared_stages(base, ws)
        Executor(ws).run()  # the linked data stages are checked and skipped
        folders[seed] = ws.stage_dir("evaluate")
    evaluations = [load_evaluation(folder) for folder in folders.values()]
    metric = evaluations[0].metrics[0]
    table = worth_table(evaluations, metric)
    result = {
        "command": command, "experiment": config.experiment.name, "split": config.data.test_split,
        "seeds": list(folders), "metric": metric, "seconds": round(time.perf_counter() - started, 1),
        "per_seed": {seed: {s: ev.means[s][metric] for s in ev.systems}
                     for seed, ev in zip(folders, evaluations, strict=True)},
        "worth": worth_json(table), "train": dataclasses.asdict(config.train),
    }
    stem = args.out / f"{config.experiment.name}-seeds"
    write_json(stem.with_suffix(".json"), result)
    write_text(stem.with_suffix(".md"), render(result, md_table(worth_section(table))))
    return 0


def render(result: dict[str, Any], worth: str) -> str:
    seeds = result["seeds"]
    systems = list(result["per_seed"][seeds[0]])
    lines = [
        f"# {result['experiment']}: what the synthetic data is worth, over {len(seeds)} training seeds", "",
        f"`{result['command']}`", "",
        f"{result['split']} split, {result['metric']}. Every seed trains on the same synthetic data "
        "(generated, filtered and mined once, with the experiment seed); only the training seed changes.", "",
        worth, "", "## Each seed", "",
        "| system | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|" + "---:|" * len(seeds),
    ]
    for system in systems:
        values = [result["per_seed"][s].get(system) for s in seeds]
        lines.append(f"| {system} | " + " | ".join("" if v is None else f"{v:.4f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
