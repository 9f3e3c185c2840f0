"""Ed25519 identities (silo, coordinator, enrolment authority) and signatures over messages.

Every signed FSA-1 object has a ``canonical()`` byte encoding that starts with its own
domain label (``fedsql/secagg/v1/...``) and a ``signature`` field that the encoding leaves
out. Its signature is the Ed25519 signature of ``SHA-256(canonical())`` (SECAGG.md section 6),
made by :func:`sign_message` and checked by :func:`verify_message`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fedsql.errors import ProtocolError
from fedsql.secagg.keyfiles import read_key_file, write_key_file

__all__ = [
    "ED25519_PUBLIC_BYTES",
    "SIGNATURE_BYTES",
    "IdentityKey",
    "Signable",
    "sign_message",
    "signed_digest",
    "verify_message",
    "verify_signature",
]

#: Length of a raw Ed25519 public (and private) key.
ED25519_PUBLIC_BYTES = 32
#: Length of an Ed25519 signature.
SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class IdentityKey:
    """A long-term Ed25519 signing key (a silo's identity, the coordinator's or the authority's).

    Attributes:
        private_bytes: The 32-byte raw private key (never shown by ``repr``).
        public_bytes: The 32-byte raw public key.
    """

    private_bytes: bytes = field(repr=False)
    public_bytes: bytes

    def __post_init__(self) -> None:
        if len(self.private_bytes) != 32 or len(self.public_bytes) != ED25519_PUBLIC_BYTES:
            raise ProtocolError("an Ed25519 key needs 32-byte private and public keys")
        private = Ed25519PrivateKey.from_private_bytes(bytes(self.private_bytes))
        if private.public_key().public_bytes_raw() != self.public_bytes:
            raise ProtocolError("the Ed25519 public key does not belong to the private key")

    @classmethod
    def generate(cls) -> IdentityKey:
        """A fresh random identity key.

        Returns:
            The new key.
        """
        return cls.from_private_bytes(Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_private_bytes(cls, private_bytes: bytes) -> IdentityKey:
        """The identity key of a stored 32-byte private key (an RFC 8032 seed).

        Args:
            private_bytes: The raw private key.

        Returns:
            The key with its derived public key.

        Raises:
            ProtocolError: If the key is not 32 bytes.

        >>> IdentityKey.from_private_bytes(bytes(32)).public_bytes.hex()[:16]
        '3b6a27bcceb6a42d'
        """
        if len(private_bytes) != 32:
            raise ProtocolError("an Ed25519 private key must be 32 bytes")
        private = Ed25519PrivateKey.from_private_bytes(bytes(private_bytes))
        public = private.public_key().public_bytes_raw()
        return cls(private_bytes=bytes(private_bytes), public_bytes=public)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IdentityKey:
        """Read an identity key from a raw 32-byte key file that only its owner can access.

        Args:
            path: The key file.

        Returns:
            The key.

        Raises:
            ConfigError: If the file is missing, exposed to group or others, or malformed.
        """
        return cls.from_private_bytes(read_key_file(path, 32))

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the raw private key to ``path`` with mode 0600, atomically.

        Args:
            path: Where the key goes; its directory must exist.
            overwrite: Replace an existing file instead of refusing.

        Raises:
            ConfigError: If the file exists (and ``overwrite`` is false) or cannot be written.
        """
        write_key_file(path, self.private_bytes, overwrite=overwrite)

    def sign(self, data: bytes) -> bytes:
        """The Ed25519 signature of ``data``.

        Args:
            data: The bytes to sign (for messages: a SHA-256 digest, see :func:`sign_message`).

        Returns:
            The 64-byte signature.

        >>> key = IdentityKey.from_private_bytes(bytes(32))
        >>> verify_signature(key.public_bytes, b"m", key.sign(b"m"))
        True
        """
        return self._private.sign(bytes(data))

    @functools.cached_property
    def _private(self) -> Ed25519PrivateKey:
        """The key as a cryptography object, loaded once (a key signs many messages)."""
        return Ed25519PrivateKey.from_private_bytes(self.private_bytes)


def verify_signature(public: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``data`` under ``public``.

    Args:
        public: The signer's 32-byte public key.
        data: The signed bytes.
        signature: The 64-byte signature.

    Returns:
        True if it verifies; False for a wrong, malformed or empty signature or key.

    >>> verify_signature(bytes(32), b"m", bytes(64))
    False
    """
    if len(public) != ED25519_PUBLIC_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public)).verify(bytes(signature), bytes(data))
    except (InvalidSignature, ValueError):
        return False
    return True


class Signable(Protocol):
    """A frozen message dataclass with a canonical encoding and a ``signature`` field."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def signature(self) -> bytes:
        """The Ed25519 signature over :func:`signed_digest` (empty when unsigned)."""
        ...

    def canonical(self) -> bytes:
        """The injective encoding of every field but the signature."""
        ...


_M = TypeVar("_M", bound=Signable)


def signed_digest(message: Signable) -> bytes:
    """The bytes a message signature covers: SHA-256 of its canonical encoding.

    Args:
        message: A signable message.

    Returns:
        The 32-byte digest.
    """
    return hashlib.sha256(message.canonical()).digest()


def sign_message(message: _M, key: IdentityKey) -> _M:
    """A copy of ``message`` carrying ``key``'s signature over :func:`signed_digest`.

    Args:
        message: The message (any existing signature is replaced).
        key: The signer's identity key.

    Returns:
        The signed message.
    """
    return dataclasses.replace(message, signature=key.sign(signed_digest(message)))


def verify_message(message: Signable, public: bytes, what: str) -> None:
    """Check that ``message`` is signed by the holder of ``public``.

    Args:
        message: The received message.
        public: The pinned Ed25519 public key of its expected signer.
        what: How to name the message in an error, e.g. ``"the unmask request"``.

    Raises:
        ProtocolError: If the message is unsigned, or its signature does not verify (it was
            altered, or signed by someone else).
    """
    if not message.signature:
        raise ProtocolError(f"{what} is not signed; refusing it")
    if not verify_signature(public, signed_digest(message), message.signature):
        raise ProtocolError(
            f"{what} carries a signature that does not verify against the pinned key; it was "
            "altered or signed by someone else"
        )
