"""The stream envelopes: ``SiloMessage`` (silo -> hub) and ``HubMessage`` (hub -> silo).

Each envelope is a protobuf ``oneof`` over the messages one side may send; wrapping checks that the
message is one that side sends, and unwrapping refuses an empty envelope (which is also what a
message from a newer fedsql looks like).
"""

from __future__ import annotations

from typing import Any, cast

from fedsql.errors import ProtocolError
from fedsql.transport.codec import from_proto, parse, to_proto
from fedsql.transport.messages import (
    Abort,
    Accepted,
    BudgetQuery,
    BudgetReport,
    Heartbeat,
    Held,
    Hello,
    HubToSilo,
    MaskedUpload,
    QueryRequest,
    Refusal,
    SiloToHub,
    UnmaskRequest,
    UnmaskResponse,
    Welcome,
)
from fedsql.transport.proto import fedsql_pb2 as pb

__all__ = [
    "check_stream_message",
    "decode_hub_message",
    "decode_silo_message",
    "encode_hub_message",
    "encode_silo_message",
    "unwrap_hub_message",
    "unwrap_silo_message",
    "wrap_hub_message",
    "wrap_silo_message",
]

_SILO_FIELDS: dict[type[Any], str] = {
    Hello: "hello",
    MaskedUpload: "masked_upload",
    UnmaskResponse: "unmask_response",
    Refusal: "refusal",
    Accepted: "accepted",
    Held: "held",
    BudgetReport: "budget_report",
    Heartbeat: "heartbeat",
}
_HUB_FIELDS: dict[type[Any], str] = {
    Welcome: "welcome",
    QueryRequest: "query_request",
    UnmaskRequest: "unmask_request",
    Abort: "abort",
    BudgetQuery: "budget_query",
}


def wrap_silo_message(msg: SiloToHub) -> pb.SiloMessage:
    """Put a silo's message in the stream envelope.

    Args:
        msg: A message a silo sends to the hub.

    Returns:
        The ``SiloMessage`` envelope.

    Raises:
        ProtocolError: The message is malformed, or is not one a silo sends.
    """
    field = _SILO_FIELDS.get(type(msg))
    if field is None:
        raise ProtocolError(f"a silo does not send {type(msg).__name__} on its stream")
    envelope = pb.SiloMessage()
    getattr(envelope, field).CopyFrom(to_proto(msg))
    return envelope


def unwrap_silo_message(envelope: pb.SiloMessage) -> SiloToHub:
    """Open a ``SiloMessage`` envelope.

    Args:
        envelope: As received on the stream.

    Returns:
        The silo's message.

    Raises:
        ProtocolError: The envelope is empty (a peer running a newer fedsql may send a message
            this version does not know) or its message is malformed.
    """
    field = envelope.WhichOneof("body")
    if field is None:
        raise ProtocolError(
            "SiloMessage carries no message this fedsql version knows; check that silo and hub "
            "run compatible versions"
        )
    # The envelope's fields are exactly the silo's messages.
    return cast(SiloToHub, from_proto(getattr(envelope, field)))


def wrap_hub_message(msg: HubToSilo) -> pb.HubMessage:
    """Put a hub's message in the stream envelope.

    Args:
        msg: A message the hub sends to a silo.

    Returns:
        The ``HubMessage`` envelope.

    Raises:
        ProtocolError: The message is malformed, or is not one the hub sends.
    """
    field = _HUB_FIELDS.get(type(msg))
    if field is None:
        raise ProtocolError(f"the hub does not send {type(msg).__name__} on a silo's stream")
    envelope = pb.HubMessage()
    getattr(envelope, field).CopyFrom(to_proto(msg))
    return envelope


def unwrap_hub_message(envelope: pb.HubMessage) -> HubToSilo:
    """Open a ``HubMessage`` envelope.

    Args:
        envelope: As received on the stream.

    Returns:
        The hub's message.

    Raises:
        ProtocolError: The envelope is empty (see :func:`unwrap_silo_message`) or its message
            is malformed.
    """
    field = envelope.WhichOneof("body")
    if field is None:
        raise ProtocolError(
            "HubMessage carries no message this fedsql version knows; check that silo and hub "
            "run compatible versions"
        )
    # The envelope's fields are exactly the hub's messages.
    return cast(HubToSilo, from_proto(getattr(envelope, field)))


def encode_silo_message(msg: SiloToHub) -> bytes:
    """Serialize a silo's message in its envelope.

    Args:
        msg: A message a silo sends to the hub.

    Returns:
        The envelope's wire bytes.

    Raises:
        ProtocolError: As :func:`wrap_silo_message`.
    """
    return wrap_silo_message(msg).SerializeToString()


def decode_silo_message(data: bytes) -> SiloToHub:
    """Parse a silo's message from its envelope's wire bytes.

    Args:
        data: Bytes from :func:`encode_silo_message`.

    Returns:
        The silo's message.

    Raises:
        ProtocolError: The bytes are not a valid envelope or its message is malformed.
    """
    return unwrap_silo_message(parse(pb.SiloMessage, data))


def encode_hub_message(msg: HubToSilo) -> bytes:
    """Serialize a hub's message in its envelope.

    Args:
        msg: A message the hub sends to a silo.

    Returns:
        The envelope's wire bytes.

    Raises:
        ProtocolError: As :func:`wrap_hub_message`.
    """
    return wrap_hub_message(msg).SerializeToString()


def decode_hub_message(data: bytes) -> HubToSilo:
    """Parse a hub's message from its envelope's wire bytes.

    Args:
        data: Bytes from :func:`encode_hub_message`.

    Returns:
        The hub's message.

    Raises:
        ProtocolError: The bytes are not a valid envelope or its message is malformed.
    """
    return unwrap_hub_message(parse(pb.HubMessage, data))


def check_stream_message(silo_id: str, msg: SiloToHub) -> None:
    """Check a message against the rules of the stream of silo ``silo_id``.

    A stream carries one Hello, at its start, and every later message names the silo whose stream
    it is.

    Args:
        silo_id: The silo the stream's Hello named.
        msg: A later message on that stream.

    Raises:
        ProtocolError: The message is a second Hello or names another silo.

    >>> check_stream_message("a", Heartbeat(silo_id="b", at_ms=0))
    Traceback (most recent call last):
    ...
    fedsql.errors.ProtocolError: a Heartbeat on the stream of silo a names silo b
    """
    if isinstance(msg, Hello):
        raise ProtocolError(f"silo {silo_id} sent a second Hello; a stream carries one")
    if msg.silo_id != silo_id:
        raise ProtocolError(
            f"a {type(msg).__name__} on the stream of silo {silo_id} names silo {msg.silo_id}"
        )
