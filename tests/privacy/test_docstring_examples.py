"""The examples in the privacy modules' docstrings run and give the documented results."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from fedsql.privacy import accounting, accuracy, calibrate, noise

MODULES = (accounting, accuracy, calibrate, noise)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
