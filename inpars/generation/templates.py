"""Prompt templates: plain text files with placeholders, and pure rendering.

A template file is UTF-8 text. Its main part is the prompt; the model continues it, so
it ends where the query starts (e.g. ``Query:``; trailing newlines of the file are
dropped). Placeholders of the main part:

``{document}``  title and text of the target document, whitespace collapsed, cut to the
                token budget (``doc_max_tokens``)
``{title}``     the title alone
``{text}``      the text alone (cut to the same budget)
``{examples}``  few-shot examples drawn from the collection's train split, each rendered
                with the example block below and separated by a blank line
``{neighbours}`` the target's nearest other documents (BM25 over the run's index, best
                first; ``generate.neighbours`` of them, each cut to
                ``neighbour_max_tokens``), one numbered line each (``1. Title. Text``);
                ``(none)`` when the search finds none. The target is never among them

Templates that use ``{examples}`` add the example block after a line that reads exactly
``--- example ---``; its placeholders are ``{document}``, ``{title}``, ``{text}`` (of the
example's judged document, cut to ``example_max_tokens``) and ``{query}``. Write ``{{``
and ``}}`` for literal braces. Any other ``{name}`` is an error that lists the valid ones.

The built-in templates (``inpars``, ``inpars-gbq``, ``promptagator``, ``zero-shot``,
``neighbours``) live
in ``inpars/generation/templates/``; any other value of ``generate.template`` is read as
a path to such a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from inpars.errors import ConfigError, did_you_mean

EXAMPLE_MARKER = "--- example ---"
MAIN_PLACEHOLDERS = ("document", "title", "text", "examples", "neighbours")
EXAMPLE_PLACEHOLDERS = ("document", "title", "text", "query")
TARGET_PLACEHOLDERS = ("document", "title", "text")
PER_DOCUMENT_PLACEHOLDERS = (*TARGET_PLACEHOLDERS, "neighbours")  # what differs from one prompt to the next
BUILTIN_TEMPLATES = ("inpars", "inpars-gbq", "promptagator", "zero-shot", "neighbours")

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{|\}")


@dataclass(frozen=True)
class Template:
    """A parsed prompt template."""

    name: str
    body: str
    example: str = ""
    source: str = ""

    @property
    def uses_examples(self) -> bool:
        """Whether the prompt holds few-shot examples drawn from the collection."""
        return "examples" in placeholders(self.body)

    @property
    def uses_neighbours(self) -> bool:
        """Whether the prompt shows the target's retrieved neighbours (``{neighbours}``)."""
        return "neighbours" in placeholders(self.body)

    def split_at_target(self) -> tuple[str, str]:
        """The body cut at the start of the line of the first placeholder of the document
        (target or neighbours): the part shared by every prompt (it may still hold
        ``{examples}``) and the rest. Cutting at a line start keeps the tokens of the two
        parts what they are in the whole prompt."""
        examples_end = 0
        for match in _TOKEN.finditer(self.body):
            if match.group(1) == "examples":
                examples_end = match.end()
            if match.group(1) in PER_DOCUMENT_PLACEHOLDERS:
                cut = max(self.body.rfind("\n", 0, match.start()) + 1, examples_end)
                return self.body[:cut], self.body[cut:]
        raise ConfigError(f"{self.source}: the template has no {{document}} placeholder")


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: the ``prefix`` shared by every document (few-shot part, cached
    by backends that can) and the document-specific ``suffix``."""

    prefix: str
    suffix: str

    @property
    def text(self) -> str:
        return self.prefix + self.suffix


def placeholders(text: str) -> list[str]:
    """The placeholder names used in ``text``, in order."""
    return [m.group(1) for m in _TOKEN.finditer(text) if m.group(1)]


def render(text: str, values: Mapping[str, str]) -> str:
    """Substitute ``{name}`` placeholders (values are inserted verbatim, never re-read)."""
    out: list[str] = []
    last = 0
    for match in _TOKEN.finditer(text):
        out.append(text[last : match.start()])
        token = match.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
        elif match.group(1) is not None and match.group(1) in values:
            out.append(values[match.group(1)])
        else:
            raise ConfigError(f"cannot fill {token!r}: no value for it (known: {', '.join(sorted(values))})")
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def _check(text: str, allowed: tuple[str, ...], where: str, part: str) -> None:
    for number, line in enumerate(text.split("\n"), start=1):
        for match in _TOKEN.finditer(line):
            token = match.group(0)
            if token in ("{{", "}}"):
                continue
            name = match.group(1)
            if name is None:
                raise ConfigError(
                    f"{where}, {part} line {number}: a lone {token!r}. "
                    f"Fix: write {token * 2!r} for a literal brace"
                )
            if name not in allowed:
                raise ConfigError(
                    f"{where}, {part} line {number}: unknown placeholder {{{name}}}. "
                    f"Fix: use one of {', '.join('{' + a + '}' for a in allowed)}"
                )


def parse_template(text: str, *, name: str, source: str = "<string>") -> Template:
    """Parse and check the text of a template file."""
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    body_lines, example_lines = lines, []
    if EXAMPLE_MARKER in (line.strip() for line in lines):
        cut = [line.strip() for line in lines].index(EXAMPLE_MARKER)
        body_lines, example_lines = lines[:cut], lines[cut + 1 :]
    body = "\n".join(body_lines).rstrip("\n")
    example = "\n".join(example_lines).strip("\n")
    _check(body, MAIN_PLACEHOLDERS, source, "prompt")
    _check(example, EXAMPLE_PLACEHOLDERS, source, "example block")
    used = placeholders(body)
    if not any(p in TARGET_PLACEHOLDERS for p in used):
        raise ConfigError(f"{source}: the prompt never shows the document. Fix: add {{document}} to it")
    if "examples" in used:
        if not example:
            raise ConfigError(
                f"{source}: the prompt uses {{examples}} but has no example block. "
                f"Fix: add a line '{EXAMPLE_MARKER}' followed by the example's lines, "
                "e.g. 'Document: {{document}}' and 'Query: {{query}}'"
            )
        if "query" not in placeholders(example):
            raise ConfigError(f"{source}: the example block never shows {{query}}. Fix: add it")
        first_target = min(used.index(p) for p in PER_DOCUMENT_PLACEHOLDERS if p in used)
        if used.index("examples") > first_target:
            raise ConfigError(
                f"{source}: {{examples}} comes after the target document. "
                "Fix: put the examples first, so that the few-shot part is shared by every prompt"
            )
    elif example:
        raise ConfigError(
            f"{source}: an example block but no {{examples}} in the prompt. Fix: add {{examples}}"
        )
    return Template(name=name, body=body, example=example, source=source)


def builtin_template_path(name: str) -> Path:
    """The file of a built-in template."""
    return Path(str(resources.files("inpars.generation") / "templates" / f"{name}.txt"))


def load_template(name_or_path: str) -> Template:
    """A built-in template by name, or a template file by path."""
    if name_or_path in BUILTIN_TEMPLATES:
        path = builtin_template_path(name_or_path)
        return parse_template(path.read_text(encoding="utf-8"), name=name_or_path, source=str(path))
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"generate.template = {name_or_path!r}: not a built-in template and no such file"
            f"{did_you_mean(name_or_path, BUILTIN_TEMPLATES)}. "
            f"Fix: use one of {', '.join(BUILTIN_TEMPLATES)} or the path of a .txt template file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}). Fix: save the template as UTF-8") from None
    return parse_template(text, name=path.stem, source=str(path))
