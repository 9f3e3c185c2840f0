"""``fedsql ca``: the federation's TLS certificate authority and the certificates it issues."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fedsql.cli.failure import fail
from fedsql.errors import Error
from fedsql.transport.tls import (
    CA_CERT_FILE,
    DEFAULT_CA_DAYS,
    DEFAULT_CA_NAME,
    DEFAULT_DAYS,
    Issued,
    init_ca,
    issue,
)

ca_app = typer.Typer(
    help="The federation's certificate authority: mutual TLS between hub, silos and analysts.",
    no_args_is_help=True,
)


class RoleChoice(StrEnum):
    """What a certificate lets its holder be."""

    hub = "hub"
    silo = "silo"
    analyst = "analyst"


def _describe(issued: Issued) -> None:
    typer.echo(f"subject: {issued.subject}")
    if issued.identity is not None:
        typer.echo(f"identity: {issued.identity.uri}")
    if issued.hosts:
        typer.echo(f"hosts: {', '.join(issued.hosts)}")
    typer.echo(
        f"valid: {issued.not_before:%Y-%m-%d %H:%M} to {issued.not_after:%Y-%m-%d %H:%M} UTC"
    )
    typer.echo(f"SHA-256 fingerprint: {issued.fingerprint}")


@ca_app.command("init")
def init(
    folder: Annotated[
        Path, typer.Argument(help="Folder for the CA's key and certificate (created).")
    ],
    name: Annotated[str, typer.Option("--name", help="The CA's common name.")] = DEFAULT_CA_NAME,
    days: Annotated[int, typer.Option("--days", help="How long the CA is valid.")] = (
        DEFAULT_CA_DAYS
    ),
) -> None:
    """Create the CA: an ECDSA P-256 key (0600) and its self-signed certificate.

    Keep the folder offline: only its ca.crt leaves it, copied by `fedsql ca issue`.
    """
    try:
        issued = init_ca(folder, name, days=days)
    except Error as exc:
        fail(exc)
    typer.echo(f"CA written to {issued.cert_path} (key {issued.key_path}, 0600; keep it offline)")
    _describe(issued)


@ca_app.command("issue")
def issue_certificate(
    role: Annotated[RoleChoice, typer.Argument(help="hub, silo or analyst.")],
    name: Annotated[
        str,
        typer.Argument(help="The hub's name, the silo's id, or the analyst's name."),
    ],
    ca: Annotated[Path, typer.Option("--ca", help="The CA folder (from `fedsql ca init`).")],
    out: Annotated[
        Path,
        typer.Option("--out", help="The identity folder to write tls.crt, tls.key and ca.crt to."),
    ],
    days: Annotated[int, typer.Option("--days", help="How long the certificate is valid.")] = (
        DEFAULT_DAYS
    ),
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="A host name or IP address the hub is dialled at (repeat; hub only; default "
            "127.0.0.1 and localhost).",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite the folder's certificate (renewal).")
    ] = False,
) -> None:
    """Issue a certificate for the hub, a silo or an analyst, with a fresh key (0600)."""
    try:
        issued = issue(
            ca,
            role.value,
            name,
            out,
            days=days,
            hosts=host or None,
            replace=replace,
        )
    except Error as exc:
        fail(exc)
    typer.echo(
        f"{role.value} certificate for {name} written to {issued.cert_path} "
        f"(key {issued.key_path}, 0600; CA {out / CA_CERT_FILE})"
    )
    _describe(issued)


def register(app: typer.Typer) -> None:
    """Add this command group to ``app``."""
    app.add_typer(ca_app, name="ca")
