"""Operator listings (budgets, held queries) printed as a table, CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: The formats an operator listing can be printed in.
FORMATS = ("table", "csv", "json")
#: Columns shown left-aligned in a table (the others are numbers).
TEXT_COLUMNS = frozenset(
    {"analyst", "qid", "plan", "sql", "state", "operator", "reason", "clinic", "answered"}
)


def utc_time(at_ms: int) -> str:
    """Unix milliseconds as a UTC time for people.

    >>> utc_time(0)
    '1970-01-01 00:00:00Z'
    """
    return dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def emit_rows(rows: list[dict[str, str]], fmt: str, title: str) -> None:
    """Print ``rows`` (all with the same keys) as a titled table, CSV or JSON on stdout.

    Args:
        rows: The rows, as column -> text.
        fmt: One of :data:`FORMATS`.
        title: The table's title (tables only).
    """
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if fmt == "csv":
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        typer.echo(out.getvalue(), nl=False)
        return
    table = Table(title=title)
    for column in rows[0] if rows else ("analyst",):
        table.add_column(column, justify="left" if column in TEXT_COLUMNS else "right")
    for row in rows:
        table.add_row(*(Text(value) for value in row.values()))
    Console().print(table)
