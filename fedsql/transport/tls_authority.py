"""The federation's certificate authority: its key and certificate, and the certificates it issues.

:func:`init_ca` makes the CA (an ECDSA P-256 key and a self-signed certificate that may sign leaf
certificates only). :func:`issue` signs a leaf certificate for one identity (the hub, a silo or
an analyst) with a fresh ECDSA P-256 key, and writes it, its key and the CA certificate to an
identity folder (see :mod:`fedsql.transport.tls_files`). ECDSA P-256 throughout: gRPC's TLS signs
handshakes with it, but not with Ed25519.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fedsql.errors import ConfigError
from fedsql.transport.tls_files import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    CERT_FILE,
    KEY_FILE,
    SigningKey,
    check_not_expired,
    fingerprint,
    pem,
    read_certificate,
    read_private_key,
    write_file,
)
from fedsql.transport.tls_identity import (
    ROLES,
    PeerIdentity,
    Role,
    certificate_identity,
    identity_uri,
    name_problem,
    usage_for,
)

__all__ = [
    "DEFAULT_CA_DAYS",
    "DEFAULT_CA_NAME",
    "DEFAULT_DAYS",
    "DEFAULT_HUB_HOSTS",
    "Issued",
    "init_ca",
    "issue",
]

#: Validity of a new CA, in days.
DEFAULT_CA_DAYS = 3650
#: Validity of an issued certificate, in days.
DEFAULT_DAYS = 365
#: The common name of a CA made without one.
DEFAULT_CA_NAME = "fedsql federation CA"
#: The hosts a hub certificate covers when none are given (besides the hub's own name).
DEFAULT_HUB_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")
#: New certificates are valid from this long before now, for peers whose clocks run behind.
CLOCK_SKEW = dt.timedelta(minutes=5)

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MAX_COMMON_NAME = 64


@dataclass(frozen=True)
class Issued:
    """A certificate just written: where it is and what it says."""

    cert_path: Path
    key_path: Path
    subject: str
    identity: PeerIdentity | None
    hosts: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str


def _fresh_key() -> SigningKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _check_days(days: int) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError("must be a whole number of days, at least 1", key="days")


def _check_free(paths: Sequence[Path], message: str) -> None:
    for path in paths:
        if path.exists():
            raise ConfigError(message, file=str(path))


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder ({exc.strerror})", file=str(folder)) from None


def _issued(cert: x509.Certificate, cert_path: Path, key_path: Path) -> Issued:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hosts = tuple(
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
            + san.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        hosts = ()
    return Issued(
        cert_path=cert_path,
        key_path=key_path,
        subject=cert.subject.rfc4514_string(),
        identity=certificate_identity(cert),
        hosts=hosts,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint=fingerprint(cert),
    )


def init_ca(
    folder: str | Path, name: str = DEFAULT_CA_NAME, *, days: int = DEFAULT_CA_DAYS
) -> Issued:
    """Create the federation's CA: ``ca.key`` (``0600``) and the self-signed ``ca.crt``.

    Keep the CA folder offline; only ``ca.crt`` is ever copied elsewhere (issuing does that).

    Args:
        folder: The CA folder (created ``0700`` if missing); must not already hold a CA.
        name: The CA certificate's common name.
        days: How long the CA is valid.

    Returns:
        What was written.

    Raises:
        ConfigError: The folder already holds a CA or cannot be written, or an argument is
            invalid.
    """
    _check_days(days)
    if not name or len(name) > _MAX_COMMON_NAME or not name.isprintable():
        raise ConfigError(f"must be 1 to {_MAX_COMMON_NAME} printable characters", key="name")
    root = Path(folder)
    cert_path, key_path = root / CA_CERT_FILE, root / CA_KEY_FILE
    _make_folder(root)
    _check_free((key_path, cert_path), "already holds a CA; choose another folder")
    key = _fresh_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_file(key_path, _key_pem(key), secret=True)
    write_file(cert_path, pem(cert), secret=False)
    return _issued(cert, cert_path, key_path)


def _host_names(hub: str, hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(hub)]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ConfigError(f"{host!r} is neither an IP address nor a DNS name", key="hosts")
        names.append(x509.DNSName(host.rstrip(".").lower()))
    unique: list[x509.GeneralName] = []
    for general_name in names:
        if general_name not in unique:
            unique.append(general_name)
    return unique


def _load_ca(folder: Path) -> tuple[x509.Certificate, SigningKey]:
    cert_path, key_path = folder / CA_CERT_FILE, folder / CA_KEY_FILE
    cert = read_certificate(cert_path)
    key, _ = read_private_key(key_path)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ConfigError(f"the key is not the key of {CA_CERT_FILE}", file=str(key_path))
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ConfigError(
            "the certificate is not a CA certificate; make one with `fedsql ca init`",
            file=str(cert_path),
        )
    check_not_expired(cert, cert_path)
    return cert, key


def issue(
    ca_folder: str | Path,
    role: Role,
    name: str,
    out_folder: str | Path,
    *,
    days: int = DEFAULT_DAYS,
    hosts: Sequence[str] | None = None,
    not_before: dt.datetime | None = None,
    replace: bool = False,
) -> Issued:
    """Issue a certificate for one identity into its own folder.

    The certificate names the identity as the URI ``fedsql:<role>:<name>``, in its subject
    (``OU=<role>``, ``CN=<name>``) and by its extended key usage: ``serverAuth`` for the hub,
    ``clientAuth`` for silos and analysts. A hub certificate also covers the host name ``name``
    and every entry of ``hosts``. ``out_folder`` receives ``tls.crt``, ``tls.key`` (``0600``) and
    a copy of the CA's ``ca.crt``.

    Args:
        ca_folder: The CA folder made by :func:`init_ca`.
        role: ``hub``, ``silo`` or ``analyst``.
        name: The hub's name (a DNS label), the silo's id as the roster lists it, or the
            analyst's name as silos' policies list it.
        out_folder: The identity folder (created ``0700`` if missing).
        days: How long the certificate is valid.
        hosts: Host names and IP addresses a hub certificate covers besides ``name``
            (default ``127.0.0.1`` and ``localhost``); hub certificates only.
        not_before: Start of validity, which then lasts exactly ``days``; by default ``days``
            from now, starting a few minutes before now (for clocks that run behind).
        replace: Overwrite a certificate and key already in ``out_folder`` (renewal).

    Returns:
        What was written.

    Raises:
        ConfigError: An argument is invalid, the CA cannot be read or has expired, the
            certificate would outlive the CA, or ``out_folder`` holds another certificate
            (without ``replace``) or another CA's ``ca.crt``.
    """
    _check_days(days)
    problem = name_problem(role, name)
    if problem is not None:
        raise ConfigError(problem, key="role" if role not in ROLES else "name")
    if role != "hub" and hosts:
        raise ConfigError("only hub certificates cover host names", key="hosts")
    ca_root, out = Path(ca_folder), Path(out_folder)
    ca_cert, ca_key = _load_ca(ca_root)

    if not_before is not None and not_before.tzinfo is None:
        raise ConfigError("must be a timezone-aware time", key="not_before")
    origin = not_before if not_before is not None else dt.datetime.now(dt.UTC)
    start = origin if not_before is not None else origin - CLOCK_SKEW
    end = origin + dt.timedelta(days=days)
    if end > ca_cert.not_valid_after_utc:
        raise ConfigError(
            f"the certificate would outlive the CA, which expires on "
            f"{ca_cert.not_valid_after_utc:%Y-%m-%d}; issue it for fewer days or renew the CA",
            key="days",
        )
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity_uri(role, name))]
    if role == "hub":
        alt_names += _host_names(name, DEFAULT_HUB_HOSTS if hosts is None else hosts)

    _make_folder(out)
    cert_path, key_path, ca_copy = out / CERT_FILE, out / KEY_FILE, out / CA_CERT_FILE
    if not replace:
        _check_free(
            (cert_path, key_path),
            "already holds a certificate; choose another folder, or replace it to renew "
            "(`fedsql ca issue --replace`)",
        )
    if ca_copy.exists() and read_certificate(ca_copy) != ca_cert:
        raise ConfigError(
            "holds the certificate of another CA; issue into a folder of this federation",
            file=str(ca_copy),
        )

    key = _fresh_key()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage_for(role)]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_file(key_path, _key_pem(key), secret=True)
    write_file(cert_path, pem(cert), secret=False)
    if not ca_copy.exists():
        write_file(ca_copy, pem(ca_cert), secret=False)
    return _issued(cert, cert_path, key_path)
