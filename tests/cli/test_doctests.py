"""The doctests of the query command's modules pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["fedsql.cli.exits", "fedsql.cli.progress", "fedsql.cli.render", "fedsql.cli.shell"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
