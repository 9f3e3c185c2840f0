"""How a fedsql error crosses the wire: its class name, message and arguments, and back again.

The side that raises describes the error with :func:`describe_error`; the side that receives it
rebuilds an instance of the *same* :mod:`fedsql.errors` class with :func:`rebuild_error`, so an
analyst catching ``QueryRejected`` at the client catches what the hub raised. Only classes of
:mod:`fedsql.errors` are rebuilt; anything else becomes :class:`fedsql.errors.InternalError` with a
generic message, because its text was never vetted to leave the process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import fedsql.errors as errors
from fedsql.errors import ConfigError, Error, InternalError, OperationalError, SiloRefused

__all__ = [
    "ErrorDescription",
    "describe_error",
    "describe_for_log",
    "error_class",
    "rebuild_error",
]

#: Message sent in place of the text of an exception that is not a fedsql error.
INTERNAL_MESSAGE = "internal error at the hub; its log has the details"


@dataclass(frozen=True)
class ErrorDescription:
    """A fedsql error as it travels: class name, message and the extra constructor arguments.

    ``args_json`` is a JSON object, empty (``""``) for classes built from the message alone.
    """

    class_name: str
    message: str
    args_json: str = ""


def describe_error(exc: BaseException) -> ErrorDescription:
    """Describe an exception for the wire.

    Args:
        exc: What a handler raised.

    Returns:
        The description; an exception outside :mod:`fedsql.errors` is described as an
        :class:`~fedsql.errors.InternalError` with a generic message.

    >>> describe_error(errors.QueryRejected("no joins"))
    ErrorDescription(class_name='QueryRejected', message='no joins', args_json='')
    >>> describe_error(KeyError("secret")).class_name
    'InternalError'
    """
    if not isinstance(exc, Error) or error_class(type(exc).__name__) is not type(exc):
        return ErrorDescription(InternalError.__name__, INTERNAL_MESSAGE)
    args: dict[str, str | None] = {}
    if isinstance(exc, SiloRefused):
        args = {"silo": exc.silo, "reason": exc.reason}
    elif isinstance(exc, ConfigError):
        args = {"reason": exc.reason, "file": exc.file, "key": exc.key}
    args_json = json.dumps(args, sort_keys=True) if args else ""
    return ErrorDescription(type(exc).__name__, str(exc), args_json)


def describe_for_log(exc: BaseException) -> str:
    """How an exception is named in a log line: a fedsql error with its message, anything else
    by its class alone (its text was never vetted and may quote data).

    Args:
        exc: Any exception.

    Returns:
        ``"<Class>: <message>"`` for fedsql errors, ``"<Class>"`` otherwise.

    >>> describe_for_log(errors.ProtocolError("bad qid"))
    'ProtocolError: bad qid'
    >>> describe_for_log(KeyError("row 17"))
    'KeyError'
    """
    if isinstance(exc, Error):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def error_class(name: str) -> type[Error] | None:
    """The :mod:`fedsql.errors` class called ``name``, or None if there is none.

    Args:
        name: A class name as sent on the wire.

    Returns:
        The class, if ``name`` is one of the public error classes.

    >>> error_class("BudgetExhausted").__name__
    'BudgetExhausted'
    >>> error_class("Warning") is None  # not an Error
    True
    """
    if name not in errors.__all__:
        return None
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, Error):
        return cls
    return None


def rebuild_error(description: ErrorDescription) -> Error:
    """Rebuild the error a peer described.

    Args:
        description: From :func:`describe_error`, as received.

    Returns:
        An instance of the named class with the same message. An unknown class name (a newer
        peer) gives :class:`~fedsql.errors.OperationalError` with the message.

    >>> str(rebuild_error(ErrorDescription("SiloRefused", "", '{"silo": "a", "reason": "no"}')))
    'silo a refused the query: no'
    """
    cls = error_class(description.class_name)
    if cls is None:
        return OperationalError(description.message)
    args = _args(description.args_json)
    if cls is SiloRefused:
        silo, reason = args.get("silo"), args.get("reason")
        if isinstance(silo, str) and isinstance(reason, str):
            return SiloRefused(silo, reason)
        refused = SiloRefused("", description.message)
        refused.args = (description.message,)  # arguments missing: keep the message as sent
        return refused
    if cls is ConfigError:
        reason = args.get("reason")
        if isinstance(reason, str):
            return ConfigError(reason, file=_opt(args, "file"), key=_opt(args, "key"))
        return ConfigError(description.message)
    return cls(description.message)


def _args(args_json: str) -> dict[str, object]:
    if not args_json:
        return {}
    try:
        parsed = json.loads(args_json)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _opt(args: dict[str, object], name: str) -> str | None:
    value = args.get(name)
    return value if isinstance(value, str) else None
