"""ChaCha20-Poly1305 share encryption: authentic shares open, anything else is dropped."""

from __future__ import annotations

import hashlib

import pytest

from fedsql.errors import ProtocolError
from fedsql.secagg import aead

KEY = hashlib.sha256(b"share key").digest()
QID = bytes(range(16))
HQ = hashlib.sha256(b"descriptor").digest()
SHARE = bytes(range(66))


def _sealed() -> tuple[bytes, bytes]:
    aad = aead.share_aad(QID, "alice", "bob", HQ)
    return aead.encrypt_share(KEY, SHARE, aad), aad


def test_authentic_ciphertext_opens_to_the_share() -> None:
    ct, aad = _sealed()
    assert len(ct) == aead.CIPHERTEXT_BYTES == 82
    assert aead.decrypt_share(KEY, ct, aad) == SHARE


def test_associated_data_layout_is_qid_sender_receiver_digest() -> None:
    aad = aead.share_aad(QID, "alice", "bob", HQ)
    assert aad == QID + b"\x00\x00\x00\x05alice" + b"\x00\x00\x00\x03bob" + HQ


@pytest.mark.parametrize("position", [0, 30, 65, 66, 81])
def test_any_flipped_bit_is_rejected(position: int) -> None:
    ct, aad = _sealed()
    forged = bytearray(ct)
    forged[position] ^= 0x01
    assert aead.decrypt_share(KEY, bytes(forged), aad) is None


def test_ciphertext_bound_to_other_query_direction_or_descriptor_is_rejected() -> None:
    ct, _ = _sealed()
    other_hq = hashlib.sha256(b"other").digest()
    assert aead.decrypt_share(KEY, ct, aead.share_aad(bytes(16), "alice", "bob", HQ)) is None
    assert aead.decrypt_share(KEY, ct, aead.share_aad(QID, "bob", "alice", HQ)) is None
    assert aead.decrypt_share(KEY, ct, aead.share_aad(QID, "alice", "carol", HQ)) is None
    assert aead.decrypt_share(KEY, ct, aead.share_aad(QID, "alice", "bob", other_hq)) is None


def test_wrong_key_or_length_is_rejected_without_raising() -> None:
    ct, aad = _sealed()
    assert aead.decrypt_share(bytes(32), ct, aad) is None
    assert aead.decrypt_share(KEY, ct[:-1], aad) is None
    assert aead.decrypt_share(KEY, ct + b"\x00", aad) is None


def test_malformed_keys_and_shares_raise() -> None:
    with pytest.raises(ProtocolError, match="32 bytes"):
        aead.encrypt_share(KEY[:16], SHARE, b"")
    with pytest.raises(ProtocolError, match="66 bytes"):
        aead.encrypt_share(KEY, SHARE[:65], b"")
    with pytest.raises(ProtocolError, match="wrong length"):
        aead.share_aad(QID[:8], "a", "b", HQ)
