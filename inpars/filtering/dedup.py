"""Duplicate synthetic queries across the whole set (every shard, every document).

The first query (in input order: shard by shard, line by line) of each group of
duplicates is kept. ``exact_duplicate``: the same text after normalization (case,
accents, punctuation, spacing); ``near_duplicate``: character 3-gram Jaccard at or above
the threshold against a query kept earlier (see :mod:`.minhash`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inpars.filtering.chain import KEEP, Verdict, drop
from inpars.filtering.minhash import NearDuplicateIndex
from inpars.records import SyntheticQuery


@dataclass
class DedupFilter:
    """Drops a query that equals or nearly equals an earlier kept one."""

    threshold: float = 0.85
    seed: int = 0
    name: str = "dedup"

    def judge(self, queries: Sequence[SyntheticQuery]) -> list[Verdict]:
        from tqdm import tqdm

        index = NearDuplicateIndex(seed=self.seed)
        verdicts: list[Verdict] = []
        for query in tqdm(queries, desc="dedup", unit="query", disable=len(queries) < 10_000):
            match = index.find(query.text, self.threshold)
            if match is None:
                index.add(query.query_id, query.text)
                verdicts.append(KEEP)
            elif match.exact:
                verdicts.append(drop("exact_duplicate", f"same as {match.key}"))
            else:
                verdicts.append(drop("near_duplicate", f"like {match.key} (jaccard {match.similarity:.2f})"))
        return verdicts
