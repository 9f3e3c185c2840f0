"""The durable replay log: every query id a silo has claimed, kept in SQLite across restarts.

A :class:`QidLog` is the ``claim_qid`` hook of :class:`fedsql.secagg.silo_session.SiloSession`.
Claiming is one ``INSERT`` into a table keyed by the qid, committed with ``synchronous=FULL``
(the write-ahead log is fsynced before ``claim`` returns), so a claim that returned True
survives a crash or power loss, and two processes sharing the file can never both claim the
same qid. The log only grows (16 bytes and an index entry per query); ids are never removed,
because forgetting one would let it be replayed.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from types import TracebackType

from fedsql.errors import ConfigError, OperationalError, ProtocolError
from fedsql.secagg.keys import QID_BYTES

__all__ = ["QidLog"]

#: Schema version stored in ``PRAGMA user_version``.
SCHEMA_VERSION = 1
#: How long a claim waits for another process holding the write lock (seconds).
BUSY_TIMEOUT_S = 10.0


class QidLog:
    """Append-only, crash-safe set of claimed query ids.

    Thread-safe, and safe to share between processes through the same file. Use it as
    ``SiloSession(..., claim_qid=QidLog(path))``.

    Args:
        path: The SQLite file; created (with its directory's permissions) if missing.

    Raises:
        ConfigError: If the file cannot be opened or is not a query-id log.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the query-id log ({exc})", file=str(self.path)) from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS qids (qid BLOB PRIMARY KEY NOT NULL) WITHOUT ROWID"
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise ConfigError(
                    f"the query-id log has schema version {version}; this build reads "
                    f"version {SCHEMA_VERSION}",
                    file=str(self.path),
                )
        except sqlite3.Error as exc:
            conn.close()
            raise ConfigError(
                f"the file is not a usable query-id log ({exc})", file=str(self.path)
            ) from exc
        except ConfigError:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OperationalError("the query-id log is closed; no query can be accepted")
        return self._conn

    def claim(self, qid: bytes) -> bool:
        """Record ``qid`` durably, unless it was recorded before.

        Args:
            qid: The 16-byte query id.

        Returns:
            True if this call recorded it (the query may go ahead), False if it was already
            in the log (a replay).

        Raises:
            ProtocolError: If the qid is not 16 bytes.
            OperationalError: If the log is closed or cannot be written; the query must then
                be refused, since its id could not be recorded.
        """
        qid = bytes(qid)
        if len(qid) != QID_BYTES:
            raise ProtocolError(f"a query id must be {QID_BYTES} bytes")
        with self._lock:
            conn = self._connection()
            try:
                cursor = conn.execute("INSERT OR IGNORE INTO qids (qid) VALUES (?)", (qid,))
            except sqlite3.Error as exc:
                raise OperationalError(
                    f"the query-id log could not record a query id ({exc}); refusing the query"
                ) from exc
            return cursor.rowcount == 1

    __call__ = claim

    def __contains__(self, qid: object) -> bool:
        if not isinstance(qid, bytes | bytearray):
            return False
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT 1 FROM qids WHERE qid = ?", (bytes(qid),))
                .fetchone()
            )
        return row is not None

    def __len__(self) -> int:
        with self._lock:
            return int(self._connection().execute("SELECT COUNT(*) FROM qids").fetchone()[0])

    def close(self) -> None:
        """Close the file; further claims raise OperationalError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> QidLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
