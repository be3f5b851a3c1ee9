"""Rerank a first-stage run with a relevance scorer (a cross-encoder, or a bi-encoder).

:func:`rerank` rescores the top ``depth`` documents of each query with a
:class:`Scorer` (``score(pairs) -> list[float]``, see :mod:`inpars.scoring`) and ranks
them by the new score. Documents below ``depth`` are either

- ``keep`` (the default): ranked after the rescored ones in their first-stage order,
  with scores ``min(rescored) - 1, - 2, ...``, so a run keeps its length and metrics at
  depths beyond ``depth`` stay comparable with the first stage; or
- ``drop``: left out.

Every query of the run is kept, also one with no documents. The document text a scorer
sees is :func:`inpars.scoring.document_text` (title and text), as the index stored it.
Run files hold the scorer's scores at full precision; the systems loaded from a
:class:`SystemSpec` score with a cross-encoder's raw logit (no sigmoid, which saturates and
ties) or a bi-encoder's cosine, in int8 on the CPU with ``[rerank] quantize = "int8"``
(:mod:`inpars.scoring.quantize`). A per-query interpolation with the first stage
(``[evaluate] interpolate``) normalizes over the ``depth`` rescored documents only. A
bi-encoder system whose :class:`SystemSpec` names a dense index of its model takes the
documents' embeddings from it instead of encoding them again (:func:`reuse_index`).

:func:`rerank_stage` writes ``runs/<system>.trec`` for each system under the stage folder.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from inpars.config import RerankConfig
from inpars.data.lookup import DocumentLookup, DocumentSource
from inpars.errors import BackendError, ConfigError, DataError
from inpars.manifest import StageContext
from inpars.records import Query, ScoredPair
from inpars.scoring import Scorer, document_text, load_scorer
from inpars.trec import read_trec_run, write_trec_run

if TYPE_CHECKING:
    from inpars.distributed.scoring import RayScoring

log = logging.getLogger(__name__)

RUNS_DIR = "runs"
CHUNK_PAIRS = 512  # pairs handed to a scorer at once (it batches and buckets them itself)
MISSING_DOC_FIX = "rerank a run made from the same collection"


Queries = Mapping[str, str] | Iterable[Query]


@dataclass(frozen=True)
class SystemSpec:
    """A reranking system to load: a scorer kind of :func:`inpars.scoring.load_scorer`
    (``cross-encoder`` or ``bi-encoder``) and a model (alias, folder or hub id). ``index``:
    a dense index folder built with the same bi-encoder, whose document embeddings are
    used instead of encoding the documents again (:func:`reuse_index`)."""

    kind: str
    model: str
    index: str = ""


def query_texts(queries: Queries) -> dict[str, str]:
    """Query id -> text, from a mapping or from :class:`Query` records."""
    if isinstance(queries, Mapping):
        return {str(k): str(v) for k, v in queries.items()}
    return {q.query_id: q.text for q in queries}


def rerank(
    run: Mapping[str, Sequence[ScoredPair]],
    queries: Queries,
    doc_text: DocumentSource | DocumentLookup,
    scorer: Scorer | ChunkScorer,
    depth: int = 100,
    *,
    below_depth: Literal["keep", "drop"] = "keep",
    desc: str = "rerank",
) -> dict[str, list[ScoredPair]]:
    """Rescore the top ``depth`` documents of every query of ``run`` with ``scorer``.

    Returns query id -> pairs ranked by the new score (see the module doc for what
    happens below ``depth``). Raises :class:`DataError` when a query has no text and
    :class:`BackendError` when the scorer returns the wrong number of scores or NaN.
    """
    if depth < 1:
        raise ConfigError(f"depth = {depth}: must be at least 1")
    if below_depth not in ("keep", "drop"):
        raise ConfigError(f"below_depth = {below_depth!r}: use 'keep' or 'drop'")
    texts = query_texts(queries)
    missing = [qid for qid in run if qid not in texts]
    if missing:
        raise DataError(f"{len(missing)} queries of the run have no text, e.g. {missing[:3]}. "
                        "Fix: pass the queries the run was made from")
    ranked = {qid: sorted(pairs, key=lambda p: (-p.score, p.doc_id)) for qid, pairs in run.items()}
    todo = [(qid, p.doc_id) for qid, pairs in ranked.items() for p in pairs[:depth]]
    if isinstance(doc_text, DocumentLookup):
        lookup = doc_text
    else:
        lookup = DocumentLookup(doc_text, needed={doc_id for _, doc_id in todo}, fix=MISSING_DOC_FIX)
    scores = _score_all(todo, texts, lookup, scorer, desc)

    out: dict[str, list[ScoredPair]] = {}
    for qid, pairs in ranked.items():
        top = sorted((ScoredPair(qid, p.doc_id, scores[(qid, p.doc_id)]) for p in pairs[:depth]),
                     key=lambda p: (-p.score, p.doc_id))
        rest: list[ScoredPair] = []
        if below_depth == "keep" and len(pairs) > depth:
            floor = top[-1].score if top else 0.0
            rest = [ScoredPair(qid, p.doc_id, floor - i) for i, p in enumerate(pairs[depth:], start=1)]
        out[qid] = top + rest
    return out


class ChunkScorer(Protocol):
    """Scores many chunks of pairs at once (e.g. on Ray actors:
    :class:`inpars.distributed.scoring.RayChunkScorer`), one score list per chunk, in order."""

    def score_chunks(self, chunks: Iterable[list[tuple[str, str]]]) -> Iterator[list[float]]: ...


def chunk_scores(scorer: Scorer | ChunkScorer, chunks: Iterable[list[tuple[str, str]]]
                  ) -> Iterator[Sequence[float]]:
    """The scores of each chunk, in order: one ``score()`` call per chunk, or the chunk scorer's."""
    if hasattr(scorer, "score_chunks"):
        yield from scorer.score_chunks(chunks)
        return
    for chunk in chunks:
        yield scorer.score(chunk)


def _score_all(todo: list[tuple[str, str]], texts: dict[str, str], lookup: DocumentLookup,
               scorer: Scorer | ChunkScorer, desc: str) -> dict[tuple[str, str], float]:
    from tqdm.auto import tqdm

    keys = [todo[start : start + CHUNK_PAIRS] for start in range(0, len(todo), CHUNK_PAIRS)]
    cache: dict[str, str] = {}

    def text_chunks() -> Iterator[list[tuple[str, str]]]:
        for chunk in keys:
            pairs = []
            for qid, doc_id in chunk:
                if doc_id not in cache:
                    cache[doc_id] = document_text(lookup.get(doc_id))
                pairs.append((texts[qid], cache[doc_id]))
            yield pairs

    scores: dict[tuple[str, str], float] = {}
    with tqdm(total=len(todo), desc=desc, unit="pair", dynamic_ncols=True) as bar:
        for chunk, values in zip(keys, chunk_scores(scorer, text_chunks()), strict=True):
            if len(values) != len(chunk):
                raise BackendError(f"the scorer returned {len(values)} scores for {len(chunk)} pairs. "
                                   "Fix: a Scorer must return one score per pair")
            for key, value in zip(chunk, values, strict=True):
                if math.isnan(value):
                    raise BackendError(f"the scorer returned NaN for query {key[0]!r}, document "
                                       f"{key[1]!r}. Fix: check the model (it may be corrupt)")
                scores[key] = float(value)
            bar.update(len(chunk))
    return scores


def load_system(spec: SystemSpec, cfg: RerankConfig) -> Scorer:
    """Load the scorer of a :class:`SystemSpec` with the section's batch settings.

    A cross-encoder gives its raw logit, not the sigmoid of it (same ranking): sigmoid
    scores of confident models saturate at 1.0 and would tie in the run file.
    """
    return load_scorer(spec.kind, spec.model, batch_size=cfg.batch_size, max_length=cfg.max_length,
                       device=cfg.device, dtype=cfg.dtype, threads=cfg.threads, raw=True,
                       quantize=cfg.quantize)


def stage_settings(cfg: RerankConfig) -> Any:
    """What the rerank stage is fingerprinted with: ``cfg``, less ``quantize`` when it is
    ``none`` (the fingerprints of runs finished before the key existed stay valid), less the
    executor keys (where the scoring runs, not what it computes)."""
    from inpars.distributed.settings import without_executor_keys
    from inpars.manifest import config_dict

    settings = without_executor_keys(config_dict(cfg))
    if cfg.quantize == "none":
        settings.pop("quantize")
    return settings


def rerank_stage(
    ctx: StageContext,
    cfg: RerankConfig,
    first_stage_run: Path,
    queries: Queries,
    documents: DocumentSource,
    systems: Mapping[str, Scorer | SystemSpec],
) -> None:
    """Rerank ``first_stage_run`` with every system into ``runs/<system>.trec``.

    A system whose run file already exists (an interrupted stage with the same
    fingerprint, resumed) is not scored again. Records pairs and pairs/s per system. With
    ``executor = "ray"`` each system scores on the actors of a Ray cluster, one scorer each
    (:mod:`inpars.distributed.scoring`), into the same run files.
    """
    if not systems:
        raise ConfigError("no reranking systems given. Fix: train a model first or set [rerank] "
                          "zero_shot = true or extra_systems")
    for name in systems:
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"system name {name!r} cannot name a run file. Fix: use letters, digits, '-'")
    run = read_trec_run(first_stage_run)
    texts = query_texts(queries)
    ctx.counts["queries"] = len(run)
    ctx.counts["queries_not_in_run"] = len(set(texts) - set(run))  # no first-stage hits: stay absent
    ctx.counts["pairs_per_system"] = sum(min(len(p), cfg.depth) for p in run.values())
    needed = sorted({p.doc_id for pairs in run.values()
                     for p in sorted(pairs, key=lambda p: (-p.score, p.doc_id))[: cfg.depth]})
    lookup: DocumentLookup | None = None
    speeds: dict[str, Any] = {}
    with ExitStack() as stack:
        on_ray = _ray_scoring(cfg, stack)
        for name, system in systems.items():
            path = ctx.out_dir / RUNS_DIR / f"{name}.trec"
            spec = vars(system) if isinstance(system, SystemSpec) else type(system).__name__
            if path.is_file():
                log.info("rerank: %s already done (%s), keeping it", name, path)
                speeds[name] = {"resumed": True, "spec": spec}
            else:
                # the documents are read once, for the first system that needs them
                lookup = lookup or DocumentLookup(documents, needed=needed, fix=MISSING_DOC_FIX)
                with _system_scorer(system, cfg, on_ray, -(-ctx.counts["pairs_per_system"] // CHUNK_PAIRS)
                                    ) as scorer, ctx.timed(name):
                    start = time.perf_counter()
                    reused = reuse_index(scorer, system, cfg, lookup, needed)
                    reranked = rerank(run, texts, lookup, scorer, cfg.depth, below_depth=cfg.below_depth,
                                      desc=f"rerank {name}")
                    seconds = time.perf_counter() - start
                write_trec_run(path, reranked, tag=name)
                pairs_per_second = round(ctx.counts["pairs_per_system"] / seconds, 2) if seconds else 0.0
                speeds[name] = {"seconds": round(seconds, 2), "pairs_per_second": pairs_per_second,
                                "spec": spec, "reused_document_embeddings": reused}
                log.info("rerank: %s done, %.1f pairs/s -> %s", name, pairs_per_second, path)
            ctx.output(f"run:{name}", path)
        ctx.extra["executor"] = on_ray.record() if on_ray is not None else {"kind": "local"}
    ctx.extra["systems"] = speeds
    ctx.extra["depth"] = cfg.depth
    ctx.extra["below_depth"] = cfg.below_depth
    ctx.extra["quantize"] = cfg.quantize


def reuse_index(scorer: Scorer | ChunkScorer, spec: Scorer | SystemSpec, cfg: RerankConfig,
                lookup: DocumentLookup, doc_ids: Sequence[str]) -> int:
    """Give a bi-encoder scorer the embeddings of ``doc_ids`` from ``spec.index``, built with
    the same model and max length, so it does not encode the documents again; returns how
    many. The index holds float32 embeddings: where the scorer runs in bfloat16, documents are
    scored in float32 and queries in bfloat16 (cosines differ in the third decimal). Nothing is
    reused (0) by a scorer on Ray, with ``quantize = "int8"`` (the documents would not be
    int8), or from an index of another model or max length."""
    from inpars.indexing import DenseIndex
    from inpars.models import resolve_model

    add = getattr(scorer, "add_documents", None)
    if add is None or not isinstance(spec, SystemSpec) or not spec.index or cfg.quantize != "none":
        return 0
    index = DenseIndex.load(spec.index, device="cpu")
    built_with = (resolve_model(index.model), int(index.manifest["settings"]["max_length"]))
    if built_with != (resolve_model(spec.model), cfg.max_length):
        log.info("rerank: %s encodes its documents (the index %s was built with %s, max length %d)",
                 spec.model, spec.index, *built_with)
        return 0
    add([document_text(lookup.get(doc_id)) for doc_id in doc_ids], index.vectors(doc_ids))
    log.info("rerank: %s reuses the embeddings of %d documents from %s", spec.model, len(doc_ids), spec.index)
    return len(doc_ids)


def _ray_scoring(cfg: RerankConfig, stack: ExitStack) -> RayScoring | None:
    """The stage's Ray session (closed with ``stack``), or ``None`` with ``executor = "local"``."""
    from inpars.distributed.settings import ray_settings

    settings = ray_settings(cfg)
    if settings is None:
        return None
    from inpars.distributed.scoring import RayScoring

    return stack.enter_context(RayScoring(cfg, settings))


@contextmanager
def _system_scorer(system: Scorer | SystemSpec, cfg: RerankConfig, on_ray: RayScoring | None,
                   chunks: int) -> Iterator[Scorer | ChunkScorer]:
    """What scores ``system``: its scorer here, or its actors on Ray (stopped on exit)."""
    if on_ray is not None:
        with on_ray.scorer(system, chunks) as scorer:
            yield scorer
        return
    yield load_system(system, cfg) if isinstance(system, SystemSpec) else system
