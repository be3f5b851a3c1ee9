"""Cleaning and checking raw model output (golden file of messy outputs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inpars.generation.backends.base import Completion, cut_at_stop
from inpars.generation.parsing import (
    REJECT_REASONS,
    QueryCheck,
    check_query,
    clean_query,
    content_stems,
    normalized,
)
from inpars.generation.runner import RunSettings, judge, prompt_queries
from inpars.records import Document

GOLDEN = Path(__file__).parent / "golden" / "parsing.jsonl"
CASES: list[dict[str, Any]] = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['reason'] or 'kept'}" for i, c in enumerate(CASES)])
def test_messy_outputs_clean_and_check_like_the_golden_file(case: dict[str, Any]) -> None:
    text = clean_query(case["raw"])
    assert text == case["text"]
    assert check_query(text, finished=case["finished"]) == case["reason"]


def test_golden_file_covers_every_context_free_reason() -> None:
    seen = {c["reason"] for c in CASES}
    assert {"", "empty", "unfinished", "too_short", "too_long", "not_text", "repetitive"} <= seen


def test_context_reasons_copied_example_document_and_duplicate() -> None:
    doc = (
        "Microbial mats around hydrothermal vents fix carbon by chemosynthesis instead of photosynthesis "
        "and support tube worms clams and crabs far from sunlight"
    )
    examples = {normalized("How to filter items inside a list comprehension")}
    assert check_query("how to filter items inside a list comprehension?", example_queries=examples) == (
        "copied_example"
    )
    copied = "fix carbon by chemosynthesis instead of photosynthesis and support tube worms clams and crabs"
    assert check_query(copied, document=doc) == "copied_from_document"
    assert check_query("how do vent microbes fix carbon", document=doc) == ""
    assert check_query(
        "How do vent microbes fix carbon?", earlier={normalized("how do vent microbes fix carbon")}
    ) == ("duplicate")
    prefix_words = content_stems("Document: The Peace of Westphalia of 1648 ended the Thirty Years' War.")
    assert check_query("1648 Treaty ended", document=doc, prompt_words=prefix_words) == "off_topic"
    assert check_query("chemosynthesis since 1648", document=doc, prompt_words=prefix_words) == ""
    assert check_query("what happened in Europe", document=doc, prompt_words=prefix_words) == ""  # unrelated
    assert check_query("a b", limits=QueryCheck(min_words=1)) == "not_text"  # no word of two letters
    assert check_query("DNA", limits=QueryCheck(min_words=1)) == ""


def test_copy_check_is_the_filter_rule_with_its_own_threshold() -> None:
    doc = Document("d1", "Warm water makes corals expel the algae that live in them.", "Coral bleaching")
    assert "copied_from_document" in REJECT_REASONS and "copied_document" not in REJECT_REASONS
    assert check_query("Coral bleaching?", document=doc) == "copied_from_document"  # the title
    copied = "why warm water makes corals expel the algae"
    assert check_query(copied, document=doc) == ""  # 7 words: under the default 12
    assert check_query(copied, document=doc, limits=QueryCheck(max_copied_ngram=6)) == "copied_from_document"
    assert check_query("Coral bleaching?", document=doc, limits=QueryCheck(max_copied_ngram=0)) == ""  # off
    assert QueryCheck(2, 40, 12) == QueryCheck()  # positional order: min_words, max_words, max_copied_ngram


def test_run_layout_names_the_copy_threshold_only_when_changed() -> None:
    default = RunSettings(template="inpars", model="m").layout()
    assert "max_copied_ngram" not in default  # runs from before the setting still resume
    changed = RunSettings(template="inpars", model="m", limits=QueryCheck(max_copied_ngram=8)).layout()
    assert changed == {**default, "max_copied_ngram": 8}


def test_prompt_queries_finds_the_few_shot_queries_of_a_prompt() -> None:
    prefix = (
        "Intro line.\n\nDocument: some text\nGood query: Walking and Blood Pressure\nBad query: exercise\n\n"
    )
    found = prompt_queries(prefix)
    assert normalized("walking and blood pressure") in found
    assert "exercise" in found


def test_judge_keeps_good_samples_and_rejects_the_rest_with_reasons() -> None:
    doc = Document("d1", "Cats purr when they are content and sometimes when they are stressed.", "Cats")
    run = RunSettings(template="inpars", model="m", queries_per_doc=4, seed=3)
    outs = [
        Completion(" why do cats purr", (-0.5, -1.0, -1.5, -2.0), True),
        Completion(" Why do cats purr?", (-0.1,), True),
        Completion("", (), True),
        Completion(" do cats purr when stressed and also when", (-1.0,) * 8, False),
    ]
    kept, rejected = judge(doc, outs, run, examples=set())
    assert [q.query_id for q in kept] == ["d1#q0"]
    assert kept[0].text == "why do cats purr"
    assert kept[0].mean_logprob == -1.25
    assert kept[0].settings["temperature"] == 0.0  # sample 0 is greedy
    assert [(r.query_id, r.reason) for r in rejected] == [
        ("d1#q1", "duplicate"),
        ("d1#q2", "empty"),
        ("d1#q3", "unfinished"),
    ]
    assert all(r.reason in REJECT_REASONS and r.step == "generate" for r in rejected)


def test_cut_at_stop_counts_the_tokens_before_the_stop() -> None:
    pieces = [b" why", b" do", b" cats", b" purr", b"?\n", b"Query"]
    data, kept, found = cut_at_stop(pieces, ["\n"])
    assert (data, kept, found) == (b" why do cats purr?", 5, True)
    data, kept, found = cut_at_stop([b" a", b" b", b" \n"], ["\n"])
    assert (data, kept, found) == (b" a b ", 2, True)  # a blank piece before the stop is not a query token
    assert cut_at_stop([b" a", b" b"], ["\n"]) == (b" a b", 2, False)


def test_sentence_stop_cuts_after_the_first_sentence_once_another_starts() -> None:
    from inpars.generation.backends.base import find_stop, sentence_end

    first = b" Warm water bleaches corals."
    assert sentence_end(first + b" The algae leave", 1) == len(first)
    assert sentence_end(first, 1) == -1  # no second sentence (yet)
    assert sentence_end(b" E. coli and Smith et al. Show that p < 0.05. More", 1) == len(
        b" E. coli and Smith et al. Show that p < 0.05.")  # initials and abbreviations go on
    assert sentence_end(b" Is it? Yes. No", 2) == len(b" Is it? Yes.")
    assert sentence_end(b" One. Two", 0) == -1  # 0: no limit
    assert find_stop(b" A claim. The rest\nQuery", ["\n"], 1) == len(b" A claim.")
    assert find_stop(b" A claim\nB. C", ["\n"], 1) == len(b" A claim")
    data, kept, found = cut_at_stop([b" A", b" claim", b". The", b" rest"], ["\n"], max_sentences=1)
    assert (data, kept, found) == (b" A claim.", 3, True)


def test_unfinished_text_gets_the_reason_no_continuation_can_mend() -> None:
    from inpars.generation.parsing import QueryWatch, few_shot_ngrams, lost_cause

    text = "Warm water makes corals expel the algae that live in them and the reef turns white within weeks."
    doc = Document("d1", text, "Coral bleaching")
    limits = QueryCheck(max_words=12, max_copied_ngram=6)
    copy = "warm water makes corals expel the algae that"
    assert check_query(copy, finished=False, document=doc, limits=limits) == "copied_from_document"
    assert check_query("why do reefs turn white", finished=False, document=doc, limits=limits) == "unfinished"
    long = " ".join(["word"] * 7 + ["other", "words", "go", "on", "here", "now"])
    assert check_query(long, finished=False, limits=limits) == "too_long"
    prefix = "Document: The Peace of Westphalia of 1648 ended the Thirty Years War.\nQuery: peace\n\n"
    grams = few_shot_ngrams(prefix, 6)
    example = "the peace of westphalia of 1648 ended"
    for finished in (False, True):
        reason = check_query(example, finished=finished, document=doc, limits=limits, prompt_ngrams=grams)
        assert reason == "copied_example"
    assert check_query(example, document=doc, limits=limits) == ""  # without the prompt's n-grams
    watch = QueryWatch.for_document(doc, limits, grams)
    assert not watch(" Warm water makes corals expel the")  # 6 words, but the last may go on ("theory")
    assert watch(" Warm water makes corals expel the ")
    assert watch.reason(" Query: the peace of westphalia of 1648 ") == "copied_example"
    assert not watch(" why do corals turn white")
    assert lost_cause("a b c d e f g h i j k l m", limits, set(), partial=True) == ""  # "m" may go on
    assert lost_cause("a b c d e f g h i j k l m", limits, set()) == "too_long"
    assert watch(" a b c d e f g h i j k l m,") and not watch(" a b c d e f g h i j k l m")


def test_judge_gives_an_early_stopped_copy_its_reason() -> None:
    doc = Document("d1", "Cats purr when they are content and sometimes when they are stressed or hurt.", "")
    run = RunSettings(template="inpars", model="m", queries_per_doc=1, limits=QueryCheck(max_copied_ngram=6))
    copy = Completion(" Cats purr when they are content and", (-0.5,) * 7, False)
    _, rejected = judge(doc, [copy], run, examples=set())
    assert [r.reason for r in rejected] == ["copied_from_document"]
