"""``fedsql hub``: the coordinator's key and the long-running hub process."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from fedsql.cli.authority import read_public
from fedsql.cli.failure import fail
from fedsql.config import load_contract
from fedsql.config.hub_config import load_hub_config
from fedsql.errors import Error
from fedsql.hub.service import HubFiles, load_signed_roster, serve_hub
from fedsql.secagg.identity import IdentityKey
from fedsql.transport.tls import check_insecure_bind, server_credentials

hub_app = typer.Typer(help="Run the federation's hub.")


@hub_app.command("keygen")
def keygen(
    folder: Annotated[Path, typer.Argument(help="Folder for the hub's key (created).")],
) -> None:
    """Create the hub's Ed25519 key (0600) and the public key file the roster will name."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = IdentityKey.generate()
        key.save(folder / "coordinator.key")
    except Error as exc:
        fail(exc)
    (folder / "coordinator.pub").write_text(key.public_bytes.hex() + "\n")
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
        serve_hub(hub, cfg.listen, port_file=port_file, credentials=credentials)
    except Error as exc:
        fail(exc)


def register(app: typer.Typer) -> None:
    """Add this command group to ``app``."""
    app.add_typer(hub_app, name="hub")
