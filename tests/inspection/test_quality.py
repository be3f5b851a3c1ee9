"""quality.json of ``inpars inspect`` on a tiny hand-made run: every number checked by hand
(see the comments), the join of generation and filter records, and the errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from inpars.cli import main
from inpars.config import load_config
from inpars.errors import ModelError
from inpars.filtering.text import jaccard, shingles
from inpars.inspection import build_report, load_run
from inpars.inspection.data import MISSING_REASON
from inpars.inspection.embeddings import mean_pairwise_cosine, seeded_sample
from inpars.inspection.quality import distinct_n, duplicate_counts, term_overlap
from inpars.pipeline import Workspace
from inpars.records import Document
from tests.inspection.fakerun import GENERATED_FOR, SAMPLES, Spec, fake_run, write_generate


def _inspect(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["inspect", str(config), "--no-embeddings"]) == 0
    out = capsys.readouterr().out
    folder = config.parent / "run" / "inspect"
    for name in ("index.html", "quality.md", "quality.json"):
        assert str(folder / name) in out
    return dict(json.loads((folder / "quality.json").read_text(encoding="utf-8")))


def test_distinct_n_duplicates_and_overlap_by_hand() -> None:
    texts = ["do cats purr", "Do cats purr?", "why are dogs loyal"]
    assert distinct_n(texts, 1) == round(7 / 10, 4)  # do cats purr why are dogs loyal / 10 words
    assert distinct_n(texts, 2) == round(5 / 7, 4)  # "do cats" and "cats purr" twice
    assert distinct_n([], 1) is None
    assert distinct_n(["cats"], 2) is None  # no bigram at all
    assert jaccard(shingles("do cats purr"), shingles("do cats purrr")) == pytest.approx(12 / 13)
    assert duplicate_counts([*texts, "do cats purrr"], 0.85) == (1, 1)
    assert duplicate_counts([*texts, "do cats purrr"], 0.95) == (1, 0)
    doc = Document("d", "Cats are small felines that purr.", "Cats")
    assert term_overlap("do cats purr", doc) == pytest.approx(2 / 3)
    assert term_overlap("?!", doc) is None


def test_quality_numbers_of_a_hand_made_run(write_beir: Any, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    report = _inspect(fake_run(write_beir, tmp_path), capsys)
    assert report["counts"] == {"documents": 3, "samples": 6, "generation_rejected": 1, "generated": 5,
                                "filter_dropped": 1, "kept": 4, "documents_with_kept_query": 2}
    assert report["drops"] == {"generate": {"generate:unfinished": 1},
                               "filter": {"rules:copied_from_document": 1}}
    kept = report["diversity"]["kept"]
    # words: do cats purr | do cats purr | do cats purrr | why are dogs loyal: 8 distinct of 13;
    # bigrams: do-cats x3, cats-purr x2, cats-purrr, why-are, are-dogs, dogs-loyal: 6 of 9
    assert (kept["distinct_1"], kept["distinct_2"]) == (round(8 / 13, 4), round(6 / 9, 4))
    assert (kept["exact_duplicates"], kept["exact_duplicate_rate"]) == (1, 0.25)
    assert (kept["near_duplicates"], kept["near_duplicate_rate"]) == (1, 0.25)
    generated = report["diversity"]["generated"]  # + "dogs are loyal companions": 9 of 17, 9 of 12
    assert (generated["distinct_1"], generated["distinct_2"]) == (round(9 / 17, 4), 0.75)
    assert report["coverage"] == {"documents": 3, "with_kept_query": 2, "rate": round(2 / 3, 4),
                                  "kept_per_document": round(4 / 3, 4)}
    # 3 words in a row: "dogs are loyal" is in d2 ("Dogs are loyal companions ..."); nothing kept is
    assert report["copy"] == {"ngram": 3, "generated": {"queries": 5, "copied": 1, "rate": 0.2},
                              "kept": {"queries": 4, "copied": 0, "rate": 0.0},
                              "real_train": {"queries": 1, "copied": 0, "rate": 0.0}}
    synthetic, real = report["queries"]["synthetic_kept"], report["queries"]["real_train"]
    assert synthetic["length_words"]["mean"] == 3.25
    # overlap: cats+purr of 3, twice; cats of 3; are+dogs+loyal of 4
    assert synthetic["term_overlap"]["mean"] == round((2 / 3 + 2 / 3 + 1 / 3 + 3 / 4) / 4, 4)
    # the one train query, "largest river by volume", against d4: only "river"
    assert (real["length_words"]["mean"], real["term_overlap"]["mean"]) == (4, 0.25)
    assert report["queries"]["real_queries"] == 1
    lp = report["logprob"]
    assert (lp["kept"], lp["dropped"]) == ({"n": 4, "mean": -1.25}, {"n": 1, "mean": -3.0})
    assert lp["dropped_by_reason"] == {"rules:copied_from_document": {"n": 1, "mean": -3.0}}
    assert report["embedding"] == {"skipped": "turned off (--no-embeddings)"}
    md = (tmp_path / "run" / "inspect" / "quality.md").read_text(encoding="utf-8")
    assert "| kept | 4 |" in md and "rules:copied_from_document" in md


def test_inspection_leaves_the_stages_untouched(write_beir: Any, tmp_path: Path, snapshot_files: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = fake_run(write_beir, tmp_path)
    before = {stage: snapshot_files(tmp_path / "run" / stage) for stage in ("generate", "filter")}
    _inspect(config, capsys)
    assert {stage: snapshot_files(tmp_path / "run" / stage) for stage in before} == before


def test_no_train_judgements_is_said(write_beir: Any, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = write_beir(qrels={"test": [("q1", "d1", 1)]})
    config = fake_run(lambda docs: source, tmp_path)
    report = _inspect(config, capsys)
    assert report["queries"]["real_train"] is None
    assert "no judged 'train' split" in report["queries"]["real_note"]
    md = (tmp_path / "run" / "inspect" / "quality.md").read_text(encoding="utf-8")
    assert "No real queries to compare" in md


def test_a_query_the_filter_did_not_see_is_counted(write_beir: Any, tmp_path: Path) -> None:
    config = fake_run(write_beir, tmp_path)
    extra = Spec("d2#q2", "d2", "a query filtered by nobody", "kept", -1.0)
    gen = tmp_path / "run" / "generate"
    shutil.rmtree(gen)
    write_generate(gen, [*SAMPLES, extra], GENERATED_FOR)
    run = load_run(Workspace(load_config(config)), str(config))
    missing = [s for s in run.samples if s.reason == MISSING_REASON]
    assert [s.query_id for s in missing] == ["d2#q2"]
    assert build_report(run, embeddings=False)["drops"]["filter"][MISSING_REASON] == 1


@pytest.mark.parametrize("stages", [(), ("generate",)])
def test_unfinished_stages_name_the_command(write_beir: Any, tmp_path: Path, stages: tuple[str, ...],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = fake_run(write_beir, tmp_path, stages=stages)
    assert main(["inspect", str(config)]) == 2
    err = capsys.readouterr().err
    missing = "filter" if stages else "generate"
    assert f"the '{missing}' stage has not finished" in err
    assert f"Fix: run `inpars run {config} --until filter` first" in err
    assert not (tmp_path / "run" / "inspect").exists()


def test_embedding_similarity_with_a_given_encoder(write_beir: Any, tmp_path: Path) -> None:
    import numpy as np

    config = fake_run(write_beir, tmp_path)
    run = load_run(Workspace(load_config(config)), str(config))

    def encode(texts: list[str]) -> Any:  # the three cat queries alike, the dog one orthogonal
        return np.array([[1.0, 0.0] if "cats" in t.lower() else [0.0, 1.0] for t in texts])

    emb = build_report(run, encoder=encode)["embedding"]
    # 6 pairs of 4 queries: 3 cat-cat pairs with cosine 1, 3 with the dog query with 0
    assert emb["kept synthetic"] == {"queries": 4, "mean_pairwise_cosine": 0.5}
    assert emb["real train"] == {"queries": 1, "mean_pairwise_cosine": None}
    assert mean_pairwise_cosine(np.eye(3)) == 0.0


def test_embedding_similarity_is_skipped_without_the_model(write_beir: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from inpars.inspection import embeddings

    def missing() -> Any:
        raise ModelError("the packaged encoder 'all-MiniLM-L6-v2' is not installed. Fix: pip install it")

    monkeypatch.setattr(embeddings, "minilm_encoder", missing)
    config = fake_run(write_beir, tmp_path)
    report = build_report(load_run(Workspace(load_config(config)), str(config)))
    assert "not installed" in report["embedding"]["skipped"]


def test_seeded_sample() -> None:
    texts = [f"q{i}" for i in range(1000)]
    sample = seeded_sample(texts, 500, seed=3)
    assert len(sample) == len(set(sample)) == 500
    assert sample == seeded_sample(texts, 500, seed=3) != seeded_sample(texts, 500, seed=4)
    assert seeded_sample(texts[:5], 500, seed=3) == texts[:5]
