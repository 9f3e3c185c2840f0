"""Every transport message survives dataclass -> protobuf -> bytes -> dataclass exactly."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsql.errors import ProtocolError
from fedsql.transport import messages as m
from fedsql.transport.codec import from_bytes, from_proto, parse, to_bytes, to_proto
from fedsql.transport.proto import fedsql_pb2 as pb

from .strategies import MESSAGES
from .toyhub import make_hello, make_query, qid_for

CLASSES = sorted(MESSAGES, key=lambda cls: cls.__name__)


def test_every_message_of_the_union_has_a_strategy() -> None:
    assert set(MESSAGES) == set(m.Message.__args__)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_message_round_trips_exactly_through_protobuf_and_bytes(
    cls: type[Any], data: st.DataObject
) -> None:
    msg = data.draw(MESSAGES[cls])

    proto = to_proto(msg)

    assert type(proto).__name__ == cls.__name__
    assert type(proto).DESCRIPTOR.full_name == f"fedsql.v1.{cls.__name__}"
    assert from_proto(proto) == msg
    assert from_bytes(cls, to_bytes(msg)) == msg


def test_field_values_land_in_the_protobuf_fields_of_the_same_name() -> None:
    request = make_query(qid_for("q"), ("a", "b"))

    proto = to_proto(request)

    assert isinstance(proto, pb.QueryRequest)
    assert proto.qid == request.qid
    assert list(proto.cohort) == ["a", "b"]
    assert [(e.bound, e.frac_bits, e.sigma_total, e.limbs) for e in proto.encoding] == [
        (1.0, 0, 8.0, 1),
        (120.0, 4, 16.5, 2),
    ]
    assert list(proto.sigma_loc) == [4.0, 8.25]
    assert proto.rho_charge == "0.125"


def test_a_hello_keeps_the_order_of_its_shared_tables_and_columns() -> None:
    hello = m.Hello(
        silo_id="a",
        name="A",
        version="1",
        contract_fingerprint="f",
        x25519_public=bytes(32),
        min_group_size=5,
        max_epsilon_per_query="0.5",
        shared=(("visits", ("cost", "date")), ("patients", ("sex", "age"))),
    )

    assert from_bytes(m.Hello, to_bytes(hello)).shared == hello.shared


@pytest.mark.parametrize(
    "msg",
    [
        m.Heartbeat(silo_id="a", at_ms=2**63),
        m.Welcome(fed_id="f", roster_version=-1, epoch=0, roster=()),
        m.RosterEntry("a", 1, bytes(32)),
    ],
    ids=["int64 overflow", "negative uint64", "not a top-level message"],
)
def test_values_that_do_not_fit_the_wire_raise_protocol_error(msg: Any) -> None:
    with pytest.raises(ProtocolError, match=r"cannot encode|not a transport message"):
        to_proto(msg)


def test_bytes_that_are_not_a_message_raise_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not a valid Hello"):
        from_bytes(m.Hello, b"\xff\xff\xff")


def test_from_proto_checks_the_shape_of_what_it_decodes() -> None:
    proto = to_proto(make_hello("a"))
    assert isinstance(proto, pb.Hello)
    proto.x25519_public = b"\x00" * 31

    with pytest.raises(ProtocolError, match="x25519_public must be 32 bytes, not 31"):
        from_proto(proto)


def test_envelopes_are_not_converted_as_plain_messages() -> None:
    with pytest.raises(ProtocolError, match=r"SiloMessage is not a fedsql\.v1 message"):
        from_proto(pb.SiloMessage())


def test_parse_gives_the_class_asked_for() -> None:
    data = pb.Heartbeat(silo_id="a", at_ms=3).SerializeToString()

    proto = parse(pb.Heartbeat, data)

    assert isinstance(proto, pb.Heartbeat)
    assert (proto.silo_id, proto.at_ms) == ("a", 3)
