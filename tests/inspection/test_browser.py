"""index.html in a real headless Chromium: the script renders the entries from the embedded
JSON, hostile texts stay text, and a search, status or reason preset in the URL hash filters
the entries (the DOM is read back with ``--dump-dom``).

Needs a ``chromium`` binary (``bash scripts/dev.sh setup`` installs Debian's package).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from inpars.cli import main
from tests.conftest import TINY_DOCS
from tests.inspection.fakerun import GENERATED_FOR, HOSTILE, HOSTILE_DOC, SAMPLES, fake_run

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no Chromium binary on PATH (looked for {', '.join(BROWSERS)}); "
                "install it with `apt-get install chromium` or `bash scripts/dev.sh setup`")


@pytest.fixture
def page(write_beir: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    config = fake_run(write_beir, tmp_path, [*SAMPLES, *HOSTILE], [*GENERATED_FOR, "d5"],
                      docs=[*TINY_DOCS, HOSTILE_DOC])
    assert main(["inspect", str(config), "--no-embeddings"]) == 0
    capsys.readouterr()
    return tmp_path / "run" / "inspect" / "index.html"


def dump_dom(page: Path, fragment: str = "") -> str:
    browser = _browser()
    profile = page.parent.parent / "chromium-profile"
    command = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
               f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri() + fragment]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


def entries(dom: str) -> list[str]:
    """The doc ids of the rendered entries, in order."""
    return re.findall(r'<article class="doc" data-doc-id="([^"]*)"', dom)


def queries(dom: str) -> list[str]:
    """The texts of the rendered queries (as the DOM serializes them: escaped)."""
    return re.findall(r'<li class="query [a-z]+"><span class="text">(.*?)</span>', dom)


def test_entries_render_and_hostile_texts_stay_text(page: Path) -> None:
    dom = dump_dom(page)
    assert entries(dom) == ["d1", "d2", "d3", "d5"]
    assert len(queries(dom)) == len(SAMPLES) + len(HOSTILE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "&lt;/script&gt; is a heart of &lt;b&gt;bold&lt;/b&gt; &amp; more" in dom
    assert "&lt;img src=x onerror=alert(2)&gt;" in dom
    assert len(re.findall(r"<script\b", dom)) == 2  # no injected script element
    assert not re.search(r"<(img|b)\b", dom)  # nor any other injected element
    assert 'data-documents="4"' in dom


def test_the_policy_blocks_any_other_inline_script(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    page.write_text(html.replace("</body>", '<script>document.title = "injected";</script></body>'),
                    encoding="utf-8")
    dom = dump_dom(page)
    assert "<title>Generated queries: tiny</title>" in dom
    assert entries(dom) == ["d1", "d2", "d3", "d5"]  # while the page's own script ran


def test_a_search_in_the_hash_filters_the_entries(page: Path) -> None:
    dom = dump_dom(page, "#q=heart")
    assert entries(dom) == ["d5"]
    assert queries(dom) == ["&lt;/script&gt; is a heart of &lt;b&gt;bold&lt;/b&gt; &amp; more"]
    assert "1 documents, 1 queries match (page 1 of 1)" in dom
    assert entries(dump_dom(page, "#q=PURR")) == ["d1"]  # case-insensitive
    assert entries(dump_dom(page, "#q=no-such-text")) == []


def test_status_and_reason_in_the_hash_filter_the_entries(page: Path) -> None:
    dom = dump_dom(page, "#status=dropped")
    assert entries(dom) == ["d1", "d2", "d3", "d5"][1:]  # d1 has only kept queries
    assert 'data-queries="4"' in dom
    dom = dump_dom(page, "#reason=generate%3Aunfinished")
    assert entries(dom) == ["d3"] and queries(dom) == ["the eiffel"]
    dom = dump_dom(page, "#status=kept&q=cats")
    assert entries(dom) == ["d1"] and len(queries(dom)) == 3
