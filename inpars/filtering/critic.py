"""The critic: keep the synthetic queries a classifier finds hardest to tell from real ones.

The synthetic-data literature's "is this realistic?" check, applied to queries. A logistic
regression learns real vs synthetic from sentence embeddings of the query text (the
packaged all-MiniLM-L6-v2, loaded like the reranker's bi-encoder); every synthetic query is
scored with P(real) and the top ``keep`` (fraction <= 1, or count) is kept, the rest dropped
as ``below_cutoff``.

Real queries are the collection's train split queries (the dev set and every evaluated
query left out) or a file of user queries (``[filter] critic_real_queries``). Classes are
balanced by a seeded sample of the larger one. The balanced set is cross-fitted in
``FOLDS`` seeded stratified folds (each a 20% held-out split): every query in it is
scored by the model that did not see it, which gives the held-out accuracy and ROC AUC
and keeps a query's own training label from pulling its score down; the synthetic
queries outside it get the mean of the fold models. Without real queries the step keeps
everything, says so once in the log and notes it in ``report``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from inpars.errors import ConfigError
from inpars.filtering.chain import KEEP, Verdict, top_verdicts
from inpars.filtering.text import normalize
from inpars.records import Query, SyntheticQuery

if TYPE_CHECKING:
    import numpy as np

    from inpars.config import FilterConfig
    from inpars.data import Collection

log = logging.getLogger(__name__)

FOLDS = 5  # cross-fitting folds: each holds out 20% of the balanced set
MIN_PER_CLASS = 10  # fewer real (or synthetic) queries than this: too few to learn from
QUERY_MAX_LENGTH = 128  # tokens; queries are short (at most [filter] max_words words)
CHUNK = 4096  # texts encoded per call (keeps the encoder's cache bounded)
C = 0.1  # inverse L2 strength of the logistic regression (on standardized embeddings)


class Encoder(Protocol):
    """What the critic needs of a sentence encoder (``BiEncoderScorer`` fits)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One embedding row per text."""
        ...


def load_encoder(cfg: FilterConfig) -> Encoder:
    """The sentence encoder ``cfg.critic_model`` through the bi-encoder scorer's loading path
    (packaged alias, local folder or hub id; device, dtype, threads and batch size of the reranker)."""
    from inpars.scoring.bi_encoder import BiEncoderScorer

    return BiEncoderScorer(cfg.critic_model, batch_size=cfg.reranker_batch_size, max_length=QUERY_MAX_LENGTH,
                           device=cfg.device, dtype=cfg.reranker_dtype, threads=cfg.threads)


def read_user_queries(path: Path) -> list[Query]:
    """Queries of a JSONL (``{"_id", "text"}`` like BEIR's queries.jsonl) or TSV (id, text) file,
    checked by the collection reader (unique ids, non-empty texts; bad lines name the fix)."""
    from inpars.data import FileCollection

    if not path.is_file():
        raise ConfigError(f"[filter] critic_real_queries = '{path}': file not found. Fix: check the path, "
                          'or set it to "" to use the train split')
    # a queries file alone: the reader wants a corpus, which queries() never reads
    return list(FileCollection(path, path, name=path.stem).queries())


def critic_real_queries(
    cfg: FilterConfig, collection: Collection, train_split: str, *, held_out: Iterable[Query] = ()
) -> tuple[list[Query], str]:
    """The real queries of the critic and where they came from: the file of
    ``cfg.critic_real_queries``, else the judged ``train_split`` queries (``[]`` when the
    collection has none). ``held_out`` (the dev set and the evaluated queries) never gets in:
    by id from the train split, by normalized text from either source."""
    if cfg.critic_real_queries:
        path = Path(cfg.critic_real_queries).expanduser()
        queries, source = read_user_queries(path), f"file {path}"
    elif train_split and train_split in collection.splits():
        queries, source = collection.split_queries(train_split), f"split '{train_split}'"
    else:
        return [], ""
    held = list(held_out)
    held_ids = {q.query_id for q in held} if not cfg.critic_real_queries else set()
    held_texts = {normalize(q.text) for q in held}
    real = [q for q in queries if q.query_id not in held_ids and normalize(q.text) not in held_texts]
    if len(real) < len(queries):
        log.info("critic: %d of %d real queries of %s left out (dev set or evaluated queries)",
                 len(queries) - len(real), len(queries), source)
    return real, source


def check_critic(cfg: FilterConfig, splits: Sequence[str], train_split: str) -> None:
    """Before anything runs: a missing ``critic_real_queries`` file is an error; a collection
    without judged train queries (and no file) only a warning, the step will keep everything."""
    if "critic" not in cfg.steps:
        return
    if cfg.critic_real_queries:
        path = Path(cfg.critic_real_queries).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"[filter] critic_real_queries = '{path}': file not found. Fix: give a JSONL file of "
                'real queries (one {"_id": ..., "text": ...} a line), or set it to "" to use the train split'
            )
    elif not train_split or train_split not in splits:
        log.warning("[filter] steps has 'critic' but there are no real queries to learn from (no judged "
                    "train split %r, no critic_real_queries file): the step will keep every query. Fix: set "
                    "[filter] critic_real_queries, or remove 'critic' from [filter] steps", train_split)


def stage_settings(cfg: FilterConfig, dev_queries: int) -> Any:
    """What the filter stage is fingerprinted with: without the critic, ``cfg`` less the critic
    keys (the fingerprints of runs finished before they existed stay valid); with it, ``cfg``
    and the size of the dev set it leaves out of the real queries. Never the executor keys
    (where the reranker step scores, not what it computes)."""
    from inpars.distributed.settings import without_executor_keys
    from inpars.manifest import config_dict

    settings = without_executor_keys(config_dict(cfg))
    if "critic" not in cfg.steps:
        return {k: v for k, v in settings.items() if not k.startswith("critic_")}
    return {"filter": settings, "critic_dev_queries": dev_queries}


def embed(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """Float32 embeddings of ``texts``, encoded ``CHUNK`` at a time."""
    import numpy as np
    from tqdm import tqdm

    rows = [np.asarray(encoder.encode(texts[i : i + CHUNK]), dtype=np.float32)
            for i in tqdm(range(0, len(texts), CHUNK), desc="critic embeddings", unit="chunk",
                          disable=len(texts) <= CHUNK)]
    return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def skip_reason(real: int, synthetic: int) -> str:
    """Why the critic cannot learn from ``real`` and ``synthetic`` queries ("" when it can)."""
    if real == 0:
        return ("no real queries (the collection has no judged [data] train_split and "
                "[filter] critic_real_queries is not set)")
    if min(real, synthetic) < MIN_PER_CLASS:
        return f"only {real} real and {synthetic} synthetic queries (needs {MIN_PER_CLASS} of each)"
    return ""


@dataclass
class CriticFilter:
    """Keeps the best ``keep`` (fraction <= 1, or count) queries by P(real) of a real-vs-synthetic
    classifier trained on ``real`` and the queries it judges; ``report`` says how well it tells
    them apart. The encoder is ``encoder``, else made by ``loader`` when the step has work."""

    real: Sequence[Query]
    encoder: Encoder | None = None
    loader: Callable[[], Encoder] | None = None
    keep: float = 0.5
    seed: int = 0
    source: str = ""  # where the real queries came from, for the report
    name: str = "critic"
    report: dict[str, Any] = field(default_factory=dict)

    def judge(self, queries: Sequence[SyntheticQuery]) -> list[Verdict]:
        real_texts = list(dict.fromkeys(q.text for q in self.real))
        self.report = {"real_source": self.source, "real": len(real_texts), "synthetic": len(queries),
                       "keep": self.keep}
        why = skip_reason(len(real_texts), len(queries))
        if why:
            log.warning("filter step 'critic' skipped, every query kept: %s", why)
            self.report["skipped"] = why
            return [KEEP] * len(queries)
        if self.encoder is None:
            if self.loader is None:
                raise ConfigError("filter step 'critic' was given no encoder. Fix: pass encoder= or loader=")
            self.encoder = self.loader()
        scores, metrics = score_synthetic(self.encoder, real_texts, [q.text for q in queries], self.seed)
        self.report.update(metrics)
        log.info("critic: held-out accuracy %.3f, ROC AUC %.3f (%d real vs %d synthetic, %d folds)",
                 metrics["accuracy"], metrics["roc_auc"], metrics["per_class"], metrics["per_class"], FOLDS)
        return top_verdicts([q.query_id for q in queries], scores, self.keep, "P(real)")


def score_synthetic(
    encoder: Encoder, real: Sequence[str], synthetic: Sequence[str], seed: int
) -> tuple[list[float], dict[str, Any]]:
    """P(real) of every ``synthetic`` text (cross-fitted, see the module doc) and the
    held-out metrics: ``accuracy``, ``roc_auc``, ``per_class``, ``folds``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic))
    real_pick = np.sort(rng.choice(len(real), n, replace=False))
    synth_pick = np.sort(rng.choice(len(synthetic), n, replace=False))
    features = embed(encoder, [*(real[i] for i in real_pick), *synthetic])
    x_real, x_synth = features[: n], features[n:]
    x = np.concatenate([x_real, x_synth[synth_pick]])
    y = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    held_out_p, models = cross_fit(x, y, seed)
    scores = np.mean([m.predict_proba(x_synth)[:, 1] for m in models], axis=0)
    scores[synth_pick] = held_out_p[n:]  # in the balanced set: the fold model that did not see it
    from sklearn.metrics import roc_auc_score

    metrics = {"accuracy": round(float(np.mean((held_out_p >= 0.5) == y)), 4),
               "roc_auc": round(float(roc_auc_score(y, held_out_p)), 4), "per_class": n, "folds": FOLDS}
    return [float(s) for s in scores], metrics


def cross_fit(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, list[Any]]:
    """Out-of-fold P(real) of every row and the ``FOLDS`` fitted models."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    held_out = np.zeros(len(y), dtype=np.float64)
    models = []
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(x, y):
        # Logistic regression: cheap (seconds on a CPU), calibrated (P(real) is a probability,
        # so scores of the fold models can be averaged and cutoffs read as such), and enough
        # for a 384-d sentence embedding, where a linear boundary already separates styles.
        # Standardized dimensions and a strong L2 penalty (C): on SciFact's train queries this
        # did best in 5-fold CV (accuracy 0.82 vs 0.76 unscaled at C = 1).
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
        model.fit(x[train], y[train])
        held_out[test] = model.predict_proba(x[test])[:, 1]
        models.append(model)
    return held_out, models
