"""Fixtures of the filter tests (crafted records live in ``filtercases``)."""

from __future__ import annotations

import pytest

from inpars.records import Document
from tests.filtering.filtercases import DOCS


@pytest.fixture
def docs() -> dict[str, Document]:
    return dict(DOCS)
