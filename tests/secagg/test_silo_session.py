"""The silo state machine: what it accepts, what it refuses, and in which state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fedsql.errors import DataError, ProtocolError, QueryRejected
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.messages import Roster, RosterEntry
from fedsql.secagg.silo_session import RoundState, SiloSession

from .harness import (
    EPOCH,
    Federation,
    keypair_for,
    make_descriptor,
    make_federation,
    plain_sum,
    qid_for,
    run_protocol,
    with_fields,
)

SPEC = CoordinateSpec(bound=1000.0, frac_bits=0)


def _fed(n: int = 5) -> Federation:
    return make_federation(n, label="silo-session")


def _x(d: int = 4) -> np.ndarray:
    return np.arange(d, dtype=np.int64)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"fed_id": "another-fed"}, "federation another-fed"),
        ({"roster_version": 5}, "roster version 5"),
        ({"epoch": EPOCH + 1}, "epoch 8"),
        (
            {"cohort": ("clinic-001", "clinic-002", "clinic-003", "clinic-004")},
            "not in the query.s cohort",
        ),
        ({"cohort": ("clinic-000", "clinic-001", "zz-unknown")}, "zz-unknown is not in roster"),
        ({"n_min": 2}, r"below max\(2, c_max \+ 2\)"),
        ({"n_min": 6}, "fewer than n_min"),
        ({"threshold": 1}, r"outside \[c_max \+ 1, n - 1\]"),
        ({"threshold": 5}, r"outside \[c_max \+ 1, n - 1\]"),
    ],
)
def test_unacceptable_descriptors_are_refused_before_the_qid_is_claimed(
    changes: dict[str, object], message: str
) -> None:
    fed = _fed()
    desc = with_fields(make_descriptor(fed, cells=4, specs=(SPEC,)), changes)
    session = fed.sessions["clinic-000"]
    with pytest.raises(ProtocolError, match=message):
        session.accept(desc)
    with pytest.raises(ProtocolError, match=message):
        session.upload(desc, _x())
    assert session.state(desc.qid) is None


def test_descriptor_that_could_overflow_is_refused() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(CoordinateSpec(bound=2.0**61, frac_bits=0),))
    with pytest.raises(QueryRejected, match="measure 0"):
        fed.sessions["clinic-000"].accept(desc)


def test_accept_claims_the_qid_and_upload_proceeds_from_there() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    session = fed.sessions["clinic-000"]
    assert session.accept(desc) == desc.digest()
    assert session.state(desc.qid) is RoundState.ACCEPTED
    with pytest.raises(ProtocolError, match="replayed"):
        session.accept(desc)
    up = session.upload(desc, _x())
    assert session.state(desc.qid) is RoundState.UPLOADED
    assert up.hq == desc.digest() and up.silo_id == "clinic-000"
    assert {peer for peer, _ in up.shares} == set(fed.ids) - {"clinic-000"}
    assert len(up.y) == 8 * 4


def test_upload_with_a_descriptor_other_than_the_accepted_one_is_refused() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    session = fed.sessions["clinic-000"]
    session.accept(desc)
    with pytest.raises(ProtocolError, match="differs from the one accepted"):
        session.upload(dataclasses.replace(desc, sql="SELECT 2"), _x())


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.arange(4, dtype=np.int32), "int64"),
        (np.arange(4, dtype=np.float64), "int64"),
        (np.arange(5, dtype=np.int64), "length 5"),
        (np.arange(8, dtype=np.int64).reshape(2, 4), "1-D"),
        (np.array([0, 0, 1001, 0], dtype=np.int64), r"coordinate 2 \(cell 2, measure 0\)"),
        (np.array([0, -(2**63), 0, 0], dtype=np.int64), "coordinate 1"),
    ],
)
def test_bad_input_vectors_are_refused_and_close_the_query(x: np.ndarray, message: str) -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    session = fed.sessions["clinic-000"]
    with pytest.raises(DataError, match=message):
        session.upload(desc, x)
    assert session.state(desc.qid) is RoundState.CLOSED
    with pytest.raises(ProtocolError, match="replayed"):
        session.upload(desc, _x())


def test_noise_allowance_admits_values_within_eight_sigma_of_the_bound() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=2, specs=(SPEC,), sigma_loc=(10.0,))
    session = fed.sessions["clinic-000"]
    session.upload(desc, np.array([1080, -1080], dtype=np.int64))
    beyond = make_descriptor(fed, cells=2, specs=(SPEC,), sigma_loc=(10.0,), qid=qid_for("x"))
    with pytest.raises(DataError):
        session.upload(beyond, np.array([1081, 0], dtype=np.int64))


def test_upload_does_not_modify_the_callers_vector() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    x = _x()
    fed.sessions["clinic-000"].upload(desc, x)
    assert x.tolist() == [0, 1, 2, 3]


def test_unmask_before_upload_or_after_abort_is_refused() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    xs = {sid: _x() for sid in fed.ids}
    run = run_protocol(fed, desc, xs, uploaders=fed.ids[1:], finish=False)
    request = run.requests["clinic-001"]
    silent = fed.sessions["clinic-000"]
    with pytest.raises(ProtocolError, match="no upload"):
        silent.unmask(dataclasses.replace(request, survivors=fed.ids, dropped=()))
    accepted_only = make_federation(5, label="silo-session")
    accepted_only.sessions["clinic-001"].accept(desc)
    with pytest.raises(ProtocolError, match="not been uploaded"):
        accepted_only.sessions["clinic-001"].unmask(request)
    fed.sessions["clinic-002"].abort(desc.qid)
    with pytest.raises(ProtocolError, match="aborted"):
        fed.sessions["clinic-002"].unmask(run.requests["clinic-002"])
    assert fed.sessions["clinic-002"].state(desc.qid) is RoundState.CLOSED


def test_abort_of_an_unseen_qid_consumes_it() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    session = fed.sessions["clinic-000"]
    session.abort(desc.qid)
    with pytest.raises(ProtocolError, match="replayed"):
        session.upload(desc, _x())


def test_session_refuses_a_roster_that_substitutes_its_own_key() -> None:
    fed = _fed()
    impostor = SiloKeyPair.from_private_bytes(bytes(range(32)))
    with pytest.raises(ProtocolError, match="substituted key"):
        SiloSession("clinic-000", impostor, fed.roster, EPOCH, c_max=1)
    with pytest.raises(ProtocolError, match="not in roster"):
        SiloSession("stranger", impostor, fed.roster, EPOCH, c_max=1)
    with pytest.raises(ProtocolError, match="c_max"):
        SiloSession("clinic-000", fed.keypairs["clinic-000"], fed.roster, EPOCH, c_max=-1)


def test_roster_update_keeps_in_flight_queries_unmaskable() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    xs = {sid: np.full(4, i, dtype=np.int64) for i, sid in enumerate(fed.ids)}
    run = run_protocol(fed, desc, xs, finish=False, responders=())
    # A new roster version adds a silo while the query is in round 2.
    newcomer = RosterEntry("clinic-999", 99, keypair_for("silo-session/new").public_bytes)
    new_roster = Roster(fed.roster.fed_id, 2, (*fed.roster.entries, newcomer))
    for session in fed.sessions.values():
        session.update_roster(new_roster, EPOCH)
    for sid, req in run.requests.items():
        run.coordinator.add_response(fed.sessions[sid].unmask(req))
    assert np.array_equal(run.coordinator.finish(), plain_sum(xs.values()))
    with pytest.raises(ProtocolError, match="roster version 1 but version 2"):
        fed.sessions["clinic-000"].upload(
            make_descriptor(fed, cells=4, specs=(SPEC,), qid=qid_for("after-update")), _x()
        )


def test_roster_update_refuses_a_roster_without_the_silos_key() -> None:
    fed = _fed()
    other = make_federation(5, label="someone-else")
    with pytest.raises(ProtocolError, match="substituted key"):
        fed.sessions["clinic-000"].update_roster(other.roster, EPOCH)


def test_epoch_change_moves_the_session_to_the_new_epoch() -> None:
    fed = _fed(3)
    for session in fed.sessions.values():
        session.update_roster(fed.roster, EPOCH + 1)
    old = make_descriptor(fed, cells=8, specs=(SPEC,), qid=qid_for("epoch/old"))
    with pytest.raises(ProtocolError, match=f"epoch {EPOCH}, not {EPOCH + 1}"):
        fed.sessions["clinic-000"].upload(old, np.zeros(8, dtype=np.int64))
    new = make_descriptor(fed, cells=8, specs=(SPEC,), qid=qid_for("epoch/new"), epoch=EPOCH + 1)
    xs = {sid: np.full(8, 3, dtype=np.int64) for sid in fed.ids}
    run = run_protocol(fed, new, xs)
    assert run.total is not None and run.total.tolist() == [9] * 8


def test_a_query_closed_while_its_upload_is_computed_releases_no_upload() -> None:
    fed = _fed()
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    holder: dict[str, SiloSession] = {}

    def random_bytes_that_abort(n: int) -> bytes:
        holder["session"].abort(desc.qid)  # an Abort arrives mid-computation
        return bytes(n)

    session = fed.new_session("clinic-000", random_bytes=random_bytes_that_abort)
    holder["session"] = session
    with pytest.raises(ProtocolError, match="closed while its upload was computed"):
        session.upload(desc, _x())
    assert session.state(desc.qid) is RoundState.CLOSED


def test_ending_the_epoch_closes_unanswered_queries_and_keeps_answered_ones() -> None:
    fed = _fed(4)
    desc = make_descriptor(fed, cells=4, specs=(SPEC,))
    xs = {sid: _x() for sid in fed.ids}
    run = run_protocol(fed, desc, xs, finish=False, responders=fed.ids[:2])
    for session in fed.sessions.values():
        session.end_epoch(EPOCH)
    assert [fed.sessions[s].state(desc.qid) for s in fed.ids] == [
        RoundState.ANSWERED,
        RoundState.ANSWERED,
        RoundState.CLOSED,
        RoundState.CLOSED,
    ]
    with pytest.raises(ProtocolError, match="aborted"):
        fed.sessions["clinic-002"].unmask(run.requests["clinic-002"])
