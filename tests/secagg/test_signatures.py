"""Signed messages: the coordinator signs M0, M2 and Abort, silos sign M1 and M3, both verify."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fedsql.errors import ProtocolError
from fedsql.secagg.coordinator_session import CoordinatorSession, CoordinatorState
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.identity import sign_message, verify_message
from fedsql.secagg.messages import Abort, Descriptor
from fedsql.secagg.silo_session import RoundState

from .harness import (
    Federation,
    identity_for,
    make_descriptor,
    make_federation,
    plain_sum,
    qid_for,
    run_protocol,
)

SPEC = CoordinateSpec(bound=1000.0, frac_bits=0)
D = 16


def _fed(label: str, *, epoch_keys: bool = False, n: int = 5) -> Federation:
    return make_federation(n, label=label, signed=True, epoch_keys=epoch_keys)


def _xs(fed: Federation) -> dict[str, np.ndarray]:
    return {sid: np.full(D, i + 1, dtype=np.int64) for i, sid in enumerate(fed.ids)}


def _flip(signature: bytes) -> bytes:
    return bytes([signature[0] ^ 0x40]) + signature[1:]


@pytest.mark.parametrize("epoch_keys", [False, True], ids=["identity-keys", "epoch-keys"])
@pytest.mark.parametrize("drop", [0, 1, 2])
def test_a_signed_federation_sums_exactly_with_dropouts(epoch_keys: bool, drop: int) -> None:
    fed = _fed(f"sig/sum/{epoch_keys}/{drop}", epoch_keys=epoch_keys, n=8)
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for(f"sig/sum/{drop}"))
    xs = _xs(fed)
    uploaders = fed.ids[drop:]
    run = run_protocol(fed, desc, xs, uploaders=uploaders)
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(xs[s] for s in uploaders))
    assert fed.coordinator_key is not None
    verify_message(run.coordinator.desc, fed.coordinator_key.public_bytes, "M0")
    for sid, up in run.uploads.items():
        verify_message(up, fed.identities[sid].public_bytes, "M1")
    for sid, req in run.requests.items():
        verify_message(req, fed.coordinator_key.public_bytes, "M2")
        verify_message(run.responses[sid], fed.identities[sid].public_bytes, "M3")


def _bad_descriptors(fed: Federation, desc: Descriptor) -> dict[str, Descriptor]:
    return {
        "unsigned": dataclasses.replace(desc, signature=b""),
        "tampered signature": dataclasses.replace(desc, signature=_flip(desc.signature)),
        "altered field": dataclasses.replace(desc, sql="SELECT SUM(salary) FROM staff"),
        "signed by another key": sign_message(desc, identity_for("not-the-coordinator")),
        "signed by a silo": sign_message(desc, fed.identities["clinic-001"]),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "unsigned",
        "tampered signature",
        "altered field",
        "signed by another key",
        "signed by a silo",
    ],
)
def test_silos_refuse_a_descriptor_the_coordinator_did_not_sign(kind: str) -> None:
    fed = _fed("sig/m0")
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("sig/m0"))
    bad = _bad_descriptors(fed, desc)[kind]
    session = fed.sessions["clinic-000"]
    pattern = "not signed" if kind == "unsigned" else "does not verify"
    with pytest.raises(ProtocolError, match=pattern):
        session.accept(bad)
    with pytest.raises(ProtocolError, match=pattern):
        session.upload(bad, np.zeros(D, dtype=np.int64))
    assert session.state(desc.qid) is None  # the qid was not consumed by the forgery
    session.upload(desc, np.zeros(D, dtype=np.int64))
    assert session.state(desc.qid) is RoundState.UPLOADED


@pytest.mark.parametrize("kind", ["unsigned", "tampered", "other key", "set changed"])
def test_silos_refuse_an_unmask_request_the_coordinator_did_not_sign(kind: str) -> None:
    fed = _fed("sig/m2")
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("sig/m2"))
    run = run_protocol(fed, desc, _xs(fed), uploaders=fed.ids[1:], finish=False, responders=())
    sid = "clinic-002"
    genuine = run.requests[sid]
    bad = {
        "unsigned": dataclasses.replace(genuine, signature=b""),
        "tampered": dataclasses.replace(genuine, signature=_flip(genuine.signature)),
        "other key": sign_message(genuine, identity_for("mallory")),
        # Same signature, but the dropped silo is claimed to have survived.
        "set changed": dataclasses.replace(genuine, survivors=fed.ids, dropped=()),
    }[kind]
    session = fed.sessions[sid]
    with pytest.raises(ProtocolError, match=r"unmask request (is not signed|carries a signature)"):
        session.unmask(bad)
    assert session.state(desc.qid) is RoundState.UPLOADED  # nothing was released
    response = session.unmask(genuine)
    assert {peer for peer, _ in response.mask_keys} == {"clinic-000"}


def test_silos_refuse_a_forged_abort_and_obey_a_signed_one() -> None:
    fed = _fed("sig/abort")
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("sig/abort"))
    run = run_protocol(fed, desc, _xs(fed), finish=False, responders=())
    notice = run.coordinator.abort("too few uploads")
    assert run.coordinator.state is CoordinatorState.ABORTED
    assert fed.coordinator_key is not None
    verify_message(notice, fed.coordinator_key.public_bytes, "Abort")
    session = fed.sessions["clinic-001"]
    for forged in (
        Abort(desc.qid, "too few uploads"),
        dataclasses.replace(notice, reason="something else"),
        sign_message(notice, identity_for("mallory")),
    ):
        with pytest.raises(ProtocolError, match="abort message"):
            session.receive_abort(forged)
        assert session.state(desc.qid) is RoundState.UPLOADED
    session.receive_abort(notice)
    assert session.state(desc.qid) is RoundState.CLOSED
    with pytest.raises(ProtocolError, match="aborted"):
        session.unmask(run.requests["clinic-001"])


def test_the_coordinator_refuses_unsigned_impersonated_or_altered_uploads() -> None:
    fed = _fed("sig/m1")
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("sig/m1"))
    coordinator = fed.coordinator(desc)
    up = fed.sessions["clinic-000"].upload(coordinator.desc, np.zeros(D, dtype=np.int64))
    other = fed.identities["clinic-001"]
    forged_y = bytes([up.y[0] ^ 1]) + up.y[1:]
    for bad, message in (
        (dataclasses.replace(up, signature=b""), "upload from clinic-000 is not signed"),
        (sign_message(up, other), "upload from clinic-000 carries a signature that does not"),
        (dataclasses.replace(up, y=forged_y), "does not verify"),
        (dataclasses.replace(up, signature=_flip(up.signature)), "does not verify"),
    ):
        with pytest.raises(ProtocolError, match=message):
            coordinator.add_upload(bad)
        assert coordinator.uploaded == ()
    coordinator.add_upload(up)
    assert coordinator.uploaded == ("clinic-000",)


def test_the_coordinator_refuses_unsigned_or_altered_responses() -> None:
    fed = _fed("sig/m3")
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("sig/m3"))
    xs = _xs(fed)
    run = run_protocol(fed, desc, xs, uploaders=fed.ids[1:], finish=False, responders=())
    responses = {sid: fed.sessions[sid].unmask(req) for sid, req in run.requests.items()}
    sid = "clinic-003"
    resp = responses[sid]
    bad_key = bytes([resp.mask_keys[0][1][0] ^ 1]) + resp.mask_keys[0][1][1:]
    for bad in (
        dataclasses.replace(resp, signature=b""),
        dataclasses.replace(resp, mask_keys=((resp.mask_keys[0][0], bad_key),)),
        sign_message(resp, fed.identities["clinic-004"]),
    ):
        with pytest.raises(ProtocolError, match=f"unmask response from {sid}"):
            run.coordinator.add_response(bad)
    for r in responses.values():
        run.coordinator.add_response(r)
    assert np.array_equal(run.coordinator.finish(), plain_sum(xs[s] for s in fed.ids[1:]))


def test_the_coordinator_session_signs_only_with_the_pinned_key() -> None:
    fed = _fed("sig/signer")
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("sig/signer"))
    with pytest.raises(ProtocolError, match="pins a coordinator key"):
        CoordinatorSession(desc, fed.roster, fed.c_max)
    with pytest.raises(ProtocolError, match="pins a coordinator key"):
        CoordinatorSession(desc, fed.roster, fed.c_max, signer=identity_for("mallory"))
    unsigned = dataclasses.replace(desc, signature=b"")
    session = CoordinatorSession(unsigned, fed.roster, fed.c_max, signer=fed.coordinator_key)
    assert session.desc.signature and session.desc.digest() == desc.digest()
    forged = sign_message(desc, identity_for("mallory"))
    with pytest.raises(ProtocolError, match="query descriptor carries a signature"):
        CoordinatorSession(forged, fed.roster, fed.c_max, signer=fed.coordinator_key)


def test_every_survivor_gets_the_same_signed_r2() -> None:
    fed = _fed("sig/r2", n=6)
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("sig/r2"))
    run = run_protocol(fed, desc, _xs(fed), uploaders=fed.ids[1:], finish=False, responders=())
    digests = {req.digest() for req in run.requests.values()}
    signatures = {req.signature for req in run.requests.values()}
    assert len(digests) == 1 and len(signatures) == 1
    assert len({req.forwarded for req in run.requests.values()}) == len(run.requests)


def test_an_unsigned_federation_still_signs_when_given_identities() -> None:
    fed = make_federation(3, label="sig/compat")
    identity = identity_for("sig/compat/clinic-000")
    session = fed.new_session("clinic-000", identity=identity)
    assert not session.signed
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("sig/compat"))
    up = session.upload(desc, np.zeros(D, dtype=np.int64))
    verify_message(up, identity.public_bytes, "M1")
    plain = fed.sessions["clinic-001"].upload(desc, np.zeros(D, dtype=np.int64))
    assert plain.signature == b""
