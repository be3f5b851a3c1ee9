"""Which documents get queries: all of them, the first N, or N drawn with a seed.

The choice is a list of document ids in collection order, so that shards and batches
are the same on every run with the same settings (what resuming relies on).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Literal

from inpars.data import Collection
from inpars.records import Document


def select_doc_ids(
    collection: Collection, *, num_docs: int = 0, how: Literal["random", "first"] = "random", seed: int = 0
) -> list[str]:
    """Ids of the chosen documents in collection order (``num_docs`` 0: every document)."""
    if num_docs <= 0:
        return [doc.doc_id for doc in collection.docs()]
    if how == "first":
        return [doc.doc_id for doc in islice(collection.docs(), num_docs)]
    ids = [doc.doc_id for doc in collection.docs()]
    if num_docs >= len(ids):
        return ids
    picked = sorted(random.Random(seed).sample(range(len(ids)), num_docs))
    return [ids[i] for i in picked]


def iter_documents(collection: Collection, doc_ids: Sequence[str]) -> Iterator[Document]:
    """Stream the documents with these ids, in collection order (one pass)."""
    wanted = set(doc_ids)
    remaining = len(wanted)
    if not remaining:
        return
    for doc in collection.docs():
        if doc.doc_id in wanted:
            yield doc
            remaining -= 1
            if not remaining:
                return
