from __future__ import annotations

import json
from pathlib import Path

from inpars.filtering import ContaminationFilter, apply_filters
from inpars.records import Query
from tests.filtering.filtercases import make_query


def scifact_test_queries(root: Path) -> list[Query]:
    test_ids = {line.split("\t")[0] for line in (root / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    lines = (root / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    return [Query(o["_id"], o["text"]) for o in objects if o["_id"] in test_ids]


def test_a_test_query_inserted_into_the_synthetic_set_is_caught(shared_data: Path) -> None:
    test_queries = scifact_test_queries(shared_data / "scifact")
    assert len(test_queries) == 300
    leaked = test_queries[17]
    reworded = test_queries[42]
    synthetic = [
        make_query("d1#q0", "d1", "what causes coral bleaching"),
        make_query("d1#q1", "d1", leaked.text.upper() + " "),  # verbatim but for case and spacing
        make_query("d2#q0", "d2", reworded.text.rstrip(".") + "s"),  # one letter added
        make_query("d2#q1", "d2", "why can python threads not run in parallel"),
    ]
    result = apply_filters(synthetic, [ContaminationFilter(test_queries, threshold=0.8)])
    assert [q.query_id for q in result.kept] == ["d1#q0", "d2#q1"]
    dropped = {d.query_id: d for d in result.dropped}
    assert dropped["d1#q1"].reason == "equals_eval_query" and leaked.query_id in dropped["d1#q1"].detail
    assert dropped["d2#q0"].reason == "near_eval_query" and reworded.query_id in dropped["d2#q0"].detail
