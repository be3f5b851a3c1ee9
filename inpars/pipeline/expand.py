"""The ``expand`` stage's declaration: document expansion with the synthetic queries
(Doc2Query--), a second BM25 index of the run and its run ``bm25-expanded``.

Off unless ``[expand] enabled = true`` (:meth:`ExpandStage.enabled`): then ``inpars run``
leaves it out altogether, so the systems of the run and every other stage's fingerprint
stay what they were without it. The work is in :func:`inpars.expansion.expand_stage`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpars.manifest import StageContext
from inpars.pipeline.graph import Output, Stage
from inpars.pipeline.workspace import Workspace

if TYPE_CHECKING:
    from inpars.records import SyntheticQuery

log = logging.getLogger(__name__)

EXPANDED = "bm25-expanded"  # = inpars.expansion.SYSTEM (not imported: declarations stay light)


class ExpandStage(Stage):
    name = "expand"
    help = "index the documents with their synthetic queries appended (Doc2Query--); run bm25-expanded"
    needs = ("filter", "index")

    def enabled(self, ws: Workspace) -> bool:
        return ws.config.expand.enabled

    def settings(self, ws: Workspace) -> Any:
        from inpars.expansion import bm25_params

        cfg = ws.config.expand

        k1, b = bm25_params(cfg, ws.config.index)
        index = ws.config.index
        return {"expand": dataclasses.replace(cfg, k1=k1, b=b), "depth": index.depth,
                "remove_self_hits": index.remove_self_hits, "split": ws.config.data.test_split}

    def inputs(self, ws: Workspace) -> dict[str, Path]:
        cfg = ws.config.expand
        generated = {"generate": ws.stage_dir("generate")} if cfg.source == "generated" else {}
        return ws.corpus_inputs() | generated

    def outputs(self, ws: Workspace) -> tuple[Output, ...]:
        return (Output.run(EXPANDED),)

    def check(self, ws: Workspace, systems: Sequence[str]) -> None:
        cfg = ws.config.expand
        if cfg.source == "generated":
            log.warning("expand: [expand] source = 'generated' appends every generated query, none of "
                        "them filtered (no contamination check against the test queries either)")

    def run(self, ctx: StageContext, ws: Workspace) -> None:
        from inpars.expansion import INDEX_DIR, expand_stage

        cfg = ws.config.expand

        expand_stage(ctx, cfg, ws.config.index, ws.collection, self.queries(ws), ws.test_queries(),
                     contamination_checked=self.contamination_checked(ws),
                     index_path=ws.stage_dir(self.name) / INDEX_DIR)

    def queries(self, ws: Workspace) -> Iterable[SyntheticQuery]:
        """The synthetic queries to append: the filter's kept ones, or every generated one."""
        if ws.config.expand.source == "generated":
            from inpars.generation.shards import read_synthetic_queries

            return read_synthetic_queries(ws.stage_dir("generate"))
        from inpars.io import read_records
        from inpars.records import SyntheticQuery

        return read_records(ws.output("filter", "kept"), SyntheticQuery)

    def contamination_checked(self, ws: Workspace) -> bool:
        """Whether the filter's contamination step ran on the queries appended."""
        steps = ws.manifest("filter").get("extra", {}).get("steps", [])
        return ws.config.expand.source == "kept" and "contamination" in steps
