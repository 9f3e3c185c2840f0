"""Run one query for the command line: live view on stderr, result on stdout, report on stderr."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rich.console import Console

from fedsql.cli.models import has_models, print_models
from fedsql.cli.progress import LiveView
from fedsql.cli.render import (
    print_report,
    print_table,
    render_csv,
    render_json,
    render_jsonl,
    render_markdown,
    write_arrow,
)
from fedsql.dbapi.connection import Connection


@dataclass
class Settings:
    """How queries run and print: output format, epsilon per query, quiet or not."""

    fmt: str
    epsilon: float | None = None
    quiet: bool = False


def default_format() -> str:
    """``table`` when stdout is a terminal, ``csv`` otherwise."""
    return "table" if sys.stdout.isatty() else "csv"


def run_query(conn: Connection, sql: str, settings: Settings) -> None:
    """Run ``sql`` and print its result in ``settings.fmt`` and its privacy report.

    On a terminal, stderr shows each clinic's state while the query runs.

    Raises:
        fedsql.errors.Error: The query failed (nothing is printed on stdout).
    """
    err = Console(stderr=True)
    cur = conn.cursor()
    if err.is_terminal and not settings.quiet:
        with LiveView(err) as live:
            cur.execute(sql, epsilon=settings.epsilon, on_progress=live.update)
    else:
        cur.execute(sql, epsilon=settings.epsilon)
    table, report = cur.fetch_arrow_table(), cur.privacy
    assert report is not None
    fmt = settings.fmt
    if fmt == "table" and has_models(table):
        print_models(Console(), table)
    elif fmt == "table":
        print_table(Console(), table, report)
    elif fmt == "arrow":
        write_arrow(sys.stdout.buffer, table, report)
    else:
        render = {
            "csv": render_csv,
            "json": render_json,
            "jsonl": render_jsonl,
            "markdown": render_markdown,
        }[fmt]
        sys.stdout.write(render(table, report))
        sys.stdout.flush()
    if not settings.quiet:
        print_report(err, report)


def run_explain(conn: Connection, sql: str, settings: Settings) -> None:
    """Print the plan of ``sql`` on stdout; spends nothing.

    Raises:
        fedsql.errors.Error: The query was rejected.
    """
    for line in conn.cursor().explain(sql, epsilon=settings.epsilon):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
