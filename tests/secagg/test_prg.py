"""PRG(k, d): AES-128-CTR keystream, IV 0^16, read as little-endian uint64 words."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedsql.errors import ProtocolError
from fedsql.secagg import prg


def _ctr_by_hand(key: bytes, nbytes: int) -> bytes:
    """Keystream by AES-ECB over big-endian 128-bit counter blocks 0, 1, 2, ..."""
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    blocks = (nbytes + 15) // 16
    counters = b"".join(i.to_bytes(16, "big") for i in range(blocks))
    return (ecb.update(counters) + ecb.finalize())[:nbytes]


def test_zero_key_matches_the_aes128_known_answer() -> None:
    # FIPS-197 style vector: AES-128 with key 0^16 on block 0^16 = 66e94bd4ef8a2c3b884cfa59ca342b2e.
    words = prg.expand(bytes(16), 2)
    assert words.astype("<u8").tobytes().hex() == "66e94bd4ef8a2c3b884cfa59ca342b2e"


def test_keystream_equals_counter_mode_computed_by_hand() -> None:
    key = bytes(range(16))
    for d in (1, 3, 37, 1000):
        expected = np.frombuffer(_ctr_by_hand(key, 8 * d), dtype="<u8")
        assert np.array_equal(prg.expand(key, d), expected)


def test_frozen_outputs_for_a_fixed_key() -> None:
    words = prg.expand(bytes.fromhex("000102030405060708090a0b0c0d0e0f"), 4)
    assert [f"{int(w):016x}" for w in words] == [
        "825b8f87373ba1c6",
        "79d8c8a162814f6f",
        "1eb4c09595134673",
        "0a2df465e3bd7b49",
    ]


@pytest.mark.parametrize("d", [0, 1, 7, 1000, 100_000])
def test_expansion_has_the_requested_length_and_is_writable(d: int) -> None:
    words = prg.expand(b"k" * 16, d)
    assert words.dtype == np.uint64
    assert words.shape == (d,)
    assert words.flags.writeable


def test_shorter_expansion_is_a_prefix_of_a_longer_one() -> None:
    key = b"\x42" * 16
    assert np.array_equal(prg.expand(key, 100_000)[:999], prg.expand(key, 999))


def test_different_keys_give_unrelated_streams_and_equal_keys_equal_streams() -> None:
    a = prg.expand(b"a" * 16, 1000)
    b = prg.expand(b"b" * 16, 1000)
    assert np.array_equal(a, prg.expand(b"a" * 16, 1000))
    assert int((a == b).sum()) == 0


def test_expansions_do_not_alias_each_other() -> None:
    first = prg.expand(b"c" * 16, 10)
    snapshot = first.copy()
    first[:] = 0
    assert np.array_equal(prg.expand(b"c" * 16, 10), snapshot)


def test_add_then_subtract_the_same_stream_restores_the_accumulator() -> None:
    acc = np.arange(500, dtype=np.uint64) * np.uint64(2**60)
    start = acc.copy()
    prg.add_stream(acc, b"d" * 16, +1)
    assert not np.array_equal(acc, start)
    prg.add_stream(acc, b"d" * 16, -1)
    assert np.array_equal(acc, start)


def test_malformed_inputs_are_refused() -> None:
    with pytest.raises(ProtocolError, match="16 bytes"):
        prg.expand(b"short", 4)
    with pytest.raises(ProtocolError, match="negative"):
        prg.expand(bytes(16), -1)
    with pytest.raises(ProtocolError, match="sign"):
        prg.add_stream(np.zeros(2, dtype=np.uint64), bytes(16), 2)
