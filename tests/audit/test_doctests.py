"""The doctests of the audit modules pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "fedsql.audit.heads",
    "fedsql.audit.merkle",
    "fedsql.audit.records",
    "fedsql.audit.verify",
    "fedsql.cli.audit",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
