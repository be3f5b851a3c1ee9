"""Connecting to a Ray cluster (or starting a local one) for a stage, Ray imported lazily.

``ray_address = ""`` starts a cluster on this machine for the stage and stops it after;
``"auto"`` or an address joins a running cluster (``ray start --head`` on one machine,
``ray start --address=HEAD:6379`` on the others) and leaves it running. When this process
is already connected (``ray.init()`` called by a script or a test), that cluster is used
as it is, whatever the address says.

Every node must have inpars installed the same way as the driver (same version, the extras
its backend needs, the models at the same paths or as packaged aliases): actors import
inpars and load the model on their node. Workers of a local cluster share the driver's
environment.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from inpars.distributed.settings import RaySettings
from inpars.errors import DependencyError, StageError

log = logging.getLogger(__name__)

RAY_FIX = ("Fix: install the ray extra (`pip install -e '.[ray]'`, or `pip install 'ray>=2.40'`), "
           "or set executor = 'local'")


def check_ray_installed(where: str) -> None:
    """Raise :class:`DependencyError` naming the extra when Ray is not installed (no import)."""
    if importlib.util.find_spec("ray") is None:
        raise DependencyError(f"{where} executor = 'ray' needs Ray, which is not installed. {RAY_FIX}")


def import_ray(where: str) -> ModuleType:
    """The ``ray`` module, or :class:`DependencyError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise DependencyError(f"{where} executor = 'ray' needs Ray, which cannot be imported ({exc}). "
                              f"{RAY_FIX}") from exc
    return ray


@contextmanager
def ray_cluster(settings: RaySettings, where: str) -> Iterator[ModuleType]:
    """The ``ray`` module, connected for the length of the block (see the module doc)."""
    ray = import_ray(where)
    if ray.is_initialized():
        log.info("%s: using the Ray cluster this process is connected to", where)
        yield ray
        return
    address = settings.address or None
    log.info("%s: %s", where, f"joining the Ray cluster at {address}" if address
             else "starting a local Ray cluster on this machine")
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise StageError(
            f"{where} ray_address = {settings.address!r}: cannot connect to a Ray cluster ({exc}). "
            "Fix: start one (`ray start --head` on the head node), give its address, or set "
            "ray_address = '' to start a local cluster"
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def actors_that_fit(ray: Any, settings: RaySettings, wanted: int, where: str) -> int:
    """How many of ``wanted`` actors the cluster's CPUs and GPUs hold at once (at least 1;
    a warning when fewer). :class:`StageError` when not even one fits, as its actors would
    wait for resources for ever."""
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    fit = math.floor(cpus / settings.actor_cpus + 1e-9)
    if settings.actor_gpus > 0:
        fit = min(fit, math.floor(gpus / settings.actor_gpus + 1e-9))
    if fit < 1:
        raise StageError(
            f"{where} each Ray actor asks for {settings.actor_cpus:g} CPUs and {settings.actor_gpus:g} GPUs, "
            f"but the cluster has {cpus:g} CPUs and {gpus:g} GPUs in all. Fix: lower ray_actor_cpus / "
            "ray_actor_gpus, or add nodes to the cluster"
        )
    if fit < wanted:
        log.warning("%s: the cluster holds %d of the %d actors asked for (%g CPUs, %g GPUs in all; "
                    "%g CPUs and %g GPUs per actor); running %d", where, fit, wanted, cpus, gpus,
                    settings.actor_cpus, settings.actor_gpus, fit)
    return min(fit, wanted)
