"""Analysts' signed queries: every field is covered, only the enrolled key verifies, freshness."""

from __future__ import annotations

import dataclasses

import pytest

from fedsql.errors import ProtocolError
from fedsql.secagg.analyst_query import (
    FRESHNESS_MS,
    AnalystKey,
    SignedQuery,
    check_signed_query,
)
from fedsql.secagg.identity import IdentityKey

NOW = 1_800_000_000_000
KEY = IdentityKey.generate()


def statement() -> SignedQuery:
    return SignedQuery.create("fed", "ana", "SELECT 1", "[1]", "0.5", NOW).sign(KEY)


def test_a_signed_statement_verifies() -> None:
    check_signed_query(statement(), KEY.public_bytes, NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fed_id", "other"),
        ("analyst", "bob"),
        ("sql", "SELECT 2"),
        ("params_json", "[2]"),
        ("epsilon", "5"),
        ("nonce", bytes(16)),
        ("issued_ms", NOW + 1),
    ],
)
def test_changing_any_field_breaks_the_signature(field: str, value: object) -> None:
    changed = dataclasses.replace(statement(), **{field: value})
    with pytest.raises(ProtocolError, match="does not verify"):
        check_signed_query(changed, KEY.public_bytes, NOW)


def test_another_key_does_not_verify_and_unsigned_is_refused() -> None:
    with pytest.raises(ProtocolError, match="does not verify"):
        check_signed_query(statement(), IdentityKey.generate().public_bytes, NOW)
    with pytest.raises(ProtocolError, match="not signed"):
        check_signed_query(statement().unsigned(), KEY.public_bytes, NOW)


def test_fields_cannot_slide_into_each_other() -> None:
    a = SignedQuery("fed", "ana", "SELECT 1", "", "0.5", bytes(16), NOW)
    b = SignedQuery("fed", "an", "aSELECT 1", "", "0.5", bytes(16), NOW)
    assert a.canonical() != b.canonical()


@pytest.mark.parametrize("skew", [FRESHNESS_MS + 1, -(FRESHNESS_MS + 1)])
def test_a_statement_outside_the_freshness_window_is_refused(skew: int) -> None:
    with pytest.raises(ProtocolError, match="away from this silo's clock"):
        check_signed_query(statement(), KEY.public_bytes, NOW + skew)
    check_signed_query(statement(), KEY.public_bytes, NOW + skew - (1 if skew > 0 else -1))


def test_nonces_are_random_and_sixteen_bytes() -> None:
    nonces = {SignedQuery.create("f", "a", "s", "", "", NOW).nonce for _ in range(100)}
    assert len(nonces) == 100 and {len(n) for n in nonces} == {16}
    short = dataclasses.replace(statement(), nonce=b"x")
    with pytest.raises(ProtocolError, match="nonce must be 16 bytes"):
        check_signed_query(short.sign(KEY), KEY.public_bytes, NOW)


def test_an_analyst_key_needs_a_name_and_32_bytes() -> None:
    with pytest.raises(ProtocolError, match="name is empty"):
        AnalystKey("", bytes(32))
    with pytest.raises(ProtocolError, match="must be 32 bytes"):
        AnalystKey("ana", bytes(31))
