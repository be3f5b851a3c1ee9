"""Fixtures of the filter tests (crafted records live in ``filtercases``)."""

from __future__ import annotations

import pytest
from tests.filtering.filtercases import DOCS

from inpars.records import Document


@pytest.fixture
def docs() -> dict[str, Document]:
    return dict(DOCS)
