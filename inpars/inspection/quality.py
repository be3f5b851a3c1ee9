"""The data-quality measures of a generate + filter run (``quality.json``).

Pure functions over :class:`~inpars.inspection.data.RunData`; words are the project's
normalized words (:func:`inpars.filtering.text.words`: case, accents and punctuation folded).

- distinct-n: distinct word n-grams / all word n-grams over a set of queries (n-grams
  within one query);
- exact / near-duplicate rate: share of queries that equal (after normalization) or nearly
  equal (character 3-gram Jaccard at or above the filter's threshold, MinHash index of the
  dedup filter) a query earlier in the run;
- coverage: share of the documents generated for with at least one kept query;
- copy rate: share of queries :func:`~inpars.filtering.text.copied_from_document` calls copied
  (the filter's ``max_copied_ngram`` words in a row, or the title);
- term overlap: share of a query's distinct words that occur in its document.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from inpars.filtering.minhash import NearDuplicateIndex
from inpars.filtering.text import copied_from_document, document_ngrams, words
from inpars.inspection.data import FILTER, GENERATE, KEPT, RunData, Sample
from inpars.records import Document

log = logging.getLogger(__name__)

DIGITS = 4


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, DIGITS) if whole else None


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Distinct word n-grams / all word n-grams (``None`` when there is none)."""
    grams: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        tokens = words(text)
        grams.update(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return _rate(len(grams), sum(grams.values()))


def duplicate_counts(texts: Sequence[str], threshold: float, seed: int = 0) -> tuple[int, int]:
    """(exact, near) duplicates: queries equal to / nearly equal to an earlier one (an earlier
    one that was itself a duplicate does not count, as in the dedup filter)."""
    index = NearDuplicateIndex(seed=seed)
    exact = near = 0
    for i, text in enumerate(texts):
        match = index.find(text, threshold)
        if match is None:
            index.add(str(i), text)
        elif match.exact:
            exact += 1
        else:
            near += 1
    return exact, near


def diversity(texts: Sequence[str], threshold: float, seed: int = 0) -> dict[str, Any]:
    exact, near = duplicate_counts(texts, threshold, seed)
    return {
        "queries": len(texts),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "exact_duplicates": exact,
        "exact_duplicate_rate": _rate(exact, len(texts)),
        "near_duplicates": near,
        "near_duplicate_rate": _rate(near, len(texts)),
        "near_dup_threshold": threshold,
    }


def copy_rate(samples: Sequence[Sample], documents: dict[str, Document], n: int) -> dict[str, Any]:
    """How many queries copy ``n`` words in a row (or the title) from their document."""
    cache: dict[str, set[tuple[str, ...]]] = {}
    copied = checked = 0
    for s in samples:
        doc = documents.get(s.doc_id)
        if doc is None:
            continue
        if s.doc_id not in cache:
            cache[s.doc_id] = document_ngrams(doc, n) if n > 0 else set()
        checked += 1
        copied += bool(copied_from_document(s.text, doc, n, ngrams=cache[s.doc_id]))
    return {"queries": checked, "copied": copied, "rate": _rate(copied, checked)}


def term_overlap(query: str, document: Document) -> float | None:
    """Share of the query's distinct words that occur in the document's title or text."""
    q = set(words(query))
    if not q:
        return None
    return len(q & set(words(f"{document.title} {document.text}"))) / len(q)


def summary(values: Iterable[float | None]) -> dict[str, Any] | None:
    """n, mean, median, min and max (``None`` when there is no value)."""
    xs = [v for v in values if v is not None]
    if not xs:
        return None
    stats = {"mean": statistics.fmean(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs)}
    return {"n": len(xs), **{k: round(v, DIGITS) for k, v in stats.items()}}


def query_shape(pairs: Sequence[tuple[str, str]], documents: dict[str, Document]) -> dict[str, Any]:
    """Length in words (per distinct query text) and term overlap (per query-document pair)."""
    overlaps = [term_overlap(text, documents[doc_id]) for text, doc_id in pairs if doc_id in documents]
    texts = list(dict.fromkeys(text for text, _ in pairs))
    return {"length_words": summary(len(words(t)) for t in texts), "term_overlap": summary(overlaps)}


def counts(run: RunData) -> dict[str, Any]:
    kept = run.kept()
    rejected = sum(s.stage == GENERATE for s in run.samples)
    filtered = sum(s.stage == FILTER for s in run.samples)
    return {
        "documents": len(run.doc_ids),
        "samples": len(run.samples),
        "generation_rejected": rejected,
        "generated": len(run.samples) - rejected,
        "filter_dropped": filtered,
        "kept": len(kept),
        "documents_with_kept_query": len({s.doc_id for s in kept}),
    }


def drops(run: RunData) -> dict[str, dict[str, int]]:
    """Drops by reason, most frequent first: generation rejects and filter drops."""
    out: dict[str, dict[str, int]] = {}
    for stage in (GENERATE, FILTER):
        reasons = Counter(s.reason for s in run.samples if s.stage == stage)
        out[stage] = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def coverage(run: RunData) -> dict[str, Any]:
    kept_docs = Counter(s.doc_id for s in run.kept())
    total = len(run.doc_ids)
    with_kept = sum(1 for d in run.doc_ids if kept_docs[d])
    return {"documents": total, "with_kept_query": with_kept, "rate": _rate(with_kept, total),
            "kept_per_document": _rate(sum(kept_docs[d] for d in run.doc_ids), total)}


def logprobs(run: RunData) -> dict[str, Any]:
    """Mean log-prob of kept and filter-dropped queries (generation rejects have none)."""
    def mean(samples: Iterable[Sample]) -> dict[str, Any]:
        values = [s.mean_logprob for s in samples if s.mean_logprob is not None]
        return {"n": len(values), "mean": round(statistics.fmean(values), DIGITS) if values else None}

    dropped = [s for s in run.samples if s.stage == FILTER]
    reasons = sorted({s.reason for s in dropped})
    return {
        "kept": mean(run.kept()),
        "dropped": mean(dropped),
        "dropped_by_reason": {r: mean(s for s in dropped if s.reason == r) for r in reasons},
        "note": "mean token log-prob of each query, averaged; generation rejects carry no log-probs",
    }


def real_samples(run: RunData) -> list[Sample]:
    """The real train pairs as kept samples (query text, judged document)."""
    return [Sample(query_id, doc_id, text, KEPT) for query_id, text, doc_id in run.real]


def real_vs_synthetic(run: RunData) -> dict[str, Any]:
    synthetic = query_shape([(s.text, s.doc_id) for s in run.kept()], run.documents)
    real = query_shape([(text, doc_id) for _, text, doc_id in run.real], run.documents) if run.real else None
    return {"synthetic_kept": synthetic, "real_train": real, "real_note": run.real_note,
            "real_queries": len({qid for qid, _, _ in run.real})}


def quality_report(run: RunData) -> dict[str, Any]:
    """Every measure of ``quality.json`` except the optional embedding similarity."""
    st = run.settings
    kept, generated = run.kept(), run.generated()
    log.info("diversity of %d generated and %d kept queries", len(generated), len(kept))
    report: dict[str, Any] = {
        "experiment": run.name,
        "counts": counts(run),
        "drops": drops(run),
        "diversity": {
            "generated": diversity([s.text for s in generated], st.near_dup_threshold, st.seed),
            "kept": diversity([s.text for s in kept], st.near_dup_threshold, st.seed),
        },
        "coverage": coverage(run),
    }
    log.info("copy rate and term overlap")
    report["copy"] = {
        "ngram": st.copy_ngram,
        "generated": copy_rate(generated, run.documents, st.copy_ngram),
        "kept": copy_rate(kept, run.documents, st.copy_ngram),
        "real_train": copy_rate(real_samples(run), run.documents, st.copy_ngram) if run.real else None,
    }
    report["queries"] = real_vs_synthetic(run)
    report["logprob"] = logprobs(run)
    return report

