"""``fedsql query`` and ``fedsql explain``: ask the federation, or show how it would answer."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from fedsql.cli.render import FORMATS, print_report, print_table, render_csv, render_json
from fedsql.errors import Error

HubOption = Annotated[
    str, typer.Option("--hub", help="Hub address host:port, or 'demo' for the embedded demo.")
]
AnalystOption = Annotated[str, typer.Option("--analyst", help="Analyst charged for the query.")]
EpsilonOption = Annotated[
    float | None,
    typer.Option("--epsilon", "-e", help="Privacy cost of this query (default: the contract's)."),
]


def _fail(exc: Error) -> None:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    typer.echo(f"fedsql: {type(exc).__name__}: {message}", err=True)
    raise typer.Exit(1)


def query(
    sql: Annotated[str, typer.Argument(help="One SELECT statement.")],
    epsilon: EpsilonOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
    hub: HubOption = "demo",
    analyst: AnalystOption = "analyst",
) -> None:
    """Run a query and print each value with its 95% margin and the privacy report."""
    if fmt not in FORMATS:
        typer.echo(f"fedsql: unknown format {fmt!r}; use one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    from fedsql.dbapi import connect

    err = Console(stderr=True)
    try:
        with connect(hub, analyst=analyst, epsilon=epsilon) as conn:
            cur = conn.cursor()
            cur.execute(sql)
            table, report = cur.fetch_arrow_table(), cur.privacy
    except Error as exc:
        _fail(exc)
        return
    assert report is not None
    if fmt == "csv":
        sys.stdout.write(render_csv(table, report))
        print_report(err, report)
    elif fmt == "json":
        sys.stdout.write(render_json(table, report) + "\n")
    else:
        out = Console()
        print_table(out, table, report)
        print_report(out, report)


def explain(
    sql: Annotated[str, typer.Argument(help="One SELECT statement.")],
    epsilon: EpsilonOption = None,
    hub: HubOption = "demo",
    analyst: AnalystOption = "analyst",
) -> None:
    """Print the plan: partial SQL, key space, sensitivity, noise, epsilon cost. Spends nothing."""
    from fedsql.dbapi import connect

    try:
        with connect(hub, analyst=analyst, epsilon=epsilon) as conn:
            lines = conn.cursor().explain(sql)
    except Error as exc:
        _fail(exc)
        return
    for line in lines:
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add the commands of this group to ``app``."""
    app.command("query")(query)
    app.command("explain")(explain)
