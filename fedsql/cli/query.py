"""``fedsql query`` and ``fedsql explain``: ask the federation, or show how it would answer.

The SQL comes from the argument, from ``-f FILE`` (``-f -`` is stdin) or, when stdin is not a
terminal, from stdin. ``fedsql query`` with no SQL on a terminal opens the interactive shell.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fedsql.cli.exits import EXIT_CODES_HELP, INTERRUPTED, fail, usage
from fedsql.cli.render import FORMATS
from fedsql.cli.runner import Settings, default_format, run_explain, run_query
from fedsql.errors import Error

SqlArgument = Annotated[
    str | None,
    typer.Argument(help="One SELECT statement (default: -f FILE, stdin, or the shell)."),
]
FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Read the SQL from FILE ('-' for stdin)."),
]
HubOption = Annotated[
    str | None,
    typer.Option(
        "--hub",
        help="Hub host:port, a fedsql:// URL, 'demo' for the embedded demo or 'omop' for the "
        "embedded OMOP example (default: the profile, else the 'default' profile, else the demo).",
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option("--profile", help="A profile of ~/.config/fedsql/profiles.toml."),
]
AnalystOption = Annotated[
    str | None, typer.Option("--analyst", help="Analyst charged for the query.")
]
EpsilonOption = Annotated[
    float | None,
    typer.Option("--epsilon", "-e", help="Privacy cost of this query (default: the contract's)."),
]
TimeoutOption = Annotated[
    float | None, typer.Option("--timeout", help="Seconds to wait for the answer.")
]


def read_sql(sql: str | None, file: Path | None) -> str | None:
    """The SQL to run: the argument, the file, or stdin when it is not a terminal.

    Returns:
        The statement without surrounding blanks or final semicolons; None when there is no
        SQL and stdin is a terminal (the caller opens the shell).
    """
    if sql is not None and file is not None:
        usage("give the SQL as an argument or with -f FILE, not both")
    if file is not None:
        if str(file) == "-":
            text = sys.stdin.read()
        else:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                usage(f"cannot read {file}: {reason}")
    elif sql is not None:
        text = sql
    elif not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        return None
    text = text.strip().rstrip(";").strip()
    if not text:
        usage("no SQL given; pass a SELECT statement, -f FILE, or SQL on stdin")
    return text


def _check_format(fmt: str | None) -> str:
    chosen = fmt or default_format()
    if chosen not in FORMATS:
        usage(f"unknown format {chosen!r}; use one of {', '.join(FORMATS)}")
    if chosen == "arrow" and sys.stdout.isatty():
        usage("--format arrow writes binary data; redirect stdout to a file or a pipe")
    return chosen


def query(
    sql: SqlArgument = None,
    file: FileOption = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"{', '.join(FORMATS)} (default: table on a terminal, csv otherwise).",
        ),
    ] = None,
    epsilon: EpsilonOption = None,
    hub: HubOption = None,
    profile: ProfileOption = None,
    analyst: AnalystOption = None,
    timeout: TimeoutOption = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Do not print the privacy report on stderr.")
    ] = False,
) -> None:
    """Run a query: each value with its 95% margin on stdout, the privacy report on stderr.

    On a terminal, stderr shows each clinic's state while the query runs (waiting, running,
    waiting for approval, answered, refused with its reason, dropped). With no SQL on a
    terminal, an interactive shell opens (multi-line SQL ending with ;, history, \\? for help).
    """
    from fedsql.dbapi import connect

    chosen = _check_format(fmt)
    text = read_sql(sql, file)
    if epsilon is not None and not epsilon > 0:
        usage("--epsilon must be a positive number")
    settings = Settings(fmt=chosen, epsilon=epsilon, quiet=quiet)
    try:
        with connect(hub, profile=profile, analyst=analyst, timeout_s=timeout) as conn:
            if text is None:
                from fedsql.cli.shell import Shell

                if settings.fmt == "arrow":
                    usage("the shell prints text formats; drop --format arrow")
                raise typer.Exit(Shell(conn, settings).run())
            run_query(conn, text, settings)
    except Error as exc:
        fail(exc)
    except KeyboardInterrupt:
        typer.echo("fedsql: interrupted", err=True)
        raise typer.Exit(INTERRUPTED) from None


def explain(
    sql: SqlArgument = None,
    file: FileOption = None,
    epsilon: EpsilonOption = None,
    hub: HubOption = None,
    profile: ProfileOption = None,
    analyst: AnalystOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Print the plan: partial SQL, key space, sensitivity, noise, epsilon cost. Spends nothing."""
    from fedsql.dbapi import connect

    text = read_sql(sql, file)
    if text is None:
        usage("no SQL given; pass a SELECT statement, -f FILE, or SQL on stdin")
    try:
        with connect(hub, profile=profile, analyst=analyst, timeout_s=timeout) as conn:
            run_explain(conn, text, Settings(fmt="table", epsilon=epsilon))
    except Error as exc:
        fail(exc)
    except KeyboardInterrupt:
        typer.echo("fedsql: interrupted", err=True)
        raise typer.Exit(INTERRUPTED) from None


def register(app: typer.Typer) -> None:
    """Add the commands of this group to ``app``."""
    app.command("query", epilog=EXIT_CODES_HELP)(query)
    app.command("explain", epilog=EXIT_CODES_HELP)(explain)
