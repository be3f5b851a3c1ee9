"""The ``inpars`` command line: one subcommand per stage, plus ``run`` and ``doctor``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from inpars import __version__
from inpars.errors import InparsError

STAGES = ("index", "generate", "filter", "negatives", "train", "rerank", "evaluate")


def _doctor(_: argparse.Namespace) -> int:
    from inpars import java
    from inpars.manifest import package_versions

    print(f"inpars {__version__}")
    for name, version in package_versions().items():
        print(f"  {name:24s} {version}")
    print(f"  java                     {java.java_version()} ({java.java_home()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inpars", description=__doc__)
    parser.add_argument("--version", action="version", version=f"inpars {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = sub.add_parser("doctor", help="show versions and check Java 21")
    doctor.set_defaults(func=_doctor)
    return parser


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
