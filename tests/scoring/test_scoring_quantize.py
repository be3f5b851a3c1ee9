"""Int8 scoring (``[rerank] quantize = "int8"``): tiny random-weight BERTs scored in float32
and in int8 rank a handful of pairs alike, and the linear layers really are quantized; the
settings that cannot work are refused. Fast (no real model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inpars import reranking
from inpars.config import RerankConfig, parse_config
from inpars.errors import ConfigError
from inpars.reranking import SystemSpec, stage_settings
from inpars.scoring.quantize import resolve_quantize
from tests.scoring.conftest import tiny_pairs

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

PAIRS = tiny_pairs()


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def plain_linears(module: object) -> int:
    return sum(type(m) is torch.nn.Linear for m in module.modules())  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["cross-encoder", "bi-encoder"])
def test_int8_scores_rank_like_float32_and_the_layers_are_quantized(
    kind: str, tiny_ce: Path, tiny_bi: Path
) -> None:
    from inpars.scoring import load_scorer
    from inpars.scoring.quantize import quantized_linears

    folder = str(tiny_ce if kind == "cross-encoder" else tiny_bi)
    common = {"device": "cpu", "threads": 1, "max_length": 64, "raw": True}
    fp32 = load_scorer(kind, folder, dtype="float32", **common)  # type: ignore[arg-type]
    int8 = load_scorer(kind, folder, quantize="int8", **common)  # type: ignore[arg-type]
    net = int8.model if kind == "cross-encoder" else int8.encoder  # type: ignore[attr-defined]
    assert quantized_linears(net) >= 12 and plain_linears(net) == 0  # every nn.Linear, the head too
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    schemes = {m.weight().qscheme() for m in net.modules() if isinstance(m, DynamicLinear)}
    assert schemes == {torch.per_channel_affine}  # one weight scale per output channel
    assert int8.dtype == torch.float32  # type: ignore[attr-defined]  # around the int8 products
    reference, scores = fp32.score(PAIRS), int8.score(PAIRS)
    assert spearman(reference, scores) > 0.95
    spread = max(reference) - min(reference)
    assert max(abs(a - b) for a, b in zip(reference, scores, strict=True)) < 0.5 * spread


def test_int8_runs_on_the_cpu_in_float32_only() -> None:
    assert resolve_quantize("none", "cuda", "bfloat16") == ("cuda", "bfloat16")
    assert resolve_quantize("int8", "auto", "auto") == ("cpu", "float32")  # auto means the CPU under int8
    with pytest.raises(ConfigError, match=r"CPU only.*Fix: set device = 'cpu'"):
        resolve_quantize("int8", "cuda:0", "auto")
    with pytest.raises(ConfigError, match=r"dtype = 'bfloat16'.*Fix:"):
        resolve_quantize("int8", "cpu", "bfloat16")
    with pytest.raises(ConfigError, match=r"quantize = 'int4'.*Fix: use one of none, int8"):
        resolve_quantize("int4", "cpu", "auto")


def test_the_rerank_section_validates_quantize() -> None:
    with pytest.raises(ConfigError, match="quantize: expected one of 'none', 'int8'"):
        parse_config({"rerank": {"quantize": "int4"}})
    with pytest.raises(ConfigError, match=r"\[rerank\].*CPU only.*Fix:"):
        parse_config({"rerank": {"quantize": "int8", "device": "cuda"}})
    with pytest.raises(ConfigError, match=r"bfloat16.*Fix:"):
        parse_config({"rerank": {"quantize": "int8", "dtype": "bfloat16"}})
    assert parse_config({"rerank": {"quantize": "int8", "device": "cpu"}}).rerank.quantize == "int8"


def test_quantize_reaches_the_scorers_and_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_load_scorer(kind: str, model: str, **kwargs: object) -> object:
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(reranking, "load_scorer", fake_load_scorer)
    reranking.load_system(SystemSpec("bi-encoder", "m"), RerankConfig(quantize="int8"))
    assert seen["quantize"] == "int8"
    plain = stage_settings(RerankConfig())
    assert isinstance(plain, dict) and "quantize" not in plain  # older runs keep their fingerprint
    assert stage_settings(RerankConfig(quantize="int8"))["quantize"] == "int8"


def test_int8_on_named_layers_only_leaves_the_others_in_float32(tiny_ce: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from inpars.scoring.quantize import quantize_int8, quantized_linears

    net = AutoModelForSequenceClassification.from_pretrained(tiny_ce).eval()
    linears = plain_linears(net)
    quantize_int8(net, lambda name: ".attention." in name)
    assert quantized_linears(net) == 4 * 2  # query, key, value, output of both layers
    assert plain_linears(net) == linears - 8  # feed-forward layers, pooler and head untouched
    assert type(net.bert.encoder.layer[0].intermediate.dense) is torch.nn.Linear
