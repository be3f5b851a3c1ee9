"""The built-in stage graph: index -> generate -> filter -> (expand) -> negatives -> train ->
(refine) -> rerank -> evaluate; the stages in brackets run only when their section turns them on."""

from __future__ import annotations

from inpars.pipeline.evaluate import EvaluateStage
from inpars.pipeline.expand import ExpandStage
from inpars.pipeline.generate import GenerateStage
from inpars.pipeline.graph import StageGraph
from inpars.pipeline.negatives import NegativesStage
from inpars.pipeline.refine import RefineStage
from inpars.pipeline.stages import FilterStage, IndexStage, RerankStage, TrainStage


def builtin_graph() -> StageGraph:
    """The built-in stages in order (``expand`` and ``refine`` are left out of runs unless
    ``[expand] enabled`` and ``[refine] rounds`` turn them on)."""
    graph = StageGraph([IndexStage(), GenerateStage(), FilterStage(), NegativesStage(), TrainStage(),
                        RefineStage(), RerankStage(), EvaluateStage()])
    graph.register(ExpandStage(), before="negatives")
    return graph
