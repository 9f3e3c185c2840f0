"""The durable log of signed model queries' rounds: per analyst nonce, the next round and spend.

A logistic model the analyst signed once runs as several rounds under one nonce (see
:mod:`fedsql.silo.signed_models`). This SQLite file keeps, for every such nonce, the digest of
the signed statement, its ``max_iter`` and signed total, the index of the next round this silo
will take and the micro-epsilon its accepted rounds were charged. Each round is one
``BEGIN IMMEDIATE`` transaction committed with ``synchronous=FULL`` before the round goes on,
so a round accepted once is never accepted again, also after a crash, and two processes sharing
the file cannot both take the same round. Rows are never removed (forgetting one would let its
rounds be replayed).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from fedsql.errors import ConfigError, OperationalError, ProtocolError

__all__ = ["ModelRoundLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_rounds (
    nonce BLOB PRIMARY KEY NOT NULL,
    statement BLOB NOT NULL,
    max_rounds INTEGER NOT NULL,
    total_micro INTEGER NOT NULL,
    next_round INTEGER NOT NULL,
    charged_micro INTEGER NOT NULL
) WITHOUT ROWID;
"""
#: How long a round waits for another process holding the write lock (seconds).
BUSY_TIMEOUT_S = 10.0


class ModelRoundLog:
    """Crash-safe record of the rounds each signed model query has taken at this silo.

    Args:
        path: The SQLite file; created if missing.

    Raises:
        ConfigError: The file cannot be opened or is not a model-round log.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the model-round log ({exc})", file=self.path) from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            conn.close()
            raise ConfigError(
                f"the file is not a usable model-round log ({exc})", file=self.path
            ) from exc
        self._conn: sqlite3.Connection | None = conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise OperationalError("the model-round log is closed; no round can be accepted")
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise OperationalError(
                    f"the model-round log could not record a round ({exc}); refusing the round"
                ) from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def take(
        self,
        nonce: bytes,
        statement: bytes,
        index: int,
        *,
        max_rounds: int,
        total_micro: int,
        share_micro: int,
    ) -> None:
        """Record round ``index`` of the model signed as ``statement``, or refuse it.

        Round 0 opens the record (the caller has claimed the nonce in its nonce log first);
        every later round must be the next one of that same statement, within ``max_rounds``,
        and must keep the total charged within ``total_micro``.

        Args:
            nonce: The analyst's 16-byte nonce.
            statement: Digest of the signed statement (binds the record to it).
            index: The round's index, 0-based.
            max_rounds: The model's ``max_iter``.
            total_micro: The signed total, micro-epsilon.
            share_micro: What this round is charged, micro-epsilon.

        Raises:
            ProtocolError: The round was taken before, is not the next one, comes after the
                model's last round, belongs to another statement, or would spend more than the
                signed total.
            OperationalError: The log is closed or cannot be written.
        """
        if not 0 <= index < max_rounds:
            raise ProtocolError(
                f"round {index + 1} of a model signed for at most {max_rounds} rounds is refused"
            )
        if share_micro < 0:
            raise ProtocolError("a round's epsilon cannot be negative")
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT statement, max_rounds, total_micro, next_round, charged_micro "
                "FROM model_rounds WHERE nonce = ?",
                (bytes(nonce),),
            ).fetchone()
            if index == 0:
                if row is not None:
                    raise ProtocolError("round 1 of this signed model was taken before; refused")
                if share_micro > total_micro:
                    raise ProtocolError("the round would spend more than the signed epsilon")
                conn.execute(
                    "INSERT INTO model_rounds VALUES (?, ?, ?, ?, 1, ?)",
                    (bytes(nonce), bytes(statement), max_rounds, total_micro, share_micro),
                )
                return
            if row is None:
                raise ProtocolError(
                    f"round {index + 1} of a signed model whose first round this silo did not "
                    "take is refused; run the model again"
                )
            signed, rounds, total, next_round, charged = row
            if bytes(signed) != bytes(statement) or rounds != max_rounds or total != total_micro:
                raise ProtocolError("this round relays another statement under the same nonce")
            if index != next_round:
                raise ProtocolError(
                    f"round {index + 1} of this signed model is refused: the next round this "
                    f"silo takes is round {next_round + 1} (a replay, or a skipped round)"
                )
            if charged + share_micro > total:
                raise ProtocolError(
                    "the model's rounds would spend more than the epsilon the analyst signed"
                )
            conn.execute(
                "UPDATE model_rounds SET next_round = ?, charged_micro = ? WHERE nonce = ?",
                (index + 1, charged + share_micro, bytes(nonce)),
            )

    def charged(self, nonce: bytes) -> int:
        """Micro-epsilon the accepted rounds under ``nonce`` were charged (0 if none)."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT charged_micro FROM model_rounds WHERE nonce = ?", (bytes(nonce),)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        """Close the file; further rounds raise OperationalError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ModelRoundLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
