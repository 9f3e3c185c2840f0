"""Manual approval end to end: a clinic holds a query, its operator approves or denies it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import fedsql
from fedsql.audit import AuditRecord, verify_log
from fedsql.demo.federation import DemoFederation
from fedsql.privacy.ledger import Ledger
from fedsql.secagg.identity import verify_signature
from fedsql.silo.approvals import ApprovalQueue, HeldQuery
from fedsql.transport.messages import SiloStatus

SQL = "SELECT sex, COUNT(*) AS n FROM patients GROUP BY sex"
MANUAL = "mumbai"


@dataclass
class Asked:
    """A query running in the background and every status its progress reported."""

    future: Future[fedsql.Cursor]
    seen: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def statuses_of(self, silo_id: str) -> list[str]:
        with self.lock:
            return [s[silo_id] for s in self.seen if silo_id in s]


def _federation(tmp_path: Path, round_timeout_s: float) -> DemoFederation:
    return DemoFederation(
        state_dir=tmp_path,
        noise=False,
        testing=True,
        silo_overrides={MANUAL: {"approval": "manual"}},
        round_timeout_s=round_timeout_s,
        hub_audit=True,
    )


@pytest.fixture
def federation(tmp_path: Path, demo_data: dict[str, Path]) -> Iterator[DemoFederation]:
    with _federation(tmp_path, round_timeout_s=30.0) as fed:
        yield fed


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def ask(fed: DemoFederation, pool: ThreadPoolExecutor) -> Asked:
    asked: Asked

    def progress(silos: tuple[SiloStatus, ...]) -> None:
        with asked.lock:
            asked.seen.append({s.silo_id: s.status for s in silos})

    def run() -> fedsql.Cursor:
        conn = fedsql.connect(fed.target, analyst="ana")
        return conn.cursor().execute(SQL, epsilon=0.5, on_progress=progress)

    asked = Asked(pool.submit(run))
    return asked


def wait_pending(queue: ApprovalQueue, timeout_s: float = 20.0) -> HeldQuery:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = queue.held("pending")
        if pending:
            assert len(pending) == 1
            return pending[0]
        time.sleep(0.02)
    raise AssertionError("no query was held for approval")


def queue_of(fed: DemoFederation) -> ApprovalQueue:
    return ApprovalQueue(fed.state_dir / f"{MANUAL}.approvals.sqlite")


def records(path: Path) -> list[AuditRecord]:
    """The log's records, after verifying its hash chain and signed heads."""
    _, entries = verify_log(path, verify_signature, keep_entries=True)
    return [e.record for e in entries]


def decisions(fed: DemoFederation, silo_id: str) -> list[tuple[str, str]]:
    return [(r.event, r.decision) for r in records(fed.state_dir / f"{silo_id}.audit.log")]


def charged(fed: DemoFederation, silo_id: str) -> int:
    ledger = Ledger(fed.state_dir / f"{silo_id}.ledger.sqlite")
    return ledger.spent("ana")


def test_an_approved_query_runs_at_the_clinic_and_the_analyst_saw_it_wait(
    federation: DemoFederation, pool: ThreadPoolExecutor, pooled: object
) -> None:
    asked = ask(federation, pool)
    held = wait_pending(queue_of(federation))
    assert (held.analyst, held.sql, held.epsilon_micro) == ("ana", SQL, 500_000)
    # Nothing is charged while the query waits.
    assert charged(federation, MANUAL) == 0
    deadline = time.monotonic() + 10
    while "approval" not in asked.statuses_of(MANUAL) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "approval" in asked.statuses_of(MANUAL)

    queue_of(federation).approve(held.qid, "dr-operator", int(time.time() * 1000))
    cursor = asked.future.result(timeout=30)

    assert cursor.privacy is not None
    assert cursor.privacy.answered() == ["mumbai", "san-francisco", "seoul", "sydney"]
    rows = sorted(cursor.fetchall())
    assert rows == pooled.execute(SQL + " ORDER BY sex").fetchall()  # type: ignore[attr-defined]
    assert charged(federation, MANUAL) == 500_000
    assert queue_of(federation).get(held.qid).state == "running"  # type: ignore[union-attr]
    assert decisions(federation, MANUAL)[-4:] == [
        ("request", "held"),
        ("request", "approved"),
        ("request", "admitted"),
        ("release", ""),
    ]


def test_a_denied_query_costs_nothing_and_the_analyst_reads_the_reason(
    federation: DemoFederation, pool: ThreadPoolExecutor
) -> None:
    asked = ask(federation, pool)
    held = wait_pending(queue_of(federation))
    queue_of(federation).deny(held.qid, "dr-operator", int(time.time() * 1000), "outside our IRB")
    cursor = asked.future.result(timeout=30)

    assert cursor.privacy is not None
    assert MANUAL not in cursor.privacy.answered()
    assert (
        cursor.privacy.refused()[MANUAL]
        == "the clinic's operator denied the query: outside our IRB"
    )
    assert charged(federation, MANUAL) == 0
    assert charged(federation, "seoul") == 500_000
    assert decisions(federation, MANUAL)[-2:] == [("request", "held"), ("request", "denied")]
    # The hub's log records which clinic refused, and why.
    hub_log = records(federation.state_dir / "hub.audit.log")
    release = [r for r in hub_log if r.event == "release"][-1]
    assert (
        "mumbai refused: the clinic's operator denied the query: outside our IRB" in release.reason
    )


def test_a_query_not_decided_before_its_deadline_leaves_the_clinic_out(
    tmp_path: Path, demo_data: dict[str, Path], pool: ThreadPoolExecutor
) -> None:
    with _federation(tmp_path, round_timeout_s=1.5) as fed:
        asked = ask(fed, pool)
        held = wait_pending(queue_of(fed))
        cursor = asked.future.result(timeout=30)
        assert cursor.privacy is not None
        assert cursor.privacy.dropped()[MANUAL] == (
            "the clinic's operator did not decide before the deadline"
        )
        deadline = time.monotonic() + 5
        while queue_of(fed).get(held.qid).state == "pending":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the held query never expired"
            time.sleep(0.02)
        assert queue_of(fed).get(held.qid).state == "expired"  # type: ignore[union-attr]
        # Approving it now changes nothing: it is no longer pending.
        with pytest.raises(fedsql.OperationalError, match="is expired, not pending"):
            queue_of(fed).approve(held.qid, "late-operator", int(time.time() * 1000))
        assert charged(fed, MANUAL) == 0
        time.sleep(0.3)
        assert decisions(fed, MANUAL)[-2:] == [("request", "held"), ("request", "expired")]
