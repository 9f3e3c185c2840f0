"""The doctests of every fedsql.sql module pass."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fedsql.sql

MODULES = sorted(m.name for m in pkgutil.iter_modules(fedsql.sql.__path__, "fedsql.sql."))


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_pure_helpers_carry_doctests() -> None:
    finder = doctest.DocTestFinder()
    with_examples = {
        name
        for name in MODULES
        if any(t.examples for t in finder.find(importlib.import_module(name)))
    }
    assert len(with_examples) >= 10
