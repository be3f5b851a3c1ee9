"""Experiment configs: one TOML file per experiment, validated on load.

Each section of the TOML file is a frozen dataclass named after its stage
(``[index]``, ``[generate]``, ``[filter]``, ``[expand]``, ``[negatives]``, ``[train]``,
``[refine]``, ``[rerank]``, ``[evaluate]``; all from ``[expand]`` on live in :mod:`inpars.config_training`).
Unknown keys, wrong types and values outside a ``Literal`` are errors that name the file, the key and the
allowed values. Library functions receive these dataclasses, never argparse objects.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inpars.config_training import (
    EvaluateConfig,
    ExpandConfig,
    NegativesConfig,
    RefineConfig,
    RerankConfig,
    TrainConfig,
    check_device,
)
from inpars.distributed.settings import check_executor
from inpars.errors import ConfigError
from inpars.schema import section_from_dict

# --------------------------------------------------------------------------- sections
# An experiment name: letters, digits, '-', '_', '.'; not starting with '.' (so never '', '.', '..').
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ExperimentConfig:
    """``[experiment]``: name, seed and where the run folder goes."""

    name: str = "experiment"
    seed: int = 42
    run_dir: str = ""  # default: runs/<name>
    results_dir: str = ""  # default: eval/results/<name>
    description: str = ""  # markdown shown at the top of the report (what was tuned, on what)

    def __post_init__(self) -> None:
        # The name becomes a folder (runs/<name>/, eval/results/<name>/) and a report title:
        # it must stay one plain path segment.
        if not _SAFE_NAME.fullmatch(self.name):
            raise ValueError(
                f"name = {self.name!r}: use one folder name made of letters, digits, '-', '_' and '.', "
                "not starting with '.', e.g. 'scifact-v2_1.0'"
            )


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: the collection (a BEIR folder, JSONL/TSV files or an ir_datasets id)."""

    source: str = ""
    fallback: str = ""  # an ir_datasets id used when ``source`` is a path that does not exist
    train_split: str = "train"
    test_split: str = "test"
    skip_bad_lines: bool = False
    # the corpus's column (Parquet, Hugging Face dataset) or JSON key names for doc_id, title and
    # text, e.g. {doc_id = "pid", text = "passage"}; unset ones: _id/doc_id/id, title, text
    columns: dict[str, str] = field(default_factory=dict)
    # seeded train queries held out as the dev set: tuning scripts score on them and
    # real-label training ([train] labels) leaves them out
    dev_queries: int = 100

    def __post_init__(self) -> None:
        if self.dev_queries < 0:
            raise ValueError(f"dev_queries = {self.dev_queries}: must be 0 or more")
        for key, column in self.columns.items():
            if key not in ("doc_id", "title", "text") or not column:
                raise ValueError(f"columns.{key} = {column!r}: map doc_id, title or text to a non-empty "
                                 'column name. Fix: e.g. columns = {doc_id = "pid", text = "passage"}')


@dataclass(frozen=True)
class IndexConfig:
    """``[index]``: BM25 (Pyserini/Lucene) and optional dense (FAISS) indexes."""

    k1: float = 0.9
    b: float = 0.4
    threads: int = 1
    dense: bool = True
    dense_model: str = "all-MiniLM-L6-v2"
    dense_batch_size: int = 32
    dense_max_length: int = 256
    depth: int = 100
    remove_self_hits: bool = False
    force: bool = False
    output_dir: str = ""  # default: index/<collection name>/ (bm25/ and dense/<model>/ inside)
    docvectors: bool = False  # also store positions + document vectors (RM3, term stats)
    dense_device: str = ""  # "" picks cuda when available, else cpu

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"k1={self.k1}, b={self.b}: need k1 >= 0 and 0 <= b <= 1")
        if self.threads < 1 or self.depth < 1 or self.dense_batch_size < 1 or self.dense_max_length < 1:
            raise ValueError("threads, depth, dense_batch_size and dense_max_length must be >= 1")


@dataclass(frozen=True)
class Config:
    """A whole experiment: every section, with defaults for those the file leaves out."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    generate: GenerateConfig = field(default_factory=lambda: GenerateConfig())
    filter: FilterConfig = field(default_factory=lambda: FilterConfig())
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    expand: ExpandConfig = field(default_factory=ExpandConfig)
    source_path: str = ""  # the TOML file it came from (set by load_config)


@dataclass(frozen=True)
class GenerateConfig:
    """``[generate]``: write synthetic queries for documents with a language model."""

    template: str = "inpars"  # inpars, inpars-gbq, promptagator, zero-shot, or a .txt file
    model: str = "gemma3-270m"  # packaged alias, GGUF file, local folder, hub id, or a server's model name
    backend: Literal["llama-cpp", "hf-causal", "hf-seq2seq", "openai"] = "llama-cpp"
    queries_per_doc: int = 3
    num_docs: int = 0  # 0: every document
    # which num_docs documents: random (seeded), the first, or spread over k-means clusters of
    # their embeddings (clusters, DUQGen-style: the dense index's vectors with [index] dense, else MiniLM's)
    doc_sampling: Literal["random", "first", "clusters"] = "random"
    clusters: int = 0  # k of doc_sampling = "clusters"; 0: min(num_docs, sqrt(corpus size), 1000)
    doc_max_tokens: int = 256  # documents are cut to this many tokens of the generator's tokenizer
    num_examples: int = 4  # few-shot examples drawn from the train split ({examples} templates)
    example_max_tokens: int = 128  # per drawn example document
    neighbours: int = 2  # the neighbours template: the target's top BM25 neighbours its prompt shows
    neighbour_max_tokens: int = 64  # each neighbour is cut to this many tokens
    max_new_tokens: int = 64  # room for a query of max_query_words; a hopeless sample stops before
    temperature: float = 0.8  # 0: greedy
    top_p: float = 0.95
    top_k: int = 40  # 0: no top-k cut
    greedy_first: bool = True  # sample 0 of each document is greedy (InPars-v1), the others sampled
    stop: list[str] = field(default_factory=lambda: ["\n"])
    max_sentences: int = 1  # a query ends after this many sentences once another starts (0: no limit)
    min_query_words: int = 2
    max_query_words: int = 40
    max_copied_ngram: int = 12  # reject a query sharing this many consecutive words with its doc (0: off)
    # the unit of work: decoded together, redone whole after an interruption (hf-* backends pad
    # all its samples into one batch: lower it when memory is short)
    batch_docs: int = 32
    shard_docs: int = 1000  # documents per output shard (the unit of the completion markers)
    threads: int = 0  # 0: pick from the free cores
    context_tokens: int = 8192  # llama.cpp context shared by the sequences in flight
    # llama-cpp: samples decoded together (continuous batching: a freed one takes the next
    # document at once), queries_per_doc to 511; at 64 llama.cpp decoded a third slower here
    # (eval/benchmarks/ceiling.md)
    sequences: int = 48
    device: str = "auto"  # hf-* backends
    # openai backend, e.g. http://127.0.0.1:8000/v1, or a list of servers of the same model
    # (requests are balanced over them, with retries on another one)
    api_base: str | list[str] = ""
    api_key_env: str = ""  # name of the environment variable holding the API key (openai backend)
    concurrency: int = 4  # parallel requests (openai backend)
    timeout_s: float = 120.0
    retries: int = 4
    tokenizer: str = ""  # openai backend: GGUF file/alias or HF tokenizer that counts tokens for truncation
    # where the shards run: "local" (this process) or "ray" (one backend per Ray actor); see
    # inpars.distributed.settings. Left out of the fingerprint: they change where, not what.
    executor: Literal["local", "ray"] = "local"
    ray_address: str = ""  # "": start a local cluster; "auto"; or "host:port" / "ray://host:port"
    ray_actors: int = 2
    ray_actor_cpus: float = 1.0  # a CPU backend computes with this many threads when threads = 0
    ray_actor_gpus: float = 0.0

    def __post_init__(self) -> None:
        check_executor(self)
        if self.neighbours < 0 or self.neighbour_max_tokens < 1:
            raise ValueError(f"neighbours = {self.neighbours} and neighbour_max_tokens = "
                             f"{self.neighbour_max_tokens}: must be 0 or more, and at least 1")
        for name in ("queries_per_doc", "doc_max_tokens", "example_max_tokens", "max_new_tokens",
                     "max_query_words", "batch_docs", "shard_docs", "context_tokens", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        for name in ("num_docs", "num_examples", "top_k", "min_query_words", "max_copied_ngram", "threads",
                     "retries", "clusters", "max_sentences"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: must be 0 or more")
        if self.backend == "llama-cpp" and not self.queries_per_doc <= self.sequences <= 511:
            raise ValueError(f"sequences = {self.sequences}: must be from queries_per_doc "
                             f"({self.queries_per_doc}: a document's samples decode together) to 511. "
                             "Fix: e.g. sequences = 48")
        self._check_clusters()
        if self.temperature < 0:
            raise ValueError(f"temperature = {self.temperature}: must be 0 (greedy) or more")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p = {self.top_p}: must be in (0, 1]")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s = {self.timeout_s}: must be positive")
        if self.min_query_words > self.max_query_words:
            raise ValueError("min_query_words is larger than max_query_words")
        if not self.template:
            raise ValueError("template is empty: use inpars, inpars-gbq, promptagator, zero-shot or a file")
        if any(not s for s in self.stop):
            raise ValueError("stop: empty strings are not allowed (the default is ['\\n'])")
        if self.backend == "openai" and self.api_base == "":
            raise ValueError("backend = 'openai' needs api_base, e.g. 'http://127.0.0.1:8000/v1'")
        if self.backend == "openai":
            _check_api_base(self.api_base)
        check_device(self.device)

    def _check_clusters(self) -> None:
        if self.doc_sampling != "clusters":
            return
        if self.num_docs == 0:
            raise ValueError("doc_sampling = 'clusters' picks num_docs documents, but num_docs = 0 (every "
                             "document). Fix: set num_docs, e.g. 1000, or doc_sampling = 'random'")
        if self.clusters > self.num_docs:
            raise ValueError(f"clusters = {self.clusters} is more than num_docs = {self.num_docs}, so some "
                             "clusters would get no document. Fix: set clusters to at most num_docs "
                             "(or 0: chosen from the corpus size)")


def _check_api_base(api_base: str | list[str]) -> None:
    """``api_base``: one http(s) URL or a non-empty list of distinct ones."""
    urls = [api_base] if isinstance(api_base, str) else api_base
    example = "'http://10.0.0.1:8000/v1'"
    if not urls:
        raise ValueError(f"api_base = []: no server. Fix: give one URL or a list, e.g. [{example}, "
                         "'http://10.0.0.2:8000/v1']")
    for i, url in enumerate(urls):
        where = "api_base" if isinstance(api_base, str) else f"api_base[{i}]"
        if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1].strip("/")) == 0:
            raise ValueError(f"{where} = {url!r}: not an http(s) URL. Fix: write the scheme and host, "
                             f"e.g. {example}")
        if url.rstrip("/") in (u.rstrip("/") for u in urls[:i]):
            raise ValueError(f"{where} = {url!r}: the same server is listed twice. Fix: name each once")


FilterStep = Literal["rules", "dedup", "contamination", "logprob", "reranker", "roundtrip", "critic"]


@dataclass(frozen=True)
class FilterConfig:
    """``[filter]``: the filters applied to synthetic queries, in ``steps`` order.

    ``*_keep`` settings: a value up to 1 is the fraction kept, a larger one the number
    kept (best first). ``contamination`` runs whenever evaluation queries are known.
    """

    steps: list[FilterStep] = field(default_factory=lambda: ["rules", "dedup", "contamination", "reranker"])
    min_words: int = 2
    max_words: int = 40
    max_copied_ngram: int = 8  # drop a query sharing this many consecutive words with its document (0: off)
    min_letter_ratio: float = 0.5  # share of non-space characters that must be letters
    banned_phrases: list[str] = field(
        default_factory=lambda: ["document:", "query:", "question:", "passage:"]
    )
    near_dup_threshold: float = 0.85  # Jaccard of character 3-grams; 1.0: exact duplicates only
    contamination_threshold: float = 0.8  # same measure, against the evaluation queries
    logprob_keep: float = 0.5  # InPars-v1: by mean token log-probability
    reranker_keep: float = 0.5  # InPars-v2: by the reranker's (query, document) score
    reranker_kind: Literal["bi-encoder", "cross-encoder"] = "bi-encoder"
    reranker_model: str = "all-MiniLM-L6-v2"  # packaged alias, local folder or hub id
    reranker_batch_size: int = 32
    reranker_max_length: int = 256
    reranker_dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bfloat16 where the chip has it
    # hybrid: BM25 and dense top 100 ranked by BM25 + encoder interpolation (the teacher's ranking)
    roundtrip_retriever: Literal["bm25", "dense", "hybrid"] = "bm25"
    hybrid_bm25_weight: float = 0.3  # BM25's weight in the hybrid round trip
    roundtrip_k: int = 10  # keep a query whose document is in this many top hits
    # critic: a classifier of real vs synthetic queries keeps the most realistic (by P(real))
    critic_keep: float = 0.5
    critic_real_queries: str = ""  # JSONL/TSV of real user queries; "": the train split (minus the dev set)
    critic_model: str = "all-MiniLM-L6-v2"  # the sentence encoder whose embeddings it classifies
    threads: int = 0  # 0: every core
    device: str = "auto"
    # where the reranker step scores: "local" or "ray" (one scorer per Ray actor); see
    # inpars.distributed.settings. Left out of the fingerprint: they change where, not what.
    executor: Literal["local", "ray"] = "local"
    ray_address: str = ""  # "": start a local cluster; "auto"; or "host:port" / "ray://host:port"
    ray_actors: int = 2
    ray_actor_cpus: float = 1.0  # the scorer computes with this many threads when threads = 0
    ray_actor_gpus: float = 0.0

    def __post_init__(self) -> None:
        check_executor(self)
        if not self.steps:
            raise ValueError("steps is empty: name at least one filter, e.g. ['rules', 'dedup']")
        if len(set(self.steps)) != len(self.steps):
            raise ValueError(f"steps = {self.steps}: a filter is named twice")
        for name in ("min_words", "max_words", "reranker_batch_size", "reranker_max_length", "roundtrip_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        for name in ("max_copied_ngram", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: must be 0 or more")
        if self.min_words > self.max_words:
            raise ValueError("min_words is larger than max_words")
        for name in ("min_letter_ratio",):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be in [0, 1]")
        for name in ("near_dup_threshold", "contamination_threshold"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be in (0, 1], e.g. 0.85")
        for name in ("logprob_keep", "reranker_keep", "critic_keep"):
            keep = getattr(self, name)
            if keep <= 0 or (keep > 1 and keep != int(keep)):
                raise ValueError(
                    f"{name} = {keep}: use a fraction in (0, 1] (e.g. 0.5) "
                    "or a whole number of queries (e.g. 10000)"
                )
        if not self.critic_model:
            raise ValueError("critic_model is empty: name a sentence encoder, e.g. 'all-MiniLM-L6-v2'")
        check_device(self.device)


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a config already parsed from TOML."""
    data = dict(data)
    data.pop("source_path", None)
    config = section_from_dict(Config, data, source, whole_file=True, internal=("source_path",))
    return dataclasses.replace(config, source_path=source)


def load_config(path: Path | str) -> Config:
    """Read and validate an experiment TOML file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found. Fix: pass a path like configs/scifact.toml")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    return parse_config(data, str(p))
