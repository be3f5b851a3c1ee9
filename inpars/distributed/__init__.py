"""Running the heavy stages on a Ray cluster (``executor = "ray"``); Ray stays optional.

- :mod:`.settings`: the ``executor`` / ``ray_*`` keys a section gets, and their checks
  (no Ray import: the config module uses them)
- :mod:`.cluster`: connecting to (or starting) a cluster, and the error that names the
  ``ray`` extra when Ray is not installed
- :mod:`.pool`: a pool of actors that runs shards, replacing an actor that dies and
  running its shard again
- :mod:`.generation`: the generate stage's shards on the pool, one backend per actor
- :mod:`.scoring`: the rerank stage's scoring chunks (and the filter's reranker step) on the
  pool, one scorer per actor

Ray is imported only when a stage runs with ``executor = "ray"``.
"""

from __future__ import annotations

from inpars.distributed.settings import EXECUTOR_KEYS, RaySettings, check_executor, ray_settings

__all__ = ["EXECUTOR_KEYS", "RaySettings", "check_executor", "ray_settings"]
