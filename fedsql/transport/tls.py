"""Mutual TLS for the federation: credentials from identity folders, verified peer identities.

Outside the embedded demo every connection is mutual TLS under the federation's own CA (see
:mod:`fedsql.transport.tls_authority` for the CA and :mod:`fedsql.transport.tls_identity` for
what a certificate names). The hub serves with :func:`server_credentials`, which requires every
client to present a certificate of that CA; silos and analysts dial with
:func:`channel_credentials`, which trusts that CA alone (pinned) to vouch for the hub. On the hub,
:func:`peer_identity` reads the verified client certificate of a call; the server binds it to
the silo's Hello and the analyst's name (see :mod:`fedsql.transport.authorize`). Plaintext is
allowed on loopback only: :func:`check_insecure_bind`.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509

from fedsql.errors import ConfigError
from fedsql.transport.tls_authority import (
    DEFAULT_CA_DAYS,
    DEFAULT_CA_NAME,
    DEFAULT_DAYS,
    DEFAULT_HUB_HOSTS,
    Issued,
    init_ca,
    issue,
)
from fedsql.transport.tls_files import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    CERT_FILE,
    KEY_FILE,
    IdentityFolder,
    load_identity_folder,
)
from fedsql.transport.tls_identity import ROLES, PeerIdentity, Role, certificate_identity

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CERT_FILE",
    "DEFAULT_CA_DAYS",
    "DEFAULT_CA_NAME",
    "DEFAULT_DAYS",
    "DEFAULT_HUB_HOSTS",
    "KEY_FILE",
    "ROLES",
    "IdentityFolder",
    "Issued",
    "PeerIdentity",
    "Role",
    "channel_credentials",
    "check_insecure_bind",
    "check_insecure_target",
    "handshake_failure",
    "init_ca",
    "is_loopback",
    "issue",
    "load_identity_folder",
    "peer_identity",
    "read_identity",
    "server_credentials",
]


def server_credentials(folder: str | Path) -> grpc.ServerCredentials:
    """The hub's mTLS server credentials from its identity folder.

    Clients must present a certificate issued by the folder's CA (``require_client_auth``);
    gRPC refuses any other during the handshake, before a call reaches the hub.

    Args:
        folder: The hub's identity folder (``fedsql ca issue hub NAME --out FOLDER``).

    Returns:
        Credentials for :func:`fedsql.transport.server.start_hub_server`.

    Raises:
        ConfigError: The folder is incomplete or inconsistent (see
            :func:`~fedsql.transport.tls_files.load_identity_folder`), or its certificate is not
            a hub certificate.
    """
    bundle = load_identity_folder(folder)
    if bundle.identity.role != "hub":
        raise ConfigError(
            f"the certificate is for {bundle.identity}; the hub serves with a hub certificate "
            "(`fedsql ca issue hub NAME`)",
            file=str(bundle.folder / CERT_FILE),
        )
    return grpc.ssl_server_credentials(
        [(bundle.key_pem, bundle.cert_pem)],
        root_certificates=bundle.ca_pem,
        require_client_auth=True,
    )


def channel_credentials(
    folder: str | Path, *, expect: PeerIdentity | None = None
) -> grpc.ChannelCredentials:
    """A silo's or analyst's mTLS channel credentials from its identity folder.

    The channel trusts only the folder's CA to vouch for the hub (no system roots), and presents
    the folder's certificate to it.

    Args:
        folder: The identity folder (``fedsql ca issue silo|analyst NAME --out FOLDER``).
        expect: The identity the certificate must name (a silo passes its own id), if any.

    Returns:
        Credentials for :func:`fedsql.transport.client.connect_to_hub` and
        :class:`fedsql.transport.client.AnalystClient`.

    Raises:
        ConfigError: The folder is incomplete or inconsistent, holds a hub certificate, or
            names another identity than ``expect``.
    """
    bundle = load_identity_folder(folder)
    cert_file = str(bundle.folder / CERT_FILE)
    if bundle.identity.role == "hub":
        raise ConfigError(
            "a hub certificate cannot dial the hub; issue a silo or analyst certificate",
            file=cert_file,
        )
    if expect is not None and bundle.identity != expect:
        raise ConfigError(
            f"the certificate is for {bundle.identity}, not {expect}; issue one for {expect}",
            file=cert_file,
        )
    return grpc.ssl_channel_credentials(
        root_certificates=bundle.ca_pem,
        private_key=bundle.key_pem,
        certificate_chain=bundle.cert_pem,
    )


def read_identity(folder: str | Path) -> PeerIdentity:
    """The identity an identity folder's certificate names, after checking the folder.

    Args:
        folder: An identity folder.

    Returns:
        Its role and name.

    Raises:
        ConfigError: As :func:`channel_credentials`.
    """
    return load_identity_folder(folder).identity


def peer_identity(context: Any) -> PeerIdentity | None:
    """The identity of the verified client certificate of a call on the hub.

    The hub's credentials require and verify client certificates (:func:`server_credentials`),
    so a certificate in the call's auth context chains to the federation's CA.

    Args:
        context: The call's ``grpc.ServicerContext``.

    Returns:
        The certificate's identity; None on a plaintext connection, or when the certificate names
        no identity consistently.
    """
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    certs = auth.get("x509_pem_cert") or []
    if len(certs) != 1:
        return None
    try:
        cert = x509.load_pem_x509_certificate(certs[0])
    except ValueError:
        return None
    return certificate_identity(cert)


def _host(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{address!r} is not a host:port address")
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def is_loopback(address: str) -> bool:
    """Whether a ``host:port`` address stays on this machine.

    Args:
        address: ``host:port`` (IPv6 hosts in brackets), or a ``unix:`` socket path.

    Returns:
        True for ``localhost``, loopback IP addresses and Unix sockets.

    Raises:
        ConfigError: The address has no port.

    >>> is_loopback("127.0.0.1:0"), is_loopback("[::1]:7700"), is_loopback("localhost:1")
    (True, True, True)
    >>> is_loopback("0.0.0.0:7700"), is_loopback("[::]:7700"), is_loopback("hub.example.org:443")
    (False, False, False)
    """
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = _host(address)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_insecure_bind(address: str) -> None:
    """Refuse to serve plaintext anywhere but loopback.

    Args:
        address: The ``host:port`` a plaintext server would listen on.

    Raises:
        ConfigError: The address is not a loopback address.

    >>> check_insecure_bind("127.0.0.1:7700")
    >>> check_insecure_bind("0.0.0.0:7700")
    Traceback (most recent call last):
    fedsql.errors.ConfigError: plaintext is served on loopback only, and 0.0.0.0:7700 is not a loopback address; listen on 127.0.0.1 or serve mTLS with a hub certificate (`fedsql ca issue hub NAME`)
    """  # noqa: E501
    if not is_loopback(address):
        raise ConfigError(
            f"plaintext is served on loopback only, and {address} is not a loopback address; "
            "listen on 127.0.0.1 or serve mTLS with a hub certificate (`fedsql ca issue hub NAME`)"
        )


def check_insecure_target(target: str) -> None:
    """Refuse to dial a hub in plaintext anywhere but loopback.

    Args:
        target: The hub's ``host:port``.

    Raises:
        ConfigError: The address is not a loopback address.
    """
    if not is_loopback(target):
        raise ConfigError(
            f"the hub at {target} is not on this machine and no TLS credentials were given; "
            "dial it with an identity folder (`fedsql ca issue silo|analyst NAME`)"
        )


_VERIFY_FAILED = re.compile(r"CERTIFICATE_VERIFY_FAILED: ([^:]+)")
_HANDSHAKE = re.compile(r"(?:tls|ssl) handshake failed", re.IGNORECASE)
_CLOSED = re.compile(r"socket closed|connection reset", re.IGNORECASE)


def handshake_failure(details: str) -> str | None:
    """What a failed call's status details say about a TLS handshake that failed, if anything.

    Args:
        details: The details of a call that failed before reaching the hub.

    Returns:
        A sentence for an operator, or None when the details do not show a TLS failure.

    >>> handshake_failure("Tls handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: "
    ...     "error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED: "
    ...     "unsupported certificate purpose: OK")
    "the hub's certificate did not verify against this federation's CA (unsupported certificate purpose)"
    >>> handshake_failure("failed to connect to all addresses; Connection refused") is None
    True
    >>> handshake_failure("last error: UNAVAILABLE: ipv4:127.0.0.1:7700: Socket closed")
    "the hub closed the connection during the TLS handshake; it may have refused this certificate (expired, or not from the federation's CA)"
    """  # noqa: E501
    verify = _VERIFY_FAILED.search(details)
    if verify is not None:
        return (
            "the hub's certificate did not verify against this federation's CA "
            f"({verify.group(1).strip()})"
        )
    if "peer name" in details.lower() or "hostname" in details.lower():
        return "the hub's certificate does not cover the address dialled (give the hub's name)"
    if _HANDSHAKE.search(details):
        return "the TLS handshake failed"
    if _CLOSED.search(details):
        return (
            "the hub closed the connection during the TLS handshake; it may have refused this "
            "certificate (expired, or not from the federation's CA)"
        )
    return None
