"""Per-analyst rate limits at a silo: a sliding window of recent queries, kept in SQLite.

The limit comes from the policy in force (``[limits] rate_limit``) at each call, so a changed
policy applies from the next query. The store is a SQLite file (queries counted across
restarts and processes) or memory. A query is counted when it is let through; refused queries
are not counted and cost nothing.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fedsql.catalog import RateLimit
from fedsql.errors import DataError, IntegrityError, OperationalError, QueryRejected

__all__ = ["RateLimiter"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    analyst TEXT    NOT NULL,
    at_ms   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_by_analyst ON queries (analyst, at_ms);
"""
#: History kept per analyst, at least: the longest window a policy can name (a day).
_KEEP_MS = 86_400_000


def _wait_text(seconds: float) -> str:
    """A rounded-up wait, in words.

    >>> _wait_text(0.2), _wait_text(61), _wait_text(7200)
    ('1 second', '2 minutes', '2 hours')
    """
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds > size:
            n = math.ceil(seconds / size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    n = max(1, math.ceil(seconds))
    return f"{n} second{'s' if n != 1 else ''}"


class RateLimiter:
    """Counts each analyst's queries in a sliding window and refuses those over the limit.

    Args:
        path: A SQLite file to keep the counts in (created if missing), or None for memory.
        timeout_s: How long a call waits for another process holding the file.

    Raises:
        OperationalError: The file cannot be opened.
        IntegrityError: The file is not a rate-limit store.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, timeout_s: float = 30.0
    ) -> None:
        target = ":memory:" if path is None else os.fspath(path)
        try:
            self._conn = sqlite3.connect(
                target, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise OperationalError(f"the rate-limit store cannot be opened: {exc}") from None
        self._lock = threading.Lock()
        try:
            if path is not None:
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise IntegrityError(f"the file is not a rate-limit store: {exc}") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise OperationalError(f"the rate-limit store is busy: {exc}") from None
            try:
                yield conn
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise OperationalError(f"the rate-limit store is unavailable: {exc}") from None
            except sqlite3.DatabaseError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise IntegrityError(f"the rate-limit store is damaged: {exc}") from None
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def check_and_record(self, analyst: str, now: float, limit: RateLimit | None) -> None:
        """Let one query of ``analyst`` through at time ``now``, or refuse it.

        Args:
            analyst: Who sends the query.
            now: Unix time in seconds.
            limit: The policy's rate limit, or None for no limit (the query is still counted,
                so a limit set later sees recent queries).

        Raises:
            QueryRejected: ``analyst`` already sent ``limit.queries`` queries in the last
                ``limit.window_s`` seconds; the message says when to try again.
            DataError: ``analyst`` is empty or ``now`` is not a finite time.
        """
        if not isinstance(analyst, str) or not analyst:
            raise DataError("analyst must be a non-empty string")
        if not math.isfinite(now):
            raise DataError("now must be a finite Unix time")
        now_ms = int(now * 1000)
        keep = max(_KEEP_MS, 0 if limit is None else limit.window_s * 1000)
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM queries WHERE analyst = ? AND at_ms <= ?", (analyst, now_ms - keep)
            )
            if limit is not None:
                start = now_ms - limit.window_s * 1000
                count, oldest = conn.execute(
                    "SELECT COUNT(*), MIN(at_ms) FROM queries WHERE analyst = ? AND at_ms > ?",
                    (analyst, start),
                ).fetchone()
                if count >= limit.queries:
                    # The oldest query in the window leaves it after window_s.
                    wait = (int(oldest) + limit.window_s * 1000 - now_ms) / 1000
                    raise QueryRejected(
                        f"analyst {analyst!r} reached this clinic's rate limit of "
                        f"{limit.describe()} (limits.rate_limit); try again in "
                        f"{_wait_text(wait)}. Refused queries cost no epsilon"
                    )
            conn.execute("INSERT INTO queries (analyst, at_ms) VALUES (?, ?)", (analyst, now_ms))

    def recent(self, analyst: str, now: float, window_s: int) -> int:
        """How many queries of ``analyst`` were let through in the ``window_s`` seconds to now.

        Args:
            analyst: Who.
            now: Unix time in seconds.
            window_s: The window's length.

        Returns:
            The count.
        """
        start = int(now * 1000) - window_s * 1000
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM queries WHERE analyst = ? AND at_ms > ?", (analyst, start)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the store."""
        with self._lock:
            self._conn.close()
