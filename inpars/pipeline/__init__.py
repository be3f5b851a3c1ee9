"""``inpars run``: the stage graph, the workspace its stages share, and the executor.

- :mod:`inpars.pipeline.graph`: :class:`Stage` (a declared step) and :class:`StageGraph`;
- :mod:`inpars.pipeline.stages` and :mod:`inpars.pipeline.evaluate`: the built-in stages;
- :mod:`inpars.pipeline.workspace`: config, collection, folders, finished stages' outputs;
- :mod:`inpars.pipeline.executor`: skip / resume / rerun, ``--until``, ``--force``, the lock.

See ARCHITECTURE.md for the graph and the records each stage reads and writes.
"""

from __future__ import annotations

from inpars.pipeline.builtin import builtin_graph
from inpars.pipeline.executor import Executor
from inpars.pipeline.graph import Output, Stage, StageGraph
from inpars.pipeline.publish import RUN_MANIFEST, compare_with_reference, publish
from inpars.pipeline.workspace import Workspace

STAGES: tuple[str, ...] = builtin_graph().names


def stages_until(until: str | None) -> tuple[str, ...]:
    """The built-in stages from the first up to and including ``until``."""
    return builtin_graph().until(until)


__all__ = [
    "RUN_MANIFEST",
    "STAGES",
    "Executor",
    "Output",
    "Stage",
    "StageGraph",
    "Workspace",
    "builtin_graph",
    "compare_with_reference",
    "publish",
    "stages_until",
]
