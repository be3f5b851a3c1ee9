"""Fixtures of the evaluation tests: crafted qrels and runs whose metrics are computed by hand.

ranx compiles its numba kernels on first use (about 35-90 s cold on 2 cores, a few seconds
from the on-disk cache), so every test that scores with ranx is ``slow``; the session
fixture ``crafted_evaluation`` pays that once for all of them. The fast tests render and
write reports from ``hand_evaluation`` (the same evaluation, built without ranx).
"""

from __future__ import annotations

import pytest

from inpars.config import EvaluateConfig
from inpars.evaluation import Evaluation, evaluate_runs
from tests.evaluation.crafted import EXCLUDED, QRELS, RUNS, hand_evaluation


@pytest.fixture(scope="session")
def crafted_evaluation() -> Evaluation:
    """The crafted runs evaluated once by ranx (this also compiles ranx for the whole session)."""
    return evaluate_runs(QRELS, RUNS, EvaluateConfig(), excluded_query_ids=EXCLUDED)


@pytest.fixture(params=["hand", pytest.param("ranx", marks=pytest.mark.slow)])
def evaluation(request: pytest.FixtureRequest) -> Evaluation:
    """The crafted evaluation, built by hand (fast) or scored by ranx (slow)."""
    if request.param == "hand":
        return hand_evaluation()
    result: Evaluation = request.getfixturevalue("crafted_evaluation")
    return result
