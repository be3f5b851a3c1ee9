"""The ``inpars`` command line: one subcommand per stage, ``run`` for all of them, ``doctor``.

Every stage subcommand takes an experiment config (``configs/<experiment>.toml``) and runs
that stage into ``runs/<experiment>/<stage>/``; the stages it needs must have finished.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from inpars import __version__
from inpars.errors import ConfigError, InparsError

if TYPE_CHECKING:
    from inpars.pipeline import Executor


def _executor(args: argparse.Namespace) -> Executor:
    import dataclasses

    from inpars.config import load_config
    from inpars.pipeline import Executor, Workspace

    config = load_config(args.config)
    if args.skip_bad_lines:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, skip_bad_lines=True))
    if getattr(args, "run", None):  # evaluate --run NAME=PATH: external runs for this call
        try:
            evaluate = dataclasses.replace(config.evaluate, runs={**config.evaluate.runs, **dict(args.run)})
        except ValueError as exc:
            raise ConfigError(f"--run: {exc}") from None
        config = dataclasses.replace(config, evaluate=evaluate)
    return Executor(Workspace(config, command=_command_line()), force=args.force or (),
                    reuse=getattr(args, "reuse", None))


def _name_path(text: str) -> tuple[str, str]:
    """``NAME=PATH`` of ``evaluate --run``."""
    name, sep, path = text.partition("=")
    if not (sep and name.strip() and path.strip()):
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=PATH, e.g. --run splade=runs/splade.trec")
    return name.strip(), path.strip()


def _command_line() -> str:
    return "inpars " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _stage(args: argparse.Namespace) -> int:
    result = _executor(args).run_single(args.command)
    state = "skipped (already complete)" if result.skipped else "done"
    print(f"{args.command}: {state} -> {result.out_dir}")
    _print_counts(result.manifest)
    return 0


def _run(args: argparse.Namespace) -> int:
    executor = _executor(args)
    summary = executor.run(executor.graph.until(args.until))
    for name, info in summary["stages"].items():
        state = "skipped" if info["skipped"] else f"{info['seconds'] or 0:.0f} s"
        print(f"{name:10s} {state}")
    for system, metrics in summary.get("metrics", {}).items():
        values = "  ".join(f"{m} {v:.4f}" for m, v in metrics.items())
        print(f"{system:28s} {values}")
    print(f"run folder: {executor.ws.run_dir}")
    note = executor.ws.run_dir / "reference.md"
    if "evaluate" in summary["stages"] and note.is_file():
        print(f"{note.read_text(encoding='utf-8').splitlines()[2]} ({note})")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from inpars.config import load_config
    from inpars.pipeline import Workspace, publish

    copied = publish(Workspace(load_config(args.config), command=_command_line()))
    print(f"published {len(copied)} files to {copied[0].parent if copied else '-'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from inpars.config import load_config
    from inpars.pipeline import Workspace
    from inpars.pipeline.status import render_status, run_status

    print(render_status(run_status(Workspace(load_config(args.config)))))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from inpars.config import load_config
    from inpars.inspection import inspect_run
    from inpars.pipeline import Workspace

    result = inspect_run(Workspace(load_config(args.config)), config_path=args.config,
                         command=_command_line(), embeddings=not args.no_embeddings)
    print(f"inspect: {result.out_dir}")
    for path in (result.page, result.quality_md, result.quality_json):
        print(f"  {path}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inpars import compare
    from inpars.evaluation.report_md import md_table
    from inpars.evaluation.tables import baseline_table, comparison_table

    paths = [Path(p) for p in args.runs]
    names = compare.run_names(paths, args.names or ())
    cfg = compare.compare_config(args.metrics or (), args.baseline or "", args.stat_test)
    out = Path(args.out) if args.out else compare.default_out_dir()
    result = compare.compare_runs(compare.load_qrels(args.qrels), dict(zip(names, paths, strict=True)), cfg,
                                  out, command=_command_line())
    ev, digits = result.evaluation, cfg.rounding_digits
    print(md_table(comparison_table(ev, digits)))
    if ev.others:
        print("\n" + md_table(baseline_table(ev, digits)))
    print(f"\njudgements: {result.qrels} ({len(ev.query_ids)} queries evaluated)")
    for run in result.runs:
        notes = compare.run_notes(run)
        print(f"{run.name}: {run.path}, {run.queries} queries" + (f"; {'; '.join(notes)}" if notes else ""))
    print(compare.TIE_RULE)
    print(f"report: {out / 'report.md'} (and report.html, metrics.json)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inpars.config import load_config
    from inpars.export import export_run
    from inpars.pipeline import Workspace

    ws = Workspace(load_config(args.config), command=_command_line())
    result = export_run(ws, args.format, Path(args.out), negatives=args.negatives, corpus=args.corpus)
    print(f"export: {result.format}, {result.rows} rows -> {result.out_dir}")
    print("  columns: " + ", ".join(result.columns))
    for note in result.notes:
        print(f"  {note}")
    return 0


def _print_counts(manifest: dict[str, object]) -> None:
    for key in ("counts", "drops"):
        values = manifest.get(key) or {}
        if isinstance(values, dict) and values:
            print(f"  {key}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def _doctor(_: argparse.Namespace) -> int:
    from inpars import java
    from inpars.manifest import package_versions

    print(f"inpars {__version__}")
    for name, version in package_versions().items():
        print(f"  {name:24s} {version}")
    print(f"  java                     {java.java_version()} ({java.java_home()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from inpars.pipeline.builtin import builtin_graph

    parser = argparse.ArgumentParser(
        prog="inpars",
        description="Synthetic training data for search systems: "
        "index -> generate -> filter -> negatives -> train -> rerank -> evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"inpars {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="experiment config, e.g. configs/scifact.toml")
        p.add_argument("--skip-bad-lines", action="store_true",
                       help="skip (and count) malformed input lines instead of stopping")

    run = sub.add_parser("run", help="run every stage (finished ones are skipped)")
    with_config(run)
    run.add_argument("--until", metavar="STAGE", help="stop after this stage")
    stages = builtin_graph()
    run.add_argument("--force", metavar="STAGE", action="append", choices=list(stages.names),
                     help="rerun this stage even if it is complete (repeatable)")
    run.add_argument("--reuse", metavar="RUN_FOLDER",
                     help="hard-link the stages another run finished with the same settings and inputs "
                          "(e.g. runs/scifact), so that an ablation rebuilds only what it changes")
    run.set_defaults(func=_run)
    for stage in stages:
        p = sub.add_parser(stage.name, help=stage.help)
        with_config(p)
        p.add_argument("--force", action="store_const", const=[stage.name], help="rerun even if complete")
        if stage.name == "evaluate":
            p.add_argument("--run", metavar="NAME=PATH", action="append", type=_name_path,
                           help="also report this TREC run file as system NAME (repeatable; adds to and "
                           "overrides [evaluate] runs for this call)")
        p.set_defaults(func=_stage)
    publish = sub.add_parser("publish", help="copy the finished report to the committed reference "
                             "(eval/results/<experiment>/)")
    publish.add_argument("config", help="experiment config, e.g. configs/scifact.toml")
    publish.set_defaults(func=_publish)
    status = sub.add_parser("status", help="where a run stands: each stage done, stale (and why), in "
                            "progress (and how far) or pending, and whether it is running now")
    status.add_argument("config", help="experiment config, e.g. configs/scifact.toml")
    status.set_defaults(func=_status)
    inspect = sub.add_parser("inspect", help="data-quality report of the generated and filtered queries "
                             "(runs/<experiment>/inspect/), without training")
    inspect.add_argument("config", help="experiment config, e.g. configs/scifact.toml")
    inspect.add_argument("--no-embeddings", action="store_true",
                         help="skip the embedding similarity (no encoder is loaded)")
    inspect.set_defaults(func=_inspect)
    _add_compare(sub)
    _add_export(sub)
    doctor = sub.add_parser("doctor", help="show versions and check Java 21")
    doctor.set_defaults(func=_doctor)
    return parser


def _add_compare(sub: Any) -> None:
    compare = sub.add_parser("compare", help="evaluate TREC run files of any system on qrels, no config "
                             "needed (paired tests, Holm; report.md/html, metrics.json)")
    compare.add_argument("runs", nargs="+", metavar="RUN",
                         help="TREC run files (qid Q0 docid rank score tag)")
    compare.add_argument("--qrels", required=True, help="TREC or BEIR qrels file, BEIR folder (test split), "
                         "or ir_datasets id such as beir/scifact/test")
    compare.add_argument("--names", nargs="+", metavar="NAME", help="system names, one per run (default: "
                         "the file names without extension)")
    compare.add_argument("--metrics", nargs="+", metavar="METRIC", help="ranx metrics (default: ndcg@10 "
                         "recall@100 mrr@10 map@100)")
    compare.add_argument("--baseline", metavar="NAME", help="the system the others are tested against "
                         "(default: the first run)")
    compare.add_argument("--stat-test", choices=["student", "fisher"], default="student",
                         help="paired t-test or randomization test (default: student)")
    compare.add_argument("--out", metavar="DIR", help="report folder (default: runs/compare-<date>-<time>/)")
    compare.set_defaults(func=_compare)


def _add_export(sub: Any) -> None:
    from inpars.export import FORMATS

    export = sub.add_parser("export", help="write a finished run's training data as a Hugging Face dataset, "
                            "Parquet, or its kept queries as a BEIR folder")
    export.add_argument("config", help="experiment config, e.g. configs/scifact.toml")
    export.add_argument("--format", required=True, choices=FORMATS,
                        help="hf (save_to_disk), parquet, or beir")
    export.add_argument("--out", required=True, metavar="DIR", help="the folder to write (new or empty)")
    export.add_argument("--negatives", type=int, metavar="N", help="hf/parquet: negatives per row (default: "
                        "the most an example has; examples with fewer are left out)")
    export.add_argument("--corpus", choices=["copy", "link"], default="copy",
                        help="beir: copy the corpus into the folder (default) or link to the source's")
    export.set_defaults(func=_export)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args))
    except InparsError as exc:
        print(f"inpars: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("inpars: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
