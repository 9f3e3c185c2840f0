"""The append-only audit log of a silo or the hub: one writer, durable appends, signed heads.

``AuditLog(path, signer, verifier, log_id=...)`` opens (or creates) a log file. Opening replays
and verifies the whole file under the owner's key (a log that fails is refused, so a silo never
appends to a tampered log), takes an exclusive lock (one writer per file) and, if the last line
was torn by a crash, cuts it and records a ``recovery`` entry. Each :meth:`AuditLog.append`
writes the entry and, every ``sign_every`` entries, a signed tree head in one ``write`` and
flushes it to disk; then the head is copied over the head file (``<log>.head``, rewritten in
place). :meth:`AuditLog.sign_head` signs a head on demand. The file format and its checks are
described in :mod:`fedsql.audit.verify`.

The log keeps only the right edge of its tree in memory (O(log n)), so it can grow for years;
reading entries back and building proofs re-read the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fedsql.audit.heads import Signer, TreeHead, Verifier, check_log_id, sign_head
from fedsql.audit.merkle import consistency_proof, inclusion_proof, leaf_hash
from fedsql.audit.records import AuditEntry, AuditRecord, encode_entry
from fedsql.audit.verify import (
    Replay,
    check_kept_head,
    head_path_for,
    read_head_file,
    replay,
)
from fedsql.errors import IntegrityError, OperationalError

__all__ = ["AuditLog", "AuditReceipt"]

#: Permissions of a new log and its head file: the owner reads and writes, the group reads.
LOG_FILE_MODE = 0o640
#: A head file is overwritten in place, padded with spaces to at least this many bytes.
HEAD_FILE_BYTES = 1024


@dataclass(frozen=True)
class AuditReceipt:
    """Where an appended entry landed.

    Attributes:
        seq: Its position in the log.
        at_ms: Its time, Unix milliseconds.
        leaf: Its Merkle leaf hash.
        head: The head signed with it, or None if it is not signed yet.
    """

    seq: int
    at_ms: int
    leaf: bytes
    head: TreeHead | None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class AuditLog:
    """An append-only, hash-chained audit log with RFC 6962 tree hashing and signed heads.

    Safe to share between threads; only one process may hold a log open.

    Args:
        path: The log file (created with its head file if missing).
        signer: The owner's signing key (e.g. the silo's Ed25519 identity key).
        verifier: Checks signatures (e.g. ``fedsql.secagg.identity.verify_signature``).
        log_id: The log's name, such as ``silo:san-francisco`` or ``hub``.
        sign_every: Sign a head after this many appends (1: every append is covered by a
            signature as soon as it is written).
        durable: Flush every write to disk before returning (turn off only in tests).
        clock: Unix milliseconds now (times never go backwards along the log).

    Raises:
        IntegrityError: The existing log does not verify under ``signer``'s key, belongs to
            another log id, or its head file does not match it.
        OperationalError: The file cannot be opened or another process holds it.
        ValueError: A malformed ``log_id`` or ``sign_every`` below 1.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        signer: Signer,
        verifier: Verifier,
        *,
        log_id: str,
        sign_every: int = 1,
        durable: bool = True,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        if sign_every < 1:
            raise ValueError("sign_every must be 1 or more")
        self._path = Path(path)
        self._head_path = head_path_for(self._path)
        self._signer = signer
        self._verifier = verifier
        self._log_id = check_log_id(log_id)
        self._sign_every = sign_every
        self._durable = durable
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._fd = self._open_locked()
        self._head_fd = -1
        try:
            self._state = self._load()
        except BaseException:
            self._close_files()
            raise
        assert self._state.head is not None
        self._unsigned = self._state.size - self._state.head.size
        if self._state.torn:
            self.append(
                AuditRecord(
                    event="recovery",
                    actor=self._log_id,
                    reason=f"a partial last line of {self._state.torn} bytes (a write torn by a "
                    "crash) was removed when the log was opened",
                )
            )

    # -- opening ----------------------------------------------------------------------------

    def _open_locked(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self._path, flags, LOG_FILE_MODE)
        except OSError as exc:
            raise OperationalError(f"the audit log cannot be opened ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OperationalError(
                "the audit log is open in another process; one writer at a time"
            ) from None
        return fd

    def _replay(
        self,
        *,
        witness: bytes | None = None,
        keep_entries: bool = False,
        keep_leaves: bool = False,
    ) -> Replay:
        """Replay the file as it is on disk (complete lines only)."""
        with open(os.dup(self._fd), "rb", closefd=True) as stream:
            stream.seek(0)
            return replay(
                stream,
                self._verifier,
                key=bytes(self._signer.public_bytes),
                log_id=self._log_id,
                witness=witness,
                allow_torn=True,
                keep_entries=keep_entries,
                keep_leaves=keep_leaves,
            )

    def _load(self) -> Replay:
        """Verify the existing file and cut a torn last line, or start a new log.

        Nothing is changed on disk unless the log verifies (a log that fails is evidence).
        """
        head_line = read_head_file(self._head_path)
        state = self._replay(witness=head_line)
        if state.head is not None:
            if head_line is None:
                raise IntegrityError(
                    "the log's head file is missing, so truncation cannot be ruled out; "
                    "restore it from a backup"
                )
            check_kept_head(state)
        elif head_line is not None:
            raise IntegrityError(
                "the audit log is empty but its head file is not: the log was emptied"
            )
        if state.torn:
            os.ftruncate(self._fd, state.length)
            self._flush()
        self._open_head_file()
        if state.head is not None:
            return state
        # Nothing but perhaps a torn first line: a new log.
        fresh = Replay(log_id=self._log_id, key=bytes(self._signer.public_bytes))
        head = self._sign(fresh, self._clock())
        self._commit(head.line() + b"\n", head)
        fresh.add_head(head, head.line())
        fresh.length = len(head.line()) + 1
        fresh.torn = state.torn
        return fresh

    def _open_head_file(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            self._head_fd = os.open(self._head_path, flags, LOG_FILE_MODE)
        except OSError as exc:
            raise OperationalError(
                f"the audit log's head file cannot be opened ({exc.strerror})"
            ) from None

    # -- writing ----------------------------------------------------------------------------

    def _sign(self, state: Replay, at_ms: int) -> TreeHead:
        return sign_head(self._log_id, state.size, state.frontier.root(), at_ms, self._signer)

    def _flush(self) -> None:
        if self._durable:
            os.fsync(self._fd)

    def _commit(self, data: bytes, head: TreeHead | None) -> None:
        """Append ``data`` durably, then make ``head`` (if any) the head file's content."""
        _write_all(self._fd, data)
        self._flush()
        if head is not None:
            self._write_head_file(head)

    def _write_head_file(self, head: TreeHead) -> None:
        """Overwrite the head file in place with ``head`` (one write, no rename).

        It is not flushed: the log itself is, and a head file that lags after a power cut still
        holds a head the log holds, which is all verification asks of it.
        """
        line = head.line() + b"\n"
        data = line.ljust(max(HEAD_FILE_BYTES, len(line)), b" ")
        if os.pwrite(self._head_fd, data, 0) != len(data):  # pragma: no cover - full disk
            raise OSError(28, "the head file was written short")
        if os.fstat(self._head_fd).st_size > len(data):
            os.ftruncate(self._head_fd, len(data))

    def _check_open(self) -> None:
        if self._closed:
            raise OperationalError("the audit log is closed")

    def append(self, record: AuditRecord) -> AuditReceipt:
        """Append one record (text escaped), durably, signing a head when one is due.

        Args:
            record: What to record.

        Returns:
            Where it landed and the head signed with it, if any.

        Raises:
            OperationalError: The log is closed or the write failed (nothing is appended then).
        """
        stored = record.stored()
        with self._lock:
            self._check_open()
            state = self._state
            at = max(self._clock(), state.last_at)
            line = encode_entry(state.size, at, state.frontier.root(), stored)
            leaf = leaf_hash(line)
            frontier = state.frontier.copy()
            frontier.append(leaf)
            head = None
            data = line + b"\n"
            if self._unsigned + 1 >= self._sign_every:
                head = sign_head(self._log_id, state.size + 1, frontier.root(), at, self._signer)
                data += head.line() + b"\n"
            self._write_or_undo(data, head)
            seq = state.size
            state.frontier, state.size, state.last_at = frontier, seq + 1, at
            state.length += len(data)
            if head is None:
                self._unsigned += 1
            else:
                state.add_head(head, head.line())
                self._unsigned = 0
            return AuditReceipt(seq=seq, at_ms=at, leaf=leaf, head=head)

    def _write_or_undo(self, data: bytes, head: TreeHead | None) -> None:
        """Append ``data``; on failure cut the file back so the log stays as it was."""
        try:
            self._commit(data, head)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._state.length)
                self._flush()
            raise OperationalError(f"the audit log cannot be written ({exc.strerror})") from None

    def sign_head(self) -> TreeHead:
        """Sign and append a head for every entry so far (on demand, e.g. for a witness).

        Returns:
            The new head.

        Raises:
            OperationalError: The log is closed or the write failed.
        """
        with self._lock:
            self._check_open()
            state = self._state
            head = self._sign(state, max(self._clock(), state.last_at))
            data = head.line() + b"\n"
            self._write_or_undo(data, head)
            state.length += len(data)
            state.add_head(head, head.line())
            self._unsigned = 0
            return head

    # -- reading ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    @property
    def log_id(self) -> str:
        """The log's id."""
        return self._log_id

    @property
    def size(self) -> int:
        """Number of entries."""
        with self._lock:
            return self._state.size

    @property
    def head(self) -> TreeHead:
        """The latest signed head."""
        with self._lock:
            assert self._state.head is not None
            return self._state.head

    @property
    def unsigned(self) -> int:
        """Entries appended since the latest signed head."""
        with self._lock:
            return self._unsigned

    def entries(self) -> list[AuditEntry]:
        """Every entry, oldest first, read back from the file (text fields escaped).

        Raises:
            IntegrityError: The file was changed behind the log's back.
        """
        with self._lock:
            self._check_open()
            state = self._replay(keep_entries=True)
        return state.entries or []

    def _leaves(self, size: int | None) -> list[bytes]:
        with self._lock:
            self._check_open()
            leaves = self._replay(keep_leaves=True).leaves or []
        n = len(leaves) if size is None else size
        if not 0 <= n <= len(leaves):
            raise ValueError("the tree size is outside the log")
        return leaves[:n]

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        """The RFC 6962 audit path of entry ``seq`` in the tree of the first ``size`` entries.

        Args:
            seq: The entry.
            size: The tree size (default: every entry).

        Returns:
            The proof, checked by :func:`fedsql.audit.merkle.verify_inclusion`.

        Raises:
            ValueError: ``seq`` or ``size`` is outside the log.
            IntegrityError: The file was changed behind the log's back.
        """
        return inclusion_proof(seq, self._leaves(size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 6962 proof that the first ``old_size`` entries are a prefix of ``new_size``.

        Args:
            old_size: The earlier tree size.
            new_size: The later tree size (default: every entry).

        Returns:
            The proof, checked by :func:`fedsql.audit.merkle.verify_consistency`.

        Raises:
            ValueError: A size is outside the log or ``old_size > new_size``.
            IntegrityError: The file was changed behind the log's back.
        """
        return consistency_proof(old_size, self._leaves(new_size))

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        """Sign a head for any entries not yet covered, release the lock and close the file."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._unsigned:
                    state = self._state
                    head = self._sign(state, max(self._clock(), state.last_at))
                    self._commit(head.line() + b"\n", head)
            finally:
                self._closed = True
                self._close_files()

    def _close_files(self) -> None:
        if self._head_fd >= 0:
            os.close(self._head_fd)
            self._head_fd = -1
        os.close(self._fd)  # closing the log releases its lock

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
