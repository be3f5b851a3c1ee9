"""Filtering synthetic queries: small filters chained in the configured order.

Each filter judges every query it is shown (keep, or drop with a reason and detail):

========================  ==================================================================
step                      drops
========================  ==================================================================
``rules``                 empty, template leaks, non-text, too short/long, repetitive, copied
``dedup``                 exact and near duplicates across the whole set (all shards)
``contamination``         queries (nearly) equal to an evaluation query; always on when known
``logprob``               all but the top fraction/count by mean token log-prob (InPars-v1)
``reranker``              all but the top fraction/count by a relevance scorer (InPars-v2)
``roundtrip``             queries whose document a retriever does not rank in its top k
``critic``                all but the top fraction/count by P(real) of a real-vs-synthetic classifier
========================  ==================================================================

Library use::

    from inpars.filtering import DedupFilter, RulesFilter, apply_filters
    result = apply_filters(queries, [RulesFilter(documents), DedupFilter(0.85)])
    result.kept, result.dropped
"""

from __future__ import annotations

from inpars.filtering.chain import (
    KEEP,
    SCORES_KEY,
    ChainResult,
    QueryFilter,
    StepReport,
    Verdict,
    apply_filters,
    drop,
    keep_count,
    top_verdicts,
)
from inpars.filtering.contamination import ContaminationFilter
from inpars.filtering.critic import CriticFilter, critic_real_queries
from inpars.filtering.dedup import DedupFilter
from inpars.filtering.logprob import LogprobFilter
from inpars.filtering.minhash import Match, NearDuplicateIndex
from inpars.filtering.reranker import RerankerFilter
from inpars.filtering.roundtrip import Retriever, RoundtripFilter
from inpars.filtering.rules import RulesFilter
from inpars.filtering.stage import (
    DROPPED,
    KEPT,
    DocumentSource,
    build_filters,
    filter_stage,
    read_queries,
    resolve_steps,
)

__all__ = [
    "DROPPED",
    "KEEP",
    "KEPT",
    "SCORES_KEY",
    "ChainResult",
    "ContaminationFilter",
    "CriticFilter",
    "DedupFilter",
    "DocumentSource",
    "LogprobFilter",
    "Match",
    "NearDuplicateIndex",
    "QueryFilter",
    "RerankerFilter",
    "Retriever",
    "RoundtripFilter",
    "RulesFilter",
    "StepReport",
    "Verdict",
    "apply_filters",
    "build_filters",
    "critic_real_queries",
    "drop",
    "filter_stage",
    "keep_count",
    "read_queries",
    "resolve_steps",
    "top_verdicts",
]
