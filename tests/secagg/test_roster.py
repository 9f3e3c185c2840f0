"""The signed roster: what the enrolment authority signs and what a silo refuses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from fedsql.errors import ProtocolError
from fedsql.secagg.analyst_query import AnalystKey
from fedsql.secagg.identity import IdentityKey
from fedsql.secagg.roster import (
    Authority,
    Roster,
    RosterEntry,
    roster_from_json,
    roster_to_json,
    verify_roster,
)
from fedsql.secagg.silo_session import SiloSession

from .harness import (
    CONTRACT_HASH,
    EPOCH,
    Federation,
    identity_for,
    keypair_for,
    make_federation,
)


def _fed(label: str = "roster") -> Federation:
    return make_federation(4, label=label, signed=True)


def _pinned(fed: Federation) -> bytes:
    assert fed.authority is not None
    return fed.authority.public_bytes


def _replace_entry(roster: Roster, silo_id: str, **changes: object) -> Roster:
    entries = tuple(
        dataclasses.replace(e, **changes) if e.silo_id == silo_id else e  # type: ignore[arg-type]
        for e in roster.entries
    )
    return dataclasses.replace(roster, entries=entries)


def test_a_signed_roster_verifies_against_the_pinned_authority() -> None:
    fed = _fed()
    verify_roster(fed.roster, _pinned(fed), min_version=1, contract_hash=CONTRACT_HASH)
    verify_roster(fed.roster, _pinned(fed), min_version=0)
    assert fed.roster.missing() == ()


def test_an_unsigned_roster_is_refused() -> None:
    fed = _fed()
    unsigned = dataclasses.replace(fed.roster, signature=b"")
    with pytest.raises(ProtocolError, match="not signed by the enrolment authority"):
        verify_roster(unsigned, _pinned(fed), min_version=1)


ALTERATIONS: dict[str, Callable[[Roster], Roster]] = {
    "fed_id": lambda r: dataclasses.replace(r, fed_id="fed-other"),
    "version": lambda r: dataclasses.replace(r, version=r.version + 1),
    "contract_hash": lambda r: dataclasses.replace(r, contract_hash="0" * 64),
    "coordinator_public": lambda r: dataclasses.replace(
        r, coordinator_public=identity_for("mallory").public_bytes
    ),
    "x25519_public": lambda r: _replace_entry(
        r, "clinic-001", x25519_public=keypair_for("mallory").public_bytes
    ),
    "ed25519_public": lambda r: _replace_entry(
        r, "clinic-001", ed25519_public=identity_for("mallory").public_bytes
    ),
    "index": lambda r: _replace_entry(r, "clinic-001", index=99),
    "added silo": lambda r: dataclasses.replace(
        r,
        entries=(
            *r.entries,
            RosterEntry(
                "clinic-999",
                99,
                keypair_for("sybil").public_bytes,
                identity_for("sybil").public_bytes,
            ),
        ),
    ),
    "removed silo": lambda r: dataclasses.replace(r, entries=r.entries[:-1]),
}


@pytest.mark.parametrize("what", sorted(ALTERATIONS))
def test_any_alteration_of_a_signed_roster_is_refused(what: str) -> None:
    fed = _fed()
    altered = ALTERATIONS[what](fed.roster)
    assert altered.signature == fed.roster.signature
    assert altered.canonical() != fed.roster.canonical()
    with pytest.raises(ProtocolError, match="altered or signed by someone else"):
        verify_roster(altered, _pinned(fed), min_version=1)


def test_a_roster_signed_by_another_authority_is_refused() -> None:
    fed = _fed()
    rogue = Authority(identity_for("rogue-authority"))
    forged = rogue.sign(
        _replace_entry(fed.roster, "clinic-002", x25519_public=keypair_for("mitm").public_bytes)
    )
    with pytest.raises(ProtocolError, match="altered or signed by someone else"):
        verify_roster(forged, _pinned(fed), min_version=1)
    verify_roster(forged, rogue.public_bytes, min_version=1)  # it is a valid rogue signature


def test_an_outdated_roster_is_refused() -> None:
    fed = _fed()
    assert fed.authority is not None
    newer = fed.authority.sign(dataclasses.replace(fed.roster, version=5))
    verify_roster(newer, _pinned(fed), min_version=5)
    with pytest.raises(ProtocolError, match="outdated: version 6 or later"):
        verify_roster(newer, _pinned(fed), min_version=6)


def test_a_roster_for_another_contract_is_refused() -> None:
    fed = _fed()
    with pytest.raises(ProtocolError, match="another federation contract"):
        verify_roster(fed.roster, _pinned(fed), min_version=1, contract_hash="f" * 64)


def test_the_authority_signs_only_complete_rosters() -> None:
    fed = make_federation(3, label="roster/incomplete")
    authority = Authority(identity_for("roster/authority"))
    with pytest.raises(ProtocolError, match=r"contract hash.*coordinator's Ed25519 key.*silo"):
        authority.sign(fed.roster)
    assert len(fed.roster.missing()) == 2 + 3
    # A roster whose signature verifies but which is incomplete is refused too.
    hollow = dataclasses.replace(fed.roster, signature=identity_for("x").sign(b""))
    forged = dataclasses.replace(
        hollow, signature=identity_for("roster/authority").sign(hollow.digest())
    )
    with pytest.raises(ProtocolError, match="lacks the contract hash"):
        verify_roster(forged, authority.public_bytes, min_version=1)


def test_roster_field_shapes_are_checked() -> None:
    entry = RosterEntry("a", 1, keypair_for("a").public_bytes)
    assert entry.ed25519_public == b""
    with pytest.raises(ProtocolError, match="Ed25519 key must be empty or 32 bytes"):
        RosterEntry("a", 1, keypair_for("a").public_bytes, b"short")
    with pytest.raises(ProtocolError, match="64 lowercase hex"):
        Roster("f", 1, (entry,), contract_hash="ABC")
    with pytest.raises(ProtocolError, match="coordinator's Ed25519 key must be"):
        Roster("f", 1, (entry,), coordinator_public=b"short")
    shared = identity_for("shared").public_bytes
    with pytest.raises(ProtocolError, match="same Ed25519 key"):
        Roster(
            "f",
            1,
            (
                RosterEntry("a", 1, keypair_for("a").public_bytes, shared),
                RosterEntry("b", 2, keypair_for("b").public_bytes, shared),
            ),
        )
    with pytest.raises(ProtocolError, match="same Ed25519 key"):
        Roster("f", 1, (RosterEntry("a", 1, keypair_for("a").public_bytes, shared),),
               coordinator_public=shared)  # fmt: skip


def test_the_canonical_form_is_independent_of_entry_order() -> None:
    fed = _fed()
    reversed_roster = dataclasses.replace(fed.roster, entries=fed.roster.entries[::-1])
    assert reversed_roster.canonical() == fed.roster.canonical()
    verify_roster(reversed_roster, _pinned(fed), min_version=1)


def test_a_signed_session_refuses_unsigned_altered_outdated_or_foreign_rosters() -> None:
    fed = _fed("roster/session")
    assert fed.authority is not None
    sid = "clinic-000"
    with pytest.raises(ProtocolError, match="not signed"):
        fed.sessions[sid].update_roster(dataclasses.replace(fed.roster, signature=b""), EPOCH)
    swapped = ALTERATIONS["x25519_public"](fed.roster)
    with pytest.raises(ProtocolError, match="altered"):
        fed.sessions[sid].update_roster(swapped, EPOCH)
    newer = fed.authority.sign(dataclasses.replace(fed.roster, version=3))
    fed.sessions[sid].update_roster(newer, EPOCH)
    assert fed.sessions[sid].roster.version == 3
    with pytest.raises(ProtocolError, match="outdated"):
        fed.sessions[sid].update_roster(fed.roster, EPOCH)  # a rollback to version 1
    conflicting = fed.authority.sign(dataclasses.replace(newer, contract_hash="e" * 64))
    with pytest.raises(ProtocolError, match="another federation contract"):
        fed.sessions[sid].update_roster(conflicting, EPOCH)
    assert fed.sessions[sid].roster == newer
    with pytest.raises(ProtocolError, match="outdated"):
        SiloSession(
            sid,
            fed.keypairs[sid],
            fed.roster,
            EPOCH,
            c_max=1,
            identity=fed.identities[sid],
            authority_public=_pinned(fed),
            contract_hash=CONTRACT_HASH,
            min_roster_version=2,
        )


def test_a_second_roster_with_the_pinned_version_is_refused() -> None:
    fed = _fed("roster/equivocation")
    assert fed.authority is not None
    other = fed.authority.sign(_replace_entry(fed.roster, "clinic-003", index=42))
    with pytest.raises(ProtocolError, match="different roster with the pinned version 1"):
        fed.sessions["clinic-000"].update_roster(other, EPOCH)


def test_a_signed_session_needs_its_identity_and_contract_and_a_matching_key() -> None:
    fed = _fed("roster/needs")
    sid = "clinic-000"
    base = {
        "c_max": 1,
        "identity": fed.identities[sid],
        "authority_public": _pinned(fed),
        "contract_hash": CONTRACT_HASH,
    }
    for missing, message in (("identity", "identity key"), ("contract_hash", "contract hash")):
        options = {k: v for k, v in base.items() if k != missing}
        with pytest.raises(ProtocolError, match=message):
            SiloSession(sid, fed.keypairs[sid], fed.roster, EPOCH, **options)  # type: ignore[arg-type]
    impostor = {**base, "identity": identity_for("impostor")}
    with pytest.raises(ProtocolError, match=r"different Ed25519 key.*substituted"):
        SiloSession(sid, fed.keypairs[sid], fed.roster, EPOCH, **impostor)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="altered"):
        SiloSession(
            sid,
            fed.keypairs[sid],
            fed.roster,
            EPOCH,
            **{**base, "authority_public": identity_for("other").public_bytes},  # type: ignore[arg-type]
        )


def test_unsigned_constructors_keep_working() -> None:
    """Existing callers pass RosterEntry(silo_id, index, x25519_public) and no keys."""
    kp = {s: keypair_for(f"compat/{s}") for s in ("a", "b", "c")}
    roster = Roster(
        fed_id="f",
        version=1,
        entries=tuple(
            RosterEntry(silo_id=s, index=i + 1, x25519_public=kp[s].public_bytes)
            for i, s in enumerate(kp)
        ),
    )
    session = SiloSession("a", kp["a"], roster, EPOCH, c_max=1)
    assert not session.signed
    assert roster.signature == b"" and roster.coordinator_public == b""


def test_enrolled_analysts_are_covered_by_the_authority_signature() -> None:
    authority = Authority.generate()
    silo = IdentityKey.generate()
    ana, eve = IdentityKey.generate(), IdentityKey.generate()
    roster = authority.sign(
        Roster(
            "fed",
            1,
            (RosterEntry("a", 1, bytes(range(32)), silo.public_bytes),),
            contract_hash="ab" * 32,
            coordinator_public=IdentityKey.generate().public_bytes,
            analysts=(AnalystKey("ana", ana.public_bytes),),
        )
    )
    verify_roster(roster, authority.public_bytes, min_version=1)
    assert roster.analyst_key("ana") == ana.public_bytes and roster.analyst_key("eve") is None
    assert roster_from_json(roster_to_json(roster)) == roster
    swapped = dataclasses.replace(roster, analysts=(AnalystKey("ana", eve.public_bytes),))
    added = dataclasses.replace(
        roster, analysts=(*roster.analysts, AnalystKey("eve", eve.public_bytes))
    )
    for forged in (swapped, added, dataclasses.replace(roster, analysts=())):
        with pytest.raises(ProtocolError, match="does not verify"):
            verify_roster(forged, authority.public_bytes, min_version=1)
    with pytest.raises(ProtocolError, match="lists an analyst twice"):
        dataclasses.replace(roster, analysts=roster.analysts * 2)
