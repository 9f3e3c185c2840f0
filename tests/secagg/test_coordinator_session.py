"""The coordinator state machine: which messages it takes, faulty shares, and its states."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from fedsql.errors import ProtocolError, QueryRejected
from fedsql.secagg.coordinator_session import CoordinatorSession, CoordinatorState
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.messages import Descriptor, MaskedUpload, UnmaskResponse

from .harness import Federation, make_descriptor, make_federation, plain_sum, qid_for, run_protocol

SPEC = CoordinateSpec(bound=1000.0, frac_bits=0)
N, D = 6, 16  # t = 4, n_min = 3 with c_max = 1


@dataclasses.dataclass
class Case:
    """One query whose silos have all uploaded; round 2 fields filled by ``_round2``."""

    fed: Federation
    desc: Descriptor
    xs: dict[str, np.ndarray]
    ups: dict[str, MaskedUpload]
    coordinator: CoordinatorSession
    responses: dict[str, UnmaskResponse] = dataclasses.field(default_factory=dict)


def _setup(label: str) -> Case:
    fed = make_federation(N, label=label)
    desc = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for(label))
    xs = {sid: np.full(D, i + 1, dtype=np.int64) for i, sid in enumerate(fed.ids)}
    ups = {sid: fed.sessions[sid].upload(desc, xs[sid]) for sid in fed.ids}
    return Case(fed, desc, xs, ups, CoordinatorSession(desc, fed.roster, 1))


def test_constructor_applies_the_descriptor_checks() -> None:
    fed = make_federation(N, label="coord/ctor")
    desc = make_descriptor(fed, cells=D, specs=(SPEC,))
    with pytest.raises(ProtocolError, match="outside"):
        CoordinatorSession(dataclasses.replace(desc, threshold=6), fed.roster, 1)
    with pytest.raises(ProtocolError, match="roster version"):
        CoordinatorSession(dataclasses.replace(desc, roster_version=9), fed.roster, 1)
    with pytest.raises(ProtocolError, match="c_max"):
        CoordinatorSession(desc, fed.roster, -1)
    big = (CoordinateSpec(bound=2.0**61, frac_bits=0),)
    with pytest.raises(QueryRejected):
        CoordinatorSession(dataclasses.replace(desc, encoding=big), fed.roster, 1)


def _mutated(up: MaskedUpload, **changes: object) -> MaskedUpload:
    return dataclasses.replace(up, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda up: _mutated(up, qid=bytes(16)), "another query id"),
        (lambda up: _mutated(up, hq=bytes(32)), "different descriptor"),
        (lambda up: _mutated(up, silo_id="zz-stranger"), "not in the query's cohort"),
        (lambda up: _mutated(up, y=up.y[:-8]), f"must be {8 * D} bytes"),
        (lambda up: _mutated(up, shares=up.shares[1:]), "exactly one share"),
        (lambda up: _mutated(up, shares=(*up.shares, up.shares[0])), "exactly one share"),
        (lambda up: _mutated(up, shares=(*up.shares, (up.silo_id, bytes(82)))), "exactly one"),
        (
            lambda up: _mutated(up, shares=((up.shares[0][0], b"x"), *up.shares[1:])),
            "malformed share ciphertext",
        ),
    ],
)
def test_malformed_uploads_are_refused_and_change_nothing(
    mutate: Callable[[MaskedUpload], MaskedUpload], message: str
) -> None:
    case = _setup("coord/uploads")
    with pytest.raises(ProtocolError, match=message):
        case.coordinator.add_upload(mutate(case.ups["clinic-000"]))
    assert case.coordinator.uploaded == ()
    for up in case.ups.values():
        case.coordinator.add_upload(up)
    case.coordinator.close_round1()
    assert case.coordinator.survivors == case.fed.ids


def test_duplicate_and_late_uploads_are_refused() -> None:
    case = _setup("coord/duplicate")
    ids = case.fed.ids
    for sid in ids[:-1]:
        case.coordinator.add_upload(case.ups[sid])
    with pytest.raises(ProtocolError, match="already uploaded"):
        case.coordinator.add_upload(case.ups["clinic-000"])
    requests = case.coordinator.close_round1()
    with pytest.raises(ProtocolError, match="query is unmasking"):
        case.coordinator.add_upload(case.ups[ids[-1]])
    assert set(requests) == set(ids[:-1])
    assert case.coordinator.dropped == (ids[-1],)


def test_unmask_requests_forward_exactly_the_ciphertexts_addressed_to_each_survivor() -> None:
    case = _setup("coord/forward")
    ids = case.fed.ids
    for sid in ids[1:]:
        case.coordinator.add_upload(case.ups[sid])
    requests = case.coordinator.close_round1()
    assert len({req.digest() for req in requests.values()}) == 1
    for v, req in requests.items():
        assert req.survivors == ids[1:] and req.dropped == ids[:1]
        assert dict(req.forwarded) == {u: dict(case.ups[u].shares)[v] for u in ids[1:] if u != v}


def _round2(label: str, dropped: int = 1) -> Case:
    case = _setup(label)
    for sid in case.fed.ids[dropped:]:
        case.coordinator.add_upload(case.ups[sid])
    requests = case.coordinator.close_round1()
    case.responses = {sid: case.fed.sessions[sid].unmask(req) for sid, req in requests.items()}
    return case


def _with(resp: UnmaskResponse, **changes: object) -> UnmaskResponse:
    return dataclasses.replace(resp, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: _with(r, qid=bytes(16)), "another query id"),
        (lambda r: _with(r, silo_id="clinic-000"), "not a survivor"),
        (lambda r: _with(r, request_digest=bytes(32)), "different unmask request"),
        (
            lambda r: _with(r, seed_shares=(*r.seed_shares, (r.silo_id, bytes(66)))),
            "not one per other survivor",
        ),
        (
            lambda r: _with(r, seed_shares=(*r.seed_shares, ("clinic-000", bytes(66)))),
            "not one per other survivor",
        ),
        (
            lambda r: _with(r, seed_shares=(*r.seed_shares, r.seed_shares[0])),
            "not one per other survivor",
        ),
        (lambda r: _with(r, mask_keys=()), "one mask key per dropped silo"),
        (
            lambda r: _with(r, mask_keys=(*r.mask_keys, ("clinic-002", bytes(16)))),
            "one mask key per dropped silo",
        ),
    ],
)
def test_malformed_responses_are_refused(
    mutate: Callable[[UnmaskResponse], UnmaskResponse], message: str
) -> None:
    case = _round2("coord/responses")
    with pytest.raises(ProtocolError, match=message):
        case.coordinator.add_response(mutate(case.responses["clinic-003"]))
    assert case.coordinator.responders == ()


def test_duplicate_response_is_refused_and_the_result_stands() -> None:
    case = _round2("coord/dup-response")
    coordinator = case.coordinator
    for resp in case.responses.values():
        coordinator.add_response(resp)
    with pytest.raises(ProtocolError, match="already answered"):
        coordinator.add_response(case.responses["clinic-001"])
    total = coordinator.finish()
    assert np.array_equal(total, plain_sum(case.xs[s] for s in case.fed.ids[1:]))
    assert coordinator.state is CoordinatorState.FINISHED
    again = coordinator.finish()
    assert np.array_equal(again, total)
    again[:] = 0
    assert np.array_equal(coordinator.finish(), total)
    with pytest.raises(ProtocolError, match="finished"):
        coordinator.add_response(case.responses["clinic-001"])


def _corrupt_share(resp: UnmaskResponse, owner: str) -> UnmaskResponse:
    shares = tuple((o, bytes(65) + b"\x01" if o == owner else s) for o, s in resp.seed_shares)
    return _with(resp, seed_shares=shares)


def test_a_faulty_share_is_outvoted_when_more_than_t_holders_answer() -> None:
    case = _round2("coord/faulty-extra", dropped=0)
    case.responses["clinic-001"] = _corrupt_share(case.responses["clinic-001"], "clinic-000")
    for resp in case.responses.values():
        case.coordinator.add_response(resp)
    assert np.array_equal(case.coordinator.finish(), plain_sum(case.xs.values()))


def test_a_faulty_share_with_only_t_holders_aborts() -> None:
    case = _round2("coord/faulty-exact", dropped=0)
    # clinic-000's seed is held by exactly t = 4 answering silos, one of them faulty; every
    # other seed has at least t answering holders.
    answering = ["clinic-000", "clinic-001", "clinic-002", "clinic-003", "clinic-004"]
    case.responses["clinic-001"] = _corrupt_share(case.responses["clinic-001"], "clinic-000")
    for sid in answering:
        case.coordinator.add_response(case.responses[sid])
    with pytest.raises(ProtocolError, match="do not match its commitment"):
        case.coordinator.finish()
    assert case.coordinator.state is CoordinatorState.ABORTED


def test_finish_before_round_two_and_abort_states() -> None:
    case = _setup("coord/states")
    with pytest.raises(ProtocolError, match="collecting"):
        case.coordinator.finish()
    case.coordinator.abort()
    assert case.coordinator.state is CoordinatorState.ABORTED
    with pytest.raises(ProtocolError, match="aborted"):
        case.coordinator.add_upload(case.ups["clinic-000"])


def test_survivors_and_dropped_are_reported_sorted() -> None:
    fed = make_federation(["b", "d", "a", "c", "e"], label="coord/order")
    desc = make_descriptor(fed, cells=3, specs=(SPEC,), qid=qid_for("coord/order"))
    xs = {sid: np.ones(3, dtype=np.int64) for sid in fed.ids}
    run = run_protocol(fed, desc, xs, uploaders=["e", "a", "c", "d"])
    assert run.coordinator.survivors == ("a", "c", "d", "e")
    assert run.coordinator.dropped == ("b",)
    assert run.total is not None and run.total.tolist() == [4, 4, 4]
