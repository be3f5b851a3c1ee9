"""inpars.config: TOML experiment files are validated with errors that say what to write."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from inpars.config import Config, DataConfig, IndexConfig, load_config, parse_config
from inpars.errors import ConfigError
from inpars.manifest import config_dict
from inpars.schema import section_from_dict


@dataclass(frozen=True)
class ToySection:
    mode: Literal["fast", "slow"] = "fast"
    rate: float = 0.5
    tags: list[str] = field(default_factory=list)
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None
    weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_config_reads_sections_and_keeps_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, '[experiment]\nname = "tiny"\n[data]\nsource = "../shared/data/scifact"\n'
                            "skip_bad_lines = true\n[index]\nk1 = 1\nthreads = 2\n")
    config = load_config(path)
    assert config.experiment.name == "tiny" and config.experiment.seed == 42
    assert config.data == DataConfig(source="../shared/data/scifact", skip_bad_lines=True)
    assert config.index.k1 == 1.0 and isinstance(config.index.k1, float)  # an integer is a fine number
    assert config.index.threads == 2 and config.index.b == IndexConfig().b
    assert config.source_path == str(path)


def test_every_default_survives_a_round_trip() -> None:
    """The defaults of every section (as a manifest stores them) validate back to themselves."""
    plain = config_dict(Config())
    plain.pop("source_path")
    assert parse_config(plain) == Config(source_path="<config>")
    assert section_from_dict(ToySection, {"limit": None}, "t").limit is None


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, '[data]\nsorce = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path} [data]: unknown key 'sorce' (did you mean 'source'?). Fix: use one of")
    assert all(name in message for name in ("source", "fallback", "train_split", "skip_bad_lines"))


def test_unknown_section_names_the_sections(tmp_path: Path) -> None:
    closest = r"unknown section 'dta' \(did you mean 'data'\?\)\. Fix: use one of experiment, data, index"
    with pytest.raises(ConfigError, match=closest):
        load_config(_write(tmp_path, "[dta]\nsource = 'x'\n"))
    with pytest.raises(ConfigError) as caught:
        parse_config({"oops": 1})
    assert "source_path" not in str(caught.value)  # internal, never suggested
    assert "did you mean" not in str(caught.value)  # no section name is close to 'oops'


def test_literal_error_lists_the_allowed_values() -> None:
    expected = r"^x\.toml \[toy\] mode: expected one of 'fast', 'slow', got 'medium'$"
    with pytest.raises(ConfigError, match=expected):
        section_from_dict(ToySection, {"mode": "medium"}, "x.toml [toy]")
    assert section_from_dict(ToySection, {"mode": "slow"}, "x").mode == "slow"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"index": {"k1": "high"}}, r"\[index\] k1: expected a number, got 'high'"),
        ({"index": {"threads": 1.5}}, r"\[index\] threads: expected an integer, got 1\.5"),
        ({"index": {"threads": True}}, r"\[index\] threads: expected an integer, got True"),
        ({"index": {"dense": "yes"}}, r"\[index\] dense: expected true or false, got 'yes'"),
        ({"data": {"source": 5}}, r"\[data\] source: expected a string, got 5"),
        ({"data": "scifact"}, r"\[data\]: expected a table, got 'scifact'"),
    ],
)
def test_type_errors_name_the_key_and_the_expected_type(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(table, "exp.toml")


def test_lists_tuples_optionals_and_tables() -> None:
    table = {"tags": ["a", "b"], "sizes": [3], "limit": 9, "weights": {"x": 1}}
    toy = section_from_dict(ToySection, table, "t")
    assert toy.tags == ["a", "b"] and toy.sizes == (3,) and toy.limit == 9 and toy.weights == {"x": 1.0}
    with pytest.raises(ConfigError, match=r"^t\.tags\[1\]: expected a string, got 2$"):
        section_from_dict(ToySection, {"tags": ["a", 2]}, "t")
    with pytest.raises(ConfigError, match=r"^t\.sizes: expected a list of an integer, got 3$"):
        section_from_dict(ToySection, {"sizes": 3}, "t")
    with pytest.raises(ConfigError, match=r"^t\.limit: expected an integer \(or leave out\), got 'all'$"):
        section_from_dict(ToySection, {"limit": "all"}, "t")
    with pytest.raises(ConfigError, match=r"^t\.weights\.x: expected a number, got 'heavy'$"):
        section_from_dict(ToySection, {"weights": {"x": "heavy"}}, "t")


def test_range_checks_of_a_section_become_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"^x \[toy\]: rate must be between 0 and 1, got 2\.0$"):
        section_from_dict(ToySection, {"rate": 2}, "x [toy]")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found\. Fix: pass a path like"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"exp\.toml: not valid TOML"):
        load_config(_write(tmp_path, "[data\nsource = 1\n"))


def test_sections_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().data.source = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["../escape", "<script>", "", "a/b", ".", "..", ".hidden", "a b", "a\\b"])
def test_experiment_name_must_be_one_safe_path_segment(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"experiment": {"name": name}}, "exp.toml")
    message = str(caught.value)
    assert message.startswith(f"exp.toml [experiment]: name = {name!r}: ")
    assert "letters, digits, '-', '_' and '.'" in message and "e.g. 'scifact-v2_1.0'" in message


def test_unsafe_experiment_name_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[experiment]\nname = '../escape'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path} [experiment]: name = '../escape': use one folder name")


def test_safe_experiment_names_are_accepted() -> None:
    for name in ("scifact-v2_1.0", "smoke", "A1", "_tmp", "v1..2"):
        assert parse_config({"experiment": {"name": name}}).experiment.name == name
    for config in sorted(Path(__file__).resolve().parents[1].glob("configs/*.toml")):
        assert load_config(config).experiment.name  # the shipped configs keep passing


def test_generation_copy_threshold_is_a_validated_setting() -> None:
    assert parse_config({}).generate.max_copied_ngram == 12
    assert parse_config({"generate": {"max_copied_ngram": 0}}).generate.max_copied_ngram == 0  # off
    with pytest.raises(ConfigError, match=r"max_copied_ngram = -1: must be 0 or more"):
        parse_config({"generate": {"max_copied_ngram": -1}})
