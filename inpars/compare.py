"""Compare any search systems' TREC run files on any qrels, without an experiment config.

``inpars compare --qrels QRELS RUN [RUN ...]`` evaluates run files written by any tool
(Pyserini, Anserini, PyTerrier, trec_eval-style scripts...) with the project's evaluator
(:func:`inpars.evaluation.evaluate_runs`: ranx metrics, paired tests Holm-corrected per
metric) and writes the usual report.md, report.html and metrics.json
(:func:`inpars.evaluation.write_reports`). The evaluate stage reads the external runs of
``[evaluate] runs`` through the same reader (:func:`read_run`).

Qrels (:func:`load_qrels`): a TREC qrels file (``qid 0 docid rel``), a BEIR qrels file
(``query-id<TAB>corpus-id<TAB>score`` with or without its header), a BEIR folder (its
``test`` split), or an ir_datasets id such as ``beir/scifact/test`` (read through
:mod:`inpars.data`, which checks the judgements against the corpus: the corpus is read once).

Run files (:func:`read_run`) are checked line by line (:func:`inpars.trec.iter_trec_run`, the
reader of every run file); a wrong number of fields, a score that is not a finite number and a
(query, document) pair listed twice are errors naming the file and line. What other tools do
differently is accepted: tabs or runs of spaces between fields, scores in scientific notation,
rank columns that disagree with the scores (every run is ranked by its scores; see
:data:`TIE_RULE`), queries missing from a run (they score 0) and queries the qrels do not
judge (ignored); the report counts each of them per run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from inpars.config import EvaluateConfig
from inpars.errors import BadLineError, ConfigError, DataError
from inpars.evaluation.metrics import Evaluation
from inpars.records import Qrel, ScoredPair
from inpars.trec import TREC_RUN_FORMAT, RunEntry, iter_trec_run

log = logging.getLogger(__name__)

TIE_RULE = (
    "Every run is ranked by its scores; the rank column of a run file is not used. Tied scores are "
    "broken by document id in descending string order, as trec_eval does."
)


@dataclass
class RunFile:
    """A run file read and checked: its pairs per query, best first with ties broken by
    :data:`TIE_RULE` (tied scores are moved apart by the smallest float steps, so that any
    evaluator ranks them in this order), and what reading it found."""

    name: str
    path: Path
    pairs: dict[str, list[ScoredPair]]
    lines: int  # run entries read (blank lines not counted)
    rank_disagreements: int = 0  # queries whose rank column orders documents unlike the scores
    tied_queries: int = 0  # queries with tied scores
    unjudged: int = 0  # queries the qrels do not judge (ignored), set by judge()
    missing: int = 0  # judged queries the run has no results for (scored 0), set by judge()

    @property
    def queries(self) -> int:
        return len(self.pairs)

    def judge(self, judged: Collection[str]) -> RunFile:
        """Count the run's queries without judgements and the judged queries it lacks."""
        self.unjudged = sum(1 for q in self.pairs if q not in judged)
        self.missing = sum(1 for q in judged if q not in self.pairs)
        return self


def read_run(path: Path | str, name: str = "") -> RunFile:
    """Read and check a TREC run file (:func:`inpars.trec.iter_trec_run`; see the module doc);
    ``name`` defaults to the file's stem. Raises :class:`BadLineError` (file, line, field, fix)
    on the first bad line."""
    p = Path(path)
    entries: dict[str, list[RunEntry]] = {}
    for entry in iter_trec_run(p):
        entries.setdefault(entry.query_id, []).append(entry)
    lines = sum(len(found) for found in entries.values())
    if not lines:
        raise DataError(f"{p}: no run entries. Fix: {TREC_RUN_FORMAT}, one line per retrieved document")
    run = RunFile(name or p.stem, p, {}, lines)
    for query_id, found in entries.items():
        run.pairs[query_id] = _ranked(query_id, found, run)
    return run


def _ranked(query_id: str, entries: list[RunEntry], run: RunFile) -> list[ScoredPair]:
    """One query's pairs best first (:data:`TIE_RULE`), counting disagreeing ranks and ties."""
    ranked_in_file = all(e.rank is not None for e in entries)  # else: in line order
    by_file = sorted(entries, key=lambda e: (e.rank or 0, e.line)) if ranked_in_file else entries
    ordered = sorted(entries, key=lambda e: (e.score, e.doc_id), reverse=True)
    run.rank_disagreements += any(a.score < b.score for a, b in pairwise(by_file))
    tied = any(a.score == b.score for a, b in pairwise(ordered))
    run.tied_queries += tied
    if not tied:
        return [ScoredPair(query_id, e.doc_id, e.score) for e in ordered]
    pairs, previous = [], math.inf
    for entry in ordered:
        score = entry.score if entry.score < previous else math.nextafter(previous, -math.inf)
        pairs.append(ScoredPair(query_id, entry.doc_id, score))
        previous = score
    return pairs


# --------------------------------------------------------------------------- qrels
@dataclass(frozen=True)
class QrelsSource:
    """Judgements to compare on, where they came from, and the judged queries' texts when known."""

    qrels: list[Qrel]
    label: str
    query_texts: dict[str, str] = field(default_factory=dict)


def read_qrels_file(path: Path) -> list[Qrel]:
    """A TREC (``qid 0 docid rel``) or BEIR (``query-id corpus-id score``, header optional)
    qrels file, fields separated by tabs or spaces; told apart by the first line."""
    from inpars.data.files import HEADER_FIRST_COLUMNS, iter_text_lines

    qrels: list[Qrel] = []
    seen: dict[tuple[str, str], int] = {}
    width = 0
    fix = "write TREC qrels 'qid 0 docid relevance' or BEIR 'query-id<TAB>corpus-id<TAB>score' lines"
    for number, line in iter_text_lines(path, None):
        words = line.split()
        if not width and words[0].lower() in HEADER_FIRST_COLUMNS:
            width = 3  # the BEIR header
            continue
        width = width or len(words)
        if width not in (3, 4) or len(words) != width:
            raise BadLineError(path, number, None, f"{len(words)} fields"
                               + (f" instead of {width}" if width in (3, 4) else ": not a qrels line"), fix)
        query_id, doc_id, grade = (words[0], words[2], words[3]) if width == 4 else words
        try:
            relevance = int(grade)
        except ValueError:
            raise BadLineError(path, number, "relevance", f"{grade!r} is not an integer",
                               "write an integer grade (0 = not relevant, 1, 2, ...)") from None
        if (query_id, doc_id) in seen:
            raise BadLineError(path, number, "doc id", f"second judgement of document {doc_id!r} for query "
                               f"{query_id!r} (first at line {seen[query_id, doc_id]})",
                               "keep one judgement per query and document")
        seen[query_id, doc_id] = number
        qrels.append(Qrel(query_id, doc_id, relevance))
    if not qrels:
        raise DataError(f"{path}: no judgements. Fix: {fix}")
    return qrels


def load_qrels(source: str | Path) -> QrelsSource:
    """Judgements from a qrels file, a BEIR folder (its ``test`` split, or its only one) or
    an ir_datasets id (its own split: ``beir/scifact/test`` -> ``test``)."""
    from inpars.data import IrDatasetsCollection, open_collection
    from inpars.data.irds import is_registered

    text = str(source).strip()
    path = Path(text).expanduser()
    if path.is_file():
        return QrelsSource(read_qrels_file(path), str(path))
    if path.is_dir():
        collection = open_collection(path)
        splits = collection.splits()
        split = "test" if "test" in splits else splits[0] if len(splits) == 1 else ""
        if not split:
            raise DataError(f"{path}: a BEIR folder with the qrels splits {splits or 'none'} and no 'test'. "
                            "Fix: pass the qrels file itself, e.g. --qrels "
                            f"{path / 'qrels' / ((splits or ['test'])[0] + '.tsv')}")
        label = f"{path} ({split} split)"
    elif is_registered(text):
        collection = IrDatasetsCollection(text)
        split = collection.splits()[0] if collection.splits() else ""
        if not split:
            raise DataError(f"{text}: this ir_datasets dataset has no qrels. Fix: use an id with "
                            "judgements, e.g. beir/scifact/test")
        label = f"ir_datasets {collection.dataset_id}"
    else:
        raise DataError(f"{text}: no such qrels file or folder, and not an ir_datasets id. Fix: pass a TREC "
                        "or BEIR qrels file, a BEIR folder, or an ir_datasets id such as beir/scifact/test")
    log.info("compare: reading the judgements of %s", label)
    texts = {q.query_id: q.text for q in collection.split_queries(split)}
    return QrelsSource(collection.qrels(split), label, texts)


# --------------------------------------------------------------------------- comparing
@dataclass(frozen=True)
class Comparison:
    """What :func:`compare_runs` measured and wrote."""

    evaluation: Evaluation
    runs: list[RunFile]
    qrels: str
    out_dir: Path
    written: dict[str, Path]


def compare_config(metrics: Sequence[str] = (), baseline: str = "", stat_test: str = "student",
                   *, plots: bool = True) -> EvaluateConfig:
    """The ``[evaluate]`` settings of a config-free comparison: no fusion, no interpolation;
    empty ``metrics`` keep the evaluate stage's defaults. Bad values are :class:`ConfigError`."""
    if stat_test not in ("student", "fisher"):
        raise ConfigError(f"compare: stat_test = {stat_test!r}. Fix: use 'student' or 'fisher'")
    settings: dict[str, object] = {"baseline": baseline, "stat_test": stat_test, "fusion": [], "plots": plots}
    if metrics:
        settings["metrics"] = list(metrics)
    try:
        return EvaluateConfig(**settings)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"compare: {exc}. Fix: see `inpars compare --help`") from None


def default_out_dir(now: datetime | None = None) -> Path:
    """``runs/compare-<local time>/`` (``runs/`` is git-ignored, beside the experiments)."""
    return Path("runs") / f"compare-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}"


def run_names(paths: Sequence[Path], names: Sequence[str] = ()) -> list[str]:
    """The system name of each run: ``names`` in order, else the files' stems (unique)."""
    chosen = list(names) or [p.stem for p in paths]
    if len(chosen) != len(paths):
        raise ConfigError(f"compare: {len(chosen)} names for {len(paths)} run files. "
                          "Fix: give one --names entry per run file, in the same order")
    repeated = sorted({n for n in chosen if chosen.count(n) > 1})
    if repeated:
        raise ConfigError(f"compare: the run name(s) {', '.join(repeated)} are used twice. "
                          "Fix: name the runs with --names (one per file)")
    return chosen


def compare_runs(qrels: QrelsSource, runs: Mapping[str, Path], cfg: EvaluateConfig, out_dir: Path,
                 *, command: str = "", seed: int = 42) -> Comparison:
    """Evaluate run files (system name -> path) on ``qrels`` and write the reports into
    ``out_dir``; ``cfg.baseline`` empty: the first run is the baseline."""
    import dataclasses

    from inpars.evaluation import evaluate_runs, write_reports

    if not runs:
        raise ConfigError("compare: no run files. Fix: pass at least one TREC run file")
    if not cfg.baseline:
        cfg = dataclasses.replace(cfg, baseline=next(iter(runs)))
    if cfg.baseline not in runs:
        raise ConfigError(f"compare: the baseline {cfg.baseline!r} is not one of the runs "
                          f"({', '.join(runs)}). Fix: pass --baseline with one of them")
    judged = {q.query_id for q in qrels.qrels}
    files = [read_run(path, name).judge(judged) for name, path in runs.items()]
    ev = evaluate_runs(qrels.qrels, {f.name: f.pairs for f in files}, cfg, seed=seed)
    sections = {"Run files": runs_section(files), "Judgements": f"Read from {qrels.label}."}
    written = write_reports(ev, out_dir, cfg, command=command, title="Comparison of run files",
                            extra_sections=sections, query_texts=qrels.query_texts)
    return Comparison(ev, files, qrels.label, out_dir, written)


def run_notes(run: RunFile) -> list[str]:
    """What reading ``run`` found, in words (empty when nothing is worth saying)."""
    notes = []
    if run.unjudged:
        notes.append(f"{run.unjudged} queries without judgements (ignored)")
    if run.missing:
        notes.append(f"{run.missing} judged queries missing (scored 0)")
    if run.rank_disagreements:
        notes.append(f"rank column disagrees with the scores on {run.rank_disagreements} queries "
                     "(ranked by score)")
    if run.tied_queries:
        notes.append(f"tied scores on {run.tied_queries} queries (broken by document id)")
    return notes


def runs_section(files: Sequence[RunFile]) -> str:
    """A report section (Markdown): each run file, its size and what reading it found."""
    from inpars.evaluation.report_md import md_cell

    rows = ["| System | File | Queries | Lines | Notes |", "|---|---|---:|---:|---|"]
    for run in files:
        notes = "; ".join(run_notes(run)) or "-"
        rows.append(f"| {md_cell(run.name)} | {md_cell(str(run.path))} | {run.queries} | {run.lines} | "
                    f"{md_cell(notes)} |")
    return "\n".join(rows) + "\n\n" + TIE_RULE
