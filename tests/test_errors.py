"""The error hierarchy's shared message helper: suggestions for mistyped names."""

from __future__ import annotations

import pytest

from inpars.errors import ConfigError, InparsError, did_you_mean
from inpars.generation.templates import load_template


def test_did_you_mean_suggests_the_closest_name_or_nothing() -> None:
    assert did_you_mean("sorce", ["source", "fallback", "train_split"]) == " (did you mean 'source'?)"
    assert did_you_mean("neighbors", ("zero-shot", "neighbours", "inpars")) == " (did you mean 'neighbours'?)"
    assert did_you_mean("oops", ["source", "fallback"]) == ""
    assert did_you_mean("x", []) == ""


def test_a_mistyped_template_name_is_an_error_with_the_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"'neighbors': not a built-in template and no such file "
                                          r"\(did you mean 'neighbours'\?\)\. Fix: use one of ") as caught:
        load_template("neighbors")
    assert isinstance(caught.value, InparsError)
