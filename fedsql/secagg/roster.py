"""The federation roster, the enrolment authority that signs it, and its verification by silos.

A roster lists, for one federation and roster version, each silo's id, its Shamir evaluation
point (roster index), its Ed25519 identity key and its long-term X25519 key, together with the
coordinator's Ed25519 key and the hash of the federation contract. The enrolment authority, a
party separate from the coordinator, signs it; silos pin the authority's public key and refuse
a roster that is unsigned, altered, signed by someone else or older than the one they hold, so
the coordinator cannot add, remove or replace keys (SECAGG.md section 3.1).

A roster without Ed25519 keys, coordinator key, contract hash or signature is still a valid
value: it is what a federation runs on in the unsigned mode meant for tests and embedded use.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fedsql.errors import ProtocolError
from fedsql.secagg.analyst_query import AnalystKey
from fedsql.secagg.canonical import bytes_field, int_field, seq_field, str_field
from fedsql.secagg.identity import (
    ED25519_PUBLIC_BYTES,
    IdentityKey,
    sign_message,
    signed_digest,
    verify_signature,
)
from fedsql.secagg.keys import PUBLIC_KEY_BYTES

__all__ = ["Authority", "Roster", "RosterEntry", "verify_roster"]

_CONTRACT_HASH = re.compile(r"[0-9a-f]{64}")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ProtocolError(message)


def _freeze(obj: Any, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_key(obj: Any, name: str, what: str) -> None:
    """Coerce ``obj.name`` to bytes; it must be empty (not enrolled) or a 32-byte key."""
    raw = bytes(getattr(obj, name))
    _require(len(raw) in (0, ED25519_PUBLIC_BYTES), f"{what} must be empty or 32 bytes")
    _freeze(obj, name, raw)


@dataclass(frozen=True)
class RosterEntry:
    """One enrolled silo: its id, 1-based roster index (Shamir point) and public keys.

    ``ed25519_public`` is the silo's identity key, which signs its messages and its epoch
    keys; it is empty only in an unsigned roster.
    """

    silo_id: str
    index: int
    x25519_public: bytes
    ed25519_public: bytes = b""

    def __post_init__(self) -> None:
        _require(isinstance(self.silo_id, str) and bool(self.silo_id), "a roster id is empty")
        _require(_is_int(self.index) and self.index >= 1, "a roster index must be >= 1")
        _freeze(self, "x25519_public", bytes(self.x25519_public))
        _require(
            len(self.x25519_public) == PUBLIC_KEY_BYTES,
            f"roster entry {self.silo_id}: an X25519 public key must be 32 bytes",
        )
        _optional_key(self, "ed25519_public", f"roster entry {self.silo_id}: an Ed25519 key")


@dataclass(frozen=True)
class Roster:
    """The federation's enrolled silos and their keys for one roster version.

    Attributes:
        fed_id: The federation id.
        version: The roster version; a silo never goes back to a lower one.
        entries: One entry per enrolled silo.
        signature: The enrolment authority's Ed25519 signature (empty when unsigned).
        contract_hash: The federation contract's fingerprint (64 lowercase hex digits), or
            empty in an unsigned roster.
        coordinator_public: The coordinator's Ed25519 key, which signs descriptors, unmask
            requests and aborts; empty in an unsigned roster.
        analysts: Enrolled analysts and their Ed25519 keys. When the roster lists any, silos
            take only queries signed by an enrolled analyst (see
            :mod:`fedsql.secagg.analyst_query`); when it lists none, queries are unsigned.
    """

    fed_id: str
    version: int
    entries: tuple[RosterEntry, ...]
    signature: bytes = b""
    contract_hash: str = field(default="", kw_only=True)
    coordinator_public: bytes = field(default=b"", kw_only=True)
    analysts: tuple[AnalystKey, ...] = field(default=(), kw_only=True)
    _by_id: dict[str, RosterEntry] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _freeze(self, "entries", tuple(self.entries))
        _require(isinstance(self.fed_id, str), "a federation id must be text")
        _require(_is_int(self.version), "a roster version must be an integer")
        _require(
            all(isinstance(e, RosterEntry) for e in self.entries),
            "roster entries must be RosterEntry values",
        )
        _freeze(self, "signature", bytes(self.signature))
        _require(
            isinstance(self.contract_hash, str)
            and (not self.contract_hash or bool(_CONTRACT_HASH.fullmatch(self.contract_hash))),
            "a contract hash must be empty or 64 lowercase hex digits",
        )
        _optional_key(self, "coordinator_public", "the coordinator's Ed25519 key")
        by_id = {e.silo_id: e for e in self.entries}
        _require(len(by_id) == len(self.entries), "the roster lists a silo id twice")
        indices = {e.index for e in self.entries}
        _require(len(indices) == len(self.entries), "the roster gives two silos the same index")
        keys = {e.x25519_public for e in self.entries}
        _require(len(keys) == len(self.entries), "the roster gives two silos the same key")
        identities = [e.ed25519_public for e in self.entries if e.ed25519_public]
        if self.coordinator_public:
            identities.append(self.coordinator_public)
        _freeze(self, "analysts", tuple(self.analysts))
        _require(
            all(isinstance(a, AnalystKey) for a in self.analysts),
            "roster analysts must be AnalystKey values",
        )
        names = {a.name for a in self.analysts}
        _require(len(names) == len(self.analysts), "the roster lists an analyst twice")
        identities.extend(a.ed25519_public for a in self.analysts)
        _require(
            len(set(identities)) == len(identities),
            "the roster gives two parties the same Ed25519 key",
        )
        _freeze(self, "_by_id", by_id)

    def get(self, silo_id: str) -> RosterEntry | None:
        """The entry of ``silo_id``, or None if it is not enrolled.

        Args:
            silo_id: A silo id.

        Returns:
            Its roster entry, or None.
        """
        return self._by_id.get(silo_id)

    def entry(self, silo_id: str) -> RosterEntry:
        """The entry of ``silo_id``.

        Args:
            silo_id: An enrolled silo id.

        Returns:
            Its roster entry.

        Raises:
            ProtocolError: If the silo is not in the roster.
        """
        found = self._by_id.get(silo_id)
        if found is None:
            raise ProtocolError(f"silo {silo_id} is not in roster version {self.version}")
        return found

    def analyst_key(self, name: str) -> bytes | None:
        """The enrolled Ed25519 key of analyst ``name``, or None."""
        for analyst in self.analysts:
            if analyst.name == name:
                return analyst.ed25519_public
        return None

    def missing(self) -> tuple[str, ...]:
        """What a roster needs before the authority may sign it, as readable items.

        Returns:
            Empty when the roster carries a contract hash, a coordinator key and an Ed25519
            key for every silo.
        """
        gaps = [
            f"the Ed25519 key of silo {e.silo_id}" for e in self.entries if not e.ed25519_public
        ]
        if not self.coordinator_public:
            gaps.insert(0, "the coordinator's Ed25519 key")
        if not self.contract_hash:
            gaps.insert(0, "the contract hash")
        return tuple(gaps)

    def canonical(self) -> bytes:
        """Injective encoding of every field but the signature; entries in silo-id order.

        Returns:
            The bytes whose SHA-256 the authority signs.
        """
        entries = seq_field(
            str_field(e.silo_id) + int_field(e.index)
            + bytes_field(e.ed25519_public) + bytes_field(e.x25519_public)
            for e in sorted(self.entries, key=lambda e: e.silo_id)
        )  # fmt: skip
        # Enrolled analysts follow under their own tag, so a roster without any keeps the
        # encoding (and signatures) it always had.
        analysts = (
            b""
            if not self.analysts
            else b"analysts"
            + seq_field(
                str_field(a.name) + bytes_field(a.ed25519_public)
                for a in sorted(self.analysts, key=lambda a: a.name)
            )
        )
        return (
            b"fedsql/secagg/v1/roster" + str_field(self.fed_id) + int_field(self.version)
            + str_field(self.contract_hash) + bytes_field(self.coordinator_public) + entries
            + analysts
        )  # fmt: skip

    def digest(self) -> bytes:
        """SHA-256(canonical()), the bytes the authority's signature covers.

        Returns:
            The 32-byte digest.
        """
        return hashlib.sha256(self.canonical()).digest()


class Authority:
    """The enrolment authority: an Ed25519 key, held apart from the coordinator, that signs rosters.

    Args:
        key: The authority's identity key. Silos pin ``key.public_bytes``.
    """

    def __init__(self, key: IdentityKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> Authority:
        """An authority with a fresh random key.

        Returns:
            The authority.
        """
        return cls(IdentityKey.generate())

    @property
    def public_bytes(self) -> bytes:
        """The 32-byte public key that silos pin."""
        return self._key.public_bytes

    def sign(self, roster: Roster) -> Roster:
        """Sign a complete roster.

        Args:
            roster: The roster to enrol; any existing signature is replaced.

        Returns:
            The same roster carrying the authority's signature.

        Raises:
            ProtocolError: If the roster lacks the contract hash, the coordinator's key or
                some silo's Ed25519 key.
        """
        gaps = roster.missing()
        if gaps:
            raise ProtocolError(f"the roster cannot be signed without {', '.join(gaps)}")
        return sign_message(roster, self._key)


def verify_roster(
    roster: Roster,
    authority_public: bytes,
    *,
    min_version: int,
    contract_hash: str | None = None,
) -> None:
    """Check a roster against the pinned enrolment authority (what a silo does before using it).

    Args:
        roster: The roster as received (for instance relayed by the coordinator).
        authority_public: The pinned 32-byte Ed25519 key of the enrolment authority.
        min_version: The lowest acceptable version: the version the silo already holds, so
            an older roster (which may still list revoked keys) is refused.
        contract_hash: The fingerprint of the contract this party runs; when given, the
            roster must name the same contract.

    Raises:
        ProtocolError: If the roster is unsigned, altered or signed by another key, older
            than ``min_version``, incomplete, or for another contract.
    """
    if not roster.signature:
        raise ProtocolError(
            f"roster version {roster.version} is not signed by the enrolment authority; refusing it"
        )
    if not verify_signature(authority_public, signed_digest(roster), roster.signature):
        raise ProtocolError(
            f"roster version {roster.version} does not verify against the pinned enrolment "
            "authority key; it was altered or signed by someone else"
        )
    if roster.version < min_version:
        raise ProtocolError(
            f"roster version {roster.version} is outdated: version {min_version} or later is "
            "already pinned"
        )
    gaps = roster.missing()
    if gaps:
        raise ProtocolError(f"the signed roster lacks {', '.join(gaps)}")
    if contract_hash is not None and roster.contract_hash != contract_hash:
        raise ProtocolError(
            f"roster version {roster.version} is for another federation contract "
            f"({roster.contract_hash[:12]}..., this party runs {contract_hash[:12]}...)"
        )


def roster_to_json(roster: Roster) -> str:
    """A roster as JSON text (keys and signature in hex), for files and enrolment tools.

    >>> r = Roster("fed", 1, (RosterEntry("a", 1, bytes(range(32))),))
    >>> roster_from_json(roster_to_json(r)) == r
    True
    """
    body = {
        "fed_id": roster.fed_id,
        "version": roster.version,
        "contract_hash": roster.contract_hash,
        "coordinator_public": roster.coordinator_public.hex(),
        "entries": [
            {
                "silo_id": e.silo_id,
                "index": e.index,
                "x25519_public": e.x25519_public.hex(),
                "ed25519_public": e.ed25519_public.hex(),
            }
            for e in roster.entries
        ],
        "analysts": [
            {"name": a.name, "ed25519_public": a.ed25519_public.hex()} for a in roster.analysts
        ],
        "signature": roster.signature.hex(),
    }
    return json.dumps(body, indent=2, sort_keys=True)


def roster_from_json(text: str) -> Roster:
    """Parse :func:`roster_to_json` output.

    Raises:
        ProtocolError: The text is not a roster.
    """
    try:
        body = json.loads(text)
        return Roster(
            fed_id=str(body["fed_id"]),
            version=int(body["version"]),
            entries=tuple(
                RosterEntry(
                    silo_id=str(e["silo_id"]),
                    index=int(e["index"]),
                    x25519_public=bytes.fromhex(e["x25519_public"]),
                    ed25519_public=bytes.fromhex(e.get("ed25519_public", "")),
                )
                for e in body["entries"]
            ),
            signature=bytes.fromhex(body.get("signature", "")),
            contract_hash=str(body.get("contract_hash", "")),
            coordinator_public=bytes.fromhex(body.get("coordinator_public", "")),
            analysts=tuple(
                AnalystKey(str(a["name"]), bytes.fromhex(a["ed25519_public"]))
                for a in body.get("analysts", [])
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"not a roster file ({type(exc).__name__})") from None
