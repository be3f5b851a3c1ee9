"""index.html without a browser: the embedded JSON is safe inside <script>, hostile texts
never appear raw, the Content-Security-Policy admits exactly the page's script, and the
entries hold every sample of every document generated for."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from inpars.config import load_config
from inpars.inspection import build_report, load_run
from inpars.inspection.assets import SCRIPT
from inpars.inspection.page import page_data, render_page, script_json
from inpars.pipeline import Workspace
from tests.conftest import TINY_DOCS
from tests.inspection.fakerun import GENERATED_FOR, HOSTILE, HOSTILE_DOC, SAMPLES, fake_run

RAW = ["<script>alert(1)", "</script> is a heart", "</script> tags", "<img src=x", "<b>bold</b>", "& more"]


def hostile_page(write_beir: Any, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    config = fake_run(write_beir, tmp_path, [*SAMPLES, *HOSTILE], [*GENERATED_FOR, "d5"],
                      docs=[*TINY_DOCS, HOSTILE_DOC])
    run = load_run(Workspace(load_config(config)), str(config))
    return render_page(run, build_report(run, embeddings=False), command="inpars inspect <x>"), page_data(run)


def test_script_json_cannot_close_the_element() -> None:
    data = {"t": "</script><script>alert(1)</script> & <!-- \u2028 \u2029", "n": [1, None]}
    text = script_json(data)
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(text) == data


def test_hostile_texts_never_appear_raw(write_beir: Any, tmp_path: Path) -> None:
    page, _ = hostile_page(write_beir, tmp_path)
    for raw in RAW:
        assert raw not in page
    assert len(re.findall(r"<script\b", page)) == 2  # the JSON data and the page's own script
    assert page.count("</script>") == 2
    assert "&lt;x&gt;" in page  # the command, escaped


def test_csp_admits_exactly_the_page_script(write_beir: Any, tmp_path: Path) -> None:
    page, _ = hostile_page(write_beir, tmp_path)
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert scripts == [SCRIPT]
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page
    assert "default-src 'none'" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from elsewhere


def test_entries_hold_every_sample(write_beir: Any, tmp_path: Path) -> None:
    _, data = hostile_page(write_beir, tmp_path)
    assert [d["id"] for d in data["docs"]] == ["d1", "d2", "d3", "d5"]
    d3 = data["docs"][2]
    assert [(q["t"], q["s"], q["r"]) for q in d3["q"]] == [
        ("the eiffel", "dropped", "generate:unfinished"),
        ("<script>alert(1)</script>", "dropped", "dedup:near_duplicate"),
    ]
    assert d3["q"][0]["lp"] is None and d3["q"][1]["lp"] == -2.5
    assert d3["q"][0]["d"] == ""  # a reject's detail that repeats its text is left out
    assert data["docs"][3]["title"] == HOSTILE_DOC["title"]
    assert sum(len(d["q"]) for d in data["docs"]) == len(SAMPLES) + len(HOSTILE)
    assert {r["name"]: r["count"] for r in data["reasons"]} == {
        "generate:unfinished": 1, "rules:copied_from_document": 1, "dedup:near_duplicate": 1,
        "generate:too_short": 1}
