"""Text measures the filters share: normalization, word n-grams, character shingles, and
the one copy check (:func:`copied_from_document`) of the generation rejects and the rules
filter.

Pure functions on strings; no models.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from inpars.records import Document

_WORD = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    """Lowercase, accents folded (NFKD), punctuation removed, spaces collapsed.

    Two queries that differ only in case, accents, punctuation or spacing normalize to
    the same string (the key of exact-duplicate detection).
    """
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(_WORD.findall(folded))


def words(text: str) -> list[str]:
    """The normalized words of ``text``."""
    return normalize(text).split()


def shingles(text: str, size: int = 3) -> frozenset[str]:
    """Character ``size``-grams of the normalized text padded with one space each side.

    Short texts (fewer characters than ``size``) give the whole padded text as one shingle,
    so every non-empty text has at least one.
    """
    norm = normalize(text)
    if not norm:
        return frozenset()
    padded = f" {norm} "
    if len(padded) <= size:
        return frozenset({padded})
    return frozenset(padded[i : i + size] for i in range(len(padded) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| (0.0 for two empty sets)."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def word_ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive words of ``tokens``."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def first_shared_ngram(query: Sequence[str], document_ngrams: set[tuple[str, ...]], n: int) -> str:
    """The first run of ``n`` consecutive query words that also occurs in the document
    (given as its :func:`word_ngrams`), joined by spaces; ``""`` when there is none."""
    for i in range(len(query) - n + 1):
        gram = tuple(query[i : i + n])
        if gram in document_ngrams:
            return " ".join(gram)
    return ""


def document_ngrams(document: Document, n: int) -> set[tuple[str, ...]]:
    """The :func:`word_ngrams` of a document's normalized title and text."""
    return word_ngrams(words(f"{document.title} {document.text}"), n)


def copied_from_document(
    query: str,
    document: Document,
    max_copied_ngram: int,
    *,
    ngrams: set[tuple[str, ...]] | None = None,
) -> str:
    """Why ``query`` counts as copied from ``document`` (the detail of a
    ``copied_from_document`` reject), or ``""`` when it does not.

    Copied: the query is the document's title, or it shares a run of ``max_copied_ngram``
    consecutive words with the title and text (after :func:`normalize`). ``0`` turns the
    check off. ``ngrams``: the document's :func:`document_ngrams` for that ``n``, when a
    caller keeps them for the many queries of one document.
    """
    n = max_copied_ngram
    if n <= 0:
        return ""
    tokens = words(query)
    title = normalize(document.title)
    if title and " ".join(tokens) == title:
        return "the query is the document's title"
    if len(tokens) >= n:
        shared = first_shared_ngram(tokens, ngrams if ngrams is not None else document_ngrams(document, n), n)
        if shared:
            return f"{n} words copied: {shared!r}"
    return ""


def letter_ratio(text: str) -> float:
    """Share of non-space characters that are letters (1.0 for empty text)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 1.0
    return sum(c.isalpha() for c in chars) / len(chars)
