from __future__ import annotations

import pytest

from inpars.errors import ConfigError
from inpars.filtering import LogprobFilter, apply_filters, keep_count
from inpars.filtering.chain import SCORES_KEY
from tests.filtering.filtercases import make_query


def test_keep_count_fraction_or_number() -> None:
    assert keep_count(10, 0.5) == 5
    assert keep_count(3, 0.5) == 2  # rounded up
    assert keep_count(10, 1.0) == 10
    assert keep_count(10, 4) == 4
    assert keep_count(3, 100) == 3
    assert keep_count(0, 0.5) == 0


def test_keeps_the_most_likely_queries_and_attaches_the_score() -> None:
    queries = [make_query(f"q{i}", "d1", f"query {i}", mean_logprob=lp)
               for i, lp in enumerate([-2.0, -0.5, -3.0, None, -1.0])]
    result = apply_filters(queries, [LogprobFilter(keep=0.5)])
    assert [q.query_id for q in result.kept] == ["q1", "q4"]  # 2 of the 4 with log-probs
    assert result.kept[0].settings[SCORES_KEY] == {"logprob": -0.5}
    reasons = {d.query_id: d.reason for d in result.dropped}
    assert reasons == {"q0": "below_cutoff", "q2": "below_cutoff", "q3": "no_logprob"}


def test_no_logprobs_at_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="remove 'logprob'"):
        LogprobFilter().judge([make_query("q", "d1", "a query", mean_logprob=None)])
