"""Two builds of llama.cpp, the same model: prompt and decoding tokens/s side by side.

    CMAKE_ARGS="-DGGML_NATIVE=ON" pip wheel --no-deps --no-cache-dir llama-cpp-python==0.3.36 -w /tmp/w
    pip install --no-deps --target /tmp/native /tmp/w/llama_cpp_python-*.whl
    python eval/benchmarks/llama_build.py --build native=/tmp/native

The venv's own llama-cpp-python (``scripts/dev.sh`` builds it with ``GGML_NATIVE=OFF``, a
wheel that runs on any x86-64 CPU) is always measured as ``installed``; each ``--build
NAME=DIR`` is another installation of the package, put first on ``PYTHONPATH``. Each
measurement is a fresh process (:mod:`ceiling_measure`'s bare low-level API, the generate
stage's KV layout), the builds interleaved round after round so that a busy machine slows
them alike; medians count. The prompts are the demo's own (its few-shot prefix cached once,
SciFact documents after it, as :mod:`ceiling_bench` builds them). Also records what each
build says it uses (``llama_print_system_info``: AVX2, AVX512, ...). Writes
``eval/benchmarks/llama-build.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def measure(
    config: Path, threads: int, chunk: int, parallel: list[int], steps: int, docs: int
) -> dict[str, Any]:
    """One process's measurement (run in the child): tokens/s of prompts and decoding."""
    import llama_cpp
    from ceiling_demo import load_demo
    from ceiling_measure import demo_llama, prompt_suffixes

    demo = load_demo(config)
    bare, builder, _ = demo_llama(demo, threads, max(parallel))
    try:
        suffixes = prompt_suffixes(bare, builder, demo, max(docs, -(-max(parallel) // 3)))
        tokens, seconds = bare.prompt_rate(suffixes[:docs], chunk)
        decode = {p: bare.decode_rate(suffixes, p, steps) for p in parallel}
    finally:
        bare.close()
    return {
        "prompt_tokens_per_s": tokens / seconds,
        "decode_tokens_per_s": {str(p): t / s for p, (t, s) in decode.items()},
        "llama_cpp": str(Path(llama_cpp.__file__).parent),
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
    }


def child(args: argparse.Namespace) -> int:
    result = measure(
        args.config,
        args.threads,
        args.chunk,
        [int(p) for p in args.parallel.split(",")],
        args.steps,
        args.docs,
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def run_build(site: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (site, str(HERE), str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--config",
        str(args.config),
        "--threads",
        str(args.threads),
        "--chunk",
        str(args.chunk),
        "--parallel",
        args.parallel,
        "--steps",
        str(args.steps),
        "--docs",
        str(args.docs),
    ]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"build {site or 'installed'} failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    widths = list(rounds[0]["decode_tokens_per_s"])
    return {
        "prompt_tokens_per_s": round(statistics.median(r["prompt_tokens_per_s"] for r in rounds), 1),
        "decode_tokens_per_s": {
            w: round(statistics.median(r["decode_tokens_per_s"][w] for r in rounds), 1) for w in widths
        },
        "rounds": rounds,
        "llama_cpp": rounds[0]["llama_cpp"],
        "system_info": rounds[0]["system_info"],
    }


def render(result: dict[str, Any]) -> str:
    builds = result["builds"]
    first = next(iter(builds.values()))
    widths = list(first["decode_tokens_per_s"])
    lines = [
        "# llama.cpp builds side by side",
        "",
        f"`{result['command']}`",
        "",
        f"Model {result['model']}, {result['threads']} thread(s), prompts of {result['docs']} SciFact "
        f"documents after the cached few-shot prefix ({result['chunk']} tokens per call), decoding "
        f"{result['steps']} steps per width; median of {result['rounds']} interleaved rounds, a fresh "
        "process each.",
        "",
        "| build | prompt tokens/s | " + " | ".join(f"decode tokens/s, {w} sequences" for w in widths) + " |",
        "|---|---:|" + "---:|" * len(widths),
    ]
    for name, build in builds.items():
        lines.append(
            f"| {name} | {build['prompt_tokens_per_s']} | "
            + " | ".join(str(build["decode_tokens_per_s"][w]) for w in widths)
            + " |"
        )
    lines += ["", "What each build uses (`llama_print_system_info`):", ""]
    lines += [f"- **{name}**: `{build['system_info']}`" for name, build in builds.items()]
    lines += [
        "",
        f"Machine: {result['cpu']}, {result['cores']} cores; load average {result['load_average'][0]} "
        f"at the start and {result['load_average'][1]} at the end.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--build", action="append", default=[], help="NAME=DIR of another installation")
    parser.add_argument("--config", type=Path, default=Path("configs/scifact.toml"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk", type=int, default=256, help="prompt tokens per llama_decode")
    parser.add_argument("--parallel", default="1,48", help="decoding widths (parallel sequences)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--docs", type=int, default=16, help="documents whose prompts are timed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    builds = {"installed": ""}
    for spec in args.build:
        name, _, folder = spec.partition("=")
        if not folder or not Path(folder).is_dir():
            parser.error(
                f"--build {spec!r}: give NAME=DIR with DIR an installation folder of llama-cpp-python"
            )
        builds[name] = str(Path(folder).resolve())
    from ceiling_bench import cpu_name

    load_start = os.getloadavg()[0]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    for r in range(args.rounds):
        for name in list(builds)[r % len(builds) :] + list(builds)[: r % len(builds)]:
            rounds[name].append(run_build(builds[name], args))
            print(
                f"round {r + 1}/{args.rounds} {name}: prompt {rounds[name][-1]['prompt_tokens_per_s']:.0f} "
                "tokens/s",
                flush=True,
            )
    result = {
        "command": "python eval/benchmarks/llama_build.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "model": "gemma3-270m (GGUF Q4_K_M)",
        "threads": args.threads,
        "chunk": args.chunk,
        "docs": args.docs,
        "steps": args.steps,
        "rounds": args.rounds,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "builds": {name: summarize(rs) for name, rs in rounds.items()},
    }
    from inpars.io import write_json

    write_json(args.out / "llama-build.json", result)
    (args.out / "llama-build.md").write_text(render(result), encoding="utf-8")
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(HERE), str(ROOT)]
    raise SystemExit(main())
