"""The public surface: PEP 249 globals, ``__all__`` is exactly the public names, one error tree."""

from __future__ import annotations

import inspect

import fedsql
from fedsql import errors


def test_pep249_module_globals() -> None:
    assert fedsql.apilevel == "2.0"
    assert fedsql.threadsafety in (0, 1, 2, 3)
    assert fedsql.paramstyle == "qmark"
    assert callable(fedsql.connect)


def test_fedsql_all_names_resolve() -> None:
    for name in fedsql.__all__:
        assert getattr(fedsql, name) is not None, name


def test_errors_all_matches_public_classes() -> None:
    public = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, Exception)
        and not name.startswith("_")
        and obj.__module__ == errors.__name__
    }
    assert set(errors.__all__) == public


def test_every_error_is_drawn_in_the_tree_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, name


def test_errors_sit_under_pep249_classes() -> None:
    assert issubclass(errors.QueryRejected, errors.ProgrammingError)
    assert issubclass(errors.UnknownObject, errors.QueryRejected)
    assert issubclass(errors.BudgetExhausted, errors.OperationalError)
    assert issubclass(errors.OverflowDetected, errors.ProtocolError)
    assert issubclass(errors.ConfigError, errors.InterfaceError)
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.Error) or cls is errors.Warning
    assert fedsql.ProgrammingError is errors.ProgrammingError
