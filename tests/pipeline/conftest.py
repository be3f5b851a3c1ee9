"""Fixtures of the executor's and the status' tests: the toy stages' workspace (tests/pipeline/toy.py).
Modules that need another workspace define their own ``ws``, which takes precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from inpars.pipeline import StageGraph, Workspace
from tests.conftest import BeirWriter
from tests.pipeline.toy import RUNS, Shout, Words, toy_workspace


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "toy-model.bin"
    path.write_text("alpha")
    return path


@pytest.fixture
def ws(tmp_path: Path, model: Path, write_beir: BeirWriter) -> Workspace:
    RUNS.clear()
    return toy_workspace(tmp_path, write_beir(), StageGraph([Words(model), Shout()]))
