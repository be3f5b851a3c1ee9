"""Config sections of the stages that build training data, train and measure models:
``[expand]``, ``[negatives]``, ``[train]``, ``[refine]``, ``[rerank]``, ``[evaluate]`` (the other
sections and the loader are in :mod:`inpars.config`, which re-exports these), and the device
check every section with a ``device`` setting shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from inpars.distributed.settings import check_executor

# What a model is trained on: the run's synthetic examples, the collection's judged *train*
# queries (the worth table's reference), or both together.
Labels = Literal["synthetic", "real", "both"]


def check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda", "mps") and not (
        device.startswith("cuda:") and device[5:].isdigit()
    ):
        raise ValueError(f"device = {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


@dataclass(frozen=True)
class NegativesConfig:
    """``[negatives]``: hard negatives for each kept pair, mined from BM25 (and dense) rankings."""

    depth: int = 100  # hits retrieved per query
    count: int = 3  # BM25 negatives per example
    sampling: Literal["top", "window"] = "window"  # top: best-ranked; window: seeded random from the window
    window_start: int = 1  # first rank of the window (window: ranks window_start..depth)
    dense_count: int = 0  # extra negatives from the dense index (0: none)
    # where the `count` negatives come from: BM25's ranking, the dense index's, or the hybrid
    # teacher's ranking of both top-`depth` lists (needs [index] dense = true)
    retriever: Literal["bm25", "dense", "hybrid"] = "bm25"
    # soft labels for distillation (GPL): hybrid, BM25 + the dense index's encoder; cross-encoder,
    # the relevance score of `teacher_model` (a cross-encoder folder or hub id)
    teacher: Literal["none", "hybrid", "cross-encoder"] = "none"
    teacher_bm25_weight: float = 0.3  # BM25's weight in the hybrid teacher and ranking
    teacher_model: str = ""  # teacher = "cross-encoder": its folder or hub id
    # teacher = "cross-encoder": label with its raw logits, not its sigmoid score. For a model
    # trained with margin-mse on [0, 1]-scale margins (another inpars run's cross-encoder), whose
    # logit differences are already on that scale; a BCE-trained model's logits span tens of units
    teacher_logits: bool = False
    batch_size: int = 256  # queries searched together
    threads: int = 1  # BM25 search threads
    export: list[Literal["sentence-transformers", "tsv"]] = field(
        default_factory=lambda: ["sentence-transformers", "tsv"]
    )

    def __post_init__(self) -> None:
        for name in ("depth", "window_start", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        for name in ("count", "dense_count"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: must be 0 or more")
        if self.count + self.dense_count < 1:
            raise ValueError("count and dense_count are both 0: ask for at least one negative")
        if not 0 <= self.teacher_bm25_weight <= 1:
            raise ValueError(f"teacher_bm25_weight = {self.teacher_bm25_weight}: must be in [0, 1]")
        if self.window_start > self.depth:
            raise ValueError(f"window_start = {self.window_start} is deeper than depth = {self.depth}")
        if self.teacher == "cross-encoder" and not self.teacher_model:
            raise ValueError("teacher = 'cross-encoder' needs teacher_model: a cross-encoder folder or hub "
                             "id, e.g. 'runs/<exp>/train/cross-encoder'")
        if (self.teacher_model or self.teacher_logits) and self.teacher != "cross-encoder":
            raise ValueError(f"teacher_model and teacher_logits are only read with teacher = "
                             f"'cross-encoder' (teacher = {self.teacher!r}). Fix: set teacher = "
                             "'cross-encoder', or remove them")


@dataclass(frozen=True)
class ExpandConfig:
    """``[expand]``: document expansion with the synthetic queries (docT5query, Doc2Query--).

    Off by default. When on, each document is indexed again with its synthetic queries
    appended, into a second BM25 index of the run, searched with the test queries
    (system ``bm25-expanded``). ``k1`` and ``b`` default to ``[index]``'s.
    """

    enabled: bool = False
    source: Literal["kept", "generated"] = "kept"  # the filter's kept queries, or all generated ones
    repeat: int = 1  # how many times each query is appended
    k1: float | None = None  # default: [index] k1
    b: float | None = None  # default: [index] b

    def __post_init__(self) -> None:
        if self.repeat < 1:
            raise ValueError(f"repeat = {self.repeat}: must be at least 1")
        if self.k1 is not None and self.k1 < 0:
            raise ValueError(f"k1 = {self.k1}: must be 0 or more (or leave it out for [index] k1)")
        if self.b is not None and not 0 <= self.b <= 1:
            raise ValueError(f"b = {self.b}: must be in [0, 1] (or leave it out for [index] b)")


@dataclass(frozen=True)
class TrainConfig:
    """``[train]``: fine-tune a cross-encoder reranker (and optionally a dense retriever)."""

    model: str = "all-MiniLM-L6-v2"  # start point: packaged alias, local folder or hub id
    # bce: pointwise; listwise: softmax over (positive, negatives); margin-mse: distil the
    # teacher's margins (needs [negatives] teacher)
    loss: Literal["bce", "listwise", "margin-mse"] = "bce"
    bce_pos_weight: float = 0.0  # weight of a positive in bce (0: negatives_per_example, balanced)
    head_learning_rate: float = 1e-3  # a freshly initialised classifier head (0: learning_rate)
    negatives_per_example: int = 3  # topped up with random negatives when mined ones run out
    batch_size: int = 16  # (query, document) pairs per forward pass
    max_length: int = 256
    epochs: int = 1
    max_steps: int = 0  # 0: as many as the epochs give
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_accumulation: int = 1
    max_examples: int = 0  # 0: all
    seed: int | None = None  # default: the experiment seed
    log_every: int = 10  # optimizer steps per point of the loss curve
    threads: int = 0  # 0: every core
    device: str = "auto"
    precision: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 autocast where the chip has it
    dense: bool = False  # also fine-tune the sentence encoder (GPL/InPars-style)
    dense_model: str = "all-MiniLM-L6-v2"
    dense_loss: Literal["mnrl", "margin-mse"] = "mnrl"  # margin-mse: distil the teacher ([negatives] teacher)
    dense_batch_size: int = 16  # queries per batch (in-batch + hard negatives)
    dense_negatives_per_example: int = 1
    dense_max_length: int = 256
    dense_epochs: int = 1
    dense_learning_rate: float = 2e-5
    # the worth table: also train on the real train qrels ("real") and on real + synthetic
    # ("both"), same recipe; labels for the cross-encoder, dense_labels for the encoder;
    # labels = [] with dense = true: no cross-encoder (GPL: the encoder alone, e.g. distilled
    # from a [negatives] teacher_model cross-encoder)
    labels: list[Labels] = field(default_factory=lambda: ["synthetic"])
    dense_labels: list[Labels] = field(default_factory=lambda: ["synthetic"])
    # per-example loss weights from a confidence signal (inpars.training.weights): the synthetic
    # query's mean log-prob, the teacher's margin (positive minus best negative), or the filter
    # critic's P(real); min-max mapped to [weight_floor, 1], then scaled to mean 1
    weighting: Literal["none", "logprob", "teacher_margin", "critic"] = "none"
    weight_floor: float = 0.1  # the weight of the least confident example before scaling

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_length", "epochs", "grad_accumulation", "log_every",
                     "dense_batch_size", "dense_max_length", "dense_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        for name in ("max_steps", "max_examples", "threads", "dense_negatives_per_example"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: must be 0 or more")
        if self.negatives_per_example < 1:
            raise ValueError(f"negatives_per_example = {self.negatives_per_example}: must be at least 1 "
                             "(random negatives fill in for missing mined ones)")
        for name in ("learning_rate", "dense_learning_rate"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be in (0, 1), e.g. 3e-5")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio = {self.warmup_ratio}: must be in [0, 1)")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay = {self.weight_decay}: must be 0 or more")
        if not 0 < self.weight_floor <= 1:
            raise ValueError(f"weight_floor = {self.weight_floor}: must be in (0, 1], e.g. 0.1")
        if self.bce_pos_weight < 0 or not 0 <= self.head_learning_rate < 1:
            raise ValueError("bce_pos_weight must be 0 or more and head_learning_rate in [0, 1), e.g. 1e-3")
        for name in ("labels", "dense_labels"):
            value = getattr(self, name)
            if len(set(value)) != len(value) or not (value or (name == "labels" and self.dense)):
                raise ValueError(f"{name} = {value}: name each of 'synthetic', 'real', 'both' at most once, "
                                 "at least one (labels = [] with dense = true trains the encoder alone)")
        check_device(self.device)


@dataclass(frozen=True)
class RefineConfig:
    """``[refine]``: iterative refinement (Self-Instruct-style): after training, find the
    synthetic queries whose source document the trained model ranks below ``top_k``, write
    new queries for those documents showing the documents it wrongly preferred, and retrain
    on the union; stop when the dev score stops improving (``inpars.refinement``)."""

    rounds: int = 0  # 0: off
    model: Literal["cross-encoder", "dense"] = "cross-encoder"  # the trained model refined
    probe_queries: int = 500  # training queries probed per round (seeded sample; 0: all)
    candidates: int = 20  # BM25 hits the model ranks for each probed query (with its source)
    top_k: int = 3  # a probed query fails when the model ranks its source below this
    max_docs: int = 200  # documents given new queries per round, the worst-ranked first
    queries_per_doc: int = 3
    neighbours: int = 2  # documents the model wrongly preferred, shown in the prompt
    template: str = "neighbours"  # a template with {neighbours}: they fill it
    dev_depth: int = 30  # BM25 hits reranked for the dev score of each round
    min_gain: float = 0.0  # a round must raise dev nDCG@10 by more than this to continue

    def __post_init__(self) -> None:
        for name in ("rounds", "probe_queries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: must be 0 or more")
        for name in ("candidates", "top_k", "max_docs", "queries_per_doc", "neighbours", "dev_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        if self.top_k >= self.candidates:
            raise ValueError(f"top_k = {self.top_k} must be below candidates = {self.candidates}, "
                             "or no probed query could fail")
        if self.min_gain < 0:
            raise ValueError(f"min_gain = {self.min_gain}: must be 0 or more, e.g. 0.002")


@dataclass(frozen=True)
class RerankConfig:
    """``[rerank]``: rescore the top of the first-stage run with each system."""

    depth: int = 100  # how many first-stage documents per query are rescored
    below_depth: Literal["keep", "drop"] = "keep"  # keep: ranked after the rescored ones
    batch_size: int = 32
    max_length: int = 256
    threads: int = 0  # 0: every core
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bfloat16 where the chip has it
    # int8: the scorers' linear layers quantized dynamically (torch), CPU only (device auto: the CPU)
    quantize: Literal["none", "int8"] = "none"
    zero_shot: bool = True  # also rank with the untuned packaged encoder (cosine), a baseline
    extra_systems: list[str] = field(default_factory=list)  # "name=kind:model"
    # where the scoring runs: "local" or "ray" (one scorer per Ray actor; see inpars.distributed.settings)
    executor: Literal["local", "ray"] = "local"
    ray_address: str = ""  # "": start a local cluster; "auto"; or "host:port" / "ray://host:port"
    ray_actors: int = 2
    ray_actor_cpus: float = 1.0  # each actor's scorer computes with this many threads when threads = 0
    ray_actor_gpus: float = 0.0

    def __post_init__(self) -> None:
        check_executor(self)
        for name in ("depth", "batch_size", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        if self.threads < 0:
            raise ValueError(f"threads = {self.threads}: must be 0 or more")
        if self.quantize == "int8" and self.device not in ("auto", "cpu"):
            raise ValueError(f"quantize = 'int8' runs on the CPU only (torch dynamic quantization), but "
                             f"device = {self.device!r}. Fix: set device = 'cpu' (or 'auto'), "
                             "or quantize = 'none'")
        if self.quantize == "int8" and self.dtype == "bfloat16":
            raise ValueError("quantize = 'int8' computes in int8 and float32, not bfloat16. Fix: set dtype = "
                             "'auto' (or 'float32'), or quantize = 'none'")
        for spec in self.extra_systems:
            name, _, rest = spec.partition("=")
            kind, _, model = rest.partition(":")
            if not (name and kind and model):
                raise ValueError(
                    f"extra_systems entry {spec!r}: write it as 'name=kind:model', "
                    "e.g. 'my-ce=cross_encoder:/path/to/model'"
                )
        check_device(self.device)


_RANX_METRIC = re.compile(
    r"^(hits|hit_rate|precision|recall|f1|r-precision|mrr|map|dcg|dcg_burges|ndcg|ndcg_burges|bpref)"
    r"(@[1-9][0-9]*)?(-l[0-9]+)?$"
)


@dataclass(frozen=True)
class EvaluateConfig:
    """``[evaluate]``: ranx metrics, significance tests against a baseline, fused systems, reports."""

    metrics: list[str] = field(default_factory=lambda: ["ndcg@10", "recall@100", "mrr@10", "map@100"])
    baseline: str = "bm25"  # the system every other one is tested against
    stat_test: Literal["student", "fisher"] = "student"  # paired t-test or randomization test (ranx)
    max_p: float = 0.05  # p-values at or below this count as significant
    n_permutations: int = 1000  # fisher only
    fusion: list[list[str]] = field(default_factory=lambda: [["bm25", "dense"]])  # -> "bm25+dense"
    fusion_method: Literal[
        "rrf", "sum", "mnz", "max", "min", "med", "anz", "isr", "log_isr", "logn_isr", "bordafuse",
        "condorcet",
    ] = "rrf"
    fusion_norm: Literal["min-max", "max", "sum", "zmuv", "rank", "borda"] = "min-max"  # not used by rrf
    rrf_k: int = 60
    # system -> weight of the baseline in a per-query min-max interpolation, added as "<system>+interp"
    interpolate: dict[str, float] = field(default_factory=dict)
    # name -> {system: weight}: a weighted sum of several systems' per-query min-max normalized
    # scores (weights in [0, 1] adding up to 1), e.g. BM25 + an encoder + a cross-encoder
    mix: dict[str, dict[str, float]] = field(default_factory=dict)
    rounding_digits: int = 4
    plots: bool = True  # report.html plots (matplotlib)
    examples: int = 20  # synthetic queries listed in report.html
    # the data-quality section (inpars inspect's tables) and data.html, the browsable page of every
    # generated query, kept or dropped and why (in the run folder only: it quotes the documents)
    quality: bool = True
    # external systems reported beside the pipeline's: name -> TREC run file (relative paths from
    # the folder inpars runs in); `inpars evaluate CONFIG --run NAME=PATH` adds one for a call
    runs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("metrics is empty: name at least one, e.g. ['ndcg@10']")
        for metric in self.metrics:
            if not _RANX_METRIC.match(metric):
                raise ValueError(
                    f"metrics: {metric!r} is not a ranx metric; use names like 'ndcg@10', 'recall@100', "
                    "'mrr@10', 'map@100', 'precision@5', 'bpref' (optional '-lN' sets the relevance level)"
                )
        for system, weight in self.interpolate.items():
            if not 0 <= weight <= 1:
                raise ValueError(f"interpolate.{system} = {weight}: the baseline's weight must be in [0, 1]")
        for name, members in self.mix.items():
            _check_mix(name, members)
        if not 0 < self.max_p < 1:
            raise ValueError(f"max_p = {self.max_p}: must be in (0, 1), e.g. 0.05")
        for name in ("n_permutations", "rrf_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        if not 0 <= self.rounding_digits <= 8:
            raise ValueError(f"rounding_digits = {self.rounding_digits}: must be in [0, 8]")
        if self.examples < 0:
            raise ValueError(f"examples = {self.examples}: must be 0 or more")
        for name, path in self.runs.items():
            if not name or any(ch.isspace() for ch in name) or not path:
                raise ValueError(f"runs: {name!r} = {path!r}: name each run without spaces and give its "
                                 "TREC run file, e.g. runs = { \"splade\" = \"splade.trec\" }")
        for group in self.fusion:
            if len(group) < 2 or len(set(group)) != len(group):
                raise ValueError(
                    f"fusion group {group!r}: name two or more different systems, e.g. ['bm25', 'dense']"
                )


def _check_mix(name: str, members: dict[str, float]) -> None:
    """A mix names two or more systems with weights in [0, 1] that add up to 1."""
    example = '{ "bm25" = 0.5, "bm25+bi-zero-shot" = 0.3, "bm25+ce-synthetic" = 0.2 }'
    if len(members) < 2:
        raise ValueError(f"mix.{name}: name two or more systems with their weights, e.g. {example}")
    if any(not 0 <= w <= 1 for w in members.values()) or abs(sum(members.values()) - 1) > 1e-6:
        raise ValueError(f"mix.{name} = {members}: weights must be in [0, 1] and add up to 1 "
                         f"(they add up to {sum(members.values()):g}), e.g. {example}")
