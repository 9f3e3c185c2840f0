"""The approval queue: held queries survive restarts, each decision is taken once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fedsql.errors import DataError, IntegrityError, OperationalError, ProtocolError
from fedsql.silo.approvals import ApprovalQueue

T0 = 1_750_000_000_000


def hold(queue: ApprovalQueue, qid: str, at: int = T0, epsilon_micro: int = 500_000) -> None:
    queue.submit(qid, "alice", "SELECT COUNT(*) FROM patients", "[]", "ab" * 32, epsilon_micro, at)


@pytest.fixture
def queue(tmp_path: Path) -> ApprovalQueue:
    return ApprovalQueue(tmp_path / "approvals.sqlite")


def test_a_held_query_waits_until_approved_and_runs_once(queue: ApprovalQueue) -> None:
    hold(queue, "q1")
    held = queue.get("q1")
    assert held is not None and held.state == "pending" and held.decided_ms is None
    approved = queue.approve("q1", "olga", T0 + 5_000, "checked the SQL")
    assert (approved.state, approved.operator, approved.decided_ms) == (
        "approved",
        "olga",
        T0 + 5_000,
    )
    assert queue.claim("q1").state == "running"
    with pytest.raises(OperationalError, match="is running, not approved"):
        queue.claim("q1")
    with pytest.raises(OperationalError, match="not pending"):
        queue.approve("q1", "olga", T0 + 6_000)


def test_a_denied_query_can_never_run(queue: ApprovalQueue) -> None:
    hold(queue, "q1")
    with pytest.raises(DataError):
        queue.deny("q1", "olga", T0, "")
    denied = queue.deny("q1", "olga", T0 + 1, "not part of the approved study")
    assert (denied.state, denied.reason) == ("denied", "not part of the approved study")
    with pytest.raises(OperationalError):
        queue.approve("q1", "olga", T0 + 2)
    with pytest.raises(OperationalError):
        queue.claim("q1")


def test_resubmitting_is_idempotent_but_an_id_cannot_be_reused(queue: ApprovalQueue) -> None:
    hold(queue, "q1")
    hold(queue, "q1")
    assert len(queue.held()) == 1
    with pytest.raises(ProtocolError, match="already used"):
        hold(queue, "q1", epsilon_micro=1_000_000)


def test_old_pending_queries_expire_and_cost_nothing(queue: ApprovalQueue) -> None:
    hold(queue, "old", at=T0)
    hold(queue, "new", at=T0 + 50_000)
    hold(queue, "approved", at=T0)
    queue.approve("approved", "olga", T0 + 1)
    expired = queue.expire(T0 + 60_000, max_age_s=30)
    assert [h.qid for h in expired] == ["old"]
    assert expired[0].state == "expired" and "30 seconds" in expired[0].reason
    assert [h.qid for h in queue.held("pending")] == ["new"]
    assert [h.qid for h in queue.held("approved")] == ["approved"]
    assert [h.qid for h in queue.held()] == ["old", "new", "approved"]


def test_the_queue_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "approvals.sqlite"
    first = ApprovalQueue(path)
    hold(first, "q1")
    hold(first, "q2")
    first.approve("q2", "olga", T0 + 1)
    del first
    second = ApprovalQueue(path)
    assert [(h.qid, h.state) for h in second.held()] == [("q1", "pending"), ("q2", "approved")]


def test_concurrent_claims_let_exactly_one_run(tmp_path: Path) -> None:
    path = tmp_path / "approvals.sqlite"
    queue = ApprovalQueue(path)
    hold(queue, "q1")
    queue.approve("q1", "olga", T0 + 1)
    wins: list[int] = []

    def claim(i: int) -> None:
        try:
            ApprovalQueue(path).claim("q1")
        except OperationalError:
            return
        wins.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1


def test_bad_arguments(queue: ApprovalQueue, tmp_path: Path) -> None:
    with pytest.raises(DataError):
        queue.submit("", "alice", "SELECT 1", "[]", "h", 1, T0)
    with pytest.raises(DataError):
        queue.submit("q", "alice", "SELECT 1", "[]", "h", 0, T0)
    with pytest.raises(DataError, match="no held query"):
        queue.approve("nope", "olga", T0)
    with pytest.raises(DataError):
        queue.approve("nope", "", T0)
    assert queue.get("nope") is None
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 200)
    with pytest.raises(IntegrityError):
        ApprovalQueue(junk)
