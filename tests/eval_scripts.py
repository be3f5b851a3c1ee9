"""Loading the scripts under eval/ (not a package) as modules, for their tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXPERIMENTS = Path(__file__).resolve().parents[1] / "eval" / "experiments"


def load_script(name: str) -> ModuleType:
    """``eval/experiments/<name>.py`` as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {EXPERIMENTS / name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
