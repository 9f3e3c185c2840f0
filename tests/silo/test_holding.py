"""The silo's held queries: each decision reaches the agent once, deadlines expire them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fedsql.errors import ProtocolError
from fedsql.silo.approvals import ApprovalQueue
from fedsql.silo.holding import DEADLINE_PASSED, Decision, Holding
from fedsql.transport.messages import QueryRequest

NOW = 1_700_000_000_000


def request(qid: int, deadline_ms: int = NOW + 60_000) -> QueryRequest:
    return QueryRequest(
        version=1,
        fed_id="fed",
        roster_version=1,
        epoch=0,
        qid=qid.to_bytes(16, "big"),
        cohort=("a", "b", "c"),
        threshold=2,
        n_min=2,
        dimension=2,
        cells=2,
        encoding=(),
        sigma_loc=(),
        rho_charge="0",
        epsilon_charge="0.5",
        analyst="ana",
        plan_hash="p" * 64,
        sql="SELECT COUNT(*) FROM patients",
        params_json="[]",
        deadline_ms=deadline_ms,
    )


@pytest.fixture
def seen() -> list[Decision]:
    return []


@pytest.fixture
def holding(tmp_path: Path, seen: list[Decision]) -> Holding:
    # A poll interval of an hour: only the explicit polls below look at the queue.
    return Holding(ApprovalQueue(tmp_path / "q.sqlite"), seen.append, poll_s=3600)


def test_nothing_happens_while_a_query_is_pending(holding: Holding, seen: list[Decision]) -> None:
    holding.hold(request(1), "p" * 64, 500_000)
    assert holding.poll(NOW) == [] and seen == []
    assert holding.holds(request(1).qid)


def test_an_approval_is_claimed_and_reported_once(holding: Holding, seen: list[Decision]) -> None:
    req = request(1)
    held = holding.hold(req, "p" * 64, 500_000)
    holding.queue.approve(held.qid, "op", NOW)
    assert [d.outcome for d in holding.poll(NOW)] == ["approved"]
    assert holding.poll(NOW) == []
    assert [d.outcome for d in seen] == ["approved"] and seen[0].request == req
    assert holding.queue.get(held.qid).state == "running"  # type: ignore[union-attr]
    assert not holding.holds(req.qid)


def test_a_denial_carries_the_operator_reason(holding: Holding, seen: list[Decision]) -> None:
    held = holding.hold(request(2), "p" * 64, 500_000)
    holding.queue.deny(held.qid, "op", NOW, "not in our protocol")
    (decision,) = holding.poll(NOW)
    assert (decision.outcome, decision.held.reason) == ("denied", "not in our protocol")


def test_the_deadline_expires_a_pending_query(holding: Holding) -> None:
    held = holding.hold(request(3, deadline_ms=NOW + 1000), "p" * 64, 500_000)
    assert holding.poll(NOW + 999) == []
    (decision,) = holding.poll(NOW + 1000)
    assert (decision.outcome, decision.held.reason) == ("expired", DEADLINE_PASSED)
    assert holding.queue.get(held.qid).state == "expired"  # type: ignore[union-attr]


def test_an_approval_that_comes_after_the_deadline_does_not_run(holding: Holding) -> None:
    held = holding.hold(request(4, deadline_ms=NOW + 1000), "p" * 64, 500_000)
    holding.queue.approve(held.qid, "op", NOW + 500)
    (decision,) = holding.poll(NOW + 1500)
    assert decision.outcome == "expired"
    assert holding.queue.get(held.qid).state == "expired"  # type: ignore[union-attr]


def test_a_query_the_hub_aborted_expires_without_a_decision(
    holding: Holding, seen: list[Decision]
) -> None:
    held = holding.hold(request(5), "p" * 64, 500_000)
    assert holding.drop(request(5).qid, "the hub aborted the query")
    assert not holding.drop(request(5).qid, "again")
    assert holding.queue.get(held.qid).state == "expired"  # type: ignore[union-attr]
    assert holding.poll(NOW) == [] and seen == []


def test_a_restart_abandons_what_was_waiting(tmp_path: Path) -> None:
    queue = ApprovalQueue(tmp_path / "q.sqlite")
    for n in (1, 2, 3):
        queue.submit(f"{n:032x}", "ana", "SELECT 1", "[]", "p", 1, NOW)
    queue.approve(f"{2:032x}", "op", NOW)
    queue.deny(f"{3:032x}", "op", NOW, "no")
    abandoned = ApprovalQueue(tmp_path / "q.sqlite").abandon(NOW + 1, "restarted")
    assert [h.qid for h in abandoned] == [f"{1:032x}", f"{2:032x}"]
    assert [h.state for h in queue.held()] == ["expired", "expired", "denied"]


def test_holding_the_same_query_twice_keeps_one_entry(holding: Holding) -> None:
    holding.hold(request(6), "p" * 64, 500_000)
    holding.hold(request(6), "p" * 64, 500_000)
    assert len(holding.queue.held()) == 1
    other = dataclasses.replace(request(6), sql="SELECT SUM(age) FROM patients")
    with pytest.raises(ProtocolError, match="already used for another query"):
        holding.hold(other, "p" * 64, 500_000)
