from __future__ import annotations

from inpars.filtering.rules import RulesFilter
from inpars.records import Document
from tests.filtering.filtercases import make_query


def test_each_rule_drops_with_its_reason(docs: dict[str, Document]) -> None:
    rules = RulesFilter(docs, min_words=2, max_words=12, max_copied_ngram=6)
    cases = {
        "what makes corals turn white": (True, ""),
        "   ": (False, "empty"),
        "Document: coral bleaching": (False, "template_leak"),
        "1234 5678 9999 ###": (False, "not_text"),
        "coral": (False, "too_short"),
        "what " + "happens to the reef when water warms and algae leave " * 2: (False, "too_long"),
        "bleaching bleaching bleaching bleaching why bleaching": (False, "repetitive"),
        "Coral Bleaching!": (False, "copied_from_document"),
        "why does warm water makes corals expel the algae": (False, "copied_from_document"),
    }
    queries = [make_query(f"q{i}", "d1", text) for i, text in enumerate(cases)]
    verdicts = rules.judge(queries)
    for (text, (keep, reason)), verdict in zip(cases.items(), verdicts, strict=True):
        assert (verdict.keep, verdict.reason) == (keep, reason), text
    assert verdicts[-1].detail == "6 words copied: 'warm water makes corals expel the'"


def test_copy_check_can_be_turned_off_and_uses_the_right_document(docs: dict[str, Document]) -> None:
    copied = "why does warm water makes corals expel the algae"
    assert RulesFilter(docs, max_copied_ngram=0).check(copied, "d1").keep
    assert RulesFilter(docs, max_copied_ngram=0).check("Coral Bleaching!", "d1").keep  # 0: the title too
    assert RulesFilter(docs, max_copied_ngram=6).check(copied, "d2").keep  # not copied from d2
