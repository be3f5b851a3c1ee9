"""Where and how a scoring model runs: device, number type and CPU threads.

Small helpers shared by the scoring backends; torch is imported inside them so that
importing :mod:`inpars.scoring` stays fast.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from inpars.errors import ConfigError

log = logging.getLogger(__name__)

DType = Literal["auto", "float32", "bfloat16"]
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads (0: every usable core); returns the number in use.

    On small machines one thread per core is fastest; more threads than cores only
    add contention.
    """
    import torch

    if threads < 0:
        raise ConfigError(f"threads = {threads}: use 0 (every core) or a positive number")
    count = threads or usable_cores()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other values are checked."""
    import torch

    if device in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device = {device!r} but no CUDA GPU is visible. Fix: set device = 'auto' or 'cpu'"
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device = 'mps' but MPS is not available. Fix: set device = 'auto' or 'cpu'")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise ConfigError(f"device = {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bfloat16 natively (AMX or AVX-512 BF16)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(flag in flags for flag in CPU_BF16_FLAGS)
    return False


def resolve_dtype(dtype: str, device: str) -> Any:
    """The torch dtype to run a model in.

    ``auto`` picks bfloat16 where the hardware has it (a CUDA GPU with bf16, a CPU with
    AMX / AVX-512 BF16), where it is about twice as fast as float32 and ranks the
    same; float32 elsewhere.
    """
    import torch

    if dtype == "float32":
        return torch.float32
    if dtype == "bfloat16":
        return torch.bfloat16
    if dtype != "auto":
        raise ConfigError(f"dtype = {dtype!r}: use 'auto', 'float32' or 'bfloat16'")
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32
