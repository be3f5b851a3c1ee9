from __future__ import annotations

from inpars.filtering.text import (
    copied_from_document,
    document_ngrams,
    first_shared_ngram,
    jaccard,
    letter_ratio,
    normalize,
    shingles,
    word_ngrams,
)
from inpars.records import Document


def test_normalize_folds_case_accents_punctuation_and_spaces() -> None:
    assert normalize("  What's the Rôle of  p53?! ") == "what s the role of p53"
    assert normalize("¿Qué?") == normalize("que")
    assert normalize("...") == ""


def test_shingles_and_jaccard() -> None:
    assert shingles("Ab") == frozenset({" ab", "ab "})
    assert shingles("a") == frozenset({" a "})
    assert shingles("") == frozenset()
    same = jaccard(shingles("What causes coral bleaching?"), shingles("what causes coral bleaching"))
    assert same == 1.0
    other = jaccard(shingles("what causes coral bleaching"), shingles("role of p53 in apoptosis"))
    assert other < 0.1
    assert jaccard(frozenset(), frozenset()) == 0.0


def test_shared_ngram_and_letter_ratio() -> None:
    doc = word_ngrams(["the", "cat", "sat", "on", "the", "mat", "today"], 3)
    assert first_shared_ngram(["why", "the", "cat", "sat", "there"], doc, 3) == "the cat sat"
    assert first_shared_ngram(["why", "the", "dog", "sat", "there"], doc, 3) == ""
    assert letter_ratio("1234 ++") < 0.1
    assert letter_ratio("abc 1") == 0.75
    assert letter_ratio("") == 1.0


def test_copied_from_document_is_the_one_copy_check() -> None:
    doc = Document("d1", "Warm water makes corals expel the algae that live in them.", "Coral Bleaching")
    assert copied_from_document("coral bleaching!", doc, 8) == "the query is the document's title"
    assert copied_from_document("why does warm water make corals expel the algae", doc, 5) == ""  # make(s)
    assert copied_from_document("how warm water makes corals expel the algae", doc, 5) == (
        "5 words copied: 'warm water makes corals expel'"
    )
    assert copied_from_document("how warm water makes corals expel the algae", doc, 12) == ""  # too short
    assert copied_from_document("coral bleaching", doc, 0) == ""  # 0: the check is off
    assert copied_from_document("why do corals bleach", doc, 3) == ""
    grams = document_ngrams(doc, 5)
    assert ("warm", "water", "makes", "corals", "expel") in grams
    query = "how warm water makes corals expel the algae"
    assert copied_from_document(query, doc, 5, ngrams=grams) == copied_from_document(query, doc, 5)
