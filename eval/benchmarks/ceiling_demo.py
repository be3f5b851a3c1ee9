"""The SciFact demo's generation workload, for the ceiling benchmark: its config, prompt
prefix, documents, and the figures the ceiling is computed from.

- the documents are the demo's (``[generate] num_docs`` drawn with the experiment's seed,
  :func:`inpars.generation.selection.choose_documents`), their prompts built as the
  generate stage builds them (template, few-shot examples from the train split, each
  document cut to ``doc_max_tokens``);
- the document part of a prompt (the suffix after the cached few-shot prefix) is counted
  in tokens of the model's own tokenizer, over every chosen document;
- the typical query is the mean token count of the queries a finished demo run kept
  (``runs/<experiment>/generate/shards/*.jsonl``): the decoding steps a sample needs.

Shared by the benchmark process and its pipeline workers, which may run an older inpars
(``--baseline``): it uses only the library calls every version since the ceiling benchmark
has had.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Demo:
    """The demo's generate section, collection, few-shot examples and chosen documents."""

    config: Any
    collection: Any
    examples: list[Any]
    doc_ids: list[str]

    @property
    def generate(self) -> Any:
        return self.config.generate

    @property
    def seed(self) -> int:
        return int(self.config.experiment.seed)

    def documents(self, ids: Iterable[str]) -> list[Any]:
        from inpars.generation.selection import iter_documents

        return list(iter_documents(self.collection, list(ids)))

    def builder(self, truncate: Callable[[str, int], str]) -> Any:
        """The prompt builder of the generate stage, on a tokenizer's ``truncate``."""
        from inpars.generation.prompts import PromptBuilder
        from inpars.generation.templates import load_template

        cfg = self.generate
        return PromptBuilder(
            load_template(cfg.template),
            truncate=truncate,
            doc_max_tokens=cfg.doc_max_tokens,
            examples=self.examples,
            example_max_tokens=cfg.example_max_tokens,
        )


def generate_config(config_path: Path) -> tuple[Any, list[str]]:
    """The config's experiment, data and generate sections, less the keys this inpars does
    not know (an older one, ``--baseline``, refuses them otherwise), and those keys."""
    import dataclasses
    import tomllib

    from inpars import config as schema

    data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    kept: dict[str, dict[str, Any]] = {}
    dropped: list[str] = []
    for section, cls in (("experiment", schema.ExperimentConfig), ("data", schema.DataConfig),
                         ("generate", schema.GenerateConfig)):
        known = {f.name for f in dataclasses.fields(cls)}
        values = data.get(section, {})
        kept[section] = {k: v for k, v in values.items() if k in known}
        dropped += [f"[{section}] {k}" for k in values if k not in known]
    return schema.parse_config(kept, str(config_path)), dropped


def load_demo(config_path: Path, *, choose: bool = True) -> Demo:
    """The demo as ``inpars run CONFIG`` would see it (paths relative to the current
    folder, the repository root); ``choose``: also draw its documents."""
    from inpars.data import open_collection
    from inpars.generation.prompts import select_examples
    from inpars.generation.templates import load_template

    config, dropped = generate_config(config_path)
    if dropped:
        log.warning("%s: this inpars does not know %s; left out", config_path, ", ".join(dropped))
    template = load_template(config.generate.template)
    if getattr(template, "uses_neighbours", False):  # an older inpars (--baseline) may lack it
        raise SystemExit(f"{config_path}: the {template.name!r} template shows BM25 neighbours, which this "
                         "benchmark does not search. Fix: use a config with another template")
    collection = open_collection(config.data.source, fallback=config.data.fallback)
    examples: list[Any] = []
    if template.uses_examples:
        examples = select_examples(collection, train_split=config.data.train_split,
                                   test_split=config.data.test_split, k=config.generate.num_examples,
                                   seed=config.experiment.seed)
    doc_ids: list[str] = []
    if choose:
        from inpars.generation.selection import choose_documents

        doc_ids, _ = choose_documents(collection, num_docs=config.generate.num_docs,
                                      how=config.generate.doc_sampling, seed=config.experiment.seed)
    return Demo(config, collection, examples, doc_ids)


def spread(values: list[float]) -> dict[str, float]:
    """Mean, median, 10th and 90th percentiles, extremes and count of some values."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}

    def pct(q: float) -> float:
        return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])

    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 2),
        "median": float(statistics.median(ordered)),
        "p10": pct(0.1),
        "p90": pct(0.9),
        "min": float(ordered[0]),
        "max": float(ordered[-1]),
    }


def suffix_tokens(demo: Demo, builder: Any, count_tokens: Callable[[str], int], docs: int) -> list[int]:
    """Tokens of the document part of the prompt of each of the first ``docs`` chosen documents."""
    return [count_tokens(builder.build(doc).suffix) for doc in demo.documents(demo.doc_ids[:docs])]


def kept_query_tokens(run_folder: Path) -> list[int]:
    """Tokens of every query a finished generate stage kept (its per-token log-probs)."""
    counts: list[int] = []
    for path in sorted((run_folder / "shards").glob("part-*.jsonl")):
        if path.name.endswith((".rejects.jsonl", ".progress.jsonl")):
            continue
        with open(path, encoding="utf-8") as handle:
            counts += [len(json.loads(line)["token_logprobs"]) for line in handle if line.strip()]
    return counts


def run_rejects(run_folder: Path) -> dict[str, Any]:
    """What the finished run's generate manifest says of its samples (for the report)."""
    path = run_folder / "manifest.json"
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return {"counts": manifest.get("counts", {}), "drops": manifest.get("drops", {}),
            "throughput": manifest.get("extra", {}).get("throughput", {})}
