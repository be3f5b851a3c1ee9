"""Int8 scoring on the CPU: torch dynamic quantization of a scorer's linear layers.

``quantize = "int8"`` stores the weights of every ``nn.Linear`` as int8, one scale per output
channel, and quantizes its inputs on the fly, batch by batch; embeddings, layer norms and
softmax stay float32. Per-channel weight scales, not one per matrix: on the demo's
cross-encoder and 400 (query, document) pairs of SciFact's real train queries, the Spearman
correlation with float32 scores rose from 0.904 (per tensor) to 0.965 at the same speed
(``eval/benchmarks/scoring_int8.py`` measures the nDCG@10 that this costs).
A transformer encoder spends most of its time in those linear layers, which is where
int8 matrix products (fbgemm / oneDNN kernels) pay off.

Why torch's dynamic quantization (``torch.ao.quantization.quantize_dynamic``) rather than
ONNX Runtime or optimum: it needs no export step (the loaded model is converted in place,
any architecture with ``nn.Linear`` layers works) and no new dependency. ONNX Runtime's
int8 can be faster still, but needs an ONNX export of each model and its own tokenizer
wiring; see ``eval/benchmarks/scoring_int8.py`` for what the torch route gains.

Dynamic quantization runs on the CPU only, in float32 around the int8 products: a GPU
device (or a bfloat16 dtype) with ``int8`` is a :class:`ConfigError`, and ``device =
"auto"`` means the CPU under ``int8`` (choosing int8 is choosing CPU scoring).

torch marks ``torch.ao.quantization`` deprecated in favour of torchao, but still ships it;
its deprecation warnings are silenced here (they are about torch, not about the run).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any, Literal

from inpars.errors import ConfigError, DependencyError

log = logging.getLogger(__name__)

Quantize = Literal["none", "int8"]
QUANTIZE_MODES: tuple[str, ...] = ("none", "int8")


def resolve_quantize(quantize: str, device: str, dtype: str) -> tuple[str, str]:
    """The device and dtype settings a scorer runs with under ``quantize``: unchanged for
    ``none``; ``cpu`` and ``float32`` for ``int8`` (a GPU device or bfloat16 is refused)."""
    if quantize == "none":
        return device, dtype
    if quantize != "int8":
        raise ConfigError(f"quantize = {quantize!r}: unknown. Fix: use one of {', '.join(QUANTIZE_MODES)}")
    if device not in ("", "auto", "cpu"):
        raise ConfigError(f"quantize = 'int8' runs on the CPU only (torch dynamic quantization), but device "
                          f"= {device!r}. Fix: set device = 'cpu' (or 'auto'), or quantize = 'none' on the "
                          "GPU")
    if dtype not in ("auto", "float32"):
        raise ConfigError(f"quantize = 'int8' computes in int8 and float32, but dtype = {dtype!r}. "
                          "Fix: set dtype = 'auto' (or 'float32'), or quantize = 'none'")
    return "cpu", "float32"


def quantize_int8(module: Any, layers: Callable[[str], bool] | None = None) -> Any:
    """``module`` with its ``nn.Linear`` layers replaced by dynamically quantized int8 ones
    (in place; returned for chaining); ``layers`` picks some by qualified name (default: all,
    the scorers' setting; ``eval/benchmarks/scoring_int8.py`` measures groups of layers)."""
    import torch

    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # a future torch without torch.ao.quantization
        raise DependencyError(
            f"this torch ({torch.__version__}) has no torch.ao.quantization.quantize_dynamic. "
            "Fix: set [rerank] quantize = 'none', or install a torch 2.x that still ships it"
        ) from exc
    engines = torch.backends.quantized.supported_engines
    if not any(engine in engines for engine in ("x86", "fbgemm", "onednn", "qnnpack")):
        raise DependencyError(f"this torch build has no int8 CPU kernels (engines: {engines}). "
                              "Fix: set [rerank] quantize = 'none'")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*", category=UserWarning)
        spec: dict[Any, Any] = {torch.nn.Linear: per_channel_dynamic_qconfig} if layers is None else {
            name: per_channel_dynamic_qconfig for name, layer in module.named_modules()
            if isinstance(layer, torch.nn.Linear) and layers(name)}
        quantized = quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
    log.info("scoring: %d linear layers quantized to int8", quantized_linears(quantized))
    return quantized


def quantized_linears(module: Any) -> int:
    """How many dynamically quantized linear layers ``module`` holds."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return sum(isinstance(m, DynamicLinear) for m in module.modules())
