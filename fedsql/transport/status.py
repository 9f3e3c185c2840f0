"""gRPC status codes and trailing metadata for fedsql errors, on both ends of a call.

A handler's :class:`fedsql.errors.Error` leaves the hub as a status code chosen by
:func:`status_code_for`, the error's message as the status details, and the error's class (plus
constructor arguments where needed) in trailing metadata under :data:`ERROR_CLASS_KEY` and
:data:`ERROR_ARGS_KEY`. :func:`error_from_rpc` turns a failed call back into the same class at the
client; calls that failed before reaching a handler (hub down, deadline passed) become
:class:`fedsql.errors.OperationalError` with a message naming the target.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NoReturn

import grpc

from fedsql.errors import (
    BudgetExhausted,
    DataError,
    Error,
    HubUnreachable,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    ProtocolError,
    QueryTimeout,
    QuorumNotMet,
    SiloRefused,
    UnknownObject,
)
from fedsql.transport.faults import ErrorDescription, describe_error, rebuild_error

__all__ = [
    "ERROR_ARGS_KEY",
    "ERROR_CLASS_KEY",
    "abort_with_error",
    "error_from_rpc",
    "error_metadata",
    "refusal_code_for",
    "status_code_for",
]

log = logging.getLogger(__name__)

#: Trailing-metadata key holding the fedsql error class name (ASCII).
ERROR_CLASS_KEY = "fedsql-error-class"
#: Trailing-metadata key holding the JSON constructor arguments of the error, when it has any.
ERROR_ARGS_KEY = "fedsql-error-args-bin"

# Most specific first: the first class in an error's MRO found here decides its code.
_CODES: dict[type[Error], grpc.StatusCode] = {
    BudgetExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    QuorumNotMet: grpc.StatusCode.FAILED_PRECONDITION,
    SiloRefused: grpc.StatusCode.FAILED_PRECONDITION,
    QueryTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    ProtocolError: grpc.StatusCode.ABORTED,
    OperationalError: grpc.StatusCode.UNAVAILABLE,
    UnknownObject: grpc.StatusCode.NOT_FOUND,
    ProgrammingError: grpc.StatusCode.INVALID_ARGUMENT,
    DataError: grpc.StatusCode.INVALID_ARGUMENT,
    IntegrityError: grpc.StatusCode.DATA_LOSS,
    InternalError: grpc.StatusCode.INTERNAL,
    InterfaceError: grpc.StatusCode.INVALID_ARGUMENT,
}

# Errors that say a Hello itself is wrong; any other refusal of a silo is PERMISSION_DENIED.
_BAD_HELLO = (ProtocolError, InterfaceError, DataError, ProgrammingError)


def status_code_for(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code an exception raised by a unary handler is sent with.

    Args:
        exc: What the handler raised.

    Returns:
        The code; ``INTERNAL`` for anything that is not a fedsql error, ``UNKNOWN`` for a fedsql
        error without a more specific code.
    """
    if not isinstance(exc, Error):
        return grpc.StatusCode.INTERNAL
    for cls in type(exc).__mro__:
        code = _CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.UNKNOWN


def refusal_code_for(exc: BaseException) -> grpc.StatusCode:
    """The status code a silo's stream is closed with when the hub refuses its Hello.

    Args:
        exc: What ``on_connect`` raised.

    Returns:
        ``INVALID_ARGUMENT`` when the Hello itself is malformed or inconsistent,
        ``PERMISSION_DENIED`` for any other refusal, ``INTERNAL`` for a non-fedsql exception.
    """
    if not isinstance(exc, Error):
        return grpc.StatusCode.INTERNAL
    if isinstance(exc, _BAD_HELLO):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.PERMISSION_DENIED


def error_metadata(description: ErrorDescription) -> tuple[tuple[str, str | bytes], ...]:
    """Trailing metadata that names an error's class (and its arguments, if any).

    Args:
        description: The error as :func:`fedsql.transport.faults.describe_error` gives it.

    Returns:
        Metadata pairs for ``ServicerContext.set_trailing_metadata``.

    >>> error_metadata(ErrorDescription("QueryRejected", "no joins"))
    (('fedsql-error-class', 'QueryRejected'),)
    """
    pairs: list[tuple[str, str | bytes]] = [(ERROR_CLASS_KEY, description.class_name)]
    if description.args_json:
        pairs.append((ERROR_ARGS_KEY, description.args_json.encode("utf-8")))
    return tuple(pairs)


def abort_with_error(
    context: grpc.ServicerContext, exc: BaseException, code: grpc.StatusCode | None = None
) -> NoReturn:
    """End the current call with ``exc`` described in its status and trailing metadata.

    An exception outside :mod:`fedsql.errors` is logged here with its traceback and sent as an
    :class:`~fedsql.errors.InternalError` with a generic message: its text may hold anything.

    Args:
        context: The servicer context of the call.
        exc: The exception to report.
        code: The status code; by default :func:`status_code_for` decides.

    Raises:
        Exception: Always; gRPC's ``abort`` raises to unwind the handler.
    """
    if not isinstance(exc, Error):
        log.error("unexpected error in a hub handler", exc_info=exc)
    description = describe_error(exc)
    context.set_trailing_metadata(error_metadata(description))
    context.abort(code if code is not None else status_code_for(exc), description.message)
    raise InternalError("grpc ServicerContext.abort returned")  # pragma: no cover


def _metadata_value(metadata: Iterable[Any] | None, key: str) -> str | bytes | None:
    for item in metadata or ():
        item_key, value = item[0], item[1]
        if item_key == key and isinstance(value, str | bytes):
            return value
    return None


def error_from_rpc(
    err: grpc.RpcError,
    target: str,
    *,
    timeout_s: float | None = None,
    connected: bool = False,
) -> Error:
    """The fedsql error for a failed gRPC call.

    Args:
        err: The exception gRPC raised; it is also a ``grpc.Call`` with code, details and
            trailing metadata.
        target: The hub address the call went to (for the message).
        timeout_s: The call's deadline in seconds, if it had one (for the message).
        connected: The call had been established (a stream) when it failed.

    Returns:
        An instance of the error class the hub named in the trailing metadata; otherwise an
        :class:`~fedsql.errors.OperationalError` describing what went wrong with the call.
    """
    code = _call_attr(err, "code")
    details = _call_attr(err, "details")
    details = details if isinstance(details, str) else ""
    metadata = _call_attr(err, "trailing_metadata")
    class_name = _metadata_value(metadata, ERROR_CLASS_KEY)
    if isinstance(class_name, str) and class_name:
        args = _metadata_value(metadata, ERROR_ARGS_KEY)
        args_json = args.decode("utf-8", "replace") if isinstance(args, bytes) else ""
        return rebuild_error(ErrorDescription(class_name, details, args_json))
    if code == grpc.StatusCode.UNAVAILABLE:
        if connected:
            return OperationalError(f"lost the connection to the hub at {target}")
        return HubUnreachable(f"hub unreachable at {target}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        within = f" within {timeout_s:g} s" if timeout_s is not None else ""
        return OperationalError(
            f"no reply from the hub at {target}{within}; raise the client's timeout_s for "
            "long-running queries"
        )
    if code == grpc.StatusCode.CANCELLED:
        return OperationalError(f"the call to the hub at {target} was cancelled")
    name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    suffix = f": {details}" if details else ""
    return OperationalError(f"the call to the hub at {target} failed with {name}{suffix}")


def _call_attr(err: grpc.RpcError, name: str) -> Any:
    method = getattr(err, name, None)
    return method() if callable(method) else None
