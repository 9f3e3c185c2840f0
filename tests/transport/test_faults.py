"""A fedsql error crosses the wire as its class, message and arguments, and comes back the same."""

from __future__ import annotations

import pytest

from fedsql import errors
from fedsql.errors import ConfigError, Error, InternalError, OperationalError, SiloRefused
from fedsql.transport.faults import (
    INTERNAL_MESSAGE,
    ErrorDescription,
    describe_error,
    error_class,
    rebuild_error,
)

ERROR_CLASSES = [
    getattr(errors, name)
    for name in errors.__all__
    if issubclass(getattr(errors, name), Error)
    and getattr(errors, name) not in (ConfigError, SiloRefused)
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_each_error_class_comes_back_as_itself_with_its_message(cls: type[Error]) -> None:
    exc = cls(f"{cls.__name__}: what failed, where, and what to do")

    back = rebuild_error(describe_error(exc))

    assert type(back) is cls
    assert str(back) == str(exc)


def test_a_config_error_keeps_its_file_key_and_reason() -> None:
    exc = ConfigError("bounds must be [lo, hi]", file="contract.toml", key="patients.age")

    back = rebuild_error(describe_error(exc))

    assert isinstance(back, ConfigError)
    assert (back.file, back.key, back.reason) == ("contract.toml", "patients.age", exc.reason)
    assert str(back) == str(exc)


def test_a_silo_refusal_keeps_its_silo_and_reason() -> None:
    exc = SiloRefused("clinic-7", "the analyst is over budget")

    back = rebuild_error(describe_error(exc))

    assert isinstance(back, SiloRefused)
    assert (back.silo, back.reason) == ("clinic-7", "the analyst is over budget")
    assert str(back) == str(exc)


@pytest.mark.parametrize("cls", [ConfigError, SiloRefused], ids=lambda cls: cls.__name__)
def test_missing_arguments_keep_the_class_and_the_message(cls: type[Error]) -> None:
    back = rebuild_error(ErrorDescription(cls.__name__, "as sent", "not json"))

    assert type(back) is cls
    assert str(back) == "as sent"


def test_other_exceptions_travel_as_internal_errors_without_their_text() -> None:
    description = describe_error(ValueError("patient 17: bmi 31.5"))

    assert description == ErrorDescription("InternalError", INTERNAL_MESSAGE)
    assert isinstance(rebuild_error(description), InternalError)


def test_a_subclass_defined_elsewhere_travels_as_internal_error() -> None:
    class LocalError(errors.QueryRejected):
        pass

    assert describe_error(LocalError("x")).class_name == "InternalError"


def test_an_unknown_class_name_becomes_operational_error_with_the_message() -> None:
    back = rebuild_error(ErrorDescription("ErrorFromTheFuture", "newer hub says no"))

    assert type(back) is OperationalError
    assert str(back) == "newer hub says no"


@pytest.mark.parametrize("name", ["Warning", "Exception", "annotations", "__name__", ""])
def test_only_error_classes_of_fedsql_errors_are_looked_up(name: str) -> None:
    assert error_class(name) is None
