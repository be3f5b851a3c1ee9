"""InPars-v2's filter: keep the queries a relevance model finds most relevant to their
own document.

Every (query, source document) pair is scored with a :class:`~inpars.scoring.Scorer`
(default: cosine of the packaged all-MiniLM-L6-v2, since no trained cross-encoder is
packaged) and the top fraction or count is kept. Scores are appended to a cache file
chunk by chunk, so an interrupted run resumes where it stopped.

With ``[filter] executor = "ray"`` the chunks are scored on the actors of a Ray cluster
(:mod:`inpars.distributed.scoring`), each loading the scorer from the same
:class:`RerankerRecipe`; every chunk is one ``score()`` call with the same pairs as in a
local run, and the scores come back (and go to the cache) in chunk order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from inpars.errors import ConfigError
from inpars.filtering.chain import Verdict, top_verdicts
from inpars.io import RecordAppender, read_records
from inpars.records import Document, ScoredPair, SyntheticQuery
from inpars.scoring import Scorer, document_text

if TYPE_CHECKING:
    from inpars.config import FilterConfig
    from inpars.distributed.scoring import RayScoring
    from inpars.reranking import ChunkScorer

CHUNK = 1024  # pairs scored (and appended to the cache) at a time
RemoteScorer = Callable[[int], AbstractContextManager["ChunkScorer"]]  # chunk count -> a chunk scorer


def cached_scores(path: Path | None) -> dict[str, float]:
    """Scores of an earlier, interrupted run (query id -> score); empty without a cache."""
    if path is None or not path.is_file():
        return {}
    return {pair.query_id: pair.score for pair in read_records(path, ScoredPair)}


@dataclass(frozen=True)
class RerankerRecipe:
    """How the reranker step loads its scorer (picklable: a Ray actor loads it the same way)."""

    kind: str
    model: str
    batch_size: int
    max_length: int
    device: str
    dtype: str
    threads: int
    seed: int

    @classmethod
    def of(cls, cfg: FilterConfig, seed: int, threads: int | None = None) -> RerankerRecipe:
        """The recipe of ``cfg``'s reranker settings (``threads``: in place of ``cfg.threads``)."""
        return cls(cfg.reranker_kind, cfg.reranker_model, cfg.reranker_batch_size, cfg.reranker_max_length,
                   cfg.device, cfg.reranker_dtype, cfg.threads if threads is None else threads, seed)

    def load_scorer(self) -> Scorer:
        from inpars.scoring import load_scorer

        return load_scorer(
            self.kind, self.model, batch_size=self.batch_size, max_length=self.max_length,
            device=self.device, dtype=self.dtype, threads=self.threads, seed=self.seed, show_progress=False,
            raw=True,  # a cross-encoder's logit: no sigmoid saturation, no ties at the cutoff
        )


@dataclass
class RerankerFilter:
    """Keeps the best ``keep`` (fraction <= 1, or count) queries by ``scorer``'s score, or, when
    ``remote`` is given, by the scores of the chunk scorer it opens (Ray actors)."""

    scorer: Scorer | None
    documents: Mapping[str, Document]
    keep: float = 0.5
    cache_path: Path | None = None
    name: str = "reranker"
    remote: RemoteScorer | None = None

    @contextmanager
    def _chunk_scorer(self, chunks: int) -> Iterator[Scorer | ChunkScorer]:
        if self.remote is not None:
            with self.remote(chunks) as remote:
                yield remote
            return
        if self.scorer is None:
            raise ConfigError("filter step 'reranker' was given no scorer. Fix: pass scorer= or remote=")
        yield self.scorer

    def score_all(self, queries: Sequence[SyntheticQuery]) -> dict[str, float]:
        """Query id -> score of (query text, source document), from the cache where present."""
        from tqdm import tqdm

        from inpars.reranking import chunk_scores

        scores = cached_scores(self.cache_path)
        todo = sorted((q for q in queries if q.query_id not in scores), key=lambda q: (q.doc_id, q.query_id))
        if not todo:
            return scores
        chunks = [todo[start : start + CHUNK] for start in range(0, len(todo), CHUNK)]
        texts = ([(q.text, document_text(self.documents[q.doc_id])) for q in chunk] for chunk in chunks)
        appender = RecordAppender(self.cache_path) if self.cache_path is not None else None
        try:
            with self._chunk_scorer(len(chunks)) as scorer, tqdm(
                    total=len(queries), initial=len(queries) - len(todo), desc="reranker scores", unit="pair",
                    disable=len(queries) < 2 * CHUNK) as bar:
                for chunk, values in zip(chunks, chunk_scores(scorer, texts), strict=True):
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


def reranker_filter(cfg: FilterConfig, documents: Mapping[str, Document], *, scorer: Scorer | None = None,
                    work_dir: Path | None = None, seed: int = 0, on_ray: RayScoring | None = None
                    ) -> RerankerFilter:
    """The reranker step of ``cfg``: ``scorer`` (else the recipe's, loaded here) scoring here,
    or, with ``on_ray``, on its actors (``scorer`` sent to them, else the recipe, loaded there
    with the actors' threads); ``work_dir`` holds the resume cache."""
    cache = work_dir / "scores_reranker.jsonl" if work_dir is not None else None
    if on_ray is not None:
        system = scorer if scorer is not None else RerankerRecipe.of(cfg, seed, threads=on_ray.threads)
        return RerankerFilter(scorer, documents, cfg.reranker_keep, cache_path=cache,
                              remote=lambda chunks: on_ray.scorer(system, chunks))
    if scorer is None:
        scorer = RerankerRecipe.of(cfg, seed).load_scorer()
    return RerankerFilter(scorer, documents, cfg.reranker_keep, cache_path=cache)
