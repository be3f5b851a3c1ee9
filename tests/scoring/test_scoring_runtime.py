from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inpars.errors import ConfigError
from inpars.scoring.runtime import cpu_has_bf16, resolve_device, resolve_dtype, set_threads


def test_cpu_bf16_detection_reads_the_flags(tmp_path: Path) -> None:
    with_amx = tmp_path / "amx"
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert cpu_has_bf16(with_amx)
    assert not cpu_has_bf16(plain)
    assert not cpu_has_bf16(tmp_path / "missing")


def test_dtype_and_device_choices() -> None:
    assert resolve_dtype("float32", "cpu") is torch.float32
    assert resolve_dtype("bfloat16", "cpu") is torch.bfloat16
    assert resolve_dtype("auto", "cpu") in (torch.float32, torch.bfloat16)
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="float64"):
        resolve_dtype("float64", "cpu")
    with pytest.raises(ConfigError, match="tpu"):
        resolve_device("tpu")


def test_set_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert set_threads(0) >= 1
        with pytest.raises(ConfigError):
            set_threads(-1)
    finally:
        torch.set_num_threads(before)
