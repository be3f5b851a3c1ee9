"""The model settings of a config, checked before any stage runs (by the stages' ``check``).

A model setting is a packaged alias (its package installed), an existing local file or
folder, or a hub id. A setting that reads as a path (``./models/ce``, ``~/ce``,
``runs/x/train/cross-encoder``, ``model.gguf``) but names nothing on disk is a
:class:`~inpars.errors.ConfigError` naming the config key, raised before anything is
cleared, indexed or generated. Nothing is downloaded and the hub is not asked: a hub id is
resolved (or refused) by the stage that loads it.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from inpars.errors import ConfigError, ModelError
from inpars.models import PACKAGED, is_local, resolve_model

if TYPE_CHECKING:
    from inpars.pipeline.workspace import Workspace

ModelKind = Literal["any", "gguf", "transformers"]

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)?")


def looks_local(name: str) -> bool:
    """Whether a model setting reads as a local path rather than a hub id (``org/name``)."""
    if name.startswith((".", "/", "~")) or name.endswith(".gguf") or "\\" in name:
        return True
    parts = name.split("/")
    if len(parts) > 2 or (len(parts) == 2 and Path(parts[0]).is_dir()):
        return True  # runs/x/train/ce, or models/ce where ./models is a folder
    return _HUB_ID.fullmatch(name) is None


@functools.lru_cache(maxsize=16)
def _packaged(name: str) -> str:
    """The local path of a packaged alias (resolved once per process: it may hash the file)."""
    return resolve_model(name)


def check_model(ws: Workspace, key: str, name: str, *, kind: ModelKind = "any") -> None:
    """``key`` (``[train] model``...) must name a model that resolves: a packaged alias, an
    existing file or folder, or a hub id; ``kind`` "gguf" needs a local GGUF file (the
    llama-cpp backend), "transformers" anything but one."""
    where = f"{ws.config.source_path or 'config'}: {key} = {name!r}"
    aliases = ", ".join(sorted(PACKAGED))
    if not name:
        raise ConfigError(f"{where}: no model given. Fix: set a packaged alias ({aliases}), a local path "
                          "or a hub id")
    if name in PACKAGED or is_local(name):
        try:
            path = _packaged(name) if name in PACKAGED else resolve_model(name)
        except ModelError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        _check_kind(where, path, kind)
        return
    if looks_local(name):
        raise ConfigError(
            f"{where}: no such file or folder (relative paths are read from {Path.cwd()}). "
            f"Fix: correct the path, or give a packaged alias ({aliases}) or a hub id such as 'org/model'"
        )
    if kind == "gguf":
        raise ConfigError(f"{where}: the llama-cpp backend needs a local .gguf file, not a hub id. Fix: give "
                          "a GGUF path or 'gemma3-270m', or set [generate] backend = 'hf-causal'")


def _check_kind(where: str, path: str, kind: ModelKind) -> None:
    gguf = path.endswith(".gguf") and Path(path).is_file()
    if kind == "gguf" and not gguf:
        raise ConfigError(f"{where}: the llama-cpp backend needs a .gguf file (got {path}). Fix: give a GGUF "
                          "path or 'gemma3-270m', or set [generate] backend = 'hf-causal'")
    if kind == "transformers" and path.endswith(".gguf"):
        raise ConfigError(f"{where}: a GGUF file, which the transformers backends cannot load. "
                          "Fix: set [generate] backend = 'llama-cpp', or give a transformers model")


def model_inputs(role: str, *models: str) -> dict[str, Path]:
    """Model weights as stage inputs (fingerprinted by content); hub ids are not files and are
    identified by their name in the config alone."""
    from inpars.models import is_local, resolve_model

    return {f"model:{role}:{m}": Path(resolve_model(m)) for m in models if m and is_local(m)}


def check_teacher(ws: Workspace, name: str) -> None:
    """``[negatives] teacher_model`` must resolve (:func:`check_model`) and, when it is a local
    folder, hold a trained relevance head: an encoder's fresh head would label every example
    with noise, found only after generation otherwise."""
    import json

    from inpars.scoring.cross_encoder import has_relevance_head

    check_model(ws, "[negatives] teacher_model", name, kind="transformers")
    config = Path(resolve_model(name)) / "config.json" if is_local(name) else None
    if config is None or not config.is_file():
        return
    try:
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return  # unreadable: the stage that loads it says why
    if not has_relevance_head(architectures):
        raise ConfigError(f"{ws.config.source_path or 'config'}: [negatives] teacher_model = {name!r} has no "
                          f"trained relevance head (architectures {architectures}), so its scores mean "
                          "nothing. Fix: name a trained cross-encoder, e.g. 'runs/<exp>/train/cross-encoder'")
