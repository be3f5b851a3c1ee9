"""Prompt templates: every built-in renders to its golden file; custom files and their errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inpars.errors import ConfigError
from inpars.generation.prompts import FewShotExample, PromptBuilder
from inpars.generation.templates import BUILTIN_TEMPLATES, load_template, parse_template, render
from inpars.records import Document

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("INPARS_UPDATE_GOLDEN") == "1"

DOC = Document(
    "d42",
    "Hydrothermal vents on the ocean floor release mineral-rich water heated by magma.\n"
    "Microbial mats around them fix carbon by chemosynthesis instead of photosynthesis, "
    "supporting tube worms, clams and crabs far from any sunlight.",
    "Life around deep-sea vents",
)
OTHER = Document("d7", "Sourdough rises because wild yeast and lactic acid bacteria ferment the flour.", "")
EXAMPLES = [
    FewShotExample(
        "q11",
        "how do tube worms eat without a gut",
        "e1",
        "Riftia",
        "Giant tube worms host symbiotic bacteria that oxidize sulfide and share the carbon they fix.",
    ),
    FewShotExample(
        "q12",
        "  sourdough   starter ratio ",
        "e2",
        "",
        "A starter fed equal weights of flour and water stays active at room temperature.",
    ),
]


def words(text: str, budget: int) -> str:
    """A model-free token budget for golden files: one word = one token."""
    return " ".join(text.split()[:budget])


def builder_for(name: str) -> PromptBuilder:
    template = load_template(name)
    return PromptBuilder(
        template,
        truncate=words,
        doc_max_tokens=20,
        examples=EXAMPLES if template.uses_examples else (),
        example_max_tokens=8,
    )


@pytest.mark.parametrize("name", [n for n in BUILTIN_TEMPLATES if n != "neighbours"])  # test_gen_neighbours
def test_builtin_template_renders_like_its_golden_file(name: str) -> None:
    builder = builder_for(name)
    prompt = builder.build(DOC)
    golden = GOLDEN / f"template-{name}.txt"
    if UPDATE:
        golden.write_text(prompt.text, encoding="utf-8")
    assert prompt.text == golden.read_text(encoding="utf-8")
    # a completion prompt: it ends where the query starts, and the document is cut to 20 words
    assert prompt.text.endswith(":")
    assert "Life around deep-sea vents. Hydrothermal vents" in prompt.suffix
    assert "far from any sunlight" not in prompt.text
    # the few-shot part is shared by every document (what backends cache)
    other = builder.build(OTHER)
    assert other.prefix == prompt.prefix
    assert other.suffix.startswith("Document: Sourdough rises")


def test_promptagator_shows_the_drawn_examples_in_order() -> None:
    prefix = builder_for("promptagator").prefix
    first = prefix.index("Query: how do tube worms eat without a gut")
    second = prefix.index("Query: sourdough starter ratio")  # whitespace collapsed
    assert first < second
    assert "Document: Riftia. Giant tube worms host symbiotic bacteria that\n" in prefix
    assert "share the carbon" not in prefix  # example documents cut to 8 tokens


def test_custom_template_file_with_title_text_and_literal_braces(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text(
        'Title: {title}\nBody: {text}\nAnswer as JSON {{"query": ...}}\nQuery:\n\n', encoding="utf-8"
    )
    template = load_template(str(path))
    assert template.name == "mine"
    prompt = PromptBuilder(template, truncate=words, doc_max_tokens=5).build(DOC)
    assert prompt.prefix == ""  # the target starts on the first line
    assert prompt.text == (
        "Title: Life around deep-sea vents\nBody: Hydrothermal vents on the ocean\n"
        'Answer as JSON {"query": ...}\nQuery:'
    )


def test_values_are_inserted_verbatim() -> None:
    assert render("Doc: {document}", {"document": "a {title} b {{x}}"}) == "Doc: a {title} b {{x}}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Doc: {doc}\nQuery:", "line 1: unknown placeholder {doc}"),
        ("Intro\nDoc: {document} {\nQuery:", "line 2: a lone '{'"),
        ("Write a query.\nQuery:", "never shows the document"),
        ("{examples}\nDocument: {document}\nQuery:", "has no example block"),
        (
            "{examples}\nDocument: {document}\nQuery:\n--- example ---\nDocument: {document}",
            "never shows {query}",
        ),
        (
            "Document: {document}\n{examples}\nQuery:\n--- example ---\nQ: {query}",
            "after the target document",
        ),
        ("Document: {document}\nQuery:\n--- example ---\nQ: {query}", "no {examples} in the prompt"),
        (
            "{examples}\nD: {document}\n--- example ---\nQ: {query} {bad_query}",
            "unknown placeholder {bad_query}",
        ),
    ],
)
def test_bad_templates_are_rejected_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_template(text, name="bad", source="bad.txt")
    assert message in str(err.value)
    assert "bad.txt" in str(err.value)


def test_unknown_template_name_lists_the_built_in_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_template("inpars-v9")
    assert "inpars-v9" in str(err.value)
    for name in BUILTIN_TEMPLATES:
        assert name in str(err.value)


def test_examples_template_without_examples_is_an_error() -> None:
    with pytest.raises(ConfigError, match="num_examples"):
        PromptBuilder(load_template("promptagator"), truncate=words, doc_max_tokens=10)
