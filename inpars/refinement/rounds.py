"""Iterative refinement: rounds of probe -> generate -> filter -> negatives -> retrain.

Round ``r`` (Self-Instruct / Alpaca-style, aimed at the model's failures):

1. **probe**: a seeded sample of the queries trained on so far, ranked by the current model
   (:mod:`inpars.refinement.failures`); the documents whose queries it ranks worst are picked;
2. **generate**: new queries for them, the prompt showing the documents the model wrongly
   preferred (a ``{neighbours}`` template) and asking for a query only the target answers;
3. **filter** and **negatives**: the run's own ``[filter]`` and ``[negatives]`` settings;
   the new queries get ids ``<id>@r<round>``;
4. **train**: the start model again, on round 0's examples plus every round's (round-0 data is
   always kept: a guard against drifting away from it), then its dev score.

It stops after ``rounds``, when no probed query fails, when no new query survives, or when a
round does not raise the dev score by more than ``min_gain``; the best round's model is the
result (round 0: the train stage's model, when no round helped). Each step of each round is
a stage of its own under ``round-<r>/`` (:func:`~inpars.manifest.run_stage`): an interrupted
refinement resumes from the last finished step. The work is done by a :class:`RoundSteps`
the caller gives (the pipeline's stages: :mod:`inpars.pipeline.refine`), so this loop is
the same for a cross-encoder or a dense encoder and runs on fakes in tests.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inpars.config_training import RefineConfig
from inpars.filtering.text import normalize
from inpars.inspection.quality import distinct_n
from inpars.io import atomic_open, read_records, write_json, write_records, write_text
from inpars.manifest import StageContext, run_stage
from inpars.records import SyntheticQuery
from inpars.refinement.failures import Failure, pick_documents, probe_sample

log = logging.getLogger(__name__)

ROUNDS_FILE = "rounds.json"
ROUNDS_PAGE = "rounds.md"


@dataclass(frozen=True)
class DevScore:
    """A model's dev-set scores and which of them decides between rounds (``selected``)."""

    selected: str
    scores: Mapping[str, float]

    @property
    def value(self) -> float:
        return self.scores[self.selected]


class RoundSteps(Protocol):
    """The work of a round, done with the run's own stages."""

    def probe(self, queries: Sequence[SyntheticQuery], model: Path) -> list[Failure]: ...

    def generate(self, ctx: StageContext, docs: Mapping[str, Sequence[str]]) -> None:
        """New queries for the documents of ``docs`` (id -> documents to show beside it) into
        ``ctx.out_dir`` (as the generate stage writes them)."""

    def filter(self, ctx: StageContext, generated: Path) -> Path:
        """Filter the queries generated in ``generated``; return the kept records' file."""

    def negatives(self, ctx: StageContext, kept: Path) -> Path:
        """Mine negatives for ``kept``; return the training examples' file."""

    def train(self, examples: Path, kept: Path, model_dir: Path, seed: int) -> dict[str, Any]:
        """Train the start model on ``examples`` into ``model_dir``; return its summary."""

    def dev(self, model: Path) -> DevScore: ...


@dataclass(frozen=True)
class Start:
    """Round 0: the filter stage's kept queries, the negatives stage's examples, the train
    stage's model."""

    kept: Path
    examples: Path
    model: Path


def round_query_id(query_id: str, round_no: int) -> str:
    """The id of a query written in refinement round ``round_no`` (unique across rounds)."""
    return f"{query_id}@r{round_no}"


def diversity(new: Sequence[str], earlier: Sequence[str]) -> dict[str, float | None]:
    """How varied a round's kept queries are: distinct-1/2 and the share of them equal
    (normalized) to a query of an earlier round (rising repeats are a sign of collapse)."""
    seen = {normalize(text) for text in earlier}
    repeats = sum(normalize(text) in seen for text in new) / len(new) if new else None
    return {"distinct_1": distinct_n(new, 1), "distinct_2": distinct_n(new, 2), "repeats_earlier": repeats}


def _step(ctx: StageContext, round_no: int, step: str, settings: Any, inputs: Mapping[str, Path],
          body: Callable[[StageContext], None]) -> dict[str, Any]:
    """Run one step of a round as a resumable stage in ``round-<r>/<step>``; its manifest."""
    out = ctx.out_dir / f"round-{round_no}" / step
    return run_stage(f"refine round {round_no} {step}", out, settings, inputs, body,
                     seed=ctx.seed + round_no).manifest


def _concat(paths: Sequence[Path], out: Path) -> Path:
    with atomic_open(out) as handle:
        for path in paths:
            handle.write(path.read_text(encoding="utf-8"))
    return out


def _rename_kept(kept: Path, round_no: int) -> int:
    """Give the kept queries of a round their round ids, in place; how many there are."""
    records = [SyntheticQuery(**{**q.__dict__, "query_id": round_query_id(q.query_id, round_no)})
               for q in read_records(kept, SyntheticQuery)]
    write_records(kept, records)
    return len(records)


def _dev_step(ctx: StageContext, round_no: int, steps: RoundSteps, model: Path) -> DevScore:
    manifest = _step(ctx, round_no, "dev", {"round": round_no}, {"model": model},
                     lambda c: c.extra.update(dev=_as_dict(steps.dev(model))))
    dev = manifest["extra"]["dev"]
    return DevScore(dev["selected"], dev["scores"])


def _as_dict(score: DevScore) -> dict[str, Any]:
    return {"selected": score.selected, "scores": dict(score.scores)}


def refine(ctx: StageContext, cfg: RefineConfig, steps: RoundSteps, start: Start, *,
           model_name: str, exclude_docs: Collection[str] = ()) -> list[dict[str, Any]]:
    """Run up to ``cfg.rounds`` rounds into ``ctx.out_dir``; copy the best round's model to
    ``ctx.out_dir/model_name``; write :data:`ROUNDS_FILE` (and :data:`ROUNDS_PAGE`, its
    table) and return its rows (one per round, round 0 first). ``exclude_docs``: documents
    never probed nor given new queries (those of a label-free dev set)."""
    best = _dev_step(ctx, 0, steps, start.model)
    kept_files, example_files, models = [start.kept], [start.examples], [start.model]
    history: list[dict[str, Any]] = [{"round": 0, "dev": _as_dict(best), "kept": _count(start.kept),
                                      "examples": _count(start.examples)}]
    best_round, stopped = 0, f"ran the {cfg.rounds} rounds asked for"
    for round_no in range(1, cfg.rounds + 1):
        row, model = _round(ctx, cfg, steps, round_no, kept_files, example_files, models[-1], exclude_docs)
        history.append(row)
        if model is None:
            stopped = row["stopped"]
            break
        models.append(model)
        dev = DevScore(row["dev"]["selected"], row["dev"]["scores"])
        log.info("refine: round %d, dev %s %.4f (best so far %.4f, round %d)", round_no, dev.selected,
                 dev.value, best.value, best_round)
        if dev.value <= best.value + cfg.min_gain:
            stopped = (f"round {round_no} did not raise dev {dev.selected} by more than {cfg.min_gain} "
                       f"({dev.value:.4f} against {best.value:.4f})")
            break
        best, best_round = dev, round_no
    _publish_model(models[best_round], ctx.output(model_name, ctx.out_dir / model_name))
    summary = {"rounds": history, "best_round": best_round, "stopped": stopped}
    write_json(ctx.output("rounds", ctx.out_dir / ROUNDS_FILE), summary)
    write_text(ctx.output("rounds_page", ctx.out_dir / ROUNDS_PAGE), render(summary))
    ctx.extra.update({"best_round": best_round, "stopped": stopped, "rounds": history})
    ctx.counts.update({"rounds_run": len(history) - 1, "best_round": best_round})
    return history


def _round(ctx: StageContext, cfg: RefineConfig, steps: RoundSteps, round_no: int, kept_files: list[Path],
           example_files: list[Path], model: Path, exclude_docs: Collection[str]
           ) -> tuple[dict[str, Any], Path | None]:
    """One round; its row, and its model (``None`` when the round stopped before training)."""
    trained_on = [q for path in kept_files for q in read_records(path, SyntheticQuery)]
    probed = probe_sample(trained_on, cfg.probe_queries, ctx.seed + round_no, exclude_docs)
    probe_dir = ctx.out_dir / f"round-{round_no}" / "probe"

    def do_probe(c: StageContext) -> None:
        failures = steps.probe(probed, model)
        c.output("failures", c.out_dir / "failures.jsonl")
        write_records(c.out_dir / "failures.jsonl", failures)
        c.counts.update({"probed": len(probed), "failures": len(failures)})

    _step(ctx, round_no, "probe", {"refine": cfg, "probed": [q.query_id for q in probed]},
          {"model": model}, do_probe)
    failures = list(read_records(probe_dir / "failures.jsonl", Failure))
    docs = pick_documents(failures, cfg.max_docs, cfg.neighbours)
    row: dict[str, Any] = {"round": round_no, "probed": len(probed), "failures": len(failures),
                           "docs": len(docs)}
    if not docs:
        return {**row, "stopped": f"round {round_no}: no probed query failed"}, None
    gen = _step(ctx, round_no, "generate", {"docs": docs}, {"probe": probe_dir},
                lambda c: steps.generate(c, docs))
    gen_dir = ctx.out_dir / f"round-{round_no}" / "generate"

    def do_filter(c: StageContext) -> None:
        c.counts["kept_renamed"] = _rename_kept(steps.filter(c, gen_dir), round_no)

    filt = _step(ctx, round_no, "filter", {}, {"generate": gen_dir}, do_filter)
    kept = ctx.out_dir / f"round-{round_no}" / "filter" / "kept.jsonl"
    new = [q.text for q in read_records(kept, SyntheticQuery)]
    row |= {"generated": gen["counts"].get("queries", 0), "kept": len(new), "filter_drops": filt["drops"],
            "diversity": diversity(new, [q.text for q in trained_on])}
    if not new:
        return {**row, "stopped": f"round {round_no}: no new query survived the filter"}, None
    neg = _step(ctx, round_no, "negatives", {}, {"kept": kept},
                lambda c: c.extra.update(examples=str(steps.negatives(c, kept))))
    kept_files.append(kept)
    example_files.append(Path(neg["out_dir"]) / Path(neg["extra"]["examples"]).name)
    model_dir = ctx.out_dir / f"round-{round_no}" / "train" / "model"

    def do_train(c: StageContext) -> None:
        examples = _concat(example_files, c.out_dir / "examples.jsonl")
        union = _concat(kept_files, c.out_dir / "kept.jsonl")
        summary = steps.train(examples, union, c.out_dir / "model", c.seed)
        c.output("model", c.out_dir / "model")
        c.counts.update({"examples": _count(examples), "steps": summary.get("steps", 0)})

    train = _step(ctx, round_no, "train", {}, {"negatives": Path(neg["out_dir"])}, do_train)
    dev = _dev_step(ctx, round_no, steps, model_dir)
    return row | {"examples": train["counts"]["examples"], "dev": _as_dict(dev)}, model_dir


def _count(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _publish_model(model: Path, out: Path) -> None:
    """Copy the chosen model folder to ``out`` (the stage's declared output)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(model, out)


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render(summary: Mapping[str, Any]) -> str:
    """:data:`ROUNDS_FILE` as a markdown table: each round's data and dev scores."""
    rows = summary["rounds"]
    measures = list(rows[0]["dev"]["scores"])
    head = ["round", "probed", "failed", "docs", "generated", "kept", "examples", "distinct-2",
            "repeats", *(f"dev {m}" for m in measures)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for row in rows:
        div = row.get("diversity") or {}
        scores = (row.get("dev") or {}).get("scores", {})
        cells = [row["round"], row.get("probed"), row.get("failures"), row.get("docs"), row.get("generated"),
                 row.get("kept"), row.get("examples"), div.get("distinct_2"), div.get("repeats_earlier"),
                 *(scores.get(m) for m in measures)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    selected = rows[0]["dev"]["selected"]
    return ("\n".join(lines) + f"\n\nBest round: {summary['best_round']} (by dev {selected}). "
            f"Stopped: {summary['stopped']}.\n")
