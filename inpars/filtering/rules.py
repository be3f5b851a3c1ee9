"""Rule-based checks of a synthetic query on its own and against its document.

Drop reasons, checked in this order: ``empty``; ``template_leak`` (a prompt marker such
as "Document:" in the query); ``not_text`` (too few letters: numbers, symbols, markup);
``too_short`` / ``too_long`` (word count); ``repetitive`` (a word repeated over and over);
``copied_from_document`` (the document's title, or a run of ``max_copied_ngram``
consecutive words of the document; :func:`~inpars.filtering.text.copied_from_document`,
the check generation rejects with too, 0: off).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inpars.filtering.chain import KEEP, Verdict, drop
from inpars.filtering.text import copied_from_document, document_ngrams, letter_ratio, normalize
from inpars.records import Document, SyntheticQuery

REPEAT_MIN_WORDS = 6  # queries shorter than this are never called repetitive
REPEAT_MAX_SHARE = 0.5  # ... longer ones are when one word is more than this share of them


@dataclass
class RulesFilter:
    """Keeps queries that pass every rule; ``documents`` maps doc id -> document."""

    documents: Mapping[str, Document]
    min_words: int = 2
    max_words: int = 40
    max_copied_ngram: int = 8
    min_letter_ratio: float = 0.5
    banned_phrases: Sequence[str] = ("document:", "query:", "question:", "passage:")
    name: str = "rules"

    def __post_init__(self) -> None:
        self._ngrams: dict[str, set[tuple[str, ...]]] = {}
        self._phrases = [p.casefold() for p in self.banned_phrases if p]

    def judge(self, queries: Sequence[SyntheticQuery]) -> list[Verdict]:
        return [self.check(q.text, q.doc_id) for q in queries]

    def check(self, text: str, doc_id: str) -> Verdict:
        """The verdict on one query text written for document ``doc_id``."""
        if not text.strip():
            return drop("empty")
        lowered = text.casefold()
        for phrase in self._phrases:
            if phrase in lowered:
                return drop("template_leak", f"contains {phrase!r}")
        ratio = letter_ratio(text)
        if ratio < self.min_letter_ratio:
            return drop("not_text", f"{ratio:.0%} letters (< {self.min_letter_ratio:.0%})")
        tokens = normalize(text).split()
        if len(tokens) < self.min_words:
            return drop("too_short", f"{len(tokens)} words (< {self.min_words})")
        if len(tokens) > self.max_words:
            return drop("too_long", f"{len(tokens)} words (> {self.max_words})")
        if len(tokens) >= REPEAT_MIN_WORDS:
            word, times = Counter(tokens).most_common(1)[0]
            if times > REPEAT_MAX_SHARE * len(tokens):
                return drop("repetitive", f"{word!r} is {times} of {len(tokens)} words")
        document = self.documents.get(doc_id)
        if document is not None and self.max_copied_ngram > 0:
            copied = copied_from_document(text, document, self.max_copied_ngram,
                                          ngrams=self._document_ngrams(doc_id, document))
            if copied:
                return drop("copied_from_document", copied)
        return KEEP

    def _document_ngrams(self, doc_id: str, document: Document) -> set[tuple[str, ...]]:
        grams = self._ngrams.get(doc_id)
        if grams is None:
            if len(self._ngrams) > 10_000:  # queries come grouped by document: a small cache is enough
                self._ngrams.clear()
            grams = document_ngrams(document, self.max_copied_ngram)
            self._ngrams[doc_id] = grams
        return grams

