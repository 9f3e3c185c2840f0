"""Checking an audit log: every line canonical, every entry chained, every head signed and right.

A log file is a sequence of lines, each the canonical JSON of an entry or of a signed tree head.
It starts with the head of the empty log; each head covers exactly the entries before it. Its
head file (``<log>.head``) holds a copy of the latest head. Verification replays the file:

- each entry's ``seq`` is its position and its ``prev`` is the tree root of the entries before
  it (deleting, inserting or reordering entries breaks both);
- each head's signature verifies under the pinned key (or the key of the log's first head), its
  size is the number of entries before it and its root their Merkle tree hash (modifying any
  entry changes the root);
- the log still holds the head kept in its head file (which the writer replaces after every
  signed head) or in a copy kept elsewhere: cutting the log anywhere loses that head.

A final line without its newline is reported, not refused: it is a write in progress (or one
a crash cut short, which the writer removes when it next opens the log). It can never hide a
change, because the kept head always comes before it.

A log rewritten from scratch and signed with another key passes only if the verifier does not
pin the owner's key; a log rolled back together with its head file is caught only by someone
who kept a later head. Both are why a head should be recorded outside the clinic as well.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fedsql.audit.heads import HEAD_TYPE, TreeHead, Verifier, decode_head
from fedsql.audit.merkle import Frontier, leaf_hash
from fedsql.audit.records import ENTRY_TYPE, AuditEntry, decode_entry
from fedsql.errors import IntegrityError

__all__ = [
    "LogReport",
    "Replay",
    "check_kept_head",
    "head_path_for",
    "read_head_file",
    "replay",
    "verify_log",
]


def head_path_for(path: str | os.PathLike[str]) -> Path:
    """The head file of the log at ``path``: the same name with ``.head`` appended.

    >>> str(head_path_for("/var/fedsql/audit.log"))
    '/var/fedsql/audit.log.head'
    """
    return Path(os.fspath(path) + ".head")


@dataclass
class Replay:
    """The state of a log after reading it: its tree, its latest heads and what was kept.

    Attributes:
        log_id: The log's id (from its first head).
        key: The key its heads are signed with.
        size: Number of entries.
        heads: Number of heads.
        head: The last head.
        frontier: The tree of every entry.
        last_at: Time of the last line, Unix milliseconds.
        length: Bytes of complete lines read.
        torn: Bytes of a final line without newline (only when torn lines are allowed).
        witness_found: Whether the ``witness`` head line was among the heads.
        entries: Every entry, when asked to keep them.
        leaves: Every leaf hash, when asked to keep them.
    """

    log_id: str = ""
    key: bytes = b""
    size: int = 0
    heads: int = 0
    head: TreeHead | None = None
    frontier: Frontier = field(default_factory=Frontier)
    last_at: int = 0
    length: int = 0
    torn: int = 0
    witness_found: bool = False
    entries: list[AuditEntry] | None = None
    leaves: list[bytes] | None = None

    def add_head(self, head: TreeHead, line: bytes) -> None:
        """Record ``head`` (already checked) as the log's latest."""
        self.heads += 1
        self.head = head
        self.last_at = head.at_ms


@dataclass(frozen=True)
class LogReport:
    """What a successful verification established.

    Attributes:
        log_id: The log's id.
        entries: Number of entries.
        heads: Number of signed heads in the file.
        head: The latest signed head.
        root: Tree root of all entries.
        key: The public key every head is signed with.
        key_pinned: Whether that key was given by the verifier (else taken from the log).
        torn: Bytes of a final line without newline (a write in progress or cut by a crash).
    """

    log_id: str
    entries: int
    heads: int
    head: TreeHead
    root: bytes
    key: bytes
    key_pinned: bool
    torn: int = 0

    @property
    def unsigned(self) -> int:
        """Entries after the latest signed head (not yet covered by a signature)."""
        return self.entries - self.head.size


def _fail(line: int, message: str) -> IntegrityError:
    return IntegrityError(f"audit log line {line}: {message}")


def replay(
    lines: Iterable[bytes],
    verifier: Verifier,
    *,
    key: bytes | None = None,
    log_id: str | None = None,
    witness: bytes | None = None,
    allow_torn: bool = False,
    keep_entries: bool = False,
    keep_leaves: bool = False,
) -> Replay:
    """Read and check a log, line by line.

    Args:
        lines: The file's lines with their newlines (a binary file object iterates so).
        verifier: Checks head signatures.
        key: The owner's public key; without it the first head's key is trusted.
        log_id: The log's expected id, if known.
        witness: A head line kept elsewhere; the result says whether the log holds it.
        allow_torn: Stop at a final line without newline (a torn write) instead of failing.
        keep_entries: Keep every entry in the result.
        keep_leaves: Keep every leaf hash in the result (for proofs).

    Returns:
        The replayed state.

    Raises:
        IntegrityError: The first problem found, with its line number.
    """
    state = Replay(entries=[] if keep_entries else None, leaves=[] if keep_leaves else None)
    for number, raw in enumerate(lines, start=1):
        if not raw.endswith(b"\n"):
            if allow_torn:
                state.torn = len(raw)
                break
            raise IntegrityError(
                f"audit log line {number}: the log ends in a partial line: it was cut short, "
                "or a write was torn"
            )
        line = raw[:-1]
        try:
            obj = json.loads(line)
        except ValueError:
            raise _fail(number, "is not a JSON object; the file was changed") from None
        if not isinstance(obj, dict):
            raise _fail(number, "is not a JSON object; the file was changed")
        kind = obj.get("type")
        if number == 1 and kind != HEAD_TYPE:
            raise _fail(1, "a log starts with the signed head of the empty log; it was cut")
        if kind == ENTRY_TYPE:
            _replay_entry(state, number, line, obj)
        elif kind == HEAD_TYPE:
            _replay_head(state, number, line, obj, verifier, key, log_id)
            if witness is not None and line == witness:
                state.witness_found = True
        else:
            raise _fail(number, "is neither an entry nor a head; the file was changed")
        state.length += len(raw)
    if state.heads == 0 and state.length:
        raise IntegrityError("the audit log holds no signed head")
    return state


def _replay_entry(state: Replay, number: int, line: bytes, obj: dict[str, object]) -> None:
    try:
        entry = decode_entry(line, obj)
    except (ValueError, TypeError) as exc:
        raise _fail(number, f"is not a well-formed entry ({exc}); the file was changed") from None
    expected = state.size
    if entry.seq != expected:
        raise _fail(
            number,
            f"holds entry {entry.seq} where entry {expected} belongs: entries were deleted, "
            "inserted or reordered",
        )
    if entry.prev != state.frontier.root():
        raise _fail(
            number, f"entry {entry.seq} does not chain to the entries before it; one was changed"
        )
    if entry.at_ms < state.last_at:
        raise _fail(number, f"entry {entry.seq} is dated before the line above it; reordered")
    leaf = leaf_hash(line)
    if state.entries is not None:
        state.entries.append(entry)
    if state.leaves is not None:
        state.leaves.append(leaf)
    state.frontier.append(leaf)
    state.size += 1
    state.last_at = entry.at_ms


def _replay_head(
    state: Replay,
    number: int,
    line: bytes,
    obj: dict[str, object],
    verifier: Verifier,
    key: bytes | None,
    log_id: str | None,
) -> None:
    try:
        head = decode_head(line, obj)
    except (ValueError, TypeError) as exc:
        raise _fail(number, f"is not a well-formed head ({exc}); the file was changed") from None
    if state.heads == 0:
        if log_id is not None and head.log_id != log_id:
            raise _fail(number, f"the log is {head.log_id!r}, not {log_id!r}")
        if key is not None and head.key != key:
            raise _fail(number, "the log is signed with another key than the pinned one")
        state.log_id, state.key = head.log_id, head.key
    elif head.log_id != state.log_id:
        raise _fail(number, "a head names another log; heads were copied in")
    elif head.key != state.key:
        raise _fail(number, "a head is signed with another key than the log's first head")
    if not head.verifies(verifier):
        raise _fail(number, "the head's signature does not verify; the head was changed")
    if head.size != state.size:
        raise _fail(
            number,
            f"a head for {head.size} entries follows {state.size}: entries were "
            "deleted or inserted",
        )
    if head.root != state.frontier.root():
        raise _fail(
            number, f"the signed root of the first {head.size} entries differs: one was changed"
        )
    if head.at_ms < state.last_at:
        raise _fail(number, "the head is dated before the line above it; lines were reordered")
    state.add_head(head, line)


def read_head_file(path: str | os.PathLike[str]) -> bytes | None:
    """The head line kept in a head file, or None if the file does not exist.

    A head file holds one head line and a newline, possibly followed by spaces (the writer
    overwrites it in place); a copy kept by hand may lack the newline.

    Raises:
        IntegrityError: The file exists but cannot be read.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IntegrityError(f"the head file cannot be read ({exc.strerror})") from None
    return data.rstrip(b" ").removesuffix(b"\n")


def verify_log(
    path: str | os.PathLike[str],
    verifier: Verifier,
    *,
    key: bytes | None = None,
    log_id: str | None = None,
    head_path: str | os.PathLike[str] | None = None,
    keep_entries: bool = False,
) -> tuple[LogReport, list[AuditEntry]]:
    """Verify an audit log file against its signed heads and a kept copy of its latest head.

    Args:
        path: The log file.
        verifier: Checks signatures (``fedsql.secagg.identity.verify_signature``).
        key: The owner's public key to pin; without it the key in the log is used and the
            report says so.
        log_id: The expected log id, if known.
        head_path: The kept head the log must still hold: the log's own head file
            ``<path>.head`` by default, or a copy kept elsewhere (by a witness).
        keep_entries: Also return every entry (else the list is empty).

    Returns:
        The report of a log that verifies, and its entries if asked for.

    Raises:
        IntegrityError: The log was modified, cut, reordered or re-signed, or a file is missing.
    """
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, after the head file is read
    except FileNotFoundError:
        raise IntegrityError("the audit log does not exist; check the path") from None
    except OSError as exc:
        raise IntegrityError(f"the audit log cannot be read ({exc.strerror})") from None
    with stream:
        kept = read_head_file(head_path_for(path) if head_path is None else head_path)
        if kept is None:
            raise IntegrityError(
                "the log's head file is missing, so truncation cannot be ruled out; restore "
                "it from a backup"
                if head_path is None
                else "the kept head file does not exist; check the path"
            )
        try:
            state = replay(
                stream,
                verifier,
                key=key,
                log_id=log_id,
                witness=kept,
                allow_torn=True,
                keep_entries=keep_entries,
            )
        except OSError as exc:
            raise IntegrityError(f"the audit log cannot be read ({exc.strerror})") from None
    if state.head is None:
        raise IntegrityError("the audit log is empty; even a new log holds a signed head")
    check_kept_head(state)
    report = LogReport(
        log_id=state.log_id,
        entries=state.size,
        heads=state.heads,
        head=state.head,
        root=state.frontier.root(),
        key=state.key,
        key_pinned=key is not None,
        torn=state.torn,
    )
    return report, state.entries or []


def check_kept_head(state: Replay) -> None:
    """Check that the log held the kept head given to :func:`replay` as ``witness``.

    Raises:
        IntegrityError: It did not: the log lost its end (or was rewritten).
    """
    if not state.witness_found:
        raise IntegrityError(
            "the log no longer holds its kept signed head: it was cut short (truncated) or "
            "rewritten, or the head file was replaced"
        )
