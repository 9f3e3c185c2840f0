"""Silo X25519 key pairs and the FSA-1 key schedule: pair keys, mask keys, share keys (HKDF-SHA256).

Byte layouts (``lp(s)`` is the 4-byte big-endian length then the UTF-8 bytes, integers are
8 bytes big-endian, see :mod:`fedsql.secagg.canonical`):

- pair key ``K_ij = HKDF(X25519(E_i, E_j.pub), salt="fedsql/secagg/v1/pair",
  info = lp(fed_id) ‖ int(epoch) ‖ lp(id_min) ‖ lp(id_max) ‖ pub_min ‖ pub_max, 32)``,
  where ``id_min`` is the smaller silo id (string order) and ``pub_min`` its public key;
- mask key ``mk_ij = HKDF(K_ij, salt=qid, info="mask" ‖ hq, 16)``, the same for both silos;
- share key ``ek_{i->j} = HKDF(K_ij, salt=qid, info="share" ‖ lp(id_i) ‖ lp(id_j) ‖ hq, 32)``,
  one per direction;
- extra key ``xk_ij = HKDF(K_ij, salt=qid, info="extra" ‖ hq ‖ SHA-256(R2), 16)``, the same for
  both silos, bound to the round-2 view it masks the extra noise vector under
  (:mod:`fedsql.secagg.extra`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedsql.errors import ProtocolError
from fedsql.secagg.canonical import int_field, str_field

__all__ = [
    "DIGEST_BYTES",
    "MASK_KEY_BYTES",
    "PAIR_KEY_BYTES",
    "PAIR_SALT",
    "PUBLIC_KEY_BYTES",
    "QID_BYTES",
    "SHARE_KEY_BYTES",
    "SiloKeyPair",
    "extra_key",
    "hkdf",
    "mask_key",
    "pair_key",
    "share_key",
]

PUBLIC_KEY_BYTES = 32
PAIR_KEY_BYTES = 32
SHARE_KEY_BYTES = 32
MASK_KEY_BYTES = 16
QID_BYTES = 16
DIGEST_BYTES = 32
PAIR_SALT = b"fedsql/secagg/v1/pair"


@dataclass(frozen=True)
class SiloKeyPair:
    """A silo's X25519 key pair (the epoch key E_i^e, or the identity key in a v0 deployment).

    Attributes:
        private_bytes: The 32-byte raw private key (never shown by ``repr``).
        public_bytes: The 32-byte raw public key.
    """

    private_bytes: bytes = field(repr=False)
    public_bytes: bytes

    def __post_init__(self) -> None:
        if len(self.private_bytes) != 32 or len(self.public_bytes) != PUBLIC_KEY_BYTES:
            raise ProtocolError("an X25519 key pair needs 32-byte private and public keys")
        private = X25519PrivateKey.from_private_bytes(bytes(self.private_bytes))
        if private.public_key().public_bytes_raw() != self.public_bytes:
            raise ProtocolError("the X25519 public key does not belong to the private key")

    @classmethod
    def generate(cls) -> SiloKeyPair:
        """A fresh random key pair.

        Returns:
            The new key pair.
        """
        return cls.from_private_bytes(X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_private_bytes(cls, private_bytes: bytes) -> SiloKeyPair:
        """The key pair of a stored 32-byte private key.

        Args:
            private_bytes: The raw private key.

        Returns:
            The key pair with its derived public key.

        Raises:
            ProtocolError: If the key is not 32 bytes.

        >>> len(SiloKeyPair.from_private_bytes(bytes(range(32))).public_bytes)
        32
        """
        if len(private_bytes) != 32:
            raise ProtocolError("an X25519 private key must be 32 bytes")
        private = X25519PrivateKey.from_private_bytes(bytes(private_bytes))
        public = private.public_key().public_bytes_raw()
        return cls(private_bytes=bytes(private_bytes), public_bytes=public)


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869).

    Args:
        ikm: Input keying material.
        salt: Salt.
        info: Context information.
        length: Output length in bytes.

    Returns:
        ``length`` bytes of output keying material.

    >>> hkdf(bytes(32), b"salt", b"info", 4).hex()
    '6fe931b1'
    """
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _check_query_ids(qid: bytes, hq: bytes) -> None:
    if len(qid) != QID_BYTES:
        raise ProtocolError(f"a query id must be {QID_BYTES} bytes")
    if len(hq) != DIGEST_BYTES:
        raise ProtocolError(f"a descriptor digest must be {DIGEST_BYTES} bytes")


def pair_key(
    own_private: bytes,
    peer_public: bytes,
    fed_id: str,
    epoch: int,
    id_a: str,
    id_b: str,
    pub_a: bytes,
    pub_b: bytes,
) -> bytes:
    """The pairwise key K_ij^e of two silos for one epoch (SECAGG.md section 3.3).

    Both silos compute the same key: the parties ``(id_a, pub_a)`` and ``(id_b, pub_b)`` may be
    given in either order, and are put in silo-id order inside the HKDF info.

    Args:
        own_private: This silo's 32-byte X25519 private key.
        peer_public: The peer's 32-byte X25519 public key (one of ``pub_a``, ``pub_b``).
        fed_id: Federation id.
        epoch: Key epoch.
        id_a: One silo's id.
        id_b: The other silo's id.
        pub_a: ``id_a``'s public key.
        pub_b: ``id_b``'s public key.

    Returns:
        The 32-byte pair key.

    Raises:
        ProtocolError: If the ids are equal, the keys are malformed or do not match the two
            parties, or the peer key is a low-order point (all-zero shared secret).
    """
    if id_a == id_b:
        raise ProtocolError("a pair key needs two different silos")
    if len(pub_a) != PUBLIC_KEY_BYTES or len(pub_b) != PUBLIC_KEY_BYTES:
        raise ProtocolError("an X25519 public key must be 32 bytes")
    if len(own_private) != 32:
        raise ProtocolError("an X25519 private key must be 32 bytes")
    private = X25519PrivateKey.from_private_bytes(own_private)
    own_public = private.public_key().public_bytes_raw()
    if {bytes(own_public), bytes(peer_public)} != {bytes(pub_a), bytes(pub_b)} or (
        own_public == peer_public
    ):
        raise ProtocolError("the pair key's public keys do not match the two silos")
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(bytes(peer_public)))
    except ValueError as exc:
        raise ProtocolError("a peer's X25519 public key is invalid (low-order point)") from exc
    (id_min, pub_min), (id_max, pub_max) = sorted([(id_a, bytes(pub_a)), (id_b, bytes(pub_b))])
    info = (
        str_field(fed_id) + int_field(epoch) + str_field(id_min) + str_field(id_max)
        + pub_min + pub_max
    )  # fmt: skip
    return hkdf(shared, PAIR_SALT, info, PAIR_KEY_BYTES)


def mask_key(pair: bytes, qid: bytes, hq: bytes) -> bytes:
    """The per-query pairwise mask key mk_ij^q = HKDF(K_ij, salt=qid, info="mask" ‖ hq, 16).

    Args:
        pair: The 32-byte pair key.
        qid: The 16-byte query id.
        hq: The 32-byte descriptor digest.

    Returns:
        The 16-byte mask key (the same for both silos of the pair).

    Raises:
        ProtocolError: If an input has the wrong length.

    >>> mask_key(bytes(32), bytes(16), bytes(32)).hex()
    '7e958895b7f4a5be87a1b19205d14bef'
    """
    if len(pair) != PAIR_KEY_BYTES:
        raise ProtocolError(f"a pair key must be {PAIR_KEY_BYTES} bytes")
    _check_query_ids(qid, hq)
    return hkdf(pair, qid, b"mask" + hq, MASK_KEY_BYTES)


def extra_key(pair: bytes, qid: bytes, hq: bytes, request_digest: bytes) -> bytes:
    """The pairwise key of the extra-noise masks, xk_ij = HKDF(K_ij, salt=qid, info="extra" ‖ hq ‖
    SHA-256(R2), 16): used for nothing else, and bound to the exact round-2 view.

    Args:
        pair: The 32-byte pair key.
        qid: The 16-byte query id.
        hq: The 32-byte descriptor digest.
        request_digest: SHA-256 of the round-2 request R2 the extra vector answers.

    Returns:
        The 16-byte key (the same for both silos of the pair).

    Raises:
        ProtocolError: If an input has the wrong length.

    >>> extra_key(bytes(32), bytes(16), bytes(32), bytes(32)) != mask_key(bytes(32), bytes(16),
    ...     bytes(32))
    True
    """
    if len(pair) != PAIR_KEY_BYTES:
        raise ProtocolError(f"a pair key must be {PAIR_KEY_BYTES} bytes")
    _check_query_ids(qid, hq)
    if len(request_digest) != DIGEST_BYTES:
        raise ProtocolError(f"a request digest must be {DIGEST_BYTES} bytes")
    return hkdf(pair, qid, b"extra" + hq + request_digest, MASK_KEY_BYTES)


def share_key(pair: bytes, qid: bytes, hq: bytes, sender: str, receiver: str) -> bytes:
    """The share-encryption key ek_{sender->receiver}^q (one per direction).

    Args:
        pair: The 32-byte pair key of sender and receiver.
        qid: The 16-byte query id.
        hq: The 32-byte descriptor digest.
        sender: Silo id of the share's owner (who encrypts).
        receiver: Silo id of the share's holder (who decrypts).

    Returns:
        The 32-byte AEAD key.

    Raises:
        ProtocolError: If an input has the wrong length or sender equals receiver.
    """
    if len(pair) != PAIR_KEY_BYTES:
        raise ProtocolError(f"a pair key must be {PAIR_KEY_BYTES} bytes")
    if sender == receiver:
        raise ProtocolError("a share key needs two different silos")
    _check_query_ids(qid, hq)
    info = b"share" + str_field(sender) + str_field(receiver) + hq
    return hkdf(pair, qid, info, SHARE_KEY_BYTES)
