"""Audit records: stored text is escaped and printable, entries have exactly one encoding."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsql.audit.records import (
    MAX_SQL_CHARS,
    MAX_TEXT_CHARS,
    AuditRecord,
    decode_entry,
    encode_entry,
    escape_text,
    format_micro,
    release_digest,
)

PREV = bytes(range(32))


def unescape(text: str) -> str:
    """The inverse of escape_text (test oracle for injectivity)."""
    simple = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        kind = text[i + 1]
        if kind in simple:
            out.append(simple[kind])
            i += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}[kind]
        out.append(chr(int(text[i + 2 : i + 2 + width], 16)))
        i += 2 + width
    return "".join(out)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("SELECT 1", "SELECT 1"),
        ("naïve 日本 🙂", "naïve 日本 🙂"),
        ("a\u202eb", "a\\u202eb"),  # right-to-left override
        ("a\u2066b\u2069", "a\\u2066b\\u2069"),  # isolates
        ("a\u200bb", "a\\u200bb"),  # zero-width space
        ("x\x1b[2Jy", "x\\x1b[2Jy"),  # terminal escape
        ("x\x85y\x7f", "x\\x85y\\x7f"),  # C1 next-line, DEL
        ("l1\nl2\r\tz", "l1\\nl2\\r\\tz"),
        ("a\u2028b", "a\\u2028b"),  # line separator
        ("a\u00a0b", "a\\xa0b"),  # no-break space
        ("back\\slash", "back\\\\slash"),
        ("\ud800", "\\ud800"),  # a lone surrogate
        ("\U000e0041", "\\U000e0041"),  # a tag character
    ],
)
def test_escape_examples(raw: str, stored: str) -> None:
    assert escape_text(raw) == stored
    assert unescape(stored) == raw


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=60))
def test_escaped_text_is_printable_and_reversible(text: str) -> None:
    stored = escape_text(text)
    assert stored.isprintable()
    assert unescape(stored) == text
    if text.isprintable() and "\\" not in text:
        assert stored == text


def test_a_record_is_stored_escaped_and_cut() -> None:
    record = AuditRecord(
        event="request",
        analyst="eve\u202e",
        sql="SELECT 1 -- " + "x" * (MAX_SQL_CHARS + 10),
        reason="r" * (MAX_TEXT_CHARS + 1),
        params_json='["\\u0000"]',
    )
    stored = record.stored()
    assert stored.analyst == "eve\\u202e"
    assert len(stored.sql) == MAX_SQL_CHARS
    digest = hashlib.sha256(record.sql.encode()).hexdigest()
    assert stored.sql.endswith(f"[cut: {len(record.sql)} characters, sha256 {digest}]")
    assert len(stored.reason) == MAX_TEXT_CHARS
    assert stored.params_json == '["\\\\u0000"]'
    assert stored.event == "request"


@pytest.mark.parametrize(
    "changes",
    [
        {"event": "Request"},
        {"event": ""},
        {"event": "x" * 40},
        {"decision": "ok go"},
        {"epsilon_micro": -1},
        {"epsilon_micro": True},
        {"epsilon_micro": 2**63},
    ],
)
def test_malformed_records_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AuditRecord(**{"event": "request", **changes})  # type: ignore[arg-type]


def test_helpers() -> None:
    assert release_digest(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert format_micro(10_000_000) == "10"
    assert format_micro(1_234_567) == "1.234567"
    assert AuditRecord(event="request", epsilon_micro=500_000).epsilon == "0.5"


def test_an_entry_has_one_canonical_line() -> None:
    record = AuditRecord(event="request", analyst="alice", sql="SELECT é", epsilon_micro=5).stored()
    line = encode_entry(3, 1000, PREV, record)
    assert line.isascii() and b" " not in line.replace(b"SELECT ", b"")
    entry = decode_entry(line, json.loads(line))
    assert (entry.seq, entry.at_ms, entry.prev, entry.record) == (3, 1000, PREV, record)
    with pytest.raises(ValueError):
        encode_entry(0, 0, PREV, AuditRecord(event="request", sql="a\nb"))  # not escaped


def _variants(line: bytes) -> list[bytes]:
    obj = json.loads(line)
    out = [
        json.dumps(obj, sort_keys=True).encode(),  # spaces
        json.dumps(dict(reversed(obj.items())), separators=(",", ":")).encode(),  # key order
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        line.replace(obj["prev"].encode(), obj["prev"].upper().encode()),
        line[:-1] + b',"extra":1}',
        re.sub(rb',"reason":"[^"]*"', b"", line),
        line.replace(b'"epsilon_micro":5', b'"epsilon_micro":true'),
        line.replace(b'"epsilon_micro":5', b'"epsilon_micro":5.0'),
        line.replace(b'"seq":3', b'"seq":-3'),
        line.replace(b"SELECT", b"SELECT\\n"),
    ]
    return [v for v in out if v != line]


def test_any_other_encoding_of_an_entry_is_refused() -> None:
    record = AuditRecord(event="request", analyst="alice", sql="SELECT é", epsilon_micro=5)
    line = encode_entry(3, 1000, PREV, record.stored())
    variants = _variants(line)
    assert len(variants) == 10
    for variant in variants:
        with pytest.raises(ValueError):
            decode_entry(variant, json.loads(variant))
