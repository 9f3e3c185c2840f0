"""``fedsql authority``: the enrolment authority's key and the rosters it signs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedsql.cli.failure import fail
from fedsql.config import load_contract
from fedsql.errors import ConfigError, Error
from fedsql.secagg.analyst_query import AnalystKey
from fedsql.secagg.enrolment import EnrolmentRequest, build_roster
from fedsql.secagg.identity import IdentityKey
from fedsql.secagg.roster import Authority, roster_to_json

authority_app = typer.Typer(help="The enrolment authority: its key and the rosters it signs.")

KEY_FILE = "authority.key"
PUBLIC_FILE = "authority.pub"


def read_public(path: Path) -> bytes:
    """A hex public key file (as written by ``authority init`` and ``hub keygen``)."""
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        raise typer.BadParameter(f"{path} is not a hex public key file") from None
    if len(raw) != 32:
        raise typer.BadParameter(f"{path} does not hold a 32-byte public key")
    return raw


def create_key(folder: Path, key_file: str, public_file: str) -> None:
    """Make an Ed25519 key in ``folder`` (0700): the private key (0600) and its public hex file.

    Never overwrites a key; a failure is reported and exits.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = IdentityKey.generate()
        key.save(folder / key_file)
    except Error as exc:
        fail(exc)
    (folder / public_file).write_text(key.public_bytes.hex() + "\n")


@authority_app.command("init")
def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the authority's key (created).")],
) -> None:
    """Create the authority's Ed25519 key (0600) and its public key file for silos to pin."""
    create_key(folder, KEY_FILE, PUBLIC_FILE)
    typer.echo(f"authority key written to {folder / KEY_FILE}; silos pin {folder / PUBLIC_FILE}")


@authority_app.command("sign-roster")
def sign_roster(
    requests: Annotated[list[Path], typer.Argument(help="Silos' enrolment.json files.")],
    authority: Annotated[Path, typer.Option(help="The authority's folder.")],
    contract: Annotated[Path, typer.Option(help="The federation contract (TOML).")],
    coordinator: Annotated[Path, typer.Option(help="The hub's public key file.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed roster (JSON).")],
    version: Annotated[int, typer.Option(help="Roster version; raise it on every change.")] = 1,
    analyst: Annotated[
        list[str] | None,
        typer.Option(
            help="Enrol an analyst: NAME=FILE with their public key (fedsql analyst keygen). "
            "Repeat for each; once any is enrolled, silos take only signed queries."
        ),
    ] = None,
) -> None:
    """Sign a roster of enrolled silos and analysts, bound to the contract and the hub's key."""
    try:
        the_contract = load_contract(contract)
        key = IdentityKey.load(authority / KEY_FILE)
        enrolled = [EnrolmentRequest.from_json(p.read_text()) for p in requests]
        analysts = [_analyst_key(item) for item in analyst or []]
        roster = Authority(key).sign(
            build_roster(
                the_contract.federation_id,
                version,
                the_contract.fingerprint,
                read_public(coordinator),
                enrolled,
                analysts,
            )
        )
    except Error as exc:
        fail(exc)
    out.write_text(roster_to_json(roster) + "\n")
    typer.echo(
        f"roster version {version} with {len(enrolled)} silo(s) and {len(analysts)} analyst(s) "
        f"written to {out}"
    )


def _analyst_key(item: str) -> AnalystKey:
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise ConfigError(f"--analyst takes NAME=FILE, not {item!r}")
    return AnalystKey(name, read_public(Path(path)))


def register(app: typer.Typer) -> None:
    """Add this command group to ``app``."""
    app.add_typer(authority_app, name="authority")
