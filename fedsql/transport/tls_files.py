"""The files of the federation's TLS folders: their layout, and reading and writing them safely.

A CA folder holds ``ca.crt`` and its private key ``ca.key``. Every issued identity gets a folder
of its own holding ``tls.crt`` (its certificate), ``tls.key`` (its private key) and ``ca.crt``
(the CA it trusts, pinned: no other root is ever trusted). Private keys are written ``0600`` and
refused on read if group or others may access them, as ``ssh`` refuses an open key.
:func:`load_identity_folder` reads an identity folder and checks that its parts belong together.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519

from fedsql.errors import ConfigError
from fedsql.transport.tls_identity import PeerIdentity, certificate_identity

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CERT_FILE",
    "KEY_FILE",
    "IdentityFolder",
    "SigningKey",
    "check_not_expired",
    "fingerprint",
    "load_identity_folder",
    "pem",
    "read_certificate",
    "read_private_key",
    "write_file",
]

#: The CA's certificate, in the CA folder and copied into every identity folder.
CA_CERT_FILE = "ca.crt"
#: The CA's private key (CA folder only).
CA_KEY_FILE = "ca.key"
#: An identity's certificate.
CERT_FILE = "tls.crt"
#: An identity's private key.
KEY_FILE = "tls.key"

#: Private keys the federation issues and loads (gRPC's TLS cannot sign with Ed25519 keys).
SigningKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class IdentityFolder:
    """An identity folder, read and checked: its PEM bytes as gRPC wants them, and who it is."""

    folder: Path
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    certificate: x509.Certificate
    identity: PeerIdentity


def pem(cert: x509.Certificate) -> bytes:
    """A certificate in PEM.

    Args:
        cert: The certificate.

    Returns:
        Its PEM encoding.
    """
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint of a certificate, as ``openssl x509 -fingerprint`` prints it.

    Args:
        cert: The certificate.

    Returns:
        32 colon-separated upper-case hex bytes.
    """
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("the file does not exist", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", file=str(path)) from None


def read_certificate(path: Path) -> x509.Certificate:
    """Read one PEM certificate.

    Args:
        path: The file.

    Returns:
        The certificate.

    Raises:
        ConfigError: The file is missing, unreadable or not a PEM certificate.
    """
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except ValueError:
        raise ConfigError("the file is not a PEM certificate", file=str(path)) from None


def read_private_key(path: Path) -> tuple[SigningKey, bytes]:
    """Read an unencrypted PEM private key that only its owner may access.

    Args:
        path: The file.

    Returns:
        The key and the file's bytes.

    Raises:
        ConfigError: The file is missing or unreadable, group or others may access it, it is not
            an unencrypted PEM private key, or it is a key gRPC's TLS cannot use.
    """
    data = _read(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", file=str(path)) from None
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(
            f"the private key may be read by others; run: chmod 600 {path}", file=str(path)
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(
            "the private key is encrypted; fedsql reads unencrypted keys (protect the folder)",
            file=str(path),
        ) from None
    except ValueError:
        raise ConfigError("the file is not a PEM private key", file=str(path)) from None
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        raise ConfigError(
            "gRPC's TLS cannot sign with an Edwards-curve key; issue an ECDSA P-256 key with "
            "`fedsql ca issue`",
            file=str(path),
        )
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(
            "the private key is not an ECDSA key; issue one with `fedsql ca issue`",
            file=str(path),
        )
    return key, data


def write_file(path: Path, data: bytes, *, secret: bool) -> None:
    """Write a file atomically: a temporary file in the same folder, then a rename.

    Args:
        path: Where to write.
        data: The content.
        secret: True for a private key (mode ``0600`` from the start), False for a certificate
            (``0644``).

    Raises:
        ConfigError: The file cannot be written.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o600 if secret else 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the file ({exc.strerror})", file=str(path)) from None


def check_not_expired(cert: x509.Certificate, path: Path, now: dt.datetime | None = None) -> None:
    """Refuse a certificate outside its validity period.

    Args:
        cert: The certificate.
        path: Its file (for the message).
        now: The time to check at; the current time when None.

    Raises:
        ConfigError: The certificate is not yet valid or has expired.
    """
    now = now or dt.datetime.now(dt.UTC)
    if now > cert.not_valid_after_utc:
        raise ConfigError(
            f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; "
            "issue a new one with `fedsql ca issue`",
            file=str(path),
        )
    if now < cert.not_valid_before_utc:
        raise ConfigError(
            f"the certificate is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC; "
            "check this machine's clock",
            file=str(path),
        )


def _same_key(cert: x509.Certificate, key: SigningKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return bool(
        cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)
    )


def load_identity_folder(folder: str | Path) -> IdentityFolder:
    """Read an identity folder and check that its certificate, key and CA belong together.

    Args:
        folder: A folder written by :func:`fedsql.transport.tls.issue`.

    Returns:
        The folder's contents and identity.

    Raises:
        ConfigError: A file is missing or malformed, the key is open to others or is not the
            certificate's, the certificate was not issued by the folder's CA, is outside its
            validity period, or names no federation identity.
    """
    root = Path(folder)
    ca_path, cert_path, key_path = root / CA_CERT_FILE, root / CERT_FILE, root / KEY_FILE
    ca = read_certificate(ca_path)
    cert = read_certificate(cert_path)
    key, key_pem = read_private_key(key_path)
    if not _same_key(cert, key):
        raise ConfigError(
            f"the private key is not the key of {cert_path.name}; issue the pair again",
            file=str(key_path),
        )
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ConfigError(
            f"the certificate was not issued by the CA in {ca_path.name}; copy the federation's "
            "CA certificate there or issue a new certificate",
            file=str(cert_path),
        ) from None
    check_not_expired(ca, ca_path)
    check_not_expired(cert, cert_path)
    identity = certificate_identity(cert)
    if identity is None:
        raise ConfigError(
            "the certificate names no fedsql identity; issue it with `fedsql ca issue`",
            file=str(cert_path),
        )
    return IdentityFolder(root, pem(ca), pem(cert), key_pem, cert, identity)
