"""The examples in the secagg docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "fedsql.secagg.aead",
    "fedsql.secagg.analyst_query",
    "fedsql.secagg.canonical",
    "fedsql.secagg.encoding",
    "fedsql.secagg.identity",
    "fedsql.secagg.keys",
    "fedsql.secagg.masks",
    "fedsql.secagg.messages",
    "fedsql.secagg.prg",
    "fedsql.secagg.shamir",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
