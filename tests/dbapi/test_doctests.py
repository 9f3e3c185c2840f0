"""The doctests of the driver's modules pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["fedsql.dbapi.profiles", "fedsql.dbapi.types"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
