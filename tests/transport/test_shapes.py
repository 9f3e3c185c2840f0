"""Malformed messages are refused with a message naming the message, the field and the rule."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from fedsql.errors import ProtocolError
from fedsql.transport import messages as m
from fedsql.transport.shapes import validate

from .toyhub import make_hello, make_query, make_upload, qid_for

QUERY = make_query(qid_for("q"), ("a", "b"))
UPLOAD = make_upload(QUERY, "a")
RESPONSE = m.UnmaskResponse(
    qid=QUERY.qid,
    silo_id="a",
    request_digest=bytes(32),
    seed_shares=(("b", bytes(66)),),
    mask_keys=(("c", bytes(16)),),
)
UNMASK = m.UnmaskRequest(
    qid=QUERY.qid, hq=bytes(32), survivors=("a", "b"), dropped=("c",), forwarded=(("b", b"ct"),)
)
WELCOME = m.Welcome(
    fed_id="f",
    roster_version=1,
    epoch=0,
    roster=(m.RosterEntry("a", 1, bytes(32)), m.RosterEntry("b", 2, bytes(32))),
)

CASES: list[tuple[str, Any, str]] = [
    ("hello id", replace(make_hello("a"), silo_id=""), "Hello: silo_id is empty"),
    ("hello key", replace(make_hello("a"), x25519_public=b"k"), "x25519_public must be 32 bytes"),
    (
        "hello tables",
        replace(make_hello("a"), shared=(("t", ("x",)), ("t", ("y",)))),
        "shared must name each table once",
    ),
    ("upload qid", replace(UPLOAD, qid=bytes(15)), "MaskedUpload: qid must be 16 bytes, not 15"),
    ("upload hq", replace(UPLOAD, hq=bytes(31)), "hq must be 32 bytes"),
    ("upload y", replace(UPLOAD, y=bytes(12)), "y must be a non-empty multiple of 8 bytes"),
    ("upload empty y", replace(UPLOAD, y=b""), "y must be a non-empty multiple of 8 bytes"),
    ("upload commit", replace(UPLOAD, commit=bytes(33)), "commit must be 32 bytes"),
    (
        "upload shares",
        replace(UPLOAD, shares=(("b", b"1"), ("b", b"2"))),
        "shares names silo b twice",
    ),
    ("upload signature", replace(UPLOAD, signature=bytes(10)), "signature must be empty or 64"),
    ("response digest", replace(RESPONSE, request_digest=b""), "request_digest must be 32 bytes"),
    (
        "response mask key",
        replace(RESPONSE, mask_keys=(("c", bytes(32)),)),
        "mask_keys for silo c must be 16 bytes, not 32",
    ),
    ("response owner", replace(RESPONSE, seed_shares=(("", b"s"),)), "seed_shares holds an empty"),
    ("response extra", replace(RESPONSE, extra=bytes(7)), "extra must be a multiple of 8 bytes"),
    ("refusal id", m.Refusal(qid=QUERY.qid, silo_id="", code="c", reason="r"), "silo_id is empty"),
    ("accepted qid", m.Accepted(qid=b"", silo_id="a", budget_remaining="1"), "qid must be 16"),
    ("held qid", m.Held(qid=b"", silo_id="a", reason="waiting"), "qid must be 16"),
    ("heartbeat id", m.Heartbeat(silo_id="", at_ms=0), "Heartbeat: silo_id is empty"),
    (
        "welcome index",
        replace(WELCOME, roster=(m.RosterEntry("a", 0, bytes(32)),)),
        "roster indices must be distinct and >= 1",
    ),
    (
        "welcome duplicate index",
        replace(
            WELCOME, roster=(m.RosterEntry("a", 1, bytes(32)), m.RosterEntry("b", 1, bytes(32)))
        ),
        "roster indices must be distinct",
    ),
    (
        "welcome duplicate id",
        replace(
            WELCOME, roster=(m.RosterEntry("a", 1, bytes(32)), m.RosterEntry("a", 2, bytes(32)))
        ),
        "roster names silo a twice",
    ),
    (
        "welcome key",
        replace(WELCOME, roster=(m.RosterEntry("a", 1, bytes(8)),)),
        "x25519_public of a must be 32 bytes",
    ),
    ("query cohort", replace(QUERY, cohort=()), "QueryRequest: cohort is empty"),
    ("query cohort twice", replace(QUERY, cohort=("a", "a")), "cohort names silo a twice"),
    (
        "query bound",
        replace(QUERY, encoding=(m.EncodingEntry(math.inf, 0, 1.0), QUERY.encoding[1])),
        "encoding[0].bound must be a finite number >= 0",
    ),
    (
        "query sigma total",
        replace(QUERY, encoding=(QUERY.encoding[0], m.EncodingEntry(1.0, 0, -1.0))),
        "encoding[1].sigma_total must be a finite number >= 0",
    ),
    (
        "query limbs",
        replace(QUERY, encoding=(QUERY.encoding[0], m.EncodingEntry(1.0, 0, 1.0, limbs=0))),
        "encoding[1].limbs must be at least 1",
    ),
    ("query sigma", replace(QUERY, sigma_loc=(math.nan, 1.0)), "sigma_loc[0] must be a finite"),
    ("query measures", replace(QUERY, sigma_loc=(1.0,)), "one entry per measure"),
    ("unmask survivors", replace(UNMASK, survivors=()), "survivors is empty"),
    ("unmask hq", replace(UNMASK, hq=bytes(16)), "UnmaskRequest: hq must be 32 bytes"),
    ("unmask dropped", replace(UNMASK, dropped=("c", "c")), "dropped names silo c twice"),
    ("abort qid", m.Abort(qid=bytes(17), reason="r"), "Abort: qid must be 16 bytes, not 17"),
]


@pytest.mark.parametrize(("msg", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_malformed_message_is_refused_with_a_precise_reason(msg: Any, fragment: str) -> None:
    with pytest.raises(ProtocolError, match=r"^malformed ") as info:
        validate(msg)

    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "msg",
    [
        make_hello("a"),
        UPLOAD,
        RESPONSE,
        UNMASK,
        WELCOME,
        QUERY,
        replace(UPLOAD, signature=bytes(64)),
    ],
    ids=lambda msg: type(msg).__name__,
)
def test_well_formed_messages_pass(msg: Any) -> None:
    validate(msg)


def test_something_that_is_not_a_message_is_refused() -> None:
    with pytest.raises(ProtocolError, match="str is not a transport message"):
        validate("hello")  # type: ignore[arg-type]
