"""The stream envelopes carry exactly the messages each side may send, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from fedsql.errors import ProtocolError
from fedsql.transport import messages as m
from fedsql.transport.envelope import (
    check_stream_message,
    decode_hub_message,
    decode_silo_message,
    encode_hub_message,
    encode_silo_message,
    unwrap_hub_message,
    unwrap_silo_message,
    wrap_hub_message,
    wrap_silo_message,
)
from fedsql.transport.proto import fedsql_pb2 as pb

from .strategies import HUB_MESSAGES, SILO_MESSAGES
from .toyhub import make_hello, qid_for


@settings(max_examples=150, deadline=None)
@given(msg=SILO_MESSAGES)
def test_a_silo_message_round_trips_through_its_envelope(msg: Any) -> None:
    assert unwrap_silo_message(wrap_silo_message(msg)) == msg
    assert decode_silo_message(encode_silo_message(msg)) == msg


@settings(max_examples=150, deadline=None)
@given(msg=HUB_MESSAGES)
def test_a_hub_message_round_trips_through_its_envelope(msg: Any) -> None:
    assert unwrap_hub_message(wrap_hub_message(msg)) == msg
    assert decode_hub_message(encode_hub_message(msg)) == msg


def test_each_envelope_field_holds_the_message_of_that_name() -> None:
    envelope = wrap_silo_message(m.Heartbeat(silo_id="a", at_ms=1))

    assert envelope.WhichOneof("body") == "heartbeat"
    assert wrap_hub_message(m.Abort(qid=qid_for("q"), reason="r")).WhichOneof("body") == "abort"


def test_messages_are_refused_in_the_other_sides_envelope() -> None:
    with pytest.raises(ProtocolError, match="a silo does not send Abort"):
        wrap_silo_message(m.Abort(qid=qid_for("q"), reason="r"))  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="the hub does not send Hello"):
        wrap_hub_message(make_hello("a"))  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="does not send ExecuteRequest"):
        wrap_silo_message(m.ExecuteRequest(sql="x"))  # type: ignore[arg-type]


def test_an_empty_envelope_is_refused() -> None:
    with pytest.raises(ProtocolError, match="compatible versions"):
        unwrap_silo_message(pb.SiloMessage())
    with pytest.raises(ProtocolError, match="compatible versions"):
        decode_hub_message(b"")


def test_a_message_from_a_newer_version_reads_as_an_empty_envelope() -> None:
    # Field 15 of the envelope, length-delimited, as a newer fedsql might add to the oneof.
    newer = b"\x7a\x02\x08\x01"

    with pytest.raises(ProtocolError, match="no message this fedsql version knows"):
        decode_silo_message(newer)


def test_garbage_bytes_are_refused() -> None:
    with pytest.raises(ProtocolError, match="not a valid SiloMessage"):
        decode_silo_message(b"\x0a\xff\xff\xff\xff\x0f")


def test_a_stream_accepts_only_messages_in_its_silos_name() -> None:
    check_stream_message("a", m.Heartbeat(silo_id="a", at_ms=1))
    with pytest.raises(ProtocolError, match="names silo b"):
        check_stream_message("a", m.Accepted(qid=qid_for("q"), silo_id="b", budget_remaining="1"))
    with pytest.raises(ProtocolError, match="second Hello"):
        check_stream_message("a", make_hello("a"))
