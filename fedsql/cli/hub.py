"""``fedsql hub``: the coordinator's key and the long-running hub process."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from fedsql.cli.authority import create_key, read_public
from fedsql.cli.failure import fail
from fedsql.config import load_contract
from fedsql.config.hub_config import load_hub_config
from fedsql.errors import Error
from fedsql.hub.analysts import AnalystTokens
from fedsql.hub.service import HubFiles, load_signed_roster, serve_hub
from fedsql.transport.tls import check_insecure_bind, server_credentials

hub_app = typer.Typer(help="Run the federation's hub.")


@hub_app.command("keygen")
def keygen(
    folder: Annotated[Path, typer.Argument(help="Folder for the hub's key (created).")],
) -> None:
    """Create the hub's Ed25519 key (0600) and the public key file the roster will name."""
    create_key(folder, "coordinator.key", "coordinator.pub")
    typer.echo(f"hub key written to {folder / 'coordinator.key'}")


@hub_app.command("serve")
def serve(
    config: Annotated[Path, typer.Option("--config", help="The hub's TOML configuration.")],
    port_file: Annotated[
        Path | None, typer.Option(help="Write the port actually bound here once listening.")
    ] = None,
) -> None:
    """Serve the federation until SIGTERM or SIGINT; silos dial in, analysts query."""
    logging.getLogger("fedsql").setLevel(logging.INFO)
    try:
        cfg = load_hub_config(config)
        credentials = None
        if cfg.tls is not None:
            credentials = server_credentials(cfg.tls)
        else:
            check_insecure_bind(cfg.listen)
        hub, _ = load_signed_roster(
            HubFiles(
                contract=load_contract(cfg.contract),
                roster_path=cfg.roster,
                key_path=cfg.key,
                authority_public=read_public(cfg.authority),
                audit_path=cfg.audit,
                round_timeout_s=cfg.round_timeout_s,
            )
        )
        analysts = None if cfg.analysts is None else AnalystTokens(cfg.analysts)
        serve_hub(hub, cfg.listen, port_file=port_file, credentials=credentials, analysts=analysts)
    except Error as exc:
        fail(exc)


analyst_app = typer.Typer(help="The hub's analysts and their API tokens.")
hub_app.add_typer(analyst_app, name="analyst")
ConfigOption = Annotated[Path, typer.Option("--config", help="The hub's TOML configuration.")]


def _tokens(config: Path) -> AnalystTokens:
    cfg = load_hub_config(config)
    assert cfg.analysts is not None
    return AnalystTokens(cfg.analysts)


@analyst_app.command("add")
def analyst_add(
    name: Annotated[str, typer.Argument(help="The analyst's name (what budgets are charged to).")],
    config: ConfigOption,
) -> None:
    """Give an analyst an API token (printed once; only its hash is kept); replaces an old one."""
    try:
        token = _tokens(config).add(name)
    except Error as exc:
        fail(exc)
    typer.echo(token)
    typer.echo(
        f"the API token of {name} is above; it is shown only now. Put it in the analyst's "
        "profile (token = ...); the hub stores only its hash.",
        err=True,
    )


@analyst_app.command("remove")
def analyst_remove(
    name: Annotated[str, typer.Argument(help="The analyst whose token to revoke.")],
    config: ConfigOption,
) -> None:
    """Revoke an analyst's API token (the running hub refuses it from its next call)."""
    try:
        _tokens(config).remove(name)
    except Error as exc:
        fail(exc)
    typer.echo(f"the token of {name} is revoked")


@analyst_app.command("list")
def analyst_list(config: ConfigOption) -> None:
    """List the analysts that hold a token."""
    try:
        names = _tokens(config).names()
    except Error as exc:
        fail(exc)
    for name in names:
        typer.echo(name)


def register(app: typer.Typer) -> None:
    """Add this command group to ``app``."""
    app.add_typer(hub_app, name="hub")
