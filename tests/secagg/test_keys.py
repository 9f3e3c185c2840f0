"""Key schedule: X25519 pair keys, HKDF mask and share keys, frozen known answers."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from fedsql.errors import ProtocolError
from fedsql.secagg import keys
from fedsql.secagg.keys import SiloKeyPair

# RFC 7748 section 6.1 test vector.
ALICE_PRIV = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUB = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIV = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUB = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

QID = bytes(range(16))
HQ = hashlib.sha256(b"descriptor").digest()


def _hkdf_by_hand(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with the standard library."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _lp(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">I", len(raw)) + raw


def _pair(own_priv: bytes, peer_pub: bytes, id_a: str = "alice", id_b: str = "bob") -> bytes:
    return keys.pair_key(own_priv, peer_pub, "fed-1", 3, id_a, id_b, ALICE_PUB, BOB_PUB)


def test_hkdf_matches_rfc5869_test_case_1() -> None:
    okm = keys.hkdf(
        bytes.fromhex("0b" * 22),
        bytes.fromhex("000102030405060708090a0b0c"),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_key_pair_follows_rfc7748() -> None:
    assert SiloKeyPair.from_private_bytes(ALICE_PRIV).public_bytes == ALICE_PUB
    assert SiloKeyPair.from_private_bytes(BOB_PRIV).public_bytes == BOB_PUB


def test_pair_key_layout_is_the_documented_hkdf_and_is_frozen() -> None:
    info = _lp("fed-1") + struct.pack(">q", 3) + _lp("alice") + _lp("bob") + ALICE_PUB + BOB_PUB
    expected = _hkdf_by_hand(SHARED, b"fedsql/secagg/v1/pair", info, 32)
    got = _pair(ALICE_PRIV, BOB_PUB)
    assert got == expected
    assert got.hex() == "d93009ee9cf7a348c2669cb741e2b3373628df89081fbb2b392c46ee81a2297e"


def test_both_silos_derive_the_same_pair_key_whatever_the_argument_order() -> None:
    from_alice = _pair(ALICE_PRIV, BOB_PUB)
    from_bob = _pair(BOB_PRIV, ALICE_PUB)
    swapped = keys.pair_key(BOB_PRIV, ALICE_PUB, "fed-1", 3, "bob", "alice", BOB_PUB, ALICE_PUB)
    assert from_alice == from_bob == swapped


def test_pair_key_depends_on_federation_epoch_and_ids() -> None:
    base = _pair(ALICE_PRIV, BOB_PUB)
    assert (
        keys.pair_key(ALICE_PRIV, BOB_PUB, "fed-2", 3, "alice", "bob", ALICE_PUB, BOB_PUB) != base
    )
    assert (
        keys.pair_key(ALICE_PRIV, BOB_PUB, "fed-1", 4, "alice", "bob", ALICE_PUB, BOB_PUB) != base
    )
    assert _pair(ALICE_PRIV, BOB_PUB, "alice", "carol") != base


def test_mask_and_share_keys_match_the_documented_layout_and_are_frozen() -> None:
    pair = _pair(ALICE_PRIV, BOB_PUB)
    mask = keys.mask_key(pair, QID, HQ)
    assert mask == _hkdf_by_hand(pair, QID, b"mask" + HQ, 16)
    assert mask.hex() == "c41c8b847bee18fde70291b3779ec142"
    share = keys.share_key(pair, QID, HQ, "alice", "bob")
    assert share == _hkdf_by_hand(pair, QID, b"share" + _lp("alice") + _lp("bob") + HQ, 32)
    assert share.hex() == "3aec0cd49cd66cb160640b820e498a73eb04ac9f65f16e7fc4eee7c81353d7b7"


def test_mask_key_differs_from_share_keys_and_share_keys_are_directional() -> None:
    pair = _pair(ALICE_PRIV, BOB_PUB)
    mask = keys.mask_key(pair, QID, HQ)
    a_to_b = keys.share_key(pair, QID, HQ, "alice", "bob")
    b_to_a = keys.share_key(pair, QID, HQ, "bob", "alice")
    assert a_to_b != b_to_a
    assert mask not in (a_to_b[:16], b_to_a[:16])


def test_per_query_keys_change_with_qid_and_descriptor_digest() -> None:
    pair = _pair(ALICE_PRIV, BOB_PUB)
    other_qid = bytes(16)
    other_hq = hashlib.sha256(b"another descriptor").digest()
    mask = keys.mask_key(pair, QID, HQ)
    assert keys.mask_key(pair, other_qid, HQ) != mask
    assert keys.mask_key(pair, QID, other_hq) != mask
    share = keys.share_key(pair, QID, HQ, "alice", "bob")
    assert keys.share_key(pair, other_qid, HQ, "alice", "bob") != share
    assert keys.share_key(pair, QID, other_hq, "alice", "bob") != share


def test_low_order_peer_key_is_refused() -> None:
    zero = bytes(32)
    with pytest.raises(ProtocolError, match="low-order"):
        keys.pair_key(ALICE_PRIV, zero, "fed-1", 3, "alice", "bob", ALICE_PUB, zero)


def test_pair_key_refuses_keys_that_do_not_belong_to_the_two_silos() -> None:
    stranger = SiloKeyPair.from_private_bytes(bytes(range(1, 33))).public_bytes
    with pytest.raises(ProtocolError, match="do not match"):
        keys.pair_key(ALICE_PRIV, stranger, "fed-1", 3, "alice", "bob", ALICE_PUB, BOB_PUB)
    with pytest.raises(ProtocolError, match="do not match"):
        keys.pair_key(BOB_PRIV, BOB_PUB, "fed-1", 3, "alice", "bob", ALICE_PUB, BOB_PUB)
    with pytest.raises(ProtocolError, match="two different silos"):
        keys.pair_key(ALICE_PRIV, BOB_PUB, "fed-1", 3, "alice", "alice", ALICE_PUB, BOB_PUB)


def test_key_derivations_refuse_malformed_lengths() -> None:
    pair = _pair(ALICE_PRIV, BOB_PUB)
    with pytest.raises(ProtocolError):
        keys.mask_key(pair[:16], QID, HQ)
    with pytest.raises(ProtocolError):
        keys.mask_key(pair, QID[:8], HQ)
    with pytest.raises(ProtocolError):
        keys.share_key(pair, QID, HQ[:16], "alice", "bob")
    with pytest.raises(ProtocolError, match="two different silos"):
        keys.share_key(pair, QID, HQ, "alice", "alice")


def test_key_pair_hides_its_private_half_and_checks_consistency() -> None:
    pair = SiloKeyPair.from_private_bytes(ALICE_PRIV)
    assert ALICE_PRIV.hex() not in repr(pair)
    assert "private" not in repr(pair)
    with pytest.raises(ProtocolError, match="does not belong"):
        SiloKeyPair(private_bytes=ALICE_PRIV, public_bytes=BOB_PUB)
    with pytest.raises(ProtocolError):
        SiloKeyPair.from_private_bytes(b"short")


def test_generated_key_pairs_are_distinct_and_valid() -> None:
    a, b = SiloKeyPair.generate(), SiloKeyPair.generate()
    assert a.public_bytes != b.public_bytes
    assert SiloKeyPair.from_private_bytes(a.private_bytes) == a
