"""Fixtures of the evaluation tests: crafted qrels and runs whose metrics are computed by hand.

ranx compiles its numba kernels on first use (about 35 s cold, a few seconds from the
on-disk cache); the session fixture ``crafted_evaluation`` pays that once for all tests.
"""

from __future__ import annotations

import pytest

from inpars.config import EvaluateConfig
from inpars.evaluation import Evaluation, evaluate_runs
from tests.evaluation.crafted import EXCLUDED, QRELS, RUNS


@pytest.fixture(scope="session")
def crafted_evaluation() -> Evaluation:
    """The crafted runs evaluated once (this also compiles ranx for the whole session)."""
    return evaluate_runs(QRELS, RUNS, EvaluateConfig(), excluded_query_ids=EXCLUDED)
