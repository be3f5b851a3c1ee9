"""Turning raw model output into a query, or a reject with a reason.

:func:`clean_query` strips what small models wrap around a query (labels such as
``Query:``, numbering, bullets, quotes, special tokens); :func:`check_query` rejects
what is not a usable query. Reasons (the keys of the rejects counts):

``empty``             nothing left after cleaning
``unfinished``        the model hit ``max_new_tokens`` before the stop string
``too_short``         fewer than ``min_words`` words
``too_long``          more than ``max_words`` words
``not_text``          less than half of the characters are letters, or no word of 2+ letters
``repetitive``        the same word 4 times in a row, or one word is most of a long query
``copied_example``    the query is one of the prompt's few-shot queries, or shares
                      ``max_copied_ngram`` consecutive words with the prompt's few-shot part
                      (the model went on writing one of its example documents)
``off_topic``         no content word of the query is in the document, but some are in the
                      few-shot part of the prompt (the model wrote about an example)
``copied_from_document``  the document's title, or ``max_copied_ngram`` (12) consecutive words
                      of it (:func:`inpars.filtering.text.copied_from_document`, the
                      check of the rules filter too)
``duplicate``         the same query (case and punctuation aside) as an earlier sample of the document

A text that did not finish is first checked for what no continuation can mend
(:func:`lost_cause`: a copy of the document or of the few-shot part, more than
``max_words`` words); only otherwise is it ``unfinished``. :class:`QueryWatch` runs the
same test while a sample is being written, so that a backend can stop it there: the
reason is the same whether the sample was stopped early or ran to ``max_new_tokens``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from inpars.filtering.text import copied_from_document, document_ngrams, word_ngrams
from inpars.filtering.text import words as text_words
from inpars.records import Document

REJECT_REASONS = (
    "empty",
    "unfinished",
    "too_short",
    "too_long",
    "not_text",
    "repetitive",
    "copied_example",
    "off_topic",
    "copied_from_document",
    "duplicate",
)

_SPECIAL = re.compile(r"</?(?:s|eos|bos|pad|unk|end_of_turn|start_of_turn|endoftext|\|[a-z_]+\|)>", re.I)
_LABEL = re.compile(
    r"^(?:(?:good|bad|relevant|search|generated|new|example|synthetic)\s+)?"
    r"(?:query|question|search\s+query|q)\s*(?:\d{1,2}\s*)?[:=\-–—]\s*",
    re.I,
)
_NUMBER = re.compile(r"^(?:\(?\d{1,3}[.):\]]|[-*•·>]|#\d{1,3}:?)\s+")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`", "„": "“"}
_WORD = re.compile(r"\w+", re.UNICODE)
_MATCH = re.compile(r"[^\w]+")
_SPACE = re.compile(r"\s+")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "these",
        "those",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "how",
        "why",
        "when",
        "where",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "may",
        "might",
        "not",
        "are",
        "was",
        "were",
        "been",
        "being",
        "its",
        "into",
        "over",
        "under",
        "between",
        "after",
        "before",
        "during",
        "more",
        "most",
        "less",
        "such",
        "than",
        "then",
        "there",
        "their",
        "they",
        "them",
        "his",
        "her",
        "our",
        "your",
        "about",
        "also",
        "only",
        "other",
        "some",
        "any",
        "all",
        "each",
        "very",
    ]
)


def _normalize(text: str) -> str:
    return _MATCH.sub(" ", text.lower()).strip()


def content_stems(text: str) -> set[str]:
    """The content words of a text (3+ letters, not a stop word), cut to 5 characters."""
    return {w[:5] for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP}


def clean_query(raw: str) -> str:
    """The query in a raw completion: the first non-empty line, unwrapped."""
    text = _SPECIAL.sub(" ", raw)
    lines = [line for line in text.split("\n") if line.strip()]
    text = _SPACE.sub(" ", lines[0]).strip() if lines else ""
    for _ in range(3):
        before = text
        text = _LABEL.sub("", text).strip()
        text = _NUMBER.sub("", text).strip()
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
            text = text[1:-1].strip()
        elif text[:1] in _QUOTES and text.count(text[0]) == 1 and text[0] not in "'`":
            text = text[1:].strip()
        elif text[-1:] in _QUOTES.values() and text[-1] != "'" and text.count(text[-1]) == 1:
            text = text[:-1].strip()
        if text == before:
            break
    return text


@dataclass(frozen=True)
class QueryCheck:
    """Limits for :func:`check_query`."""

    min_words: int = 2
    max_words: int = 40
    max_copied_ngram: int = 12  # 0: no copy check


def check_query(
    text: str,
    *,
    finished: bool = True,
    limits: QueryCheck = QueryCheck(),
    document: Document | str = "",
    example_queries: Collection[str] = (),
    prompt_words: Collection[str] = (),
    prompt_ngrams: Collection[tuple[str, ...]] = (),
    earlier: Collection[str] = (),
) -> str:
    """The reject reason for a cleaned query, or ``""`` when it is kept.

    ``document``: the query's document (a plain string is its text, without title);
    ``example_queries`` and ``earlier`` hold normalized texts (see :func:`normalized`);
    ``prompt_words`` the :func:`content_stems` of the prompt's few-shot part and
    ``prompt_ngrams`` its :func:`few_shot_ngrams`.
    """
    if not text:
        return "empty"
    doc = document if isinstance(document, Document) else Document("", document)
    if not finished:
        n = limits.max_copied_ngram
        doc_grams = document_ngrams(doc, n) if n > 0 and (doc.title or doc.text) else set()
        return lost_cause(text, limits, doc_grams, prompt_ngrams) or "unfinished"
    words = _WORD.findall(text)
    letters = sum(ch.isalpha() for ch in text)
    if not any(sum(c.isalpha() for c in w) >= 2 for w in words) or letters < 0.5 * len(text.replace(" ", "")):
        return "not_text"
    if len(words) < limits.min_words:
        return "too_short"
    if len(words) > limits.max_words:
        return "too_long"
    lowered = [w.lower() for w in words]
    if any(len(set(lowered[i : i + 4])) == 1 for i in range(len(lowered) - 3)):
        return "repetitive"
    if len(lowered) >= 6 and Counter(lowered).most_common(1)[0][1] > len(lowered) / 2:
        return "repetitive"
    norm = _normalize(text)
    if norm in example_queries:
        return "copied_example"
    n = limits.max_copied_ngram
    if n > 0 and prompt_ngrams and _shares(text_words(text), prompt_ngrams, n):
        return "copied_example"
    if (doc.title or doc.text) and prompt_words:
        stems = content_stems(text)
        if stems and not stems & content_stems(f"{doc.title} {doc.text}") and stems & set(prompt_words):
            return "off_topic"
    if copied_from_document(text, doc, limits.max_copied_ngram):
        return "copied_from_document"
    if norm in earlier:
        return "duplicate"
    return ""


def _shares(tokens: list[str], grams: Collection[tuple[str, ...]], n: int) -> bool:
    """Whether some run of ``n`` consecutive ``tokens`` is one of ``grams``."""
    return bool(grams) and any(tuple(tokens[i : i + n]) in grams for i in range(len(tokens) - n + 1))


def few_shot_ngrams(prefix: str, n: int) -> set[tuple[str, ...]]:
    """The runs of ``n`` consecutive (normalized) words of a prompt's few-shot part
    (``n`` 0: none)."""
    return word_ngrams(text_words(prefix), n) if n > 0 else set()


def lost_cause(
    text: str,
    limits: QueryCheck,
    doc_ngrams: Collection[tuple[str, ...]],
    prompt_grams: Collection[tuple[str, ...]] = (),
    *,
    partial: bool = False,
) -> str:
    """Why a cleaned text that has not finished can never become a kept query, whatever
    follows it: ``copied_from_document`` (``max_copied_ngram`` consecutive words of the
    document, given as its :func:`~inpars.filtering.text.document_ngrams`),
    ``copied_example`` (as many of the few-shot part: :func:`few_shot_ngrams`) or
    ``too_long`` (more than ``max_words`` words); ``""`` when it may still be kept.
    ``partial``: the text is still being written and its last word may go on, so that
    word is not counted yet."""
    tokens = text_words(text)
    full = _WORD.findall(text)
    if partial:
        tokens, full = tokens[:-1], full[:-1]
    n = limits.max_copied_ngram
    if n > 0 and len(tokens) >= n:
        if _shares(tokens, doc_ngrams, n):
            return "copied_from_document"
        if _shares(tokens, prompt_grams, n):
            return "copied_example"
    if len(full) > limits.max_words:
        return "too_long"
    return ""


@dataclass(frozen=True)
class QueryWatch:
    """The test a backend runs on a sample's raw text while it is written
    (:attr:`inpars.generation.backends.base.GenerationRequest.watch`): true once
    :func:`lost_cause` says no continuation can make a kept query of it."""

    limits: QueryCheck
    doc_ngrams: frozenset[tuple[str, ...]]
    prompt_grams: frozenset[tuple[str, ...]] = frozenset()

    @classmethod
    def for_document(cls, document: Document, limits: QueryCheck,
                     prompt_grams: Collection[tuple[str, ...]] = ()) -> QueryWatch:
        n = limits.max_copied_ngram
        grams = document_ngrams(document, n) if n > 0 else set()
        return cls(limits, frozenset(grams), frozenset(prompt_grams))

    def reason(self, raw: str) -> str:
        """:func:`lost_cause` of the cleaned text; a word at the very end may go on."""
        open_word = raw[-1:].isalnum() or raw[-1:] == "_"
        text = clean_query(raw)
        return lost_cause(text, self.limits, self.doc_ngrams, self.prompt_grams, partial=open_word)

    def __call__(self, raw: str) -> bool:
        return bool(self.reason(raw))


def normalized(text: str) -> str:
    """The form used to compare queries (lowercase words, punctuation dropped)."""
    return _normalize(text)
