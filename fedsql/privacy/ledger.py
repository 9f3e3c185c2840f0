"""The budget ledger: a durable, exact, concurrency-safe record of each analyst's privacy spend.

Each silo keeps its own ledger (the hub's copy only fails fast). A charge is committed durably
before any computation, is never refunded, and is keyed by the query id, so a replayed query
is refused. Amounts are integers in micro-epsilon: no float ever decides whether a budget is
exceeded.

Storage is one SQLite file in WAL mode with ``synchronous=FULL``: a charge that ``charge``
returned from is on disk and survives a killed process (or a power cut). Every charge runs in
a ``BEGIN IMMEDIATE`` transaction, which takes the database's write lock before reading the
spend, so concurrent threads or processes can never both see room for the last charge. A
``Ledger`` keeps one connection open for its life and lets one thread use it at a time, so it
is safe to share across threads; keeping it open (rather than opening one per call) spares
each charge the checkpoint and the file syncs SQLite does when a database's last connection
closes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fedsql.errors import (
    BudgetExhausted,
    DataError,
    IntegrityError,
    OperationalError,
    ProtocolError,
)
from fedsql.privacy.accounting import micro_to_epsilon

__all__ = ["Ledger", "LedgerEntry"]

_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    qid     TEXT    NOT NULL UNIQUE,
    analyst TEXT    NOT NULL,
    micro   INTEGER NOT NULL CHECK (micro > 0),
    at_ms   INTEGER NOT NULL,
    note    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS charges_by_analyst ON charges (analyst);
"""


@dataclass(frozen=True)
class LedgerEntry:
    """One committed charge.

    Attributes:
        seq: Position in the ledger (increasing with commit order).
        analyst: Who was charged.
        qid: The query id the charge is for (unique in the ledger).
        micro: Amount in micro-epsilon.
        at_ms: Commit time, Unix milliseconds.
        note: Free text recorded with the charge.
    """

    seq: int
    analyst: str
    qid: str
    micro: int
    at_ms: int
    note: str

    @property
    def epsilon(self) -> str:
        """The amount as a canonical epsilon string."""
        return micro_to_epsilon(self.micro)


def _check_amount(value: int, what: str, *, positive: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{what} must be an integer number of micro-epsilon")
    if value < 0 or (positive and value == 0):
        raise DataError(f"{what} must be {'positive' if positive else 'non-negative'}")
    if value > 2**62:
        raise DataError(f"{what} is too large")
    return value


def _check_text(value: str, what: str, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise DataError(f"{what} must be a string")
    if not value and not empty_ok:
        raise DataError(f"{what} must not be empty")
    return value


class Ledger:
    """Per-analyst privacy spend at one silo, stored in a SQLite file.

    Args:
        path: The ledger file; created (with its schema) if missing.
        timeout_s: How long a call waits for another writer before giving up.

    Raises:
        IntegrityError: The file is not a ledger this version can read.
        OperationalError: The file cannot be opened or stays locked past ``timeout_s``.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0) -> None:
        self._path = os.fspath(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self._path, timeout=float(timeout_s), isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise OperationalError(f"the budget ledger cannot be opened: {exc}") from None
        self._conn = conn
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        """Switch the new connection to durable write-ahead logging; create or check the schema."""
        with self._connection() as conn:
            conn.execute("PRAGMA synchronous = FULL")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - only on file systems without WAL
            raise OperationalError("the budget ledger could not switch to write-ahead logging")
        with self._transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise IntegrityError(
                    f"the budget ledger has schema version {version}, expected {_SCHEMA_VERSION}"
                )
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @property
    def path(self) -> str:
        """The ledger file."""
        return self._path

    def close(self) -> None:
        """Close the ledger's connection; idempotent. Every committed charge is already on disk."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """The ledger's autocommit connection, held by this thread until exit."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise OperationalError("the budget ledger is closed")
            try:
                yield conn
            except sqlite3.OperationalError as exc:
                raise OperationalError(f"the budget ledger is unavailable: {exc}") from None
            except sqlite3.DatabaseError as exc:
                raise IntegrityError(f"the budget ledger is damaged: {exc}") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database lock from its first statement."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def charge(self, analyst: str, qid: str, micro: int, budget_micro: int, note: str = "") -> int:
        """Atomically record a charge of ``micro`` against ``analyst``'s budget.

        The charge is durable when this returns. Nothing is recorded when it raises.

        Args:
            analyst: Who is charged.
            qid: The query id; each id may be charged once in the ledger's lifetime.
            micro: Amount in micro-epsilon, positive.
            budget_micro: The analyst's lifetime budget at this silo, in micro-epsilon.
            note: Free text stored with the charge (never data values).

        Returns:
            What the analyst has left after this charge, in micro-epsilon.

        Raises:
            ProtocolError: ``qid`` was already charged.
            BudgetExhausted: The charge would take the analyst's spend past ``budget_micro``.
            DataError: An argument has the wrong type or range.
            OperationalError: The ledger stayed locked or cannot be written.
        """
        _check_text(analyst, "analyst")
        _check_text(qid, "query id")
        _check_text(note, "note", empty_ok=True)
        _check_amount(micro, "the charge", positive=True)
        _check_amount(budget_micro, "the budget", positive=False)
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM charges WHERE qid = ?", (qid,)).fetchone():
                raise ProtocolError("query id already seen; a query id may be charged only once")
            spent = self._spent(conn, analyst)
            if spent + micro > budget_micro:
                left = max(0, budget_micro - spent)
                raise BudgetExhausted(
                    f"analyst {analyst!r} has epsilon {micro_to_epsilon(left)} left of "
                    f"{micro_to_epsilon(budget_micro)}; the query needs "
                    f"{micro_to_epsilon(micro)}"
                )
            conn.execute(
                "INSERT INTO charges (qid, analyst, micro, at_ms, note) VALUES (?, ?, ?, ?, ?)",
                (qid, analyst, micro, time.time_ns() // 1_000_000, note),
            )
        return budget_micro - spent - micro

    @staticmethod
    def _spent(conn: sqlite3.Connection, analyst: str) -> int:
        row = conn.execute(
            "SELECT COALESCE(SUM(micro), 0) FROM charges WHERE analyst = ?", (analyst,)
        ).fetchone()
        return int(row[0])

    def spent(self, analyst: str) -> int:
        """Total committed charges of ``analyst``, in micro-epsilon.

        Args:
            analyst: Who to report on.

        Returns:
            The sum of the analyst's charges (0 if none).

        Raises:
            OperationalError: The ledger cannot be read.
        """
        _check_text(analyst, "analyst")
        with self._connection() as conn:
            return self._spent(conn, analyst)

    def remaining(self, analyst: str, budget_micro: int) -> int:
        """What ``analyst`` has left of ``budget_micro``, in micro-epsilon (never negative).

        Args:
            analyst: Who to report on.
            budget_micro: The analyst's lifetime budget, in micro-epsilon.

        Returns:
            ``max(0, budget_micro - spent(analyst))``: a budget lowered below past spending
            leaves nothing.

        Raises:
            DataError: ``budget_micro`` is not a non-negative integer.
            OperationalError: The ledger cannot be read.
        """
        _check_amount(budget_micro, "the budget", positive=False)
        return max(0, budget_micro - self.spent(analyst))

    def seen(self, qid: str) -> bool:
        """Whether a charge for ``qid`` is committed.

        Args:
            qid: A query id.

        Returns:
            True if ``qid`` was charged.

        Raises:
            OperationalError: The ledger cannot be read.
        """
        _check_text(qid, "query id")
        with self._connection() as conn:
            return (
                conn.execute("SELECT 1 FROM charges WHERE qid = ?", (qid,)).fetchone() is not None
            )

    def entries(self, analyst: str | None = None) -> list[LedgerEntry]:
        """Committed charges in commit order, for one analyst or for all.

        Args:
            analyst: Only this analyst's charges, or every charge when None.

        Returns:
            The entries, oldest first.

        Raises:
            OperationalError: The ledger cannot be read.
        """
        query = "SELECT seq, analyst, qid, micro, at_ms, note FROM charges"
        params: tuple[str, ...] = ()
        if analyst is not None:
            _check_text(analyst, "analyst")
            query += " WHERE analyst = ?"
            params = (analyst,)
        with self._connection() as conn:
            rows = conn.execute(query + " ORDER BY seq", params).fetchall()
        return [
            LedgerEntry(
                seq=int(r[0]),
                analyst=str(r[1]),
                qid=str(r[2]),
                micro=int(r[3]),
                at_ms=int(r[4]),
                note=str(r[5]),
            )
            for r in rows
        ]
