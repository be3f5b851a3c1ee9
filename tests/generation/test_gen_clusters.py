"""Diverse document selection (``[generate] doc_sampling = "clusters"``): k-means over tiny
vectors whose clusters are obvious, a fake encoder, a fake dense index folder; fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inpars.config import GenerateConfig, parse_config
from inpars.distributed.settings import EXECUTOR_KEYS
from inpars.errors import ConfigError
from inpars.generation.clusters import (
    DocVectors,
    default_clusters,
    round_robin_quotas,
    select_by_clusters,
    stored_vectors,
)
from inpars.generation.selection import choose_documents, fingerprint_settings
from inpars.manifest import config_dict

pytest.importorskip("faiss")

TOPICS = ("cats", "rivers", "towers", "vaccines")


def blobs(per_topic: tuple[int, ...] = (6, 6, 6, 6), dim: int = 8, seed: int = 0) -> DocVectors:
    """Unit vectors near one axis per topic (4 obvious clusters); ids ``<topic>-<n>``, topics
    interleaved as a corpus would mix them."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, np.ndarray]] = []
    for topic, count in enumerate(per_topic):
        for n in range(count):
            vector = rng.normal(0, 0.05, dim).astype(np.float32)
            vector[topic] += 1.0
            rows.append((f"{TOPICS[topic]}-{n}", vector / np.linalg.norm(vector)))
    rows.sort(key=lambda r: (int(r[0].rsplit("-", 1)[1]), r[0]))
    return DocVectors([r[0] for r in rows], np.stack([r[1] for r in rows]), {"test": "blobs"})


def topic_of(doc_id: str) -> str:
    return doc_id.rsplit("-", 1)[0]


def test_every_cluster_gets_documents_round_robin() -> None:
    vectors = blobs()
    chosen = select_by_clusters(vectors, num_docs=8, clusters=4, seed=1)
    assert len(chosen.doc_ids) == 8
    assert sorted(chosen.cluster_sizes) == [6, 6, 6, 6]
    assert chosen.picked_per_cluster == [2, 2, 2, 2]
    assert sorted(topic_of(d) for d in chosen.doc_ids) == sorted(TOPICS * 2)  # 2 of each topic
    order = {d: i for i, d in enumerate(vectors.doc_ids)}
    assert [order[d] for d in chosen.doc_ids] == sorted(order[d] for d in chosen.doc_ids)  # corpus order
    record = chosen.record()
    assert record["how"] == "clusters" and record["clusters"] == 4 and record["doc_ids"] == chosen.doc_ids
    json.dumps(record)  # fits in a manifest


def test_a_small_cluster_gives_what_it_has_and_the_rest_fill_in() -> None:
    chosen = select_by_clusters(blobs((10, 10, 10, 1)), num_docs=10, clusters=4, seed=0)
    counts = {t: sum(topic_of(d) == t for d in chosen.doc_ids) for t in TOPICS}
    assert counts["vaccines"] == 1 and sorted(counts.values()) == [1, 3, 3, 3]
    # random sampling of 10 from 31 would usually miss the one-document topic; round-robin never does


def test_the_same_seed_picks_the_same_documents() -> None:
    vectors = blobs((20, 20, 20, 20), seed=3)
    first = select_by_clusters(vectors, num_docs=12, clusters=4, seed=7)
    again = select_by_clusters(vectors, num_docs=12, clusters=4, seed=7)
    assert first == again
    others = [select_by_clusters(vectors, num_docs=12, clusters=4, seed=s).doc_ids for s in range(3)]
    assert any(ids != first.doc_ids for ids in others)  # the seed draws within the clusters


def test_round_robin_quotas_and_the_default_k() -> None:
    assert round_robin_quotas([5, 1, 3], 6, order=[0, 1, 2]) == [3, 1, 2]
    assert round_robin_quotas([5, 1, 3], 6, order=[2, 1, 0]) == [2, 1, 3]
    assert round_robin_quotas([2, 0, 2], 10, order=[0, 1, 2]) == [2, 0, 2]  # never more than there is
    assert round_robin_quotas([4, 4], 3, order=[1, 0]) == [1, 2]
    assert default_clusters(1000, 5183) == 72  # round(sqrt(5183))
    assert default_clusters(10, 5183) == 10 and default_clusters(5000, 10**8) == 1000
    assert default_clusters(3, 0) == 1


def test_num_docs_covering_the_corpus_takes_every_document() -> None:
    vectors = blobs((2, 2, 2, 2))
    assert select_by_clusters(vectors, num_docs=50, clusters=0, seed=0).doc_ids == vectors.doc_ids


class FakeEncoder:
    """Embeds a text by which topic word it contains (one axis each), plus a little noise."""

    def encode_document(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        rows = []
        for text in texts:
            vector = np.full(len(TOPICS), 0.01, dtype=np.float32)
            vector[[t in text.lower() for t in TOPICS].index(True)] = 1.0
            vector[len(text) % len(TOPICS)] += 0.02
            rows.append(vector / np.linalg.norm(vector))
        return np.stack(rows)


def topic_corpus(write_beir: Any, per_topic: int = 5) -> Any:
    from inpars.data import open_collection

    docs = [{"_id": f"{topic}-{n}", "title": "", "text": f"about {topic}, note {n}" + "!" * n}
            for n in range(per_topic) for topic in TOPICS]
    return open_collection(write_beir(docs=docs, queries=[], qrels={}, name="topics"))


def test_choose_documents_encodes_the_corpus_when_there_is_no_dense_index(write_beir: Any) -> None:
    collection = topic_corpus(write_beir)
    ids, record = choose_documents(collection, num_docs=4, how="clusters", clusters=4, seed=0,
                                   encoder=FakeEncoder())
    assert sorted(topic_of(d) for d in ids) == sorted(TOPICS)
    assert record["cluster_sizes"] == [5, 5, 5, 5] and record["doc_ids"] == ids
    assert record["vectors"]["encoder"] == "all-MiniLM-L6-v2"
    assert choose_documents(collection, num_docs=4, how="random", seed=0)[1] == {"how": "random", "docs": 4}


def test_choose_documents_reads_the_dense_index_vectors(write_beir: Any, tmp_path: Path) -> None:
    collection = topic_corpus(write_beir)
    docs = list(collection.docs())
    folder = tmp_path / "dense"
    folder.mkdir()
    np.save(folder / "embeddings.npy", FakeEncoder().encode_document([d.contents for d in docs]))
    (folder / "doc_ids.json").write_text(json.dumps([d.doc_id for d in docs]), encoding="utf-8")
    manifest = {"kind": "dense", "fingerprint": "abc", "model": {"name": "fake"}}
    (folder / "inpars-index.json").write_text(json.dumps(manifest), encoding="utf-8")
    source = {"dense_index": str(folder), "model": "fake", "fingerprint": "abc"}
    assert stored_vectors(folder).source == source
    ids, record = choose_documents(collection, num_docs=8, how="clusters", clusters=4, seed=0,
                                   dense_dir=folder)
    assert sorted(topic_of(d) for d in ids) == sorted(TOPICS * 2)
    assert record["vectors"]["dense_index"] == str(folder)


def test_config_validates_the_sampling_and_the_cluster_count() -> None:
    with pytest.raises(ConfigError, match="doc_sampling: expected one of 'random', 'first', 'clusters'"):
        parse_config({"generate": {"doc_sampling": "kmeans"}})
    with pytest.raises(ConfigError, match=r"num_docs = 0.*Fix: set num_docs"):
        parse_config({"generate": {"doc_sampling": "clusters"}})
    with pytest.raises(ConfigError, match=r"clusters = 20 is more than num_docs = 10.*Fix:"):
        parse_config({"generate": {"doc_sampling": "clusters", "num_docs": 10, "clusters": 20}})
    with pytest.raises(ConfigError, match="clusters = -1: must be 0 or more"):
        parse_config({"generate": {"doc_sampling": "clusters", "num_docs": 10, "clusters": -1}})
    cfg = parse_config({"generate": {"doc_sampling": "clusters", "num_docs": 10, "clusters": 5}}).generate
    assert (cfg.doc_sampling, cfg.clusters) == ("clusters", 5)


def test_the_cluster_count_is_fingerprinted_only_where_it_is_read() -> None:
    plain = GenerateConfig(num_docs=10)
    assert "clusters" not in fingerprint_settings(plain)  # runs from before the key keep their fingerprint
    left_out = ("clusters", *EXECUTOR_KEYS)
    assert fingerprint_settings(plain) == {k: v for k, v in config_dict(plain).items() if k not in left_out}
    a = fingerprint_settings(GenerateConfig(num_docs=10, doc_sampling="clusters", clusters=4))
    b = fingerprint_settings(GenerateConfig(num_docs=10, doc_sampling="clusters", clusters=5))
    assert a["clusters"] == 4 and a != b


def test_the_generate_stage_records_the_selection(write_beir: Any, tmp_path: Path, tiny_gpt2: Path) -> None:
    from inpars.generation import generate_stage
    from inpars.manifest import run_stage

    collection = topic_corpus(write_beir, per_topic=3)
    cfg = GenerateConfig(template="zero-shot", backend="hf-causal", model=str(tiny_gpt2), device="cpu",
                         num_docs=4, doc_sampling="clusters", clusters=4, queries_per_doc=1, max_new_tokens=4,
                         threads=1)
    result = run_stage("generate", tmp_path / "generate", cfg, {}, lambda ctx: generate_stage(
        ctx, cfg, collection, train_split="train", test_split="test", encoder=FakeEncoder()), seed=5)
    selection = result.manifest["extra"]["doc_selection"]
    assert selection["cluster_sizes"] == [3, 3, 3, 3] and selection["picked_per_cluster"] == [1, 1, 1, 1]
    assert sorted(topic_of(d) for d in selection["doc_ids"]) == sorted(TOPICS)
    assert result.manifest["counts"]["docs"] == 4


def test_the_stage_fingerprints_the_vectors_it_clusters(write_beir: Any, tmp_path: Path) -> None:
    """With ``[index] dense`` the stage clusters the index's vectors, fingerprinted by the index's
    fingerprint, and refuses to run before the index exists; without, it encodes with MiniLM."""
    import dataclasses

    from inpars.config import Config, DataConfig, IndexConfig
    from inpars.errors import StageError
    from inpars.manifest import StageContext, run_stage
    from inpars.pipeline import Workspace
    from inpars.pipeline.generate import GenerateStage

    config = Config(data=DataConfig(source=str(write_beir())),
                    generate=GenerateConfig(num_docs=2, doc_sampling="clusters"))
    ws = Workspace(dataclasses.replace(config, experiment=dataclasses.replace(
        config.experiment, run_dir=str(tmp_path / "r"))))
    stage = GenerateStage()
    assert stage.settings(ws)["doc_vectors"] == {"dense_index": None, "model": None}
    assert stage.settings(ws)["generate"]["clusters"] == 0
    with pytest.raises(StageError, match=r"not built yet\. Fix: run `inpars index` first"):
        stage.run(None, ws)  # type: ignore[arg-type]

    def body(ctx: StageContext) -> None:
        ctx.extra["dense"] = {"index": str(tmp_path / "dense"), "fingerprint": "fp1", "model": "m"}

    run_stage("index", ws.stage_dir("index"), {}, {}, body)
    assert stage.settings(ws)["doc_vectors"] == {"dense_index": "fp1", "model": "m"}
    assert not any(key.startswith("model:clusters") for key in stage.inputs(ws))
    no_dense = Workspace(dataclasses.replace(ws.config, index=IndexConfig(dense=False)))
    assert stage.settings(no_dense)["doc_vectors"] == {"encoder": "all-MiniLM-L6-v2", "max_length": 256}
    plain = Workspace(dataclasses.replace(ws.config, generate=GenerateConfig(num_docs=2)))
    assert "doc_vectors" not in stage.settings(plain) and "clusters" not in stage.settings(plain)["generate"]
