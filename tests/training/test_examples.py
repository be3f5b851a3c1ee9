"""Loading training examples, random negatives and batching (no models)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from inpars.errors import DataError
from inpars.io import write_records
from inpars.records import TrainingExample
from inpars.training.examples import load_examples, with_negatives


def test_file_and_memory_hash_alike_and_bad_examples_are_dropped(
    tmp_path: Path, tiny_examples: list[TrainingExample]
) -> None:
    bad = [TrainingExample("qx", " ", "d1", "text"), TrainingExample("qy", "query", "d2", "")]
    path = tmp_path / "examples.jsonl"
    write_records(path, [*tiny_examples, *bad])
    from_file = load_examples(path)
    in_memory = load_examples(iter([*tiny_examples, *bad]))
    assert from_file.sha256 == in_memory.sha256
    assert from_file.read == len(tiny_examples) + 2
    assert from_file.examples == tiny_examples
    assert from_file.drops == {"empty query": 1, "empty positive document": 1}
    assert load_examples(tiny_examples).sha256 != load_examples(tiny_examples[:-1]).sha256


def test_max_examples_is_a_seeded_sample(tiny_examples: list[TrainingExample]) -> None:
    a = load_examples(tiny_examples, max_examples=3, seed=1)
    b = load_examples(tiny_examples, max_examples=3, seed=1)
    assert a.examples == b.examples and len(a.examples) == 3
    assert a.drops["over max_examples"] == len(tiny_examples) - 3
    assert [tiny_examples.index(e) for e in a.examples] == sorted(tiny_examples.index(e) for e in a.examples)


def test_missing_or_unusable_input_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="negatives"):
        load_examples(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="no usable training examples"):
        load_examples([TrainingExample("q", "", "d", "text")])


def test_random_negatives_top_up_with_other_documents(tiny_examples: list[TrainingExample]) -> None:
    groups, added = with_negatives(tiny_examples, 4, random.Random(0))
    assert added == 2 * len(tiny_examples)
    for example, (query, positive, negatives) in zip(tiny_examples, groups, strict=True):
        assert (query, positive) == (example.query, example.positive)
        assert len(negatives) == 4 and negatives[:2] == list(example.negatives)
        assert example.positive not in negatives
    single = [TrainingExample("q1", "a", "d", "x"), TrainingExample("q2", "b", "d", "x")]
    with pytest.raises(DataError, match="random negatives"):
        with_negatives(single, 1, random.Random(0))


@pytest.mark.parametrize("seed", range(20))
def test_random_negatives_never_draw_the_positive_in_a_tiny_set(seed: int) -> None:
    # two documents, no mined negatives, three wanted: the pool runs out after one draw
    tiny = [TrainingExample("q1", "cats", "d1", "Cats purr."),
            TrainingExample("q2", "dogs", "d2", "Dogs bark."),
            TrainingExample("q3", "kittens", "d3", "Cats purr.")]  # d3: d1's text under another id
    groups, added = with_negatives(tiny, 3, random.Random(seed))
    assert added == 9
    for example, (_, positive, negatives) in zip(tiny, groups, strict=True):
        assert len(negatives) == 3 and positive not in negatives, (example.query_id, negatives)
    assert groups[0][2] == ["Dogs bark."] * 3  # the only other text, repeated
    # two ids, one text: only the mined negatives are left to repeat
    mined = [TrainingExample("q1", "cats", "d1", "Cats purr.", ("d9",), ("Birds sing.",)),
             TrainingExample("q2", "purring", "d2", "Cats purr.", ("d8",), ("Fish swim.",))]
    groups, _ = with_negatives(mined, 3, random.Random(seed))
    assert [g[2] for g in groups] == [["Birds sing."] * 3, ["Fish swim."] * 3]
    with pytest.raises(DataError, match="no document other than its positive"):
        with_negatives([TrainingExample("q2", "purring", "d2", "Cats purr."),
                        TrainingExample("q3", "cats", "d3", "Cats purr.")], 1, random.Random(seed))


