"""Training examples in, model inputs out: loading, hashing, negatives, batches.

A :class:`~inpars.records.TrainingExample` holds one query, its positive document and
mined hard negatives. The trainers need a fixed number of negatives per query; when an
example has fewer mined ones, it is topped up with *random negatives*: positives of
other examples (a different document), as InPars-v1 and monoT5 training did. Examples
with an empty query or positive are dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from inpars.bad_lines import LineReport
from inpars.errors import DataError
from inpars.io import read_records, to_dict
from inpars.records import TrainingExample

T = TypeVar("T")


@dataclass
class ExampleSet:
    """The examples a trainer uses, with the hash of everything it read."""

    examples: list[TrainingExample]
    sha256: str
    read: int
    drops: Counter[str] = field(default_factory=Counter)
    source: str = "<memory>"


def load_examples(
    source: Iterable[TrainingExample] | Path | str,
    *,
    max_examples: int = 0,
    seed: int = 0,
    report: LineReport | None = None,
) -> ExampleSet:
    """Read training examples from a JSONL file or an iterable.

    ``sha256`` hashes the canonical JSON of every example read (before sampling), so a
    file and the same records in memory hash alike. With ``max_examples`` > 0, a seeded
    random sample of that many examples is kept (order of the input preserved).
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise DataError(
                f"{path}: training examples not found. Fix: run the 'negatives' stage, "
                "or point to a JSONL file of TrainingExample records"
            )
        records: Iterable[TrainingExample] = read_records(path, TrainingExample, report=report)
        name = str(path)
    else:
        records, name = source, "<memory>"
    digest = hashlib.sha256()
    kept: list[TrainingExample] = []
    drops: Counter[str] = Counter()
    read = 0
    for example in records:
        if not isinstance(example, TrainingExample):
            raise DataError(f"{name}: got a {type(example).__name__}, expected TrainingExample records")
        read += 1
        digest.update(json.dumps(to_dict(example), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
        if not example.query.strip():
            drops["empty query"] += 1
        elif not example.positive.strip():
            drops["empty positive document"] += 1
        elif len(example.negatives) != len(example.negative_ids):
            drops["negative ids and texts differ in number"] += 1
        else:
            kept.append(example)
    if not kept:
        raise DataError(
            f"{name}: no usable training examples ({read} read, dropped: {dict(drops) or 'none'}). "
            "Fix: check the output of the 'filter' and 'negatives' stages"
        )
    if 0 < max_examples < len(kept):
        chosen = sorted(random.Random(seed).sample(range(len(kept)), max_examples))
        drops["over max_examples"] += len(kept) - max_examples
        kept = [kept[i] for i in chosen]
    return ExampleSet(kept, digest.hexdigest(), read, drops, name)


def with_negatives(
    examples: Sequence[TrainingExample], count: int, rng: random.Random
) -> tuple[list[tuple[str, str, list[str]]], int]:
    """``(query, positive, exactly `count` negatives)`` per example, and how many random
    negatives were added to top up examples with fewer mined ones."""
    if count == 0:
        return [(e.query, e.positive, []) for e in examples], 0
    pool = [(e.doc_id, e.positive) for e in examples]
    if len({doc_id for doc_id, _ in pool}) < 2 and any(len(e.negatives) < count for e in examples):
        raise DataError(
            "the examples have too few mined negatives and all share one positive document, so "
            "no random negatives can be drawn. Fix: run the 'negatives' stage or add examples"
        )
    added = 0
    out: list[tuple[str, str, list[str]]] = []
    for example in examples:
        negatives = list(example.negatives[:count])
        avoid = {example.doc_id, *example.negative_ids}
        tries = 0
        while len(negatives) < count:
            doc_id, text = pool[rng.randrange(len(pool))]
            tries += 1
            if doc_id in avoid or text == example.positive:
                if tries < 50:
                    continue
                doc_id, text = _fallback_negative(pool, example, avoid, rng)
            negatives.append(text)
            avoid.add(doc_id)
            added += 1
        out.append((example.query, example.positive, negatives))
    return out, added


def _fallback_negative(
    pool: Sequence[tuple[str, str]], example: TrainingExample, avoid: set[str], rng: random.Random
) -> tuple[str, str]:
    """A random negative when rejection sampling keeps hitting used documents (a tiny
    pool): a document not used yet if one is left, else a repeat of one (a mined negative
    or a random one already drawn), never the positive nor a document with its text."""
    usable = {d: t for d, t in pool if d != example.doc_id and t != example.positive}
    usable.update((d, t) for d, t in zip(example.negative_ids, example.negatives, strict=True)
                  if d != example.doc_id and t != example.positive)
    fresh = sorted(d for d in usable if d not in avoid)
    choices = fresh or sorted(usable)
    if not choices:
        raise DataError(
            f"query {example.query_id!r}: no document other than its positive to draw a random negative "
            "from. Fix: run the 'negatives' stage or add examples with other positive documents"
        )
    doc_id = choices[rng.randrange(len(choices))]
    return doc_id, usable[doc_id]


