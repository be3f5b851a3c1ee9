from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inpars.filtering import RoundtripFilter, apply_filters
from inpars.filtering.chain import SCORES_KEY
from tests.filtering.filtercases import FakeRetriever, make_query


def test_keeps_queries_whose_document_is_in_the_top_k() -> None:
    retriever = FakeRetriever({
        "a": ["d1", "d2"],  # rank 1
        "b": ["d3", "d2", "d1"],  # rank 3: outside the top 2
        "c": ["d3", "d2"],  # rank 2
    })
    queries = [make_query("a", "d1", "x y"), make_query("b", "d1", "x z"), make_query("c", "d2", "y z"),
               make_query("d", "d3", "no hits")]
    result = apply_filters(queries, [RoundtripFilter(retriever, k=2, label="bm25")])
    assert [q.query_id for q in result.kept] == ["a", "c"]
    assert [q.settings[SCORES_KEY]["roundtrip"] for q in result.kept] == [1.0, 2.0]
    assert [(d.query_id, d.reason) for d in result.dropped] == [("b", "source_not_retrieved"),
                                                                ("d", "source_not_retrieved")]
    assert result.dropped[0].detail == "not in the bm25 top 2"
    assert retriever.calls == [(["a", "b", "c", "d"], 2)]


@pytest.mark.slow
def test_with_a_real_bm25_index(tmp_path: Path, write_beir: Any) -> None:
    from inpars.data import open_collection
    from inpars.indexing import Bm25Searcher, build_bm25_index

    index = build_bm25_index(open_collection(write_beir()), tmp_path / "bm25")
    queries = [make_query("d1#q0", "d1", "do domesticated felines purr"), make_query("d2#q0", "d2", "wolves"),
               make_query("d3#q0", "d3", "which river carries the most water")]  # finds d4, not d3
    with Bm25Searcher(index) as bm25:
        result = apply_filters(queries, [RoundtripFilter(bm25, k=1)])
    assert [q.query_id for q in result.kept] == ["d1#q0", "d2#q0"]
    assert [d.query_id for d in result.dropped] == ["d3#q0"]
