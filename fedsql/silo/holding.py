"""Queries a clinic holds for its operator: the durable queue, the watcher and the deadlines.

In approval mode ``manual`` an admitted query is stored in the :class:`ApprovalQueue` before the
silo tells the hub it waits. The operator decides from another process (``fedsql silo approve``
or ``deny``, or the queue's Python API); a watcher thread here notices each decision and hands
it to the agent: an approved query is claimed (exactly once) and run, a denied one is refused
with the operator's reason, and one not decided before the query's deadline expires and the
clinic does not take part. Nothing is charged until a query is claimed to run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fedsql.errors import Error
from fedsql.silo.approvals import ApprovalQueue, HeldQuery
from fedsql.transport.messages import QueryRequest

log = logging.getLogger(__name__)

#: How often the watcher looks for decisions, in seconds.
POLL_S = 0.1
#: Why a held query expires at its deadline.
DEADLINE_PASSED = "not decided before the query's deadline"


def now_ms() -> int:
    """Now, in Unix milliseconds."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Decision:
    """What became of a held query: ``approved`` (claimed to run), ``denied`` or ``expired``.

    Any other ``outcome`` (a queue state) means the query left the queue some other way; the
    agent only forgets it.
    """

    request: QueryRequest
    outcome: str
    held: HeldQuery


class Holding:
    """The queries this silo holds now, and the thread that watches their fate.

    Args:
        queue: The clinic's durable approval queue.
        on_decision: Called (on the watcher thread) once per held query with its
            :class:`Decision`. An ``approved`` decision has already been claimed in the queue.
        poll_s: How often to look for decisions.
    """

    def __init__(
        self,
        queue: ApprovalQueue,
        on_decision: Callable[[Decision], None],
        *,
        poll_s: float = POLL_S,
    ) -> None:
        self.queue = queue
        self._on_decision = on_decision
        self._poll_s = poll_s
        self._held: dict[str, QueryRequest] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, request: QueryRequest, plan_hash: str, epsilon_micro: int) -> HeldQuery:
        """Store a query for approval (durable on return) and watch it.

        Args:
            request: The admitted query.
            plan_hash: This silo's plan hash for it.
            epsilon_micro: What it costs if it runs.

        Returns:
            The queue entry.

        Raises:
            ProtocolError: The query id is already held for another query.
        """
        held = self.queue.submit(
            request.qid.hex(),
            request.analyst,
            request.sql,
            request.params_json,
            plan_hash,
            epsilon_micro,
            now_ms(),
        )
        with self._lock:
            self._held[held.qid] = request
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="fedsql-approvals", daemon=True
                )
                self._thread.start()
        return held

    def holds(self, qid: bytes) -> bool:
        """True while query ``qid`` waits here for a decision."""
        with self._lock:
            return qid.hex() in self._held

    def drop(self, qid: bytes, reason: str) -> bool:
        """Stop waiting for query ``qid`` (the hub aborted it); it expires in the queue.

        Returns:
            True when the query was held here.
        """
        with self._lock:
            request = self._held.pop(qid.hex(), None)
        if request is None:
            return False
        self.queue.expire_query(qid.hex(), now_ms(), reason)
        return True

    def poll(self, now: int | None = None) -> list[Decision]:
        """Look once for decisions and deadlines; report each to the agent.

        Args:
            now: Now, Unix milliseconds (defaults to the clock).

        Returns:
            The decisions found by this call.
        """
        current = now_ms() if now is None else now
        with self._lock:
            waiting = dict(self._held)
        decisions: list[Decision] = []
        for qid, request in waiting.items():
            decision = self._fate(qid, request, current)
            if decision is None:
                continue
            with self._lock:
                if self._held.pop(qid, None) is None:
                    continue  # dropped meanwhile
            decisions.append(decision)
            self._on_decision(decision)
        return decisions

    def _fate(self, qid: str, request: QueryRequest, now: int) -> Decision | None:
        held = self.queue.get(qid)
        if held is None:
            return None
        if held.state == "approved" and now < request.deadline_ms:
            try:
                return Decision(request, "approved", self.queue.claim(qid))
            except Error:
                held = self.queue.get(qid) or held
        if held.state == "denied":
            return Decision(request, "denied", held)
        if held.state in ("pending", "approved") and now >= request.deadline_ms:
            expired = self.queue.expire_query(qid, now, DEADLINE_PASSED)
            if expired is not None:
                return Decision(request, "expired", expired)
            held = self.queue.get(qid) or held
        if held.state == "pending" or (held.state == "approved" and now < request.deadline_ms):
            return None
        # expired (also by another process) or, should it ever happen, taken to run elsewhere
        return Decision(request, held.state, held)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.poll()
            except Exception:  # the watcher must outlive a bad poll
                log.exception("the approval watcher failed one poll")

    def close(self) -> None:
        """Stop the watcher (held queries stay in the queue; the agent abandons them on start)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
