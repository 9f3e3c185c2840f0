"""How every command reports a failure: one line on stderr, exit code 1."""

from __future__ import annotations

from typing import NoReturn

import typer

from fedsql.errors import Error


def fail(exc: Error) -> NoReturn:
    """Print ``fedsql: <ErrorClass>: <first line>`` on stderr and exit with status 1."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    typer.echo(f"fedsql: {type(exc).__name__}: {message}", err=True)
    raise typer.Exit(1)
