"""ChaCha20-Poly1305 encryption of Shamir shares between silos, relayed by the coordinator.

Each share key ek_{i->j}^q encrypts exactly one share, so the nonce is the constant 0^12. The
associated data binds the ciphertext to its query, direction and descriptor:
``aad = qid ‖ lp(sender) ‖ lp(receiver) ‖ hq``. A forged, re-addressed or cross-query
ciphertext fails authentication and is dropped.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from fedsql.errors import ProtocolError
from fedsql.secagg.canonical import str_field
from fedsql.secagg.keys import DIGEST_BYTES, QID_BYTES, SHARE_KEY_BYTES
from fedsql.secagg.shamir import SHARE_BYTES

__all__ = ["CIPHERTEXT_BYTES", "NONCE", "TAG_BYTES", "decrypt_share", "encrypt_share", "share_aad"]

#: The constant nonce: every key encrypts one message only.
NONCE = bytes(12)
#: Length of the Poly1305 tag.
TAG_BYTES = 16
#: Length of an encrypted share.
CIPHERTEXT_BYTES = SHARE_BYTES + TAG_BYTES


def share_aad(qid: bytes, sender: str, receiver: str, hq: bytes) -> bytes:
    """The associated data of one share ciphertext: qid ‖ lp(sender) ‖ lp(receiver) ‖ hq.

    Args:
        qid: The 16-byte query id.
        sender: The share owner's silo id.
        receiver: The share holder's silo id.
        hq: The 32-byte descriptor digest.

    Returns:
        The associated-data bytes.

    Raises:
        ProtocolError: If ``qid`` or ``hq`` has the wrong length.

    >>> len(share_aad(bytes(16), "a", "bc", bytes(32)))
    59
    """
    if len(qid) != QID_BYTES or len(hq) != DIGEST_BYTES:
        raise ProtocolError("a share's query id or descriptor digest has the wrong length")
    return qid + str_field(sender) + str_field(receiver) + hq


def _cipher(key: bytes) -> ChaCha20Poly1305:
    if len(key) != SHARE_KEY_BYTES:
        raise ProtocolError(f"a share key must be {SHARE_KEY_BYTES} bytes")
    return ChaCha20Poly1305(bytes(key))


def encrypt_share(key: bytes, share: bytes, aad: bytes) -> bytes:
    """Encrypt one 66-byte share under its one-time share key.

    Args:
        key: The 32-byte share key ek_{sender->receiver}.
        share: The 66-byte encoded Shamir share.
        aad: The associated data from :func:`share_aad`.

    Returns:
        The 82-byte ciphertext (share and tag).

    Raises:
        ProtocolError: If the key or share has the wrong length.

    >>> ct = encrypt_share(bytes(32), bytes(66), b"aad")
    >>> len(ct), decrypt_share(bytes(32), ct, b"aad") == bytes(66)
    (82, True)
    """
    if len(share) != SHARE_BYTES:
        raise ProtocolError(f"a Shamir share must be {SHARE_BYTES} bytes")
    return _cipher(key).encrypt(NONCE, bytes(share), aad)


def decrypt_share(key: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
    """Decrypt one share, or return None if the ciphertext does not authenticate.

    Args:
        key: The 32-byte share key ek_{sender->receiver}.
        ciphertext: The ciphertext as relayed by the coordinator.
        aad: The associated data the receiver expects.

    Returns:
        The 66-byte share, or None for a forged, tampered, misaddressed or wrong-length
        ciphertext.

    Raises:
        ProtocolError: If the key has the wrong length.

    >>> decrypt_share(bytes(32), bytes(82), b"aad") is None
    True
    """
    cipher = _cipher(key)
    if len(ciphertext) != CIPHERTEXT_BYTES:
        return None
    try:
        return cipher.decrypt(NONCE, bytes(ciphertext), aad)
    except InvalidTag:
        return None
