"""Writing a dense index folder: the documents' embeddings encoded chunk by chunk into
``embeddings.npy`` in a hidden ``.<name>.partial`` sibling (an interrupted build resumes
from its last finished chunk), then ``doc_ids.json``, the FAISS index and the manifest, and
the folder put in place. :mod:`inpars.indexing.dense` decides what to build and reads it."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from inpars.errors import DataError
from inpars.indexing.encoder import encode, model_slug
from inpars.indexing.store import Corpus, replace_folder, write_index_manifest
from inpars.io import chunked, read_json, write_json

log = logging.getLogger(__name__)

KIND = "dense"
EMBEDDINGS = "embeddings.npy"
DOC_IDS = "doc_ids.json"
FAISS_INDEX = "faiss.index"
PROGRESS = "progress.json"


def load_faiss() -> Any:
    """The faiss module (faiss-gpu or faiss-cpu), or the fix to install it."""
    try:
        import faiss
    except ImportError as exc:
        from inpars.errors import DependencyError

        raise DependencyError(
            "FAISS is missing. Fix: pip install 'inpars[cpu]' (or 'inpars[gpu]' with CUDA)"
        ) from exc
    return faiss


def build_index_folder(
    collection: Corpus, encoder: Any, folder: Path, manifest: dict[str, Any], *, force: bool, chunk_size: int,
    start: float,
) -> None:
    """Encode ``collection`` into a hidden sibling of ``folder`` (resuming an interrupted build
    of the same index), add its FAISS index and ``manifest`` (with the timings since ``start``),
    then put it in place of ``folder``."""
    work = folder.parent / f".{folder.name}.partial"
    total, dim = manifest["docs"], manifest["dim"]
    progress = {"fingerprint": manifest["fingerprint"], "rows": 0, "docs": total, "dim": dim}
    done = _start_or_resume(work, progress, force)
    if done:
        log.info("dense: resuming %s after %d of %d documents", folder, done, total)
    t0 = time.perf_counter()
    doc_ids = _encode_rows(collection, encoder, work, progress, done, batch_size=manifest["batch_size"],
                           chunk_size=chunk_size, desc=f"encode {model_slug(manifest['model']['name'])}")
    encode_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_json(work / DOC_IDS, doc_ids)
    _write_faiss(work, dim)
    (work / PROGRESS).unlink()
    manifest["timings"] = {"encode": round(encode_seconds, 3), "faiss": round(time.perf_counter() - t0, 3)}
    manifest["build_seconds"] = round(time.perf_counter() - start, 3)
    write_index_manifest(work, manifest)
    replace_folder(work, folder)


def _start_or_resume(work: Path, progress: dict[str, Any], force: bool) -> int:
    """Rows already encoded by an interrupted build with the same ``progress`` (fingerprint,
    documents, dimension); else a fresh work folder with an empty embeddings file (0)."""
    import numpy as np

    done = _resume_point(work, progress["fingerprint"], progress["docs"], progress["dim"], force)
    if done == 0:
        work.mkdir(parents=True, exist_ok=True)
        shape = (progress["docs"], progress["dim"])
        np.lib.format.open_memmap(work / EMBEDDINGS, mode="w+", dtype=np.float32, shape=shape).flush()
        write_json(work / PROGRESS, progress)
    return done


def _encode_rows(
    collection: Corpus, encoder: Any, work: Path, progress: dict[str, Any], done: int, *, batch_size: int,
    chunk_size: int, desc: str,
) -> list[str]:
    """Encode the documents after the first ``done`` into the work folder's embeddings, chunk by
    chunk, recording the rows written after each; returns every document id in corpus order."""
    import numpy as np
    from tqdm import tqdm

    total = progress["docs"]
    embeddings = np.load(work / EMBEDDINGS, mmap_mode="r+")
    doc_ids: list[str] = []
    with tqdm(total=total, initial=done, desc=desc, unit="doc") as bar:
        for chunk in chunked(collection.docs(), chunk_size):
            begin = len(doc_ids)
            doc_ids.extend(d.doc_id for d in chunk)
            if len(doc_ids) > total:
                raise DataError(
                    f"{collection.name}: the corpus grew while it was being encoded. Fix: rebuild"
                )
            if len(doc_ids) <= done:
                continue
            todo = chunk[max(0, done - begin) :]
            row = max(begin, done)
            embeddings[row : row + len(todo)] = encode(
                encoder, [d.contents for d in todo], batch_size=batch_size, queries=False
            )
            embeddings.flush()
            write_json(work / PROGRESS, {**progress, "rows": row + len(todo)})
            bar.update(len(todo))
    if len(doc_ids) != total:
        raise DataError(f"{collection.name}: {len(doc_ids)} documents read but {total} counted. Fix: rebuild")
    return doc_ids


def _resume_point(work: Path, fingerprint: str, total: int, dim: int, force: bool) -> int:
    """Rows already encoded by an interrupted build of the same index (0: start afresh)."""
    progress = work / PROGRESS
    if work.exists() and progress.is_file() and not force:
        try:
            state = read_json(progress)
        except DataError:
            state = {}
        if (state.get("fingerprint"), state.get("docs"), state.get("dim")) == (fingerprint, total, dim) and (
            work / EMBEDDINGS
        ).is_file():
            return int(state.get("rows", 0))
    if work.exists():
        shutil.rmtree(work)
    return 0


def _write_faiss(folder: Path, dim: int) -> None:
    import numpy as np

    faiss = load_faiss()
    embeddings = np.load(folder / EMBEDDINGS, mmap_mode="r")
    index = faiss.IndexFlatIP(dim)
    for begin in range(0, embeddings.shape[0], 65536):
        index.add(np.ascontiguousarray(embeddings[begin : begin + 65536]))
    faiss.write_index(index, str(folder / FAISS_INDEX))
