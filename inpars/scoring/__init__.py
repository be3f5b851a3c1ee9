"""Relevance scoring of (query, document) pairs behind one narrow interface.

::

    scorer = load_scorer("bi-encoder", "all-MiniLM-L6-v2")
    scores = scorer.score([("what causes coral bleaching", "Coral bleaching is ...")])

Backends: :class:`~inpars.scoring.cross_encoder.CrossEncoderScorer` (a sequence-
classification model over the pair) and :class:`~inpars.scoring.bi_encoder.BiEncoderScorer`
(cosine of sentence embeddings). Heavy libraries load only when a scorer is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from inpars.errors import ConfigError
from inpars.records import Document

ScorerKind = Literal["bi-encoder", "cross-encoder"]
SCORER_KINDS: tuple[str, ...] = ("bi-encoder", "cross-encoder")


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores (query text, document text) pairs; higher means more relevant."""

    name: str

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """One float per pair, in input order."""
        ...


def document_text(doc: Document) -> str:
    """The text of a document as the scorers see it: title and text on separate lines."""
    return doc.contents


def load_scorer(
    kind: str,
    model: str,
    *,
    batch_size: int = 32,
    max_length: int = 256,
    device: str = "auto",
    dtype: str = "auto",
    threads: int = 0,
    seed: int = 0,
    show_progress: bool = False,
    raw: bool = False,
    quantize: str = "none",
) -> Scorer:
    """A scorer of ``kind`` (``bi-encoder`` or ``cross-encoder``) for ``model``.

    ``model`` is a packaged alias (``all-MiniLM-L6-v2``), a local folder or a hub id.
    ``dtype="auto"`` runs in bfloat16 where the hardware has it; ``threads=0`` uses every
    core; ``seed`` draws a fresh head when a cross-encoder ``model`` has none. ``raw``
    makes a cross-encoder return its logit rather than the activated score (same ranking,
    no saturation; see :mod:`inpars.scoring.cross_encoder`); a bi-encoder's cosine is raw.
    ``quantize="int8"`` runs the model's linear layers in int8 on the CPU (see
    :mod:`inpars.scoring.quantize`).
    """
    if kind == "cross-encoder":
        from inpars.scoring.cross_encoder import CrossEncoderScorer

        return CrossEncoderScorer(
            model, batch_size=batch_size, max_length=max_length, device=device, dtype=dtype,
            threads=threads, seed=seed, show_progress=show_progress, raw=raw, quantize=quantize,
        )
    if kind == "bi-encoder":
        from inpars.scoring.bi_encoder import BiEncoderScorer

        return BiEncoderScorer(
            model, batch_size=batch_size, max_length=max_length, device=device, dtype=dtype,
            threads=threads, show_progress=show_progress, quantize=quantize,
        )
    raise ConfigError(f"scorer kind {kind!r}: use one of {', '.join(SCORER_KINDS)}")


__all__ = ["SCORER_KINDS", "Scorer", "ScorerKind", "document_text", "load_scorer"]
