"""InPars-v2's filter: keep the queries a relevance model finds most relevant to their
own document.

Every (query, source document) pair is scored with a :class:`~inpars.scoring.Scorer`
(default: cosine of the packaged all-MiniLM-L6-v2, since no trained cross-encoder is
packaged) and the top fraction or count is kept. Scores are appended to a cache file
chunk by chunk, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from inpars.filtering.chain import Verdict, top_verdicts
from inpars.io import RecordAppender, read_records
from inpars.records import Document, ScoredPair, SyntheticQuery
from inpars.scoring import Scorer, document_text

CHUNK = 1024  # pairs scored (and appended to the cache) at a time


def cached_scores(path: Path | None) -> dict[str, float]:
    """Scores of an earlier, interrupted run (query id -> score); empty without a cache."""
    if path is None or not path.is_file():
        return {}
    return {pair.query_id: pair.score for pair in read_records(path, ScoredPair)}


@dataclass
class RerankerFilter:
    """Keeps the best ``keep`` (fraction <= 1, or count) queries by ``scorer``'s score."""

    scorer: Scorer
    documents: Mapping[str, Document]
    keep: float = 0.5
    cache_path: Path | None = None
    name: str = "reranker"

    def score_all(self, queries: Sequence[SyntheticQuery]) -> dict[str, float]:
        """Query id -> score of (query text, source document), from the cache where present."""
        from tqdm import tqdm

        scores = cached_scores(self.cache_path)
        todo = sorted((q for q in queries if q.query_id not in scores), key=lambda q: (q.doc_id, q.query_id))
        if not todo:
            return scores
        appender = RecordAppender(self.cache_path) if self.cache_path is not None else None
        try:
            with tqdm(total=len(queries), initial=len(queries) - len(todo), desc="reranker scores",
                      unit="pair", disable=len(queries) < 2 * CHUNK) as bar:
                for start in range(0, len(todo), CHUNK):
                    chunk = todo[start : start + CHUNK]
                    texts = [(q.text, document_text(self.documents[q.doc_id])) for q in chunk]
                    values = self.scorer.score(texts)
                    pairs = [ScoredPair(q.query_id, q.doc_id, v) for q, v in zip(chunk, values, strict=True)]
                    if appender is not None:
                        appender.write(pairs)
                    scores.update((p.query_id, p.score) for p in pairs)
                    bar.update(len(chunk))
        finally:
            if appender is not None:
                appender.close()
        return scores

    def judge(self, queries: Sequence[SyntheticQuery]) -> list[Verdict]:
        scores = self.score_all(queries)
        ids = [q.query_id for q in queries]
        return top_verdicts(ids, [scores[i] for i in ids], self.keep, "relevance score")
