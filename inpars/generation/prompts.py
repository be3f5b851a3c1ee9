"""Prompts for documents: document fields cut to a token budget, few-shot examples drawn
from a train split, the target's retrieved neighbours, and the guard that keeps test queries
out of every prompt."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from inpars.data import Collection
from inpars.errors import ConfigError, DataError, StageError
from inpars.generation.templates import Prompt, Template, placeholders, render
from inpars.records import Document, Query

log = logging.getLogger(__name__)

Truncate = Callable[[str, int], str]
"""Cuts a text to at most N tokens of the generator's tokenizer."""

NeighbourProvider = Callable[[Document], Sequence[Document]]
"""The documents nearest to a target document, best first (e.g.
:class:`inpars.generation.neighbours.Bm25Neighbours`); the builder drops the target itself."""

_SPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w]+")


@dataclass(frozen=True)
class FewShotExample:
    """A judged (query, document) pair of the train split, shown in the prompt."""

    query_id: str
    query: str
    doc_id: str
    title: str
    text: str


def collapse_whitespace(text: str) -> str:
    """One space for every run of whitespace (newlines included), stripped."""
    return _SPACE.sub(" ", text).strip()


def join_title(title: str, text: str) -> str:
    """Title and text as one passage: ``Title. Text`` (no dot added after ``.?!:``)."""
    title, text = collapse_whitespace(title), collapse_whitespace(text)
    if not title:
        return text
    if not text:
        return title
    return f"{title} {text}" if title[-1] in ".?!:;" else f"{title}. {text}"


def normalize_for_match(text: str) -> str:
    """Lowercase words separated by single spaces (for leak checks and duplicate tests)."""
    return _NOT_WORD.sub(" ", text.lower()).strip()


def _fields(title: str, text: str, wanted: Iterable[str], truncate: Truncate, budget: int) -> dict[str, str]:
    fields = {"title": collapse_whitespace(title)}
    wanted = set(wanted)
    if "document" in wanted:
        fields["document"] = truncate(join_title(title, text), budget)
    if "text" in wanted:
        fields["text"] = truncate(collapse_whitespace(text), budget)
    return fields


class PromptBuilder:
    """Renders a template for documents; the few-shot part is rendered once (``prefix``).

    A template with ``{neighbours}`` needs ``neighbours``, the search that finds a target's
    nearest documents: the first ``neighbour_count`` of them other than the target (by id, or
    by the same text) are shown, one numbered line each, cut to ``neighbour_max_tokens``.
    """

    def __init__(
        self,
        template: Template,
        *,
        truncate: Truncate,
        doc_max_tokens: int,
        examples: Sequence[FewShotExample] = (),
        example_max_tokens: int = 128,
        neighbours: NeighbourProvider | None = None,
        neighbour_count: int = 2,
        neighbour_max_tokens: int = 64,
    ) -> None:
        self.template = template
        self.examples = tuple(examples)
        self._truncate = truncate
        self._budget = doc_max_tokens
        self._neighbours = neighbours
        self._neighbour_count = neighbour_count
        self._neighbour_budget = neighbour_max_tokens
        shared, self._rest = template.split_at_target()
        self._wanted = [p for p in placeholders(self._rest) if p not in ("examples", "neighbours")]
        if template.uses_examples and not self.examples:
            raise ConfigError(
                f"template {template.name!r} uses {{examples}} but no examples were given. "
                "Fix: set generate.num_examples >= 1 (they are drawn from the train split)"
            )
        _check_neighbours(template, neighbours, neighbour_count)
        blocks = [
            render(
                template.example,
                {
                    **_fields(
                        ex.title, ex.text, placeholders(template.example), truncate, example_max_tokens
                    ),
                    "query": collapse_whitespace(ex.query),
                },
            )
            for ex in self.examples
        ]
        self.prefix = render(shared, {"examples": "\n\n".join(blocks)})

    def build(self, doc: Document) -> Prompt:
        """The prompt for one document."""
        fields = _fields(doc.title, doc.text, self._wanted, self._truncate, self._budget)
        if self.template.uses_neighbours:
            fields["neighbours"] = self.neighbours_block(doc)
        return Prompt(self.prefix, render(self._rest, fields))

    def neighbours_block(self, doc: Document) -> str:
        """The ``{neighbours}`` value for ``doc``: ``1. Title. Text`` lines, best first, the
        target left out; ``(none)`` when the search found no other document."""
        if self._neighbours is None:
            return "(none)"
        target = normalize_for_match(join_title(doc.title, doc.text))
        seen = {doc.doc_id}
        lines: list[str] = []
        for other in self._neighbours(doc):
            passage = join_title(other.title, other.text)
            if other.doc_id in seen or not passage or normalize_for_match(passage) == target:
                continue
            seen.add(other.doc_id)
            lines.append(f"{len(lines) + 1}. {self._truncate(passage, self._neighbour_budget)}")
            if len(lines) == self._neighbour_count:
                break
        return "\n".join(lines) or "(none)"


def _check_neighbours(template: Template, neighbours: NeighbourProvider | None, count: int) -> None:
    if not template.uses_neighbours:
        return
    if neighbours is None:
        raise ConfigError(
            f"template {template.name!r} shows the target's neighbours ({{neighbours}}) but no neighbour "
            "search was given. Fix: run it as the pipeline's generate stage (it searches the run's BM25 "
            "index; run `inpars index` first), or pass neighbours= to PromptBuilder"
        )
    if count < 1:
        raise ConfigError(
            f"template {template.name!r} shows the target's neighbours but generate.neighbours = {count}. "
            "Fix: set generate.neighbours to 1 or more"
        )


# --------------------------------------------------------------------------- few-shot examples
def select_examples(
    collection: Collection,
    *,
    train_split: str,
    test_split: str,
    k: int,
    seed: int,
) -> list[FewShotExample]:
    """Draw ``k`` judged (query, document) pairs from the train split, seeded.

    Queries of the test split (same id or same text) are never drawn. Each query shows
    its most relevant judged document (ties: the smallest id); pairs whose document is
    empty are skipped.
    """
    if k < 1:
        raise ConfigError(
            "the template needs few-shot examples but num_examples = 0. Fix: set it to 1 or more"
        )
    splits = collection.splits()
    if train_split not in splits:
        raise ConfigError(
            f"the template draws few-shot examples from the '{train_split}' split, but collection "
            f"{collection.name!r} has judgements only for {splits}. Fix: set data.train_split to a split "
            "with judged queries, or use a template with built-in examples (inpars, inpars-gbq, zero-shot)"
        )
    if train_split == test_split:
        raise ConfigError(
            f"train_split and test_split are both '{train_split}': examples would leak test queries"
        )
    test = collection.split_queries(test_split) if test_split in splits else []
    test_ids = {q.query_id for q in test}
    test_texts = {normalize_for_match(q.text) for q in test}
    best: dict[str, tuple[int, str]] = {}
    for qrel in collection.qrels(train_split):
        if qrel.relevance <= 0:
            continue
        current = best.get(qrel.query_id)
        if current is None or (-qrel.relevance, qrel.doc_id) < (-current[0], current[1]):
            best[qrel.query_id] = (qrel.relevance, qrel.doc_id)
    candidates = [
        q
        for q in collection.split_queries(train_split)
        if q.query_id in best and q.query_id not in test_ids and normalize_for_match(q.text) not in test_texts
    ]
    if not candidates:
        raise DataError(
            f"{collection.name}: no judged '{train_split}' query outside the test split to use as example"
        )
    random.Random(seed).shuffle(candidates)
    tentative = candidates[: max(4 * k, k + 16)]
    wanted = {best[q.query_id][1] for q in tentative}
    docs = {d.doc_id: d for d in collection.docs() if d.doc_id in wanted}
    chosen: list[FewShotExample] = []
    for q in tentative:
        doc = docs.get(best[q.query_id][1])
        if doc is None or not join_title(doc.title, doc.text):
            continue
        chosen.append(FewShotExample(q.query_id, q.text, doc.doc_id, doc.title, doc.text))
        if len(chosen) == k:
            break
    if len(chosen) < k:
        log.warning(
            "only %d few-shot examples available in the '%s' split (asked for %d)",
            len(chosen),
            train_split,
            k,
        )
    return chosen


def check_no_test_queries(
    prompt_prefix: str, examples: Sequence[FewShotExample], test_queries: Sequence[Query]
) -> None:
    """Raise :class:`StageError` if a test query is among the examples or appears in the
    shared part of the prompt (texts of three words or more are matched word by word)."""
    by_id = {q.query_id: q for q in test_queries}
    by_text = {normalize_for_match(q.text): q for q in test_queries}
    for ex in examples:
        hit = by_id.get(ex.query_id) or by_text.get(normalize_for_match(ex.query))
        if hit is not None:
            raise StageError(
                f"few-shot example query {ex.query_id!r} ({ex.query!r}) is test query {hit.query_id!r}: "
                "test queries must never be shown to the generator. Fix: check data.train_split / test_split"
            )
    prefix = f" {normalize_for_match(prompt_prefix)} "
    for text, q in by_text.items():
        if len(text.split()) >= 3 and f" {text} " in prefix:
            raise StageError(
                f"the prompt's few-shot part contains test query {q.query_id!r} ({q.text!r}). "
                "Fix: remove it from the template (test queries must never be shown to the generator)"
            )
