from __future__ import annotations

from pathlib import Path

from inpars.filtering import DedupFilter, apply_filters, read_queries
from inpars.io import write_records
from tests.filtering.filtercases import make_query


def test_duplicates_are_found_across_shards(tmp_path: Path) -> None:
    shards = tmp_path / "generate" / "shards"
    write_records(shards / "part-00000.jsonl", [
        make_query("d1#q0", "d1", "What causes coral bleaching?"),
        make_query("d1#q1", "d1", "how do corals lose their algae"),
    ])
    write_records(shards / "part-00001.jsonl", [
        make_query("d2#q0", "d2", "what causes coral bleaching"),  # exact, after normalization
        make_query("d2#q1", "d2", "what causes corals bleaching"),  # near
        make_query("d2#q2", "d2", "why is python slow with threads"),
    ])
    (shards / "part-00000.done.json").write_text("{}")
    queries = read_queries(tmp_path / "generate")
    assert [q.query_id for q in queries] == ["d1#q0", "d1#q1", "d2#q0", "d2#q1", "d2#q2"]
    result = apply_filters(queries, [DedupFilter(threshold=0.8)])
    assert [q.query_id for q in result.kept] == ["d1#q0", "d1#q1", "d2#q2"]
    reasons = {d.query_id: (d.step, d.reason, d.detail) for d in result.dropped}
    assert reasons["d2#q0"] == ("dedup", "exact_duplicate", "same as d1#q0")
    assert reasons["d2#q1"][1] == "near_duplicate" and "d1#q0" in reasons["d2#q1"][2]


def test_threshold_one_keeps_near_duplicates() -> None:
    texts = ["what causes coral bleaching", "what causes corals bleaching", "What causes coral bleaching"]
    queries = [make_query(name, "d1", text) for name, text in zip("abc", texts, strict=True)]
    result = apply_filters(queries, [DedupFilter(threshold=1.0)])
    assert [q.query_id for q in result.kept] == ["a", "b"]
