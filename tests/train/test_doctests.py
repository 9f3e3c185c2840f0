"""The doctests of every fedsql.train module pass."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fedsql.train

MODULES = sorted(m.name for m in pkgutil.iter_modules(fedsql.train.__path__, "fedsql.train."))


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
