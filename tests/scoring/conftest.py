"""Shared models for the scoring tests: loaded once per session (a few seconds each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged MiniLM with a fresh one-logit head, saved as a sentence-transformers
    CrossEncoder folder (what training produces), so every loader reads the same weights."""
    import torch
    from sentence_transformers import CrossEncoder

    from inpars.models import resolve_model

    folder = tmp_path_factory.mktemp("minilm-ce")
    torch.manual_seed(0)
    CrossEncoder(resolve_model("all-MiniLM-L6-v2"), num_labels=1, max_length=128).save(str(folder))
    return folder


@pytest.fixture(scope="session")
def st_cross_encoder(cross_encoder_dir: Path) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(cross_encoder_dir), max_length=64)


@pytest.fixture(scope="session")
def scifact_pairs(shared_data: Path) -> list[tuple[str, str]]:
    """16 real (query, judged document) pairs of SciFact train: varied lengths."""
    root = shared_data / "scifact"
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    docs = {o["_id"]: f"{o['title']}\n{o['text']}" for o in corpus}
    lines = (root / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = {o["_id"]: o["text"] for o in map(json.loads, lines)}
    rows = (root / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:17]
    pairs = []
    for row in rows:
        qid, did, _ = row.split("\t")
        pairs.append((queries[qid], docs[did]))
    return pairs


def tiny_pairs() -> list[tuple[str, str]]:
    """24 (query, text) pairs for the tiny models: 4 of the training tests' topic queries
    against 6 of their texts."""
    from tests.training.conftest import TOPICS

    return [(query, text) for _, query, _ in TOPICS[:4] for _, _, text in TOPICS[:6]]


def _tiny(folder: Path, *, classifier: bool) -> Path:
    """make_tiny_bert's tokenizer with a 2-layer BERT whose weights are drawn wide enough
    (initializer range 0.2) for the scores of different pairs to differ clearly."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    from tests.training.conftest import make_tiny_bert

    make_tiny_bert(folder)
    config = BertConfig.from_pretrained(folder)
    config.update({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_labels": 1,
                   "initializer_range": 0.2})
    torch.manual_seed(0)
    (BertForSequenceClassification if classifier else BertModel)(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory.mktemp("tiny-ce"), classifier=True)


@pytest.fixture(scope="module")
def tiny_bi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(tmp_path_factory.mktemp("tiny-bi"), classifier=False)
