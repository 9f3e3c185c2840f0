"""The examples in the transport modules' docstrings run and give the documented results."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from fedsql.transport import codec, envelope, faults, grpc_options, shapes, status
from fedsql.transport.proto import generate

MODULES = (codec, envelope, faults, grpc_options, shapes, status, generate)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
