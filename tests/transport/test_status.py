"""fedsql errors map to gRPC status codes and trailing metadata as documented."""

from __future__ import annotations

import grpc
import pytest

from fedsql import errors
from fedsql.errors import Error
from fedsql.transport.faults import ErrorDescription
from fedsql.transport.status import (
    ERROR_ARGS_KEY,
    ERROR_CLASS_KEY,
    error_metadata,
    refusal_code_for,
    status_code_for,
)

EXPECTED_CODES = {
    "BudgetExhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "QuorumNotMet": grpc.StatusCode.FAILED_PRECONDITION,
    "SiloRefused": grpc.StatusCode.FAILED_PRECONDITION,
    "QueryTimeout": grpc.StatusCode.DEADLINE_EXCEEDED,
    "ProtocolError": grpc.StatusCode.ABORTED,
    "OverflowDetected": grpc.StatusCode.ABORTED,
    "OperationalError": grpc.StatusCode.UNAVAILABLE,
    "HubUnreachable": grpc.StatusCode.UNAVAILABLE,
    "UnknownObject": grpc.StatusCode.NOT_FOUND,
    "QueryRejected": grpc.StatusCode.INVALID_ARGUMENT,
    "SQLSyntaxError": grpc.StatusCode.INVALID_ARGUMENT,
    "ProgrammingError": grpc.StatusCode.INVALID_ARGUMENT,
    "DataError": grpc.StatusCode.INVALID_ARGUMENT,
    "IntegrityError": grpc.StatusCode.DATA_LOSS,
    "InternalError": grpc.StatusCode.INTERNAL,
    "InterfaceError": grpc.StatusCode.INVALID_ARGUMENT,
    "ConfigError": grpc.StatusCode.INVALID_ARGUMENT,
    "NotSupportedError": grpc.StatusCode.UNKNOWN,
    "DatabaseError": grpc.StatusCode.UNKNOWN,
    "Error": grpc.StatusCode.UNKNOWN,
}


def test_every_error_class_has_a_documented_code() -> None:
    names = {n for n in errors.__all__ if issubclass(getattr(errors, n), Error)}
    assert names == set(EXPECTED_CODES)


@pytest.mark.parametrize(("name", "code"), sorted(EXPECTED_CODES.items(), key=str))
def test_an_error_is_sent_with_its_status_code(name: str, code: grpc.StatusCode) -> None:
    cls = getattr(errors, name)
    exc = cls("s", "r") if name == "SiloRefused" else cls("message")

    assert status_code_for(exc) == code


def test_an_exception_outside_fedsql_is_internal() -> None:
    assert status_code_for(ZeroDivisionError()) == grpc.StatusCode.INTERNAL
    assert refusal_code_for(ZeroDivisionError()) == grpc.StatusCode.INTERNAL


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ProtocolError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.OverflowDetected("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.ConfigError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.DataError("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.UnknownObject("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.OperationalError("x"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.SiloRefused("s", "r"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.IntegrityError("x"), grpc.StatusCode.PERMISSION_DENIED),
    ],
    ids=lambda value: getattr(value, "name", type(value).__name__),
)
def test_a_refused_hello_is_invalid_argument_or_permission_denied(
    exc: Error, code: grpc.StatusCode
) -> None:
    assert refusal_code_for(exc) == code


def test_metadata_names_the_class_and_carries_arguments_only_when_there_are_some() -> None:
    plain = error_metadata(ErrorDescription("QueryRejected", "m"))
    with_args = error_metadata(ErrorDescription("SiloRefused", "m", '{"silo": "ä"}'))

    assert plain == ((ERROR_CLASS_KEY, "QueryRejected"),)
    assert with_args == (
        (ERROR_CLASS_KEY, "SiloRefused"),
        (ERROR_ARGS_KEY, '{"silo": "ä"}'.encode()),
    )
    assert ERROR_ARGS_KEY.endswith("-bin")  # gRPC carries only -bin values as raw bytes
