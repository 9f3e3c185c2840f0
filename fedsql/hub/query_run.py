"""One query in flight at the hub: who accepted, refused, uploaded and answered, with waiting."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from fedsql.transport.messages import (
    Accepted,
    ExecuteProgress,
    Held,
    MaskedUpload,
    Refusal,
    SiloStatus,
    UnmaskResponse,
)

#: Why a silo whose operator never decided a held query counts as not participating.
NOT_DECIDED = "the clinic's operator did not decide before the deadline"


@dataclass
class SiloOutcome:
    """What one cohort member did with a query."""

    status: str = "waiting"
    reason: str = ""
    budget_remaining: str = ""
    #: The silo's machine-readable refusal code (its error class, e.g. ``BudgetExhausted``).
    code: str = ""


@dataclass
class QueryRun:
    """Shared state between the thread running a query and the stream threads feeding it."""

    qid: bytes
    cohort: tuple[str, ...]
    outcomes: dict[str, SiloOutcome] = field(default_factory=dict)
    uploads: dict[str, MaskedUpload] = field(default_factory=dict)
    responses: dict[str, UnmaskResponse] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        """Every cohort member starts out waiting."""
        self.outcomes = {s: SiloOutcome() for s in self.cohort}

    def accepted(self, msg: Accepted) -> None:
        """A silo charged its ledger and is computing."""
        with self.cond:
            out = self.outcomes.get(msg.silo_id)
            if out is not None:
                out.status = "running"
                out.reason = ""
                out.budget_remaining = msg.budget_remaining
            self.cond.notify_all()

    def held(self, msg: Held) -> None:
        """A silo holds the query for its operator's approval."""
        with self.cond:
            out = self.outcomes.get(msg.silo_id)
            if out is not None and out.status == "waiting":
                out.status = "approval"
                out.reason = msg.reason
            self.cond.notify_all()

    def refused(self, msg: Refusal) -> None:
        """A silo declined the query."""
        with self.cond:
            out = self.outcomes.get(msg.silo_id)
            if out is not None:
                out.status = "refused"
                out.reason = msg.reason
                out.code = msg.code
                if msg.budget_remaining:
                    out.budget_remaining = msg.budget_remaining
            self.cond.notify_all()

    def uploaded(self, msg: MaskedUpload) -> None:
        """A silo's masked vector arrived (round 1)."""
        with self.cond:
            if msg.silo_id in self.outcomes and msg.silo_id not in self.uploads:
                self.uploads[msg.silo_id] = msg
                self.outcomes[msg.silo_id].status = "uploaded"
            self.cond.notify_all()

    def answered(self, msg: UnmaskResponse) -> None:
        """A survivor's unmask response arrived (round 2)."""
        with self.cond:
            if msg.silo_id in self.outcomes and msg.silo_id not in self.responses:
                self.responses[msg.silo_id] = msg
                self.outcomes[msg.silo_id].status = "answered"
            self.cond.notify_all()

    def disconnected(self, silo_id: str) -> None:
        """A cohort member's stream ended."""
        with self.cond:
            if silo_id in self.outcomes:
                self.gone.add(silo_id)
                if self.outcomes[silo_id].status not in ("refused", "answered"):
                    self.outcomes[silo_id].status = "dropped"
                    self.outcomes[silo_id].reason = "the silo disconnected"
            self.cond.notify_all()

    def wait_round1(self, deadline: float) -> None:
        """Block until every member uploaded, refused or left, or the deadline passes."""
        with self.cond:
            while True:
                pending = [
                    s
                    for s in self.cohort
                    if s not in self.uploads
                    and s not in self.gone
                    and self.outcomes[s].status != "refused"
                ]
                left = deadline - time.monotonic()
                if not pending or left <= 0:
                    return
                self.cond.wait(left)

    def wait_round2(self, survivors: tuple[str, ...], deadline: float) -> None:
        """Block until every survivor answered or left, or the deadline passes."""
        with self.cond:
            while True:
                pending = [s for s in survivors if s not in self.responses and s not in self.gone]
                left = deadline - time.monotonic()
                if not pending or left <= 0:
                    return
                self.cond.wait(left)

    def mark_timeouts(self) -> None:
        """Members that never finished count as dropped."""
        with self.cond:
            for out in self.outcomes.values():
                if out.status == "approval":
                    out.status = "dropped"
                    out.reason = NOT_DECIDED
                elif out.status in ("waiting", "running", "uploaded"):
                    out.status = "dropped"
                    out.reason = out.reason or "no answer before the deadline"


def progress_of(run: QueryRun) -> ExecuteProgress:
    """Each cohort member's status now (call with ``run.cond`` held)."""
    return ExecuteProgress(
        silos=tuple(
            SiloStatus(
                silo_id=silo_id,
                status=out.status,
                reason=out.reason,
                budget_remaining=out.budget_remaining,
            )
            for silo_id, out in run.outcomes.items()
        )
    )
