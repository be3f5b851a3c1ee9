"""Synthetic queries that equal or nearly equal a query of the evaluation set.

A generator that saw test queries (as few-shot examples, or in pre-training data) can
write them back; training on them would leak the test set. ``equals_eval_query``: the
same text after normalization; ``near_eval_query``: character 3-gram Jaccard at or above
the threshold. The detail names the evaluation query id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inpars.filtering.chain import KEEP, Verdict, drop
from inpars.filtering.minhash import NearDuplicateIndex
from inpars.records import Query, SyntheticQuery


@dataclass
class ContaminationFilter:
    """Drops queries too close to one of ``eval_queries``."""

    eval_queries: Sequence[Query]
    threshold: float = 0.8
    seed: int = 0
    name: str = "contamination"

    def __post_init__(self) -> None:
        self._index = NearDuplicateIndex(seed=self.seed)
        seen: set[str] = set()
        for query in self.eval_queries:
            if query.query_id not in seen:  # a query listed twice (several splits) is indexed once
                seen.add(query.query_id)
                self._index.add(query.query_id, query.text)

    def judge(self, queries: Sequence[SyntheticQuery]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for query in queries:
            match = self._index.find(query.text, self.threshold)
            if match is None:
                verdicts.append(KEEP)
            elif match.exact:
                verdicts.append(drop("equals_eval_query", f"evaluation query {match.key}"))
            else:
                detail = f"evaluation query {match.key} (jaccard {match.similarity:.2f})"
                verdicts.append(drop("near_eval_query", detail))
        return verdicts
