"""Exit codes of ``fedsql query`` and ``fedsql explain``, and which error gets which.

>>> from fedsql import errors
>>> exit_code_for(errors.UnknownObject("no such column"))
3
>>> exit_code_for(errors.BudgetExhausted("no budget left"))
4
>>> exit_code_for(errors.HubUnreachable("hub unreachable at 127.0.0.1:1"))
5
"""

from __future__ import annotations

from typing import NoReturn

import typer

from fedsql.errors import (
    BudgetExhausted,
    DataError,
    Error,
    HubUnreachable,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)

OK = 0
#: Any other error: a bad profile file, an integrity or internal error.
ERROR = 1
#: Wrong usage: an unknown option or format, no SQL, an unreadable file (click's own code).
USAGE = 2
#: The query was rejected before anything ran: not SQL, not allowed, not supported, bad parameter.
REJECTED = 3
#: An analyst's privacy budget at a clinic would be exceeded.
BUDGET = 4
#: No hub answers at the address.
UNREACHABLE = 5
#: The federation could not answer: too few clinics took part, a deadline passed, a protocol
#: message was invalid.
UNANSWERED = 6
#: Interrupted with Ctrl-C (128 + SIGINT).
INTERRUPTED = 130

#: The exit-code table shown in ``--help`` and the README.
EXIT_CODES_HELP = f"""Exit codes:

  {OK}    the answer was printed
  {ERROR}    any other error (a bad profile file, an internal error)
  {USAGE}    usage error: unknown option or format, no SQL, unreadable file
  {REJECTED}    query rejected before anything ran: not valid SQL, not allowed, not
       supported (DDL, DML), or a bad parameter; nothing was spent
  {BUDGET}    privacy budget exhausted at the clinics
  {UNREACHABLE}    hub unreachable
  {UNANSWERED}    the federation could not answer: too few clinics took part, a deadline
       passed, or a protocol message was invalid
  {INTERRUPTED}  interrupted (Ctrl-C)"""


def exit_code_for(exc: Error) -> int:
    """The exit code for a fedsql error (see :data:`EXIT_CODES_HELP`)."""
    if isinstance(exc, HubUnreachable):
        return UNREACHABLE
    if isinstance(exc, BudgetExhausted):
        return BUDGET
    if isinstance(exc, ProgrammingError | NotSupportedError | DataError):
        return REJECTED
    if isinstance(exc, OperationalError):
        return UNANSWERED
    return ERROR


def describe(exc: Error) -> str:
    """``fedsql: <ErrorClass>: <first line of the message>``."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"fedsql: {type(exc).__name__}: {message}"


def fail(exc: Error) -> NoReturn:
    """Print :func:`describe` on stderr and exit with :func:`exit_code_for`."""
    typer.echo(describe(exc), err=True)
    raise typer.Exit(exit_code_for(exc))


def usage(message: str) -> NoReturn:
    """Print a usage error on stderr and exit with :data:`USAGE`."""
    typer.echo(f"fedsql: {message}", err=True)
    raise typer.Exit(USAGE)
