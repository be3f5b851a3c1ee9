"""Collections stored as local files: a BEIR folder, or plain corpus/queries/qrels files.

Formats read:

* corpus: JSONL (``{"_id" | "doc_id" | "id", "title"?, "text"}``, other keys ignored; other
  key names through ``columns``), TSV (``id<TAB>text`` or ``id<TAB>title<TAB>text``, an
  optional header line), or a table: a Parquet file or folder, or a Hugging Face dataset
  folder (:mod:`inpars.data.tables`);
* queries: JSONL (``{"_id" | "query_id" | "id", "text"}``) or TSV (``id<TAB>text``);
* qrels: BEIR TSV with the header ``query-id<TAB>corpus-id<TAB>score``, or TREC qrels
  (``qid iteration docid relevance``, no header), told apart by their first line.

Files are opened read-only and streamed line by line.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from inpars.bad_lines import SKIP_HINT, LineReport, handle_bad_line
from inpars.data.collection import Collection, Where
from inpars.data.tables import TableCorpus, table_kind
from inpars.errors import BadLineError, DataError
from inpars.io import iter_json_lines
from inpars.records import Document, Qrel, Query

log = logging.getLogger(__name__)

DOC_ID_KEYS = ("_id", "doc_id", "id")
QUERY_ID_KEYS = ("_id", "query_id", "id")
HEADER_FIRST_COLUMNS = frozenset(
    {"id", "_id", "doc_id", "docid", "doc-id", "corpus-id", "query_id", "query-id", "qid"}
)
QRELS_HEADER = "query-id\tcorpus-id\tscore"
BEIR_LAYOUT = "corpus.jsonl (or corpus.parquet), queries.jsonl and qrels/<split>.tsv"

Format = Literal["jsonl", "tsv"]


def file_format(path: Path, what: str) -> Format:
    """``jsonl`` or ``tsv``, from the file name."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".tsv", ".tab", ".txt"):
        return "tsv"
    raise DataError(
        f"{path}: cannot tell the format of this {what} file from its name. "
        "Fix: name it .jsonl (one JSON object a line) or .tsv (id<TAB>text)"
    )


def iter_text_lines(path: Path, report: LineReport | None) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` for the non-blank lines of a UTF-8 text file,
    without the line ending; a line with bytes that are not UTF-8 is a bad line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                column = raw[: exc.start].count(b"\t") + 1
                handle_bad_line(BadLineError(
                    path, number, f"column {column}", f"bytes that are not UTF-8 at byte {exc.start + 1}",
                    f"re-encode the file as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8), {SKIP_HINT}",
                    reason="not UTF-8",
                ), report)
                continue
            if line.strip():
                yield number, line


def _json_id(obj: dict[str, Any], keys: tuple[str, ...], path: Path, line: int, kind: str) -> tuple[str, str]:
    """``(key, id)`` of a JSON record: the first of ``keys`` present; ints become strings."""
    for key in keys:
        if key in obj:
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise BadLineError(path, line, key, f"{kind} id must be a string, got {value!r:.40}",
                                   f'write "{key}" as a string, like "{kind[0]}1"', reason="bad id type")
            return key, str(value)
    alternatives = " (or " + " or ".join(f'"{k}"' for k in keys[1:]) + ")" if keys[1:] else ""
    raise BadLineError(path, line, keys[0], f"no {kind} id",
                       f'give each {kind} an "{keys[0]}"{alternatives}, {SKIP_HINT}',
                       reason=f"missing {kind} id")


def _json_text(obj: dict[str, Any], key: str, path: Path, line: int, *, required: bool) -> str:
    if key not in obj:
        if required:
            raise BadLineError(path, line, key, f'missing field "{key}"',
                               f'add "{key}" to every line (it may be ""), {SKIP_HINT}',
                               reason=f"missing {key}")
        return ""
    value = obj[key]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadLineError(path, line, key, f"must be a string, got {type(value).__name__}",
                           f'write "{key}" as a JSON string, {SKIP_HINT}', reason=f"{key} not a string")
    return value


def _columns_error(path: Path, line: int, found: int, expected: str) -> BadLineError:
    return BadLineError(path, line, None, f"{found} tab-separated column(s)",
                        f"write {expected}, separated by single tabs, {SKIP_HINT}",
                        reason="wrong number of columns")


class FileCollection(Collection):
    """A collection read from local files (see the module doc for the formats)."""

    def __init__(
        self,
        corpus: Path | str,
        queries: Path | str | None = None,
        qrels: Mapping[str, Path | str] | None = None,
        *,
        name: str = "",
        report: LineReport | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        self.corpus_path = Path(corpus)
        self.columns = dict(columns or {})
        self._table = TableCorpus(self.corpus_path, self.columns) if table_kind(self.corpus_path) else None
        if self._table is None:
            if not self.corpus_path.is_file():
                raise DataError(f"{self.corpus_path}: corpus file not found. Fix: check the path")
            self._corpus_format = file_format(self.corpus_path, "corpus")
            if self.columns and self._corpus_format == "tsv":
                raise DataError(f"{self.corpus_path}: [data] columns names JSON keys or table columns, "
                                "but a TSV corpus has fixed columns (id, title, text). "
                                "Fix: remove [data] columns")
        self.queries_path = Path(queries) if queries is not None else None
        if self.queries_path is not None:
            if not self.queries_path.is_file():
                raise DataError(f"{self.queries_path}: queries file not found. Fix: check the path")
            self._queries_format = file_format(self.queries_path, "queries")
        self.qrels_paths = {split: Path(p) for split, p in (qrels or {}).items()}
        for split, path in self.qrels_paths.items():
            if not path.is_file():
                raise DataError(f"{path}: qrels file of split '{split}' not found. Fix: check the path")
        if self.qrels_paths and self.queries_path is None:
            raise DataError(
                f"{self.corpus_path}: judgements (qrels) were given without queries. "
                "Fix: give the queries file too, or leave the qrels out"
            )
        if not name and self._table is not None:
            name = self._table.name
        if not name:
            stem = self.corpus_path.name.split(".")[0]
            name = self.corpus_path.resolve().parent.name if stem == "corpus" else stem
        super().__init__(name, report=report)

    @classmethod
    def from_beir(
        cls,
        folder: Path | str,
        *,
        name: str = "",
        report: LineReport | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> FileCollection:
        """A BEIR folder; ``queries.jsonl`` and ``qrels/`` may be absent (a bare corpus), and
        ``corpus.parquet`` may stand for ``corpus.jsonl``."""
        root = Path(folder)
        if not root.is_dir():
            raise DataError(
                f"{root}: folder not found. Fix: point [data].source at a BEIR folder ({BEIR_LAYOUT}) "
                "or use an ir_datasets id such as beir/scifact/test"
            )
        corpus = root / "corpus.jsonl"
        if not corpus.is_file() and (root / "corpus.parquet").is_file():
            corpus = root / "corpus.parquet"
        if not corpus.is_file():
            raise DataError(
                f"{root}: no corpus.jsonl in this folder. Fix: a BEIR folder holds {BEIR_LAYOUT}; "
                "a corpus alone may also be a Parquet file or folder or a Hugging Face dataset folder "
                "(datasets' save_to_disk); for other files use "
                "FileCollection(corpus, queries, {split: qrels})"
            )
        queries: Path | None = root / "queries.jsonl"
        qrels = {p.stem: p for p in sorted((root / "qrels").glob("*.tsv"))}
        if queries is not None and not queries.is_file():
            if qrels:
                raise DataError(
                    f"{root}: qrels/ is there but queries.jsonl is missing. "
                    "Fix: add queries.jsonl (one {\"_id\", \"text\"} a line) or remove qrels/"
                )
            log.info("%s: no queries.jsonl; reading the corpus only", root)
            queries = None
        return cls(corpus, queries, qrels, name=name or root.resolve().name, report=report, columns=columns)

    # ------------------------------------------------------------------ Collection hooks
    def splits(self) -> list[str]:
        return list(self.qrels_paths)

    def source_files(self) -> list[Path]:
        files = list(self._table.files) if self._table is not None else [self.corpus_path]
        if self.queries_path is not None:
            files.append(self.queries_path)
        return files + list(self.qrels_paths.values())

    def _read_docs(self) -> Iterator[tuple[Where, Document]]:
        if self._table is not None:
            return self._table.read(self._bad)
        if self._corpus_format == "jsonl":
            id_keys = (self.columns["doc_id"],) if "doc_id" in self.columns else DOC_ID_KEYS
            return self._json_records(self.corpus_path, id_keys, "document")
        return self._tsv_docs(self.corpus_path)

    def _read_queries(self, split: str | None) -> Iterator[tuple[Where, Query]]:
        if self.queries_path is None:
            return iter(())
        if self._queries_format == "jsonl":
            return (
                (where, Query(doc.doc_id, doc.text))
                for where, doc in self._json_records(self.queries_path, QUERY_ID_KEYS, "query")
            )
        return self._tsv_queries(self.queries_path)

    def _read_qrels(self, split: str) -> Iterator[tuple[Where, Qrel]]:
        path = self.qrels_paths[split]
        layout: Literal["beir", "trec"] | None = None
        for number, line in iter_text_lines(path, self.report):
            if layout is None:
                layout = self._qrels_layout(path, number, line)
                if layout is None:
                    continue
                if line.split("\t")[0].strip().lower() in HEADER_FIRST_COLUMNS:
                    continue  # the BEIR header line
            try:
                yield self._qrel(path, number, line, layout)
            except BadLineError as error:
                self._bad(error)

    # ------------------------------------------------------------------ parsing
    def _json_records(
        self, path: Path, id_keys: tuple[str, ...], kind: str
    ) -> Iterator[tuple[Where, Document]]:
        """Documents (or queries, as documents without title) of a JSONL file."""
        for number, obj in iter_json_lines(path, report=self.report, allow_torn_tail=False):
            try:
                key, record_id = _json_id(obj, id_keys, path, number, kind)
                title_key, text_key = (self.columns.get("title", "title"), self.columns.get("text", "text")
                                       ) if kind == "document" else ("", "text")
                title = _json_text(obj, title_key, path, number, required=False) if title_key else ""
                text = _json_text(obj, text_key, path, number, required=True)
            except BadLineError as error:
                self._bad(error)
                continue
            yield Where(str(path), number, key, text_key), Document(record_id, text, title)

    def _tsv_docs(self, path: Path) -> Iterator[tuple[Where, Document]]:
        first = True
        for number, line in iter_text_lines(path, self.report):
            columns = line.split("\t")
            if first and columns[0].strip().lower() in HEADER_FIRST_COLUMNS:
                first = False
                continue
            first = False
            if len(columns) == 2:
                doc = Document(columns[0].strip(), columns[1])
            elif len(columns) == 3:
                doc = Document(columns[0].strip(), columns[2], columns[1])
            else:
                self._bad(_columns_error(path, number, len(columns), "id, text or id, title, text"))
                continue
            yield Where(str(path), number, "column 1 (id)", f"column {len(columns)} (text)"), doc

    def _tsv_queries(self, path: Path) -> Iterator[tuple[Where, Query]]:
        first = True
        for number, line in iter_text_lines(path, self.report):
            columns = line.split("\t")
            if first and columns[0].strip().lower() in HEADER_FIRST_COLUMNS:
                first = False
                continue
            first = False
            if len(columns) != 2:
                self._bad(_columns_error(path, number, len(columns), "id, text"))
                continue
            where = Where(str(path), number, "column 1 (id)", "column 2 (text)")
            yield where, Query(columns[0].strip(), columns[1])

    def _qrels_layout(self, path: Path, number: int, line: str) -> Literal["beir", "trec"] | None:
        """Tell BEIR TSV from TREC qrels by the first line (``None``: undecided, line bad)."""
        tabbed = line.split("\t")
        if len(tabbed) == 3 and tabbed[0].strip().lower() in HEADER_FIRST_COLUMNS:
            return "beir"
        words = line.split()
        if len(words) == 4:
            return "trec"
        if len(words) == 3:
            self._bad(BadLineError(
                path, number, None, "no header line",
                f"start the file with the line '{QRELS_HEADER}' (BEIR qrels) or write TREC qrels "
                f"'qid 0 docid relevance'; {SKIP_HINT} (then this line is read as data)",
                reason="missing qrels header",
            ))
            return "beir"
        self._bad(BadLineError(
            path, number, None, f"{len(words)} columns: not a qrels line",
            f"use '{QRELS_HEADER}' lines (BEIR) or 'qid 0 docid relevance' (TREC), {SKIP_HINT}",
            reason="wrong number of columns",
        ))
        return None

    @staticmethod
    def _qrel(path: Path, number: int, line: str, layout: Literal["beir", "trec"]) -> tuple[Where, Qrel]:
        if layout == "beir":
            columns = line.split("\t")
            if len(columns) != 3:
                raise _columns_error(path, number, len(columns), "query-id, corpus-id, score")
            query_id, doc_id, score = (c.strip() for c in columns)
            where = Where(str(path), number, "query-id", "corpus-id")
            score_field = "score"
        else:
            words = line.split()
            if len(words) != 4:
                raise BadLineError(path, number, None, f"{len(words)} columns instead of 4",
                                   f"write TREC qrels lines 'qid 0 docid relevance', {SKIP_HINT}",
                                   reason="wrong number of columns")
            query_id, _, doc_id, score = words
            where = Where(str(path), number, "column 1 (query id)", "column 3 (doc id)")
            score_field = "column 4 (relevance)"
        try:
            relevance = int(score)
        except ValueError:
            raise BadLineError(path, number, score_field, f"relevance {score!r} is not an integer",
                               f"write an integer grade (0 = not relevant, 1, 2, ...), {SKIP_HINT}",
                               reason="bad relevance score") from None
        return where, Qrel(query_id, doc_id, relevance)
