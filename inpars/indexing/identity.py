"""Which corpus an index folder belongs to: indexes are found by content, never by name alone.

The default index folder is named after the collection (``index/tiny``), and two corpora
can share a name (``data/tiny`` and ``data2/tiny``). Each index manifest records the corpus
it was built from, so:

- an index root whose indexes were built from the same documents is reused (wherever the
  corpus file lives now);
- one built from the same corpus file before it was edited is rebuilt in place;
- one that holds the indexes of *another* corpus is left alone: this corpus gets a sibling
  folder suffixed with a short fingerprint of its content (``index/tiny-3f9c2a71d0be``).

An explicit index folder (``out_dir``) that holds another corpus's index is refused unless
``force``, so inpars never replaces a user's other index by accident.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

from inpars.errors import DataError, IndexStoreError
from inpars.indexing.store import (
    INDEX_MANIFEST,
    Corpus,
    corpus_fingerprint,
    existing_manifest,
    fingerprint_of,
    index_root,
)
from inpars.io import read_json

log = logging.getLogger(__name__)

SHORT = 12  # hex digits of the corpus fingerprint in a sibling folder's name

Relation = Literal["same", "edited", "other"]


def _source(corpus_id: dict[str, Any], name: object) -> tuple[str, str]:
    """Where a corpus comes from: its first source file (the corpus file), or for sources
    without local files (ir_datasets) the collection name, which is the dataset id."""
    if corpus_id.get("kind") == "files":
        files = corpus_id.get("files") or [{}]
        first = files[0] if isinstance(files[0], dict) else {}
        return "files", str(first.get("path", ""))
    return "documents", str(name)


def corpus_relation(manifest: dict[str, Any], corpus: Corpus, corpus_id: dict[str, Any]) -> Relation:
    """How the corpus an index was built from (its manifest) relates to ``corpus``:
    ``same`` documents, the same source ``edited`` since, or an ``other`` corpus."""
    recorded = manifest.get("corpus")
    if not isinstance(recorded, dict):
        return "other"
    if fingerprint_of(recorded) == fingerprint_of(corpus_id):
        return "same"
    if _source(recorded, manifest.get("collection")) == _source(corpus_id, corpus.name):
        return "edited"
    return "other"


def describe(manifest: dict[str, Any]) -> str:
    """The corpus an index was built from, in words (for log lines and errors)."""
    recorded = manifest.get("corpus")
    kind, where = _source(recorded if isinstance(recorded, dict) else {}, manifest.get("collection"))
    return where if kind == "files" else f"the documents of {where!r}"


def root_manifests(root: Path) -> list[dict[str, Any]]:
    """The manifests of the finished indexes under an index root (hidden build folders left
    out; an unreadable manifest counts as another corpus's, so its folder is kept)."""
    if not root.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for path in sorted(root.rglob(INDEX_MANIFEST)):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        try:
            data = read_json(path)
        except DataError:
            data = None
        found.append(data if isinstance(data, dict) else {"corpus": None, "unreadable": str(path)})
    return found


def corpus_index_root(
    corpus: Corpus, output_dir: str | Path = "", corpus_id: dict[str, Any] | None = None
) -> Path:
    """The folder for ``corpus``'s indexes: ``output_dir`` or ``index/<name>``, unless that
    holds the indexes of another corpus; then a sibling named ``<folder>-<fingerprint>``.

    Sibling folders made earlier are searched too, so each corpus finds its own indexes.
    """
    base = index_root(corpus.name, output_dir)
    corpus_id = corpus_id if corpus_id is not None else corpus_fingerprint(corpus)
    sibling = base.parent / f"{base.name}-{fingerprint_of(corpus_id)[:SHORT]}"
    pattern = re.compile(re.escape(base.name) + f"-[0-9a-f]{{{SHORT}}}")
    candidates = [base]
    if base.parent.is_dir():
        candidates += sorted(p for p in base.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir())
    relations = {
        root: {corpus_relation(m, corpus, corpus_id) for m in root_manifests(root)} for root in candidates
    }
    ours = [root for root, found in relations.items() if found and "other" not in found]
    for root in ours:
        if "same" in relations[root]:
            return root
    if ours:
        log.info("index: %s holds indexes of an earlier version of this corpus (rebuilt as needed)", ours[0])
        return ours[0]
    if not relations[base]:
        return base
    if relations.get(sibling):
        raise IndexStoreError(
            f"{sibling}: holds indexes of another corpus with the same short fingerprint. "
            "Fix: set [index].output_dir to a folder of its own for this corpus"
        )
    others = sorted({describe(m) for m in root_manifests(base)})
    log.warning(
        "index: %s holds the indexes of another corpus (%s); the indexes of %s go to %s",
        base, ", ".join(others), corpus.name, sibling,
    )
    return sibling


def previous_index(
    folder: Path,
    kind: str,
    fingerprint: str,
    corpus: Corpus,
    corpus_id: dict[str, Any],
    *,
    force: bool = False,
) -> dict[str, Any] | None:
    """The manifest of the index in ``folder`` when it can be reused as it is; otherwise
    ``None``, after an INFO line that says why it is (re)built.

    An index of another corpus is never replaced silently: without ``force`` that raises.
    """
    previous = existing_manifest(folder, kind)
    if previous is None:
        return None
    if previous.get("fingerprint") == fingerprint and not force:
        return previous
    relation = corpus_relation(previous, corpus, corpus_id)
    if relation == "other" and not force:
        raise IndexStoreError(
            f"{folder}: holds the {kind} index of another corpus ({describe(previous)}), not of "
            f"{corpus.name}. Fix: pass another out_dir (or none: each corpus then gets a folder of "
            "its own), or force=True to replace that index"
        )
    reason = {
        "same": "same corpus, other settings or model",
        "edited": "the corpus changed since the index was built",
        "other": f"force: replacing the index of another corpus ({describe(previous)})",
    }[relation]
    if force and relation != "other":
        reason = "force"
    log.info("%s: rebuilding %s (%s)", kind, folder, reason)
    return None
