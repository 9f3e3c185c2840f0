"""The durable queue of queries held for an operator's approval (policy ``mode = "manual"``).

A held query is stored before the silo tells the hub it waits, so a restart or a crash never
loses one, and each decision is stored before it takes effect. States::

    pending --approve--> approved --claim--> running
       |  \\--deny-----> denied
       \\----expire----> expired

``claim`` moves an approved query to ``running`` exactly once (the silo then charges the
ledger and runs it); a second claim, after a restart for instance, finds it already running.
Nothing here charges budgets: a query denied or expired in the queue costs nothing.

One SQLite file in WAL mode with ``synchronous=FULL``; every change runs in a ``BEGIN
IMMEDIATE`` transaction, so concurrent threads and processes see each state change once.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, cast

from fedsql.errors import DataError, IntegrityError, OperationalError, ProtocolError

__all__ = ["ApprovalQueue", "HeldQuery", "HeldState"]

HeldState = Literal["pending", "approved", "denied", "expired", "running"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS held (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    qid           TEXT    NOT NULL UNIQUE,
    analyst       TEXT    NOT NULL,
    sql           TEXT    NOT NULL,
    params_json   TEXT    NOT NULL,
    plan_hash     TEXT    NOT NULL,
    epsilon_micro INTEGER NOT NULL CHECK (epsilon_micro > 0),
    submitted_ms  INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN
                      ('pending', 'approved', 'denied', 'expired', 'running')),
    decided_ms    INTEGER,
    operator      TEXT    NOT NULL DEFAULT '',
    reason        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS held_by_state ON held (state, seq);
"""
_COLUMNS = (
    "seq, qid, analyst, sql, params_json, plan_hash, epsilon_micro, submitted_ms, state, "
    "decided_ms, operator, reason"
)


@dataclasses.dataclass(frozen=True)
class HeldQuery:
    """A query in the approval queue.

    Attributes:
        seq: Arrival order.
        qid: The query id (hex).
        analyst: Who asked.
        sql: The analyst's SQL.
        params_json: Its parameters (JSON).
        plan_hash: The silo's plan hash of it.
        epsilon_micro: What it will cost if it runs.
        submitted_ms: When it was held, Unix milliseconds.
        state: Where it is now.
        decided_ms: When it left ``pending``, or None.
        operator: Who decided (empty for an expiry).
        reason: Why (for a denial or expiry).
    """

    seq: int
    qid: str
    analyst: str
    sql: str
    params_json: str
    plan_hash: str
    epsilon_micro: int
    submitted_ms: int
    state: HeldState
    decided_ms: int | None
    operator: str
    reason: str


def _row(row: tuple[object, ...]) -> HeldQuery:
    return HeldQuery(
        seq=int(cast(int, row[0])),
        qid=str(row[1]),
        analyst=str(row[2]),
        sql=str(row[3]),
        params_json=str(row[4]),
        plan_hash=str(row[5]),
        epsilon_micro=int(cast(int, row[6])),
        submitted_ms=int(cast(int, row[7])),
        state=cast(HeldState, str(row[8])),
        decided_ms=None if row[9] is None else int(cast(int, row[9])),
        operator=str(row[10]),
        reason=str(row[11]),
    )


def _text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise DataError(f"{what} must be a non-empty string")
    return value


class ApprovalQueue:
    """Queries waiting for an operator, stored durably in one SQLite file.

    Args:
        path: The queue file (created with its schema if missing).
        timeout_s: How long a call waits for another writer.

    Raises:
        OperationalError: The file cannot be opened.
        IntegrityError: The file is not an approval queue this version can read.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0) -> None:
        self._path = os.fspath(path)
        self._timeout_s = timeout_s
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise IntegrityError(
                    f"the approval queue has schema version {version}, expected {_SCHEMA_VERSION}"
                )
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise OperationalError(f"the approval queue cannot be opened: {exc}") from None
        try:
            conn.execute("PRAGMA synchronous = FULL")
            yield conn
        except sqlite3.OperationalError as exc:
            raise OperationalError(f"the approval queue is unavailable: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise IntegrityError(f"the approval queue is damaged: {exc}") from None
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def submit(
        self,
        qid: str,
        analyst: str,
        sql: str,
        params_json: str,
        plan_hash: str,
        epsilon_micro: int,
        now_ms: int,
    ) -> HeldQuery:
        """Hold a query for approval (durable when this returns).

        Submitting the same query again (same id and content) returns it as it stands, so a
        request resent after a reconnect is held once.

        Args:
            qid: The query id (hex).
            analyst: Who asked.
            sql: The analyst's SQL.
            params_json: Its parameters (JSON).
            plan_hash: The silo's plan hash.
            epsilon_micro: Its cost, in micro-epsilon (positive).
            now_ms: Now, Unix milliseconds.

        Returns:
            The held query.

        Raises:
            ProtocolError: The id was already used for a different query.
            DataError: An argument is empty or out of range.
        """
        for value, what in ((qid, "qid"), (analyst, "analyst"), (sql, "sql")):
            _text(value, what)
        if isinstance(epsilon_micro, bool) or not isinstance(epsilon_micro, int):
            raise DataError("epsilon_micro must be an integer")
        if epsilon_micro <= 0:
            raise DataError("epsilon_micro must be positive")
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM held WHERE qid = ?", (qid,)).fetchone()
            if row is not None:
                held = _row(row)
                same = (held.analyst, held.sql, held.params_json, held.plan_hash) == (
                    analyst,
                    sql,
                    params_json,
                    plan_hash,
                ) and held.epsilon_micro == epsilon_micro
                if not same:
                    raise ProtocolError("query id already used for another query; refusing it")
                return held
            conn.execute(
                "INSERT INTO held (qid, analyst, sql, params_json, plan_hash, epsilon_micro, "
                "submitted_ms, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                (qid, analyst, sql, params_json, plan_hash, epsilon_micro, now_ms),
            )
            return _row(
                conn.execute(f"SELECT {_COLUMNS} FROM held WHERE qid = ?", (qid,)).fetchone()
            )

    def get(self, qid: str) -> HeldQuery | None:
        """The held query ``qid``, or None."""
        with self._connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM held WHERE qid = ?", (qid,)).fetchone()
        return None if row is None else _row(row)

    def held(self, state: HeldState | None = None) -> list[HeldQuery]:
        """Held queries in arrival order, all or only those in ``state``."""
        query = f"SELECT {_COLUMNS} FROM held"
        params: tuple[str, ...] = ()
        if state is not None:
            query += " WHERE state = ?"
            params = (state,)
        with self._connection() as conn:
            rows = conn.execute(query + " ORDER BY seq", params).fetchall()
        return [_row(r) for r in rows]

    def _move(
        self,
        qid: str,
        source: HeldState,
        target: HeldState,
        now_ms: int,
        operator: str,
        reason: str,
    ) -> HeldQuery:
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM held WHERE qid = ?", (qid,)).fetchone()
            if row is None:
                raise DataError(f"no held query has id {qid}")
            held = _row(row)
            if held.state != source:
                raise OperationalError(
                    f"query {qid} is {held.state}, not {source}; it cannot become {target}"
                )
            decided = now_ms if source == "pending" else held.decided_ms
            conn.execute(
                "UPDATE held SET state = ?, decided_ms = ?, operator = ?, reason = ? WHERE qid = ?",
                (
                    target,
                    decided,
                    operator or held.operator,
                    reason or held.reason,
                    qid,
                ),
            )
            return _row(
                conn.execute(f"SELECT {_COLUMNS} FROM held WHERE qid = ?", (qid,)).fetchone()
            )

    def approve(self, qid: str, operator: str, now_ms: int, reason: str = "") -> HeldQuery:
        """Approve a pending query.

        Raises:
            DataError: No such query, or no operator named.
            OperationalError: It is not pending.
        """
        return self._move(qid, "pending", "approved", now_ms, _text(operator, "operator"), reason)

    def deny(self, qid: str, operator: str, now_ms: int, reason: str) -> HeldQuery:
        """Deny a pending query (it costs nothing).

        Raises:
            DataError: No such query, or no operator or reason given.
            OperationalError: It is not pending.
        """
        return self._move(
            qid, "pending", "denied", now_ms, _text(operator, "operator"), _text(reason, "reason")
        )

    def claim(self, qid: str) -> HeldQuery:
        """Take an approved query to run it; succeeds once per query.

        Raises:
            DataError: No such query.
            OperationalError: It is not approved (pending, denied, expired or already running).
        """
        return self._move(qid, "approved", "running", 0, "", "")

    def expire(self, now_ms: int, max_age_s: float) -> list[HeldQuery]:
        """Expire every query pending for longer than ``max_age_s`` (they cost nothing).

        Args:
            now_ms: Now, Unix milliseconds.
            max_age_s: How long a query may wait.

        Returns:
            The queries expired by this call.
        """
        cutoff = now_ms - int(max_age_s * 1000)
        reason = f"not decided within {max_age_s:g} seconds"
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM held WHERE state = 'pending' AND submitted_ms <= ? "
                "ORDER BY seq",
                (cutoff,),
            ).fetchall()
            conn.execute(
                "UPDATE held SET state = 'expired', decided_ms = ?, reason = ? "
                "WHERE state = 'pending' AND submitted_ms <= ?",
                (now_ms, reason, cutoff),
            )
        return [
            dataclasses.replace(_row(r), state="expired", decided_ms=now_ms, reason=reason)
            for r in rows
        ]

    def expire_query(self, qid: str, now_ms: int, reason: str) -> HeldQuery | None:
        """Expire one query still waiting to run (pending, or approved but not yet claimed).

        Args:
            qid: The query id (hex).
            now_ms: Now, Unix milliseconds.
            reason: Why (its deadline passed, the hub aborted it, ...).

        Returns:
            The expired query, or None when it was not waiting (decided, running or unknown).
        """
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE held SET state = 'expired', decided_ms = COALESCE(decided_ms, ?), "
                "reason = ? WHERE qid = ? AND state IN ('pending', 'approved')",
                (now_ms, _text(reason, "reason"), qid),
            ).rowcount
            row = conn.execute(f"SELECT {_COLUMNS} FROM held WHERE qid = ?", (qid,)).fetchone()
        return _row(row) if changed and row is not None else None

    def abandon(self, now_ms: int, reason: str) -> list[HeldQuery]:
        """Expire every query still waiting to run, e.g. when the silo starts again.

        A held query lives in the silo's secure-aggregation state for one run of the agent; after
        a restart it can no longer take part, so it must not wait for a decision that cannot act.

        Args:
            now_ms: Now, Unix milliseconds.
            reason: Why.

        Returns:
            The queries expired by this call.
        """
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM held WHERE state IN ('pending', 'approved') ORDER BY seq"
            ).fetchall()
            conn.execute(
                "UPDATE held SET state = 'expired', decided_ms = COALESCE(decided_ms, ?), "
                "reason = ? WHERE state IN ('pending', 'approved')",
                (now_ms, _text(reason, "reason")),
            )
        return [dataclasses.replace(_row(r), state="expired", reason=reason) for r in rows]
