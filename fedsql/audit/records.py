"""What one audit entry says, and its one canonical line of JSON (the bytes the tree hashes).

An entry records an event at a silo or the hub: a request received and decided, a release, an
approval, a policy change. It holds who asked (analyst), which query (qid, plan hash, SQL and
parameters), the decision and its reason, the epsilon charged and a digest of what was
released -- never a data value: there is no field for one, and a release is recorded only by
its SHA-256.

Text is stored escaped: every character that is not printable (C0 and C1 controls, line and
paragraph separators, bidirectional and other format characters such as U+202E, unassigned
and private-use code points, spaces other than U+0020) is written as ``\\xNN``, ``\\uNNNN`` or
``\\UNNNNNNNN`` and a backslash as ``\\\\``, so a stored SQL text cannot rewrite a terminal or
hide what it says. Very long text is cut and marked with the SHA-256 of the whole.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "MAX_TEXT_CHARS",
    "AuditEntry",
    "AuditRecord",
    "canonical_json",
    "decode_entry",
    "encode_entry",
    "escape_text",
    "format_micro",
    "release_digest",
]

#: Longest stored text per field, in characters after escaping (SQL gets more room).
MAX_TEXT_CHARS = 4096
MAX_SQL_CHARS = 65536

#: ``type`` of an entry line.
ENTRY_TYPE = "entry"

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_text(text: str) -> str:
    r"""``text`` with every non-printable character and backslash written as an escape.

    The mapping is injective (a backslash is doubled), keeps printable text (any script)
    unchanged, and its result is printable.

    Args:
        text: Any string, including lone surrogates.

    Returns:
        The escaped string.

    >>> escape_text("SELECT 1 -- ok")
    'SELECT 1 -- ok'
    >>> print(escape_text("a\u202eb\nc\\d\x1b[2J"))
    a\u202eb\nc\\d\x1b[2J
    """
    if text.isprintable() and "\\" not in text:
        return text
    out: list[str] = []
    for ch in text:
        short = _SHORT_ESCAPES.get(ch)
        if short is not None:
            out.append(short)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    return "".join(out)


def _stored(text: str, limit: int) -> str:
    """``text`` escaped and, past ``limit`` characters, cut and marked with its full digest."""
    escaped = escape_text(text)
    if len(escaped) <= limit:
        return escaped
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    marker = f"...[cut: {len(text)} characters, sha256 {digest}]"
    return escaped[: limit - len(marker)] + marker


def release_digest(payload: bytes) -> str:
    """The digest recorded for a release: SHA-256 (hex) of exactly the bytes that left.

    Args:
        payload: The released bytes (a silo's masked upload, the hub's answer).

    Returns:
        64 hex digits.

    >>> release_digest(b"")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(payload).hexdigest()


def format_micro(micro: int) -> str:
    """An amount in micro-epsilon as an exact decimal epsilon.

    >>> format_micro(1_500_000), format_micro(0), format_micro(1)
    ('1.5', '0', '0.000001')
    """
    whole, frac = divmod(micro, 1_000_000)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class AuditRecord:
    """One event to append to an audit log.

    Conventional ``event`` values: ``request`` (a query received and decided), ``release``
    (a result or upload left), ``failure`` (execution failed after the charge), ``approval``
    (an operator approved or denied a held query), ``policy`` (the policy in force changed or
    became invalid), ``recovery`` (the log repaired itself after a crash).

    Attributes:
        event: What happened: a short lower-case name.
        actor: Who records it: ``silo:<id>`` or ``hub``.
        analyst: Who asked.
        qid: The query id (hex).
        plan_hash: The plan's SHA-256 (hex).
        sql: The analyst's SQL text (stored escaped).
        params_json: The query's parameters as JSON (stored escaped).
        decision: ``admitted``, ``refused``, ``held``, ``approved``, ``denied``, ``failed``,
            ``released``, ...: a short lower-case name, or empty.
        reason: Why (an error message; never data values).
        epsilon_micro: Epsilon charged by this event, in micro-epsilon (0 if none).
        release_digest: SHA-256 (hex) of what was released, see :func:`release_digest`.
    """

    event: str
    actor: str = ""
    analyst: str = ""
    qid: str = ""
    plan_hash: str = ""
    sql: str = ""
    params_json: str = ""
    decision: str = ""
    reason: str = ""
    epsilon_micro: int = 0
    release_digest: str = ""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.event):
            raise ValueError("an audit event is a short lower-case name such as 'request'")
        if self.decision and not _NAME.fullmatch(self.decision):
            raise ValueError("an audit decision is a short lower-case name such as 'admitted'")
        if isinstance(self.epsilon_micro, bool) or not isinstance(self.epsilon_micro, int):
            raise ValueError("epsilon_micro must be an integer number of micro-epsilon")
        if not 0 <= self.epsilon_micro < 2**63:
            raise ValueError("epsilon_micro must be a non-negative 63-bit integer")

    @property
    def epsilon(self) -> str:
        """The epsilon charged, as an exact decimal string."""
        return format_micro(self.epsilon_micro)

    def stored(self) -> AuditRecord:
        """This record as stored: every text field escaped and cut to its limit."""
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and f.name not in ("event", "decision"):
                value = _stored(value, MAX_SQL_CHARS if f.name == "sql" else MAX_TEXT_CHARS)
            values[f.name] = value
        return AuditRecord(**values)


#: Record fields in the order they are declared.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AuditRecord))
#: Keys of an entry line: the record's fields and the log's own.
ENTRY_KEYS: frozenset[str] = frozenset({"type", "seq", "at", "prev", *RECORD_FIELDS})


@dataclass(frozen=True)
class AuditEntry:
    """An entry as read back from a log.

    Attributes:
        seq: Its position in the log (0 first).
        at_ms: When it was appended, Unix milliseconds (never decreasing along the log).
        prev: The tree root of every entry before it (chains each entry to the whole past).
        record: What it says (text fields as stored, escaped).
        line: Its exact bytes in the log (the leaf the tree hashes).
    """

    seq: int
    at_ms: int
    prev: bytes
    record: AuditRecord
    line: bytes


def canonical_json(obj: dict[str, Any]) -> bytes:
    """The one encoding of a JSON object the log accepts: sorted keys, no spaces, ASCII only.

    >>> canonical_json({"b": 1, "a": "é"})
    b'{"a":"\\\\u00e9","b":1}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def encode_entry(seq: int, at_ms: int, prev: bytes, stored: AuditRecord) -> bytes:
    """The line (without newline) of an entry: canonical JSON of a stored record and its place.

    Args:
        seq: Its position in the log.
        at_ms: Its time, Unix milliseconds.
        prev: The root of the tree before it.
        stored: The record as stored (see :meth:`AuditRecord.stored`).

    Returns:
        The entry's bytes, which are also its Merkle leaf.

    Raises:
        ValueError: A text field of ``stored`` is not printable (it was not escaped).
    """
    obj: dict[str, Any] = {}
    for name in RECORD_FIELDS:
        value = getattr(stored, name)
        if isinstance(value, str) and not value.isprintable():
            raise ValueError(f"{name} is not stored escaped")
        obj[name] = value
    obj.update(type=ENTRY_TYPE, seq=seq, at=at_ms, prev=prev.hex())
    return canonical_json(obj)


def _integer(obj: dict[str, Any], key: str) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} is not a non-negative integer")
    return value


def decode_entry(line: bytes, obj: dict[str, Any]) -> AuditEntry:
    """Check the parsed JSON ``obj`` of an entry ``line`` and build the entry.

    Args:
        line: The line's exact bytes.
        obj: ``json.loads(line)``.

    Returns:
        The entry.

    Raises:
        ValueError: The object has missing, extra or mistyped keys, unescaped text, or is not
            in canonical form.
    """
    if set(obj) != ENTRY_KEYS:
        raise ValueError("the entry has missing or unexpected keys")
    for name in RECORD_FIELDS:
        if name != "epsilon_micro" and not isinstance(obj[name], str):
            raise ValueError(f"{name} is not a string")
    prev_hex = obj["prev"]
    if not isinstance(prev_hex, str) or not re.fullmatch(r"[0-9a-f]{64}", prev_hex):
        raise ValueError("prev is not a hash")
    entry = AuditEntry(
        seq=_integer(obj, "seq"),
        at_ms=_integer(obj, "at"),
        prev=bytes.fromhex(prev_hex),
        record=AuditRecord(**{name: obj[name] for name in RECORD_FIELDS}),
        line=bytes(line),
    )
    if encode_entry(entry.seq, entry.at_ms, entry.prev, entry.record) != entry.line:
        raise ValueError("the entry is not in canonical form")
    return entry
