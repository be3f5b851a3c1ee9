"""The ``executor`` and ``ray_*`` keys of a stage section, and their checks.

A section that can run on Ray (``[generate]``, ``[rerank]``) has these fields::

    executor = "local"        # or "ray": shards over the actors of a Ray cluster
    ray_address = ""          # "": start a local cluster; "auto": the one this machine is in;
                              # or an address, "10.0.0.5:6379" / "ray://10.0.0.5:10001"
    ray_actors = 2            # actors (one model each)
    ray_actor_cpus = 1.0      # CPUs Ray reserves per actor (a CPU backend computes with that many threads)
    ray_actor_gpus = 0.0      # GPUs Ray reserves per actor (fractions share a GPU)

They decide where the work runs, never what it computes, so stages leave them out of their
fingerprints (:data:`EXECUTOR_KEYS`): a run started locally resumes on Ray and back. This
module imports nothing heavy (the config module calls :func:`check_executor`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

EXECUTOR_KEYS = ("executor", "ray_address", "ray_actors", "ray_actor_cpus", "ray_actor_gpus")
RAY_DEFAULTS: dict[str, Any] = {
    "ray_address": "", "ray_actors": 2, "ray_actor_cpus": 1.0, "ray_actor_gpus": 0.0,
}
# host:port or ray://host:port (a Ray client address)
_ADDRESS = re.compile(r"(ray://)?[^\s:/]+:[0-9]{1,5}")
ADDRESS_HELP = ("'' (start a local cluster), 'auto' (the cluster this machine has joined) or an address "
                "such as '10.0.0.5:6379' or 'ray://10.0.0.5:10001'")


class ExecutorSection(Protocol):
    """A config section with the executor keys."""

    @property
    def executor(self) -> str: ...

    @property
    def ray_address(self) -> str: ...

    @property
    def ray_actors(self) -> int: ...

    @property
    def ray_actor_cpus(self) -> float: ...

    @property
    def ray_actor_gpus(self) -> float: ...


@dataclass(frozen=True)
class RaySettings:
    """Where and how a stage runs on Ray: the cluster's address and each actor's resources."""

    address: str = ""
    actors: int = 2
    actor_cpus: float = 1.0
    actor_gpus: float = 0.0

    def threads(self) -> int:
        """The CPU threads a backend of one actor computes with: the CPUs Ray reserved for it."""
        return max(1, int(self.actor_cpus))

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "actors": self.actors, "actor_cpus": self.actor_cpus,
                "actor_gpus": self.actor_gpus}


def check_executor(section: ExecutorSection) -> None:
    """The checks of a section's executor keys (``ValueError``: the schema adds file and section)."""
    if section.executor not in ("local", "ray"):
        raise ValueError(f"executor = {section.executor!r}. Fix: use 'local' or 'ray'")
    if section.executor == "local":
        changed = [k for k, default in RAY_DEFAULTS.items() if getattr(section, k) != default]
        if changed:
            raise ValueError(f"{', '.join(changed)} set, but executor = 'local' does not use Ray. "
                             "Fix: set executor = 'ray', or remove the ray_* keys")
        return
    address = section.ray_address
    if address not in ("", "auto") and not _ADDRESS.fullmatch(address):
        raise ValueError(f"ray_address = {address!r} is not an address. Fix: use {ADDRESS_HELP}")
    if section.ray_actors < 1:
        raise ValueError(f"ray_actors = {section.ray_actors}: must be at least 1. Fix: e.g. ray_actors = 2")
    if section.ray_actor_cpus <= 0:
        raise ValueError(f"ray_actor_cpus = {section.ray_actor_cpus}: must be more than 0 "
                         "(each actor holds a model). Fix: e.g. ray_actor_cpus = 1")
    if section.ray_actor_gpus < 0:
        raise ValueError(f"ray_actor_gpus = {section.ray_actor_gpus}: must be 0 (CPU) or more "
                         "(a fraction such as 0.5 shares a GPU between actors). Fix: e.g. ray_actor_gpus = 1")


def ray_settings(section: ExecutorSection) -> RaySettings | None:
    """The Ray settings of a section, or ``None`` when it runs locally."""
    if section.executor != "ray":
        return None
    return RaySettings(address=section.ray_address, actors=section.ray_actors,
                       actor_cpus=section.ray_actor_cpus, actor_gpus=section.ray_actor_gpus)


def without_executor_keys(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` (a section as a dict) less :data:`EXECUTOR_KEYS`, for fingerprints."""
    return {k: v for k, v in settings.items() if k not in EXECUTOR_KEYS}
