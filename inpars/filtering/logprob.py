"""InPars-v1's filter: keep the queries the generator was most sure of.

Ranks by ``mean_logprob`` (mean log-probability of the query's tokens given the prompt)
and keeps the top fraction or count. Queries without log-probabilities are dropped
(``no_logprob``); when none has them the step cannot run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inpars.errors import ConfigError
from inpars.filtering.chain import Verdict, drop, top_verdicts
from inpars.records import SyntheticQuery


@dataclass
class LogprobFilter:
    """Keeps the best ``keep`` (fraction <= 1, or count) queries by mean token log-probability."""

    keep: float = 0.5
    name: str = "logprob"

    def judge(self, queries: Sequence[SyntheticQuery]) -> list[Verdict]:
        scored = [i for i, q in enumerate(queries) if q.mean_logprob is not None]
        if queries and not scored:
            raise ConfigError(
                "filter step 'logprob': none of the synthetic queries has log-probabilities "
                "(mean_logprob). Fix: remove 'logprob' from [filter] steps, or generate with a "
                "backend that returns them (llama-cpp, hf-causal, hf-seq2seq)"
            )
        ranked = top_verdicts(
            [queries[i].query_id for i in scored],
            [float(queries[i].mean_logprob or 0.0) for i in scored],
            self.keep,
            "mean log-probability",
        )
        verdicts: list[Verdict] = [drop("no_logprob", "the backend gave no log-probabilities")] * len(queries)
        for i, verdict in zip(scored, ranked, strict=True):
            verdicts[i] = verdict
        return verdicts
