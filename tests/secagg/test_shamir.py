"""Shamir sharing of self-mask seeds over GF(2^521 - 1)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsql.errors import ProtocolError
from fedsql.secagg import shamir
from fedsql.secagg.shamir import PRIME, SHARE_BYTES

from .harness import seeded_bytes

SECRET = bytes.fromhex("00112233445566778899aabbccddeeff")


def test_every_threshold_subset_reconstructs_the_secret() -> None:
    holders = [2, 3, 5, 7, 11, 13]
    shares = shamir.split(SECRET, 3, holders)
    for subset in itertools.combinations(holders, 3):
        assert shamir.reconstruct({x: shares[x] for x in subset}) == SECRET


def test_more_than_threshold_consistent_shares_also_reconstruct() -> None:
    shares = shamir.split(SECRET, 3, [1, 2, 3, 4, 5])
    assert shamir.reconstruct(shares) == SECRET


def test_fewer_than_threshold_shares_do_not_give_the_secret() -> None:
    holders = list(range(1, 8))
    shares = shamir.split(SECRET, 4, holders)
    for subset in itertools.combinations(holders, 3):
        try:
            got = shamir.reconstruct({x: shares[x] for x in subset})
        except ProtocolError:
            continue  # the interpolated value is not even a 16-byte seed
        assert got != SECRET


def test_shares_are_66_byte_field_elements() -> None:
    shares = shamir.split(SECRET, 5, list(range(1, 11)))
    assert all(len(s) == SHARE_BYTES for s in shares.values())
    assert all(int.from_bytes(s, "big") < PRIME for s in shares.values())
    assert len({s for s in shares.values()}) == 10


def test_threshold_one_shares_are_the_secret_itself() -> None:
    shares = shamir.split(SECRET, 1, [4, 9])
    assert {int.from_bytes(s, "big") for s in shares.values()} == {int.from_bytes(SECRET, "big")}


def test_randomness_source_makes_sharing_reproducible() -> None:
    a = shamir.split(SECRET, 3, [1, 2, 3, 4], random_bytes=seeded_bytes("s"))
    b = shamir.split(SECRET, 3, [1, 2, 3, 4], random_bytes=seeded_bytes("s"))
    c = shamir.split(SECRET, 3, [1, 2, 3, 4], random_bytes=seeded_bytes("other"))
    assert a == b
    assert a != c


def test_lagrange_coefficients_sum_to_one_and_are_cached() -> None:
    xs = (3, 8, 20, 41)
    coeffs = shamir.lagrange_at_zero(xs)
    assert sum(coeffs) % PRIME == 1  # interpolating the constant polynomial 1
    assert shamir.lagrange_at_zero(xs) is coeffs


def test_lagrange_coefficients_match_the_textbook_formula() -> None:
    xs = (2, 5, 9)
    for xi, lam in zip(xs, shamir.lagrange_at_zero(xs), strict=True):
        num = den = 1
        for xj in xs:
            if xj != xi:
                num, den = num * xj, den * (xj - xi)
        assert lam == num * pow(den, -1, PRIME) % PRIME


@pytest.mark.parametrize(
    ("secret", "threshold", "holders", "message"),
    [
        (b"short", 2, [1, 2], "16 bytes"),
        (SECRET, 0, [1, 2], "threshold"),
        (SECRET, 3, [1, 2], "threshold"),
        (SECRET, 2, [0, 1], "positive"),
        (SECRET, 2, [1, 1, 2], "distinct"),
        (SECRET, 2, [-3, 1], "positive"),
    ],
)
def test_split_refuses_malformed_arguments(
    secret: bytes, threshold: int, holders: list[int], message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        shamir.split(secret, threshold, holders)


def test_reconstruct_refuses_malformed_shares() -> None:
    shares = shamir.split(SECRET, 2, [1, 2])
    with pytest.raises(ProtocolError, match="no Shamir shares"):
        shamir.reconstruct({})
    with pytest.raises(ProtocolError, match="66 bytes"):
        shamir.reconstruct({1: shares[1][:-1], 2: shares[2]})
    with pytest.raises(ProtocolError, match="not a field element"):
        shamir.reconstruct({1: PRIME.to_bytes(66, "big"), 2: shares[2]})


@settings(max_examples=40, deadline=None)
@given(
    secret=st.binary(min_size=16, max_size=16),
    holders=st.lists(st.integers(1, 200), min_size=1, max_size=12, unique=True),
    data=st.data(),
)
def test_random_sharings_reconstruct_from_random_threshold_subsets(
    secret: bytes, holders: list[int], data: st.DataObject
) -> None:
    threshold = data.draw(st.integers(1, len(holders)))
    shares = shamir.split(secret, threshold, holders)
    subset = data.draw(st.permutations(holders))[:threshold]
    assert shamir.reconstruct({x: shares[x] for x in subset}) == secret
