"""Message dataclasses: shape validation and canonical, injective digests."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fedsql.errors import ProtocolError
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.messages import (
    Abort,
    Descriptor,
    MaskedUpload,
    Roster,
    RosterEntry,
    UnmaskRequest,
    UnmaskResponse,
    vector_from_bytes,
    vector_to_bytes,
)

from .harness import make_descriptor, make_federation

FED = make_federation(4)
SPECS = (CoordinateSpec(10.0, 0, 3.0), CoordinateSpec(2.5, 8, 40.0))

#: A different, valid value for every descriptor field.
CHANGED: dict[str, object] = {
    "version": 2,
    "fed_id": "fed-other",
    "roster_version": 2,
    "epoch": 8,
    "qid": bytes(16),
    "cohort": ("clinic-000", "clinic-001", "clinic-002"),
    "threshold": 3,
    "n_min": 4,
    "dimension": 8,
    "encoding": (CoordinateSpec(10.0, 0, 3.0), CoordinateSpec(2.5, 9, 40.0)),
    "cells": 4,
    "sigma_loc": (1.0, 20.5),
    "rho_charge": "0.25",
    "epsilon_charge": "1.5",
    "analyst": "someone-else",
    "plan_hash": "cd" * 32,
    "sql": "SELECT SUM(x) FROM t",
    "params_json": "[1]",
    "deadline_ms": 1,
}


def _desc() -> Descriptor:
    return make_descriptor(FED, specs=SPECS, cells=3, sigma_loc=(1.0, 20.0))


def test_every_descriptor_field_is_covered_by_the_test_table() -> None:
    assert {f.name for f in dataclasses.fields(Descriptor)} == {*CHANGED, "signature"}


def test_the_descriptor_signature_is_outside_its_digest() -> None:
    base = _desc()
    signed = dataclasses.replace(base, signature=bytes(range(64)))
    assert signed.digest() == base.digest()
    with pytest.raises(ProtocolError, match="signature must be empty or 64 bytes"):
        dataclasses.replace(base, signature=b"sig")


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_changing_any_descriptor_field_changes_its_digest(name: str) -> None:
    base = _desc()
    extra: dict[str, object] = {name: CHANGED[name]}
    if name == "cells":
        extra["dimension"] = 8
    if name == "dimension":
        extra["cells"] = 4
    other = dataclasses.replace(base, **extra)  # type: ignore[arg-type]
    assert other.digest() != base.digest()
    assert other.canonical() != base.canonical()


def test_the_limbs_of_a_measure_are_part_of_the_digest() -> None:
    base = _desc()
    split = (SPECS[0], dataclasses.replace(SPECS[1], limbs=2))
    other = dataclasses.replace(base, encoding=split, dimension=9)
    assert other.digest() != base.digest()
    # the same vector length with the limbs on the other measure is another descriptor
    moved = (dataclasses.replace(SPECS[0], limbs=2), SPECS[1])
    assert dataclasses.replace(base, encoding=moved, dimension=9).digest() != other.digest()


def test_equal_descriptors_have_equal_digests() -> None:
    a, b = _desc(), _desc()
    assert a == b
    assert a.digest() == b.digest()
    assert len(a.digest()) == 32
    zero = dataclasses.replace(a, sigma_loc=(0.0, 0.0))
    neg_zero = dataclasses.replace(a, sigma_loc=(-0.0, 0.0))
    assert zero.digest() == neg_zero.digest()


def test_text_fields_cannot_be_shifted_into_each_other() -> None:
    base = _desc()
    a = dataclasses.replace(base, analyst="ab", plan_hash="c")
    b = dataclasses.replace(base, analyst="a", plan_hash="bc")
    assert a.digest() != b.digest()


def test_descriptor_coerces_sequences_to_tuples() -> None:
    desc = dataclasses.replace(_desc(), cohort=list(FED.ids))  # type: ignore[arg-type]
    assert isinstance(desc.cohort, tuple)
    hash(desc)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"qid": b"short"}, "16 bytes"),
        ({"cohort": ("clinic-001", "clinic-000")}, "sorted"),
        ({"cohort": ("clinic-000", "clinic-000")}, "distinct"),
        ({"cohort": ("clinic-000",)}, "at least two"),
        ({"cohort": ("clinic-000", "")}, "invalid silo id"),
        ({"dimension": 7}, "cells x coordinates per cell"),
        ({"encoding": (SPECS[0], dataclasses.replace(SPECS[1], limbs=2))}, "coordinates per cell"),
        ({"sigma_loc": (1.0,)}, "one sigma_loc per measure"),
        ({"sigma_loc": (1.0, float("nan"))}, "finite"),
        ({"sigma_loc": (1.0, -2.0)}, "finite"),
        ({"threshold": 0}, "at least 1"),
        ({"epoch": 2**63}, None),
        ({"version": "1"}, "integer"),
        ({"sql": None}, "text"),
        ({"encoding": (1.0, 2.0)}, "CoordinateSpec"),
    ],
)
def test_malformed_descriptors_are_refused(changes: dict[str, object], message: str | None) -> None:
    if "epoch" in changes:
        with pytest.raises(ProtocolError, match="64-bit"):
            dataclasses.replace(_desc(), **changes).digest()  # type: ignore[arg-type]
        return
    with pytest.raises(ProtocolError, match=message):
        dataclasses.replace(_desc(), **changes)  # type: ignore[arg-type]


def test_survivors_needed_is_max_of_t_plus_one_and_n_min() -> None:
    assert dataclasses.replace(_desc(), threshold=3, n_min=3).survivors_needed == 4
    assert dataclasses.replace(_desc(), threshold=1, n_min=3).survivors_needed == 3


def test_roster_refuses_duplicate_ids_indices_and_keys() -> None:
    e = FED.roster.entries
    with pytest.raises(ProtocolError, match="id twice"):
        Roster("f", 1, (e[0], RosterEntry(e[0].silo_id, 9, e[1].x25519_public)))
    with pytest.raises(ProtocolError, match="same index"):
        Roster("f", 1, (e[0], RosterEntry("other", e[0].index, e[1].x25519_public)))
    with pytest.raises(ProtocolError, match="same key"):
        Roster("f", 1, (e[0], RosterEntry("other", 9, e[0].x25519_public)))
    with pytest.raises(ProtocolError, match=">= 1"):
        RosterEntry("x", 0, e[0].x25519_public)
    with pytest.raises(ProtocolError, match="32 bytes"):
        RosterEntry("x", 1, b"short")


def test_roster_lookup() -> None:
    assert FED.roster.entry("clinic-002").index == 3
    assert FED.roster.get("nobody") is None
    with pytest.raises(ProtocolError, match="not in roster"):
        FED.roster.entry("nobody")
    assert FED.roster.canonical() == make_federation(4).roster.canonical()


def test_unmask_request_digest_covers_r2_only_and_ignores_set_order() -> None:
    qid, hq = bytes(16), bytes(32)
    a = UnmaskRequest(qid, hq, ("a", "b", "c"), ("d",), (("b", b"x"),))
    b = UnmaskRequest(qid, hq, ("c", "a", "b"), ("d",), (("c", b"y"),), signature=bytes(64))
    c = UnmaskRequest(qid, hq, ("a", "b"), ("c", "d"), ())
    assert a.digest() == b.digest()
    assert a.digest() != c.digest()


def test_upload_and_response_shapes_are_checked() -> None:
    qid, hq = bytes(16), bytes(32)
    with pytest.raises(ProtocolError, match="whole number of words"):
        MaskedUpload(qid, "a", hq, b"\x00" * 7, bytes(32), ())
    with pytest.raises(ProtocolError, match="commit"):
        MaskedUpload(qid, "a", hq, b"", bytes(31), ())
    with pytest.raises(ProtocolError, match="pairs"):
        MaskedUpload(qid, "a", hq, b"", bytes(32), ("b",))  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="wrong length"):
        UnmaskResponse(qid, "a", bytes(32), (("b", bytes(65)),), ())
    with pytest.raises(ProtocolError, match="wrong length"):
        UnmaskResponse(qid, "a", bytes(32), (), (("b", bytes(15)),))
    ok = UnmaskResponse(qid, "a", bytes(32), [("b", bytearray(66))], [])  # type: ignore[arg-type]
    assert ok.seed_shares == (("b", bytes(66)),)
    assert isinstance(ok.seed_shares[0][1], bytes)


def test_canonical_forms_exclude_the_signature() -> None:
    up = MaskedUpload(bytes(16), "a", bytes(32), bytes(8), bytes(32), (("b", b"ct"),))
    assert up.canonical() == dataclasses.replace(up, signature=bytes(64)).canonical()
    assert up.canonical() != dataclasses.replace(up, y=bytes(16)).canonical()
    resp = UnmaskResponse(bytes(16), "a", bytes(32), (), (("b", bytes(16)),))
    assert resp.canonical() == dataclasses.replace(resp, signature=bytes(64)).canonical()
    assert resp.canonical() != dataclasses.replace(resp, mask_keys=()).canonical()
    abort = Abort(bytes(16), "too few uploads")
    assert abort.canonical() == dataclasses.replace(abort, signature=bytes(64)).canonical()
    assert abort.canonical() != dataclasses.replace(abort, reason="other").canonical()
    with pytest.raises(ProtocolError, match="signature must be empty or 64 bytes"):
        dataclasses.replace(up, signature=bytes(63))


def test_message_labels_keep_the_kinds_apart() -> None:
    up = MaskedUpload(bytes(16), "a", bytes(32), bytes(8), bytes(32), ())
    encodings = {
        b"descriptor": _desc().canonical(),
        b"upload": up.canonical(),
        b"unmask-request": UnmaskRequest(bytes(16), bytes(32), ("a",), (), ()).canonical(),
        b"unmask-response": UnmaskResponse(bytes(16), "a", bytes(32), (), ()).canonical(),
        b"abort": Abort(bytes(16), "").canonical(),
        b"roster": FED.roster.canonical(),
    }
    labels = {kind: b"fedsql/secagg/v1/" + kind for kind in encodings}
    for kind, encoded in encodings.items():
        assert encoded.startswith(labels[kind])
        # the label is followed by a length prefix or an integer, never by more label text
        assert encoded[len(labels[kind])] == 0
    for a in labels.values():
        assert sum(b.startswith(a) for b in labels.values()) == 1


def test_vectors_roundtrip_through_their_wire_form() -> None:
    y = np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64)
    data = vector_to_bytes(y)
    assert len(data) == 32
    back = vector_from_bytes(data, 4)
    assert np.array_equal(back, y)
    assert back.flags.writeable
    with pytest.raises(ProtocolError, match="must be 40 bytes"):
        vector_from_bytes(data, 5)
