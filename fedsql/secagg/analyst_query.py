"""An analyst's signed query: what the analyst signs, and how a silo checks it.

The analyst signs, with an Ed25519 key made on their own machine, the federation id, their name,
the SQL, its parameters, the epsilon they asked for (empty: the federation's default), a random
16-byte nonce and the time of signing. The enrolment authority puts each analyst's public key in
the signed roster, so a silo can check the signature itself: a hub cannot spend an analyst's
budget with a query the analyst did not sign, nor replay a signed one (silos remember nonces).
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass

from fedsql.errors import ProtocolError
from fedsql.secagg.canonical import bytes_field, int_field, str_field
from fedsql.secagg.identity import (
    ED25519_PUBLIC_BYTES,
    IdentityKey,
    sign_message,
    signed_digest,
    verify_signature,
)

__all__ = ["FRESHNESS_MS", "NONCE_BYTES", "AnalystKey", "SignedQuery", "check_signed_query"]

#: Length of a query's nonce.
NONCE_BYTES = 16
#: How far a query's signing time may be from a silo's clock, in milliseconds (both ways).
FRESHNESS_MS = 300_000


@dataclass(frozen=True)
class AnalystKey:
    """An enrolled analyst: the name budgets are charged to and their Ed25519 public key."""

    name: str
    ed25519_public: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProtocolError("an analyst's name is empty")
        object.__setattr__(self, "ed25519_public", bytes(self.ed25519_public))
        if len(self.ed25519_public) != ED25519_PUBLIC_BYTES:
            raise ProtocolError(f"analyst {self.name}: an Ed25519 key must be 32 bytes")


@dataclass(frozen=True)
class SignedQuery:
    """The statement an analyst signs for one query.

    >>> key = IdentityKey.generate()
    >>> q = SignedQuery.create("fed", "ana", "SELECT 1", "[]", "0.5", 1_700_000_000_000)
    >>> signed = q.sign(key)
    >>> check_signed_query(signed, key.public_bytes, 1_700_000_000_000)
    """

    fed_id: str
    analyst: str
    sql: str
    params_json: str
    epsilon: str
    nonce: bytes
    issued_ms: int
    signature: bytes = b""

    @classmethod
    def create(
        cls, fed_id: str, analyst: str, sql: str, params_json: str, epsilon: str, now_ms: int
    ) -> SignedQuery:
        """An unsigned statement with a fresh random nonce, issued at ``now_ms``."""
        return cls(fed_id, analyst, sql, params_json, epsilon, secrets.token_bytes(16), now_ms)

    def canonical(self) -> bytes:
        """Injective encoding of every field but the signature."""
        return (
            b"fedsql/analyst-query/v1" + str_field(self.fed_id) + str_field(self.analyst)
            + str_field(self.sql) + str_field(self.params_json) + str_field(self.epsilon)
            + bytes_field(self.nonce) + int_field(self.issued_ms)
        )  # fmt: skip

    def sign(self, key: IdentityKey) -> SignedQuery:
        """This statement signed with the analyst's key."""
        return sign_message(self, key)

    def unsigned(self) -> SignedQuery:
        """This statement without its signature."""
        return dataclasses.replace(self, signature=b"")


def check_signed_query(
    query: SignedQuery, analyst_public: bytes, now_ms: int, window_ms: int = FRESHNESS_MS
) -> None:
    """Check an analyst's signature and its freshness (the caller checks the nonce is new).

    Args:
        query: The statement as received, with its signature.
        analyst_public: The analyst's enrolled Ed25519 key (from the signed roster).
        now_ms: The checker's clock, Unix milliseconds.
        window_ms: How far the signing time may be from ``now_ms`` (a signed model's later
            rounds are allowed the model's lifetime).

    Raises:
        ProtocolError: The query is unsigned, the signature does not verify (altered, or signed
            with another analyst's key), the nonce is malformed, or it was signed too long ago or
            in the future.
    """
    if not query.signature:
        raise ProtocolError(
            f"the query is not signed by analyst {query.analyst}; this federation enrols its "
            "analysts and takes only queries they signed"
        )
    if not verify_signature(analyst_public, signed_digest(query), query.signature):
        raise ProtocolError(
            f"the query's signature does not verify against analyst {query.analyst}'s enrolled "
            "key; it was altered or signed by someone else"
        )
    if len(query.nonce) != NONCE_BYTES:
        raise ProtocolError("the query's nonce must be 16 bytes")
    if abs(now_ms - query.issued_ms) > window_ms:
        raise ProtocolError(
            f"the query was signed {abs(now_ms - query.issued_ms) // 1000} s away from this "
            f"silo's clock; at most {window_ms // 1000} s is accepted (check the clocks, "
            "or sign again)"
        )
