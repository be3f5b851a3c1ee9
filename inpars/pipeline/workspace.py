"""What the stages of one experiment share: its config, collection, folders and the
finished stages' outputs (looked up through their manifests, checked against the disk)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpars.config import Config
from inpars.errors import ConfigError, StageError
from inpars.stage_folders import read_manifest, require_manifest

if TYPE_CHECKING:
    from inpars.data import Collection
    from inpars.indexing import Bm25Searcher, DenseIndex
    from inpars.records import Qrel, Query, SyntheticQuery

RUN_PREFIX = "run:"  # manifest output names of runs: "run:<system>"


class RunFolder:
    """A run folder (``runs/<experiment>/<stage>/``) and the outputs of its finished stages,
    looked up by name through their manifests."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def stage_dir(self, stage: str) -> Path:
        return self.run_dir / stage

    def finished(self, stage: str) -> bool:
        return read_manifest(self.stage_dir(stage)) is not None

    def manifest(self, stage: str) -> dict[str, Any]:
        """The manifest of a finished stage (a :class:`StageError` naming what to run if not)."""
        return require_manifest(self.stage_dir(stage), stage)

    def output(self, stage: str, name: str) -> Path:
        """The path of output ``name`` of a finished stage."""
        outputs = self.manifest(stage).get("outputs", {})
        if name not in outputs:
            raise StageError(
                f"{self.stage_dir(stage)}: the '{stage}' stage recorded no output '{name}' "
                f"(it has: {', '.join(outputs) or 'none'}). Fix: rerun `inpars {stage} --force`"
            )
        return self.stage_dir(stage) / outputs[name]["path"]

    def runs(self, stage: str) -> dict[str, Path]:
        """System name -> run file of every run a finished stage recorded."""
        outputs = self.manifest(stage).get("outputs", {})
        return {key[len(RUN_PREFIX):]: self.stage_dir(stage) / entry["path"]
                for key, entry in outputs.items() if key.startswith(RUN_PREFIX)}


class Workspace(RunFolder):
    """One experiment: its config, collection, run folder and the inputs its stages share."""

    def __init__(self, config: Config, *, graph: Any = None, command: str = "") -> None:
        data = config.data
        if not data.source and not data.fallback:
            raise ConfigError(
                f"{config.source_path} [data]: no 'source'. Fix: set source to a BEIR folder or an "
                "ir_datasets id such as 'beir/scifact/test'"
            )
        super().__init__(Path(config.experiment.run_dir or f"runs/{config.experiment.name}"))
        self.config = config
        self.command = command
        self._graph = graph

    @property
    def graph(self) -> Any:
        """The :class:`~inpars.pipeline.graph.StageGraph` of this experiment (the built-in
        stages unless another graph was given; typed loosely, the graph module imports this one)."""
        if self._graph is None:
            from inpars.pipeline.builtin import builtin_graph

            self._graph = builtin_graph()
        return self._graph

    @cached_property
    def collection(self) -> Collection:
        from inpars.data import open_from_config

        return open_from_config(self.config.data)

    @property
    def name(self) -> str:
        return self.config.experiment.name

    @property
    def results_dir(self) -> Path:
        return Path(self.config.experiment.results_dir or f"eval/results/{self.name}")

    def corpus_inputs(self) -> dict[str, Path]:
        return {f"collection:{p.name}": p for p in self.collection.source_files()}

    # ------------------------------------------------------------------ shared inputs
    def bm25(self) -> Bm25Searcher:
        """The BM25 searcher the index stage built (close it, or use it in a ``with``)."""
        from inpars.indexing import Bm25Searcher

        info = self.manifest("index").get("extra", {}).get("bm25")
        if not info:
            raise StageError(f"{self.stage_dir('index')}: no BM25 index recorded. Fix: rerun `inpars index`")
        return Bm25Searcher(info["index"], k1=self.config.index.k1, b=self.config.index.b)

    def dense(self) -> DenseIndex | None:
        """The dense index the index stage built, or ``None`` when it built none."""
        from inpars.indexing import DenseIndex

        info = self.manifest("index").get("extra", {}).get("dense")
        if not info:
            return None
        index = DenseIndex.load(info["index"])
        index.collection = self.collection
        return index

    def test_queries(self) -> list[Query]:
        return self.collection.split_queries(self.config.data.test_split)

    def eval_queries(self) -> list[Query]:
        """Every query of a judged split other than the training split (what the
        contamination check compares synthetic queries against)."""
        splits = [s for s in self.collection.splits() if s != self.config.data.train_split]
        return [q for split in splits for q in self.collection.split_queries(split)]

    def example_query_ids(self) -> set[str]:
        """The train queries shown as few-shot examples (evaluation leaves them out)."""
        if not self.finished("generate"):
            return set()
        return set(self.manifest("generate").get("extra", {}).get("example_query_ids", []))

    def has_judged_train(self) -> bool:
        """Whether the collection has judged queries in ``[data] train_split``."""
        split = self.config.data.train_split
        return bool(split) and split in self.collection.splits()

    def dev_set_kind(self) -> str:
        """What the dev set is, for reports: real train queries, or held-out synthetic ones."""
        return (f"{self.config.data.train_split}-split queries" if self.has_judged_train()
                else "held-out synthetic queries (the collection has no judged train queries)")

    def dev_queries(self) -> tuple[list[Query], list[Qrel]]:
        """The dev set, on which settings are tuned (never on the test split): ``[data]
        dev_queries`` train queries drawn with the experiment seed (few-shot example queries
        left out) and their qrels, which real-label training leaves out. A collection
        without judged train queries gets :meth:`synthetic_dev_queries` instead."""
        import random

        if not self.has_judged_train():
            return self.synthetic_dev_queries()
        split, size = self.config.data.train_split, self.config.data.dev_queries
        excluded = self.example_query_ids()
        pool = [q for q in self.collection.split_queries(split) if q.query_id not in excluded]
        queries = random.Random(self.config.experiment.seed).sample(pool, min(size, len(pool)))
        wanted = {q.query_id for q in queries}
        return queries, [r for r in self.collection.qrels(split) if r.query_id in wanted]

    def synthetic_dev_queries(self) -> tuple[list[Query], list[Qrel]]:
        """The label-free dev set: a seeded slice of the kept synthetic queries (at most a
        quarter of them), each judged relevant to the document it was written for. The
        negatives stage holds them out of training (:meth:`held_out_ids`)."""
        import random

        from inpars.records import Qrel, Query

        kept = self.kept_queries()
        size = min(self.config.data.dev_queries, len(kept) // 4)
        picked = random.Random(self.config.experiment.seed).sample(kept, size)
        return ([Query(q.query_id, q.text) for q in picked],
                [Qrel(q.query_id, q.doc_id, 1) for q in picked])

    def held_out_ids(self) -> set[str]:
        """Synthetic query ids kept out of training as the label-free dev set (none when the
        collection has judged train queries)."""
        return set() if self.has_judged_train() else {q.query_id for q in self.synthetic_dev_queries()[0]}

    def real_training_queries(self) -> tuple[list[SyntheticQuery], list[Qrel]]:
        """The collection's judged train queries as training pairs (the worth table's
        reference): one per (query, relevant document), id ``<query>#<doc>``, the dev set and
        the few-shot examples left out; and each pair's judgements under its id, so that no
        judged-relevant document is mined as a negative."""
        import dataclasses

        from inpars.records import SyntheticQuery

        split = self.config.data.train_split
        texts = {q.query_id: q.text for q in self.collection.split_queries(split)}
        excluded = {q.query_id for q in self.dev_queries()[0]} | self.example_query_ids()
        judged: dict[str, list[Qrel]] = {}
        for qrel in self.collection.qrels(split):
            if qrel.query_id in texts and qrel.query_id not in excluded:
                judged.setdefault(qrel.query_id, []).append(qrel)
        pairs: list[SyntheticQuery] = []
        labels: list[Qrel] = []
        for query_id, qrels in judged.items():
            for positive in (r for r in qrels if r.relevance > 0):
                pair_id = f"{query_id}#{positive.doc_id}"
                pairs.append(SyntheticQuery(pair_id, positive.doc_id, texts[query_id], "real", "qrels", 0, 0))
                labels.extend(dataclasses.replace(r, query_id=pair_id) for r in qrels)
        return pairs, labels

    def kept_queries(self) -> list[SyntheticQuery]:
        from inpars.io import read_records
        from inpars.records import SyntheticQuery

        return list(read_records(self.output("filter", "kept"), SyntheticQuery))
