"""Export a finished run's training data for other tools: Hugging Face datasets, Parquet, BEIR.

``inpars export CONFIG --format hf|parquet|beir --out DIR`` (:func:`export_run`):

* ``hf``: the negatives stage's ``examples.jsonl`` as a ``datasets.Dataset`` saved with
  ``save_to_disk`` (``datasets.load_from_disk(DIR)`` reads it back);
* ``parquet``: the same rows as ``DIR/train.parquet`` (``datasets.load_dataset(DIR)`` or any
  Parquet reader);
* ``beir``: the filter stage's kept synthetic queries as a BEIR folder: ``queries.jsonl``,
  ``qrels/train.tsv`` (each query relevant, grade 1, to the document it was written for) and
  ``corpus.jsonl``, which :func:`inpars.data.open_collection` reads back. The corpus is
  *copied* by default (the collection's documents, as inpars read them, in BEIR JSONL): the
  folder then stands alone, can be moved or uploaded, and works for ir_datasets sources, which
  have no file to link to. ``corpus="link"`` makes ``corpus.jsonl`` a symbolic link to the
  source's own JSONL corpus instead (no copy; the folder breaks if the source moves).

The rows of ``hf`` and ``parquet`` have the columns sentence-transformers trainers take:
``query``, ``positive``, ``negative_1`` .. ``negative_n`` and, when the negatives stage had a
teacher (``[negatives] teacher``), ``teacher_positive``, ``teacher_negative_1`` ..
``teacher_negative_n`` (the teacher's scores of those texts). Every row has the same ``n``:
the largest number of negatives of an example unless ``negatives`` asks for fewer; examples
with fewer are left out and counted. Every folder gets a dataset card (``README.md``) with the
run's summary: experiment, generator, template, filter steps, counts and seed. The folder is
written beside ``DIR`` and moved there when complete; an existing non-empty ``DIR`` is refused.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from inpars.errors import ConfigError, DependencyError, StageError
from inpars.io import atomic_open, read_records, write_text
from inpars.records import TrainingExample

if TYPE_CHECKING:
    from inpars.pipeline import Workspace

log = logging.getLogger(__name__)

Format = Literal["hf", "parquet", "beir"]
FORMATS: tuple[str, ...] = ("hf", "parquet", "beir")
PARQUET_FILE = "train.parquet"
CARD = "README.md"


@dataclass
class ExportResult:
    """What :func:`export_run` wrote."""

    format: str
    out_dir: Path
    rows: int
    columns: list[str]
    notes: list[str] = field(default_factory=list)


def export_run(ws: Workspace, fmt: str, out_dir: Path, *, negatives: int | None = None,
               corpus: Literal["copy", "link"] = "copy") -> ExportResult:
    """Export the run of ``ws`` in format ``fmt`` into ``out_dir`` (see the module doc)."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r}. Fix: use one of {', '.join(FORMATS)}")
    if negatives is not None and negatives < 1:
        raise ConfigError(f"negatives = {negatives}: must be at least 1. Fix: pass --negatives 1 or more")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir}: already exists and is not an empty folder. Fix: pass another --out, "
                          "or delete it first")
    stage = "filter" if fmt == "beir" else "negatives"
    _require_intact(ws, stage)
    with _building(out_dir) as tmp:
        result = _export_beir(ws, tmp, corpus) if fmt == "beir" else _export_rows(ws, fmt, tmp, negatives)
        result.out_dir = out_dir
        write_text(tmp / CARD, dataset_card(ws, result))
    log.info("export: %s, %d rows -> %s", fmt, result.rows, out_dir)
    return result


def _require_intact(ws: Workspace, stage: str) -> None:
    """The stage has finished and its outputs are still what it wrote."""
    from inpars.manifest import output_changes

    changed = output_changes(ws.manifest(stage), ws.stage_dir(stage))
    if changed:
        raise StageError(f"{ws.stage_dir(stage)}: the outputs of the '{stage}' stage changed after it "
                         f"finished: {'; '.join(changed)}. Fix: rerun `inpars {stage} "
                         f"{ws.config.source_path or 'CONFIG'} --force`")


@contextmanager
def _building(out_dir: Path) -> Iterator[Path]:
    """A temporary folder beside ``out_dir`` that becomes ``out_dir`` on success."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the usual permissions of a new folder
    try:
        yield tmp
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked before)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- rows (hf, parquet)
def training_columns(examples: Iterable[TrainingExample], negatives: int | None = None
                     ) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """The examples as columns (``query``, ``positive``, ``negative_1..n``, and the teacher's
    ``teacher_positive``, ``teacher_negative_1..n`` when every row has its scores) and counts
    (``rows``, ``negatives``, ``short``: examples left out with fewer than ``n`` negatives)."""
    examples = list(examples)
    n = negatives or max((len(e.negatives) for e in examples), default=0)
    if n < 1:
        raise StageError("the examples have no negatives to export. Fix: rerun `inpars negatives` with "
                         "[negatives] count of 1 or more")
    rows = [e for e in examples if len(e.negatives) >= n]
    teacher = bool(rows) and all(len(e.teacher_scores) >= n + 1 for e in rows)
    columns: dict[str, list[Any]] = {"query": [e.query for e in rows], "positive": [e.positive for e in rows]}
    for i in range(n):
        columns[f"negative_{i + 1}"] = [e.negatives[i] for e in rows]
    if teacher:
        columns["teacher_positive"] = [e.teacher_scores[0] for e in rows]
        for i in range(n):
            columns[f"teacher_negative_{i + 1}"] = [e.teacher_scores[i + 1] for e in rows]
    return columns, {"rows": len(rows), "negatives": n, "short": len(examples) - len(rows)}


def _datasets() -> Any:
    try:
        # `datasets` ships no type information; imported by name to keep mypy off it
        return importlib.import_module("datasets")
    except ImportError as exc:
        raise DependencyError("the Hugging Face `datasets` package is not installed. "
                              "Fix: pip install datasets") from exc


def _export_rows(ws: Workspace, fmt: str, tmp: Path, negatives: int | None) -> ExportResult:
    examples = read_records(ws.output("negatives", "examples"), TrainingExample)
    columns, counts = training_columns(examples, negatives)
    if not counts["rows"]:
        raise StageError(f"{ws.stage_dir('negatives')}: no example has {counts['negatives']} negatives. "
                         "Fix: pass fewer with --negatives")
    dataset = _datasets().Dataset.from_dict(columns)
    if fmt == "hf":
        dataset.save_to_disk(str(tmp))
    else:
        dataset.to_parquet(str(tmp / PARQUET_FILE))
    notes = [f"{counts['short']} examples with fewer than {counts['negatives']} negatives left out"] \
        if counts["short"] else []
    if any(k.startswith("teacher_") for k in columns):
        notes.append("teacher scores included (teacher_* columns)")
    return ExportResult(fmt, tmp, counts["rows"], list(columns), notes)


# --------------------------------------------------------------------------- beir
def _export_beir(ws: Workspace, tmp: Path, corpus: str) -> ExportResult:
    from inpars.data import FileCollection

    kept = ws.kept_queries()
    with atomic_open(tmp / "queries.jsonl") as handle:
        for q in kept:
            metadata = {"doc_id": q.doc_id, "template": q.template, "model": q.model,
                        "mean_logprob": q.mean_logprob}
            handle.write(json.dumps({"_id": q.query_id, "text": q.text, "metadata": metadata},
                                    ensure_ascii=False) + "\n")
    with atomic_open(tmp / "qrels" / "train.tsv") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"{q.query_id}\t{q.doc_id}\t1\n" for q in kept)
    collection = ws.collection
    if corpus == "link":
        if not isinstance(collection, FileCollection) or collection.corpus_path.suffix != ".jsonl":
            raise ConfigError(f"corpus = 'link' needs a JSONL corpus file, but the collection "
                              f"{collection.name} has none. Fix: copy the corpus (the default)")
        source = collection.corpus_path.resolve()
        (tmp / "corpus.jsonl").symlink_to(source)
        note = f"corpus.jsonl is a link to {source} (not copied)"
    else:
        with atomic_open(tmp / "corpus.jsonl") as handle:
            for doc in collection.docs():
                handle.write(json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text},
                                        ensure_ascii=False) + "\n")
        note = f"corpus.jsonl copied from {collection.name}"
    return ExportResult("beir", tmp, len(kept), ["corpus.jsonl", "queries.jsonl", "qrels/train.tsv"], [note])


# --------------------------------------------------------------------------- dataset card
def run_summary(ws: Workspace) -> list[tuple[str, str]]:
    """The run's manifests in a few rows: experiment, generator, template, filter, counts, seed."""
    generate, filtered = ws.manifest("generate"), ws.manifest("filter")
    gen_extra, gen_config = generate.get("extra", {}), generate.get("config", {}).get("generate", {})
    steps = filtered.get("extra", {}).get("steps") or filtered.get("config", {}).get("steps", [])
    drops = ", ".join(f"{k} {v}" for k, v in sorted(filtered.get("drops", {}).items()))
    rows = [
        ("experiment", ws.name),
        ("collection", ws.config.data.source or ws.config.data.fallback),
        ("generator", f"{gen_extra.get('model', gen_config.get('model', '?'))} "
                      f"({gen_extra.get('backend', gen_config.get('backend', '?'))})"),
        ("template", str(gen_extra.get("template", gen_config.get("template", "?")))),
        ("documents / generated queries",
         f"{generate.get('counts', {}).get('docs', '?')} / {generate.get('counts', {}).get('queries', '?')}"),
        ("filter steps", " → ".join(steps) or "-"),
        ("kept / dropped queries",
         f"{filtered.get('counts', {}).get('kept', '?')} / {filtered.get('counts', {}).get('dropped', '?')}"),
        ("drops by reason", drops or "-"),
    ]
    if ws.finished("negatives"):
        negatives = ws.manifest("negatives")
        config = negatives.get("config", {})
        rows += [("negatives", f"{config.get('count', '?')} from {config.get('retriever', '?')} "
                               f"({config.get('sampling', '?')}), teacher {config.get('teacher', 'none')}"),
                 ("training examples", str(negatives.get("counts", {}).get("examples", "?")))]
    rows.append(("seed", str(ws.config.experiment.seed)))
    return rows


def dataset_card(ws: Workspace, result: ExportResult) -> str:
    """``README.md`` of an exported folder: a Hugging Face dataset card with the run's summary."""
    front = ["---", f"pretty_name: {json.dumps(f'{ws.name} synthetic training data (inpars)')}",
             "task_categories:", "- text-retrieval", "tags:", "- inpars", "- synthetic"]
    if result.format == "parquet":
        front += ["configs:", "- config_name: default", "  data_files:", "  - split: train",
                  f"    path: {PARQUET_FILE}"]
    usage = {
        "hf": f"`datasets.load_from_disk(\"{result.out_dir.name}\")`",
        "parquet": f"`datasets.load_dataset(\"{result.out_dir.name}\")` or any Parquet reader "
                   f"({PARQUET_FILE})",
        "beir": "`inpars.data.open_collection(folder)` or any BEIR reader (split `train`)",
    }[result.format]
    summary = "\n".join(f"| {key} | {value} |" for key, value in run_summary(ws))
    body = [
        f"# {ws.name}: synthetic training data",
        f"Synthetic queries written by a language model for the documents of a collection, filtered "
        f"and paired with mined hard negatives by inpars. {result.rows} rows; read with {usage}.",
        f"Written by `inpars export` ({result.format}) from `{ws.run_dir}`.",
        "## Columns", _columns_text(result),
        "## How it was made", "| | |\n|---|---|\n" + summary,
    ]
    if result.notes:
        body += ["## Notes", "\n".join(f"- {note}" for note in result.notes)]
    return "\n".join([*front, "---", ""]) + "\n\n".join(body) + "\n"


def _columns_text(result: ExportResult) -> str:
    if result.format == "beir":
        return ("A BEIR folder: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`, "
                "`metadata` with the source document, template, model and mean log-prob) and "
                "`qrels/train.tsv` (each query relevant, grade 1, to the document it was written for).")
    teacher = [c for c in result.columns if c.startswith("teacher_")]
    texts = [c for c in result.columns if not c.startswith("teacher_")]
    text = (f"`{'`, `'.join(texts)}`: the sentence-transformers layout (anchor, positive, hard negatives); "
            "MultipleNegativesRankingLoss and CachedMultipleNegativesRankingLoss train on these columns "
            "directly.")
    if teacher:
        text += (f" `{'`, `'.join(teacher)}`: the teacher's scores of those texts (GPL-style soft labels). "
                 "A trainer reads every column but `label` / `score` as a text, so select the text columns "
                 "for a contrastive loss (`dataset.select_columns([...])`), or turn the scores into a "
                 "`label` column (positive minus negative margins) for MarginMSE.")
    return text
