"""``fedsql status``: which silos are connected to a hub, with version and last-seen time."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fedsql.cli.failure import fail
from fedsql.errors import Error
from fedsql.transport.client import AnalystClient
from fedsql.transport.tls import channel_credentials


def _when(ms: int) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def status(
    hub: Annotated[str, typer.Option("--hub", help="The hub's host:port.")],
    tls: Annotated[
        Path | None, typer.Option(help="Your mTLS identity folder (fedsql ca issue analyst).")
    ] = None,
    hub_name: Annotated[
        str | None, typer.Option(help="The name on the hub's certificate, if not the host.")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="FEDSQL_TOKEN", help="Your API token, if the hub issues them."),
    ] = None,
) -> None:
    """List the silos connected to the hub."""
    try:
        credentials = None if tls is None else channel_credentials(tls)
        with AnalystClient(
            hub, credentials, timeout_s=10, server_name=hub_name, token=token
        ) as client:
            reply = client.status()
    except Error as exc:
        fail(exc)
    table = Table(title=f"federation {reply.fed_id}: {len(reply.silos)} silo(s) connected")
    for column in ("silo", "name", "version", "connected since", "last seen"):
        table.add_column(column)
    for s in reply.silos:
        table.add_row(
            s.silo_id, s.name, s.version, _when(s.connected_since_ms), _when(s.last_seen_ms)
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add this command to ``app``."""
    app.command("status")(status)
