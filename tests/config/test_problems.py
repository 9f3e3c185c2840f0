"""ConfigError formatting, problem collection and the doctests of the config helpers."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from fedsql.config import fields, names, problems
from fedsql.config.problems import Problems
from fedsql.errors import ConfigError, InterfaceError


def test_config_error_without_problems_keeps_its_single_line_form() -> None:
    error = ConfigError("bounds are upside down; swap them", file="c.toml", key="t.c.bounds")
    assert str(error) == "c.toml: t.c.bounds: bounds are upside down; swap them"
    assert error.file == "c.toml"
    assert error.key == "t.c.bounds"
    assert error.reason == "bounds are upside down; swap them"
    assert error.problems == (("t.c.bounds", "bounds are upside down; swap them"),)
    assert isinstance(error, InterfaceError)
    assert str(ConfigError("plain")) == "plain"
    assert str(ConfigError("m", key="k")) == "k: m"
    assert str(ConfigError("m", file="f")) == "f: m"


def test_config_error_lists_every_problem_on_its_own_line() -> None:
    error = ConfigError("2 problems", file="p.toml", problems=[("a.b", "first"), ("c", "second")])
    assert str(error).splitlines() == [
        "p.toml: 2 problems",
        "  - p.toml: a.b: first",
        "  - p.toml: c: second",
    ]
    assert error.problems == (("a.b", "first"), ("c", "second"))


def test_problems_raise_nothing_when_empty_and_one_line_for_one_problem() -> None:
    collected = Problems("x.toml")
    collected.raise_if_any()
    collected.add("silo.id", "wrong; fix it")
    with pytest.raises(ConfigError) as caught:
        collected.raise_if_any()
    assert str(caught.value) == "x.toml: silo.id: wrong; fix it"
    assert caught.value.key == "silo.id"


@pytest.mark.parametrize("module", [names, problems, fields], ids=lambda m: m.__name__)
def test_doctests_of_config_helpers_pass(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_reserved_words_refuse_keywords_but_allow_common_column_names() -> None:
    assert names.identifier_problem("order") is not None
    assert names.identifier_problem("left") is not None
    for ok in ("value", "name", "cost", "test", "year", "date", "zip"):
        assert names.identifier_problem(ok) is None, ok
    assert names.identifier_problem("x" * 64) is not None
