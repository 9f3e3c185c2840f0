"""``fedsql analyst keygen``: an analyst's own signing key, made on their machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedsql.cli.authority import create_key

analyst_app = typer.Typer(help="An analyst's own keys.")

#: File names in an analyst's key folder.
KEY_FILE = "analyst.key"
PUBLIC_FILE = "analyst.pub"


@analyst_app.command("keygen")
def keygen(
    folder: Annotated[Path, typer.Argument(help="Folder for your key (created, 0700).")],
) -> None:
    """Create your Ed25519 signing key (0600) and the public key file to enrol with the authority.

    Every query you send is signed with this key, and every clinic checks the signature before it
    charges your budget. Send analyst.pub to the enrolment authority; the key never leaves you.
    """
    create_key(folder, KEY_FILE, PUBLIC_FILE)
    typer.echo(
        f"key written to {folder / KEY_FILE}; send {folder / PUBLIC_FILE} to the enrolment "
        "authority (fedsql authority sign-roster --analyst NAME=FILE)"
    )


def register(app: typer.Typer) -> None:
    """Add this command group to ``app``."""
    app.add_typer(analyst_app, name="analyst")
