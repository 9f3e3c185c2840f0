"""Epoch keys: per-epoch X25519 keys signed by a silo's identity, and the store that forgets them.

At each epoch e a silo publishes a fresh X25519 public key E_i^e signed with its Ed25519
identity key (SECAGG.md section 3.2); peers check the signature against the roster before
deriving pair keys from it. The :class:`EpochKeyStore` keeps the private halves and overwrites
and drops them when their epoch ends, which bounds what a later key compromise exposes to the
uploads of the current epoch (forward secrecy across epochs).

Python cannot guarantee that no copy of a key survives in freed memory: the store overwrites
its own buffer and drops every reference, which is the best the language allows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fedsql.errors import ProtocolError
from fedsql.secagg.canonical import bytes_field, int_field, str_field
from fedsql.secagg.identity import SIGNATURE_BYTES, IdentityKey, sign_message, verify_message
from fedsql.secagg.keys import PUBLIC_KEY_BYTES, SiloKeyPair
from fedsql.secagg.roster import Roster

__all__ = ["EpochKey", "EpochKeyStore", "verify_epoch_key"]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class EpochKey:
    """A silo's X25519 public key for one epoch, signed by the silo's identity key.

    Attributes:
        fed_id: The federation id (bound into the signature).
        silo_id: The silo that owns the key.
        epoch: The key epoch.
        x25519_public: The 32-byte X25519 public key E_i^e.
        signature: The silo's Ed25519 signature over SHA-256(canonical()).
    """

    fed_id: str
    silo_id: str
    epoch: int
    x25519_public: bytes
    signature: bytes = b""

    def __post_init__(self) -> None:
        if (
            not isinstance(self.fed_id, str)
            or not isinstance(self.silo_id, str)
            or not self.silo_id
        ):
            raise ProtocolError("an epoch key needs a federation id and a silo id")
        if not _is_int(self.epoch):
            raise ProtocolError("an epoch key's epoch must be an integer")
        object.__setattr__(self, "x25519_public", bytes(self.x25519_public))
        object.__setattr__(self, "signature", bytes(self.signature))
        if len(self.x25519_public) != PUBLIC_KEY_BYTES:
            raise ProtocolError("an epoch key's X25519 public key must be 32 bytes")
        if len(self.signature) not in (0, SIGNATURE_BYTES):
            raise ProtocolError("an epoch key's signature must be empty or 64 bytes")

    def canonical(self) -> bytes:
        """Injective encoding of every field but the signature.

        Returns:
            The bytes whose SHA-256 the silo signs.
        """
        return (
            b"fedsql/secagg/v1/epoch-key" + str_field(self.fed_id) + str_field(self.silo_id)
            + int_field(self.epoch) + bytes_field(self.x25519_public)
        )  # fmt: skip


def verify_epoch_key(key: EpochKey, roster: Roster) -> None:
    """Check that an epoch key was signed by the identity key the roster lists for its silo.

    Args:
        key: The published epoch key (as relayed by the coordinator).
        roster: The verified roster.

    Raises:
        ProtocolError: If the key is for another federation, its silo is not enrolled or has
            no Ed25519 key in the roster, or the signature does not verify.
    """
    if key.fed_id != roster.fed_id:
        raise ProtocolError(f"an epoch key is for federation {key.fed_id}, not {roster.fed_id}")
    entry = roster.entry(key.silo_id)
    if not entry.ed25519_public:
        raise ProtocolError(
            f"roster version {roster.version} has no identity key for silo {key.silo_id}, so "
            "its epoch keys cannot be checked"
        )
    verify_message(key, entry.ed25519_public, f"the epoch {key.epoch} key of silo {key.silo_id}")


class EpochKeyStore:
    """One silo's epoch key pairs: creates and signs them, and wipes them when epochs end.

    Thread-safe. Private halves live in this store only; :meth:`keypair` hands out a transient
    copy for a derivation.

    Args:
        fed_id: The federation id.
        silo_id: The owning silo's id.
        identity: The silo's Ed25519 identity key, which signs each epoch key.
        random_bytes: Source of the private keys. Keep the default (``os.urandom``); override
            only to reproduce a run in tests.
    """

    def __init__(
        self,
        fed_id: str,
        silo_id: str,
        identity: IdentityKey,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.fed_id = fed_id
        self.silo_id = silo_id
        self._identity = identity
        self._random_bytes = random_bytes
        self._private: dict[int, bytearray] = {}
        self._public: dict[int, EpochKey] = {}
        self._ended_through: int | None = None
        self._lock = threading.Lock()

    @property
    def identity_public(self) -> bytes:
        """The Ed25519 public key that signs this store's epoch keys."""
        return self._identity.public_bytes

    @property
    def ended_through(self) -> int | None:
        """The highest epoch ended so far (its key and every earlier one are gone), or None."""
        return self._ended_through

    @property
    def epochs(self) -> tuple[int, ...]:
        """The epochs whose private key is held, ascending."""
        with self._lock:
            return tuple(sorted(self._private))

    def _check_open(self, epoch: int) -> None:
        if self._ended_through is not None and epoch <= self._ended_through:
            raise ProtocolError(
                f"epoch {epoch} has ended (every epoch up to {self._ended_through} has); its "
                "private key is deleted"
            )

    def open_epoch(self, epoch: int) -> EpochKey:
        """Create (once) this silo's key pair for ``epoch`` and return its signed public half.

        Calling it again for the same epoch returns the same key.

        Args:
            epoch: The epoch.

        Returns:
            The signed epoch key to publish.

        Raises:
            ProtocolError: If the epoch has already ended.
        """
        if not _is_int(epoch):
            raise ProtocolError("an epoch must be an integer")
        with self._lock:
            self._check_open(epoch)
            existing = self._public.get(epoch)
            if existing is not None:
                return existing
            raw = bytearray(self._random_bytes(32))
            if len(raw) != 32:
                raise ProtocolError("the random source returned a short key")
            private = X25519PrivateKey.from_private_bytes(bytes(raw))
            public = EpochKey(
                self.fed_id, self.silo_id, epoch, private.public_key().public_bytes_raw()
            )
            signed = sign_message(public, self._identity)
            self._private[epoch], self._public[epoch] = raw, signed
            return signed

    def public(self, epoch: int) -> EpochKey:
        """The signed public key of an open epoch.

        Args:
            epoch: The epoch.

        Returns:
            The epoch key.

        Raises:
            ProtocolError: If the epoch has ended or was never opened.
        """
        with self._lock:
            self._check_open(epoch)
            found = self._public.get(epoch)
        if found is None:
            raise ProtocolError(f"silo {self.silo_id} has no key for epoch {epoch}")
        return found

    def keypair(self, epoch: int) -> SiloKeyPair:
        """A transient copy of the key pair of an open epoch, for a pair-key derivation.

        Args:
            epoch: The epoch.

        Returns:
            The X25519 key pair E_i^e.

        Raises:
            ProtocolError: If the epoch has ended or was never opened.
        """
        with self._lock:
            self._check_open(epoch)
            raw = self._private.get(epoch)
            if raw is None:
                raise ProtocolError(f"silo {self.silo_id} has no key for epoch {epoch}")
            return SiloKeyPair(
                private_bytes=bytes(raw), public_bytes=self._public[epoch].x25519_public
            )

    def end_epoch(self, epoch: int) -> None:
        """End ``epoch`` and every earlier one: overwrite and drop their private keys.

        Ended epochs can never be opened again.

        Args:
            epoch: The last epoch to end.
        """
        if not _is_int(epoch):
            raise ProtocolError("an epoch must be an integer")
        with self._lock:
            for e in [e for e in self._private if e <= epoch]:
                buf = self._private.pop(e)
                buf[:] = bytes(len(buf))
                del self._public[e]
            if self._ended_through is None or epoch > self._ended_through:
                self._ended_through = epoch
