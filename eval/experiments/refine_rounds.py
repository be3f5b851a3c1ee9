"""Iterative refinement measured on the dev set: each round's data and dev score.

    python eval/experiments/refine_rounds.py configs/scifact-refine.toml --base configs/scifact.toml

Runs ``CONFIG`` up to its refine stage, reusing the finished stages of the ``--base`` run
(index, generate, filter, expand, negatives and train are hard-linked from it when missing;
the configs' sections must match, which the executor checks: a stage whose settings differ
is rerun, not reused). Resumable: the refine stage goes on from its last finished step.
Writes ``eval/experiments/<name>-rounds.{json,md}``: the refine stage's ``rounds.json`` and
its table, with this command. Only dev queries (``[data] dev_queries`` *train* queries, or
held-out synthetic ones) are scored; the test queries are not used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seeds import link_shared_stages

from inpars.config import load_config
from inpars.io import read_json, write_json, write_text
from inpars.pipeline import Executor, Workspace
from inpars.refinement.rounds import ROUNDS_FILE, render

REUSED = ("index", "generate", "filter", "expand", "negatives", "train")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path)
    parser.add_argument("--base", type=Path, help="a finished run's config whose stages are reused")
    parser.add_argument("--out", type=Path, default=Path("eval/experiments"))
    args = parser.parse_args(argv)

    ws = Workspace(load_config(args.config))
    if args.base is not None:
        link_shared_stages(Workspace(load_config(args.base)), ws, REUSED)
    Executor(ws).run(ws.graph.until("refine"))
    summary = read_json(ws.stage_dir("refine") / ROUNDS_FILE)
    command = " ".join(["python", "eval/experiments/refine_rounds.py", *(argv or sys.argv[1:])])
    manifest = read_json(ws.stage_dir("refine") / "manifest.json")
    result = {"command": command, "config": str(args.config), "dev_set": manifest["extra"].get("dev_set"),
              "refine": manifest["config"]["refine"], "timings": manifest["timings"], **summary}
    stem = args.out / f"{ws.name}-rounds"
    write_json(stem.with_suffix(".json"), result)
    text = (f"# Iterative refinement, {ws.name}: dev set only\n\n`{command}`\n\n"
            f"Dev set: {result['dev_set']}. Settings: `{result['refine']}`. "
            f"Refine stage: {result['timings'].get('total', 0):.0f} s.\n\n" + render(summary))
    write_text(stem.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
