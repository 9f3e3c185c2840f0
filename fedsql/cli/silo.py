"""``fedsql silo``: a clinic's enrolment and its long-running agent."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from fedsql.cli.approval import add_commands
from fedsql.cli.authority import read_public
from fedsql.cli.failure import fail
from fedsql.config import PolicySource, load_contract
from fedsql.errors import ConfigError, Error
from fedsql.secagg.enrolment import SiloCredentials
from fedsql.silo.agent import SiloAgent
from fedsql.silo.refresh import RefreshControl, request_refresh
from fedsql.silo.service import serve_silo
from fedsql.silo.source_engines import SnapshotEngine, refresh_engine
from fedsql.transport.tls import PeerIdentity, channel_credentials

silo_app = typer.Typer(help="Run a clinic's silo agent.")


@silo_app.command("enrol")
def enrol(
    silo_id: Annotated[str, typer.Option("--id", help="The silo's id, as in its policy.")],
    state: Annotated[Path, typer.Option(help="The silo's private state folder.")],
) -> None:
    """Create this silo's keys locally (0600) and the enrolment request for the authority."""
    try:
        request = SiloCredentials.generate(silo_id).save(state)
    except Error as exc:
        fail(exc)
    typer.echo(f"keys written to {state}; send {request} to the enrolment authority")


@silo_app.command("serve")
def serve(
    policy: Annotated[Path, typer.Option(help="The clinic's policy (TOML).")],
    contract: Annotated[Path, typer.Option(help="The federation contract (TOML).")],
    hub: Annotated[str, typer.Option(help="The hub's host:port (the silo dials out).")],
    state: Annotated[Path, typer.Option(help="The silo's state folder (keys, ledger).")],
    authority: Annotated[Path, typer.Option(help="The enrolment authority's public key file.")],
    tls: Annotated[
        Path | None, typer.Option(help="This silo's mTLS identity folder (fedsql ca issue silo).")
    ] = None,
    hub_name: Annotated[
        str | None, typer.Option(help="The name on the hub's certificate, if not the host.")
    ] = None,
    testing: Annotated[
        bool, typer.Option(help="Test mode: accept noise-off queries. Never in production.")
    ] = False,
) -> None:
    """Serve queries for this clinic until SIGTERM or SIGINT, reconnecting to the hub as needed.

    A clinic whose policy loads its tables as a snapshot reloads them on SIGHUP (see
    ``fedsql silo refresh``).
    """
    logging.getLogger("fedsql").setLevel(logging.INFO)
    try:
        the_contract = load_contract(contract)
        source = PolicySource(policy, the_contract)
        the_policy = source.current()
        if the_policy.source is None and the_policy.data.startswith("demo:"):
            raise ConfigError(
                "this policy names demo data; point `data` at the clinic's DuckDB file",
                file=str(policy),
                key="silo.data",
            )
        agent = SiloAgent(
            the_contract,
            source,
            the_policy.data,
            state,
            testing=testing,
            credentials=SiloCredentials.load(state, the_policy.silo_id),
            authority_public=read_public(authority),
        )
        control = None
        if isinstance(agent.engine, SnapshotEngine):
            control = RefreshControl(
                state,
                the_policy.silo_id,
                lambda: refresh_engine(agent.engine, agent.contract, agent.current_policy()),
            )
            control.install()
        credentials = None
        if tls is not None:
            credentials = channel_credentials(tls, expect=PeerIdentity("silo", the_policy.silo_id))
        try:
            serve_silo(agent, hub, credentials=credentials, server_name=hub_name)
        finally:
            if control is not None:
                control.uninstall()
    except Error as exc:
        fail(exc)


@silo_app.command("refresh")
def refresh(
    silo_id: Annotated[str, typer.Option("--id", help="The silo's id, as in its policy.")],
    state: Annotated[Path, typer.Option(help="The state folder the silo serves from.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the new snapshot.")] = 600,
) -> None:
    """Reload a running silo's snapshot; the previous one serves until the new one is ready."""
    try:
        outcome = request_refresh(state, silo_id, timeout)
    except Error as exc:
        fail(exc)
    if not outcome.ok:
        typer.echo(outcome.message, err=True)
        raise typer.Exit(1)
    typer.echo(f"{outcome.message} in {outcome.seconds:.2f} s")


add_commands(silo_app)


def register(app: typer.Typer) -> None:
    """Add this command group to ``app``."""
    app.add_typer(silo_app, name="silo")
