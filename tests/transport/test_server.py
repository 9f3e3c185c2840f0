"""The hub's gRPC server: stream rules, status codes on the wire, capacity, binding and limits.

Several tests speak to the server through the raw generated stubs, as a misbehaving or foreign
client would, to see exactly what the server puts on the wire.
"""

from __future__ import annotations

import queue
import socket
from collections.abc import Iterator

import grpc
import pytest

from fedsql.errors import (
    BudgetExhausted,
    Error,
    InterfaceError,
    InternalError,
    OperationalError,
    ProtocolError,
    QueryRejected,
    SiloRefused,
    UnknownObject,
)
from fedsql.transport import (
    AnalystClient,
    ExecuteReply,
    ExecuteRequest,
    Heartbeat,
    HubConnection,
    MaskedUpload,
    connect_to_hub,
    start_hub_server,
)
from fedsql.transport.codec import to_proto
from fedsql.transport.envelope import wrap_silo_message
from fedsql.transport.proto import fedsql_pb2 as pb
from fedsql.transport.proto import fedsql_pb2_grpc as pb_grpc
from fedsql.transport.status import ERROR_ARGS_KEY, ERROR_CLASS_KEY

from .toyhub import WAIT_S, Inbox, ToyHub, make_hello, make_query, make_upload, qid_for


@pytest.fixture
def hub() -> ToyHub:
    return ToyHub()


@pytest.fixture
def address(hub: ToyHub) -> Iterator[str]:
    server = start_hub_server(hub, "127.0.0.1:0", max_workers=8)
    yield server.address
    server.stop(0.5)


class RawStream:
    """A Connect stream driven by hand: put envelopes in, read the hub's replies and status."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.outbound: queue.SimpleQueue[pb.SiloMessage | None] = queue.SimpleQueue()
        self.call = pb_grpc.CoordinatorStub(self.channel).Connect(self._requests())

    def _requests(self) -> Iterator[pb.SiloMessage]:
        while (item := self.outbound.get()) is not None:
            yield item

    def send(self, envelope: pb.SiloMessage) -> None:
        self.outbound.put(envelope)

    def replies_until_end(self) -> tuple[list[pb.HubMessage], grpc.RpcError | None]:
        replies: list[pb.HubMessage] = []
        try:
            for reply in self.call:
                replies.append(reply)
        except grpc.RpcError as err:
            return replies, err
        finally:
            self.outbound.put(None)
        return replies, None

    def close(self) -> None:
        self.outbound.put(None)
        self.call.cancel()
        self.channel.close()


def error_class(err: grpc.RpcError) -> str | None:
    for key, value in err.trailing_metadata() or ():
        if key == ERROR_CLASS_KEY:
            return str(value)
    return None


def test_a_stream_that_does_not_start_with_hello_is_refused(address: str, hub: ToyHub) -> None:
    raw = RawStream(address)
    raw.send(wrap_silo_message(Heartbeat(silo_id="a", at_ms=1)))

    replies, err = raw.replies_until_end()
    raw.close()

    assert replies == []
    assert err is not None
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_class(err) == "ProtocolError"
    assert "must start with a Hello" in err.details()
    assert hub.events == []


def test_an_empty_envelope_is_refused(address: str) -> None:
    raw = RawStream(address)
    raw.send(pb.SiloMessage())

    _, err = raw.replies_until_end()
    raw.close()

    assert err is not None
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "compatible versions" in err.details()


def test_a_second_hello_closes_the_stream_and_reports_one_disconnect(
    address: str, hub: ToyHub
) -> None:
    raw = RawStream(address)
    raw.send(wrap_silo_message(make_hello("a")))
    raw.send(wrap_silo_message(make_hello("a")))

    replies, err = raw.replies_until_end()
    raw.close()

    assert [r.WhichOneof("body") for r in replies] == ["welcome"]
    assert err is not None
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "second Hello" in err.details()
    hub.wait_for(lambda: ("disconnect", "a") in hub.events)
    assert hub.count("disconnect", "a") == 1


def test_a_malformed_message_closes_the_stream_before_the_hub_sees_it(
    address: str, hub: ToyHub
) -> None:
    good = make_upload(make_query(qid_for("q"), ("a",)), "a")
    bad = to_proto(good)
    assert isinstance(bad, pb.MaskedUpload)
    bad.qid = b"\x01\x02\x03"
    raw = RawStream(address)
    raw.send(wrap_silo_message(make_hello("a")))
    raw.send(pb.SiloMessage(masked_upload=bad))

    _, err = raw.replies_until_end()
    raw.close()

    assert err is not None
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "MaskedUpload: qid must be 16 bytes, not 3" in err.details()
    hub.wait_for(lambda: ("disconnect", "a") in hub.events)
    assert hub.messages == []


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ProtocolError("different contract"), grpc.StatusCode.INVALID_ARGUMENT),
        (QueryRejected("bad hello"), grpc.StatusCode.INVALID_ARGUMENT),
        (OperationalError("not enrolled"), grpc.StatusCode.PERMISSION_DENIED),
        (SiloRefused("bad", "banned"), grpc.StatusCode.PERMISSION_DENIED),
        (RuntimeError("hub bug"), grpc.StatusCode.INTERNAL),
    ],
    ids=lambda value: getattr(value, "name", type(value).__name__),
)
def test_refusals_carry_the_documented_status_code(
    exc: BaseException, code: grpc.StatusCode
) -> None:
    with start_hub_server(ToyHub(refuse={"bad": exc})) as server:
        raw = RawStream(server.address)
        raw.send(wrap_silo_message(make_hello("bad")))
        _, err = raw.replies_until_end()
        raw.close()

    assert err is not None
    assert err.code() == code
    expected_class = type(exc).__name__ if isinstance(exc, Error) else "InternalError"
    assert error_class(err) == expected_class


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (BudgetExhausted("over budget"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (UnknownObject("no table x"), grpc.StatusCode.NOT_FOUND),
        (QueryRejected("no joins"), grpc.StatusCode.INVALID_ARGUMENT),
        (SiloRefused("a", "no"), grpc.StatusCode.FAILED_PRECONDITION),
        (InternalError("oops"), grpc.StatusCode.INTERNAL),
        (ValueError("row 3"), grpc.StatusCode.INTERNAL),
    ],
    ids=lambda value: getattr(value, "name", type(value).__name__),
)
def test_execute_errors_carry_status_code_and_class_on_the_wire(
    exc: BaseException, code: grpc.StatusCode
) -> None:
    def fail(req: ExecuteRequest) -> ExecuteReply:
        raise exc

    with start_hub_server(ToyHub(execute_fn=fail)) as server:
        channel = grpc.insecure_channel(server.address)
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.AnalystStub(channel).Execute(pb.ExecuteRequest(sql="x"), timeout=WAIT_S)
        channel.close()

    err = info.value
    assert err.code() == code
    assert error_class(err) == (type(exc).__name__ if isinstance(exc, Error) else "InternalError")
    metadata = dict(err.trailing_metadata())
    assert (ERROR_ARGS_KEY in metadata) == isinstance(exc, SiloRefused)


def test_a_handler_returning_the_wrong_type_is_an_internal_error() -> None:
    def wrong(req: ExecuteRequest) -> ExecuteReply:
        return "rows"  # type: ignore[return-value]

    with start_hub_server(ToyHub(execute_fn=wrong)) as server:
        client = AnalystClient(server.address, timeout_s=WAIT_S)
        with pytest.raises(InternalError, match="failed to encode its ExecuteReply"):
            client.execute(ExecuteRequest(sql="SELECT 1"))
        client.close()


def test_an_invalid_welcome_refuses_the_silo_and_still_reports_the_disconnect() -> None:
    class BadWelcome(ToyHub):
        def on_connect(self, hello, channel):  # type: ignore[no-untyped-def]
            welcome = super().on_connect(hello, channel)
            return welcome.__class__(welcome.fed_id, -1, 0, ())  # negative roster version

    hub = BadWelcome()
    with start_hub_server(hub) as server:
        conn = connect_to_hub(server.address, make_hello("a"), Inbox())
        with pytest.raises(InternalError, match="failed to welcome"):
            conn.welcome(WAIT_S)
        hub.wait_for(lambda: ("disconnect", "a") in hub.events)
        conn.close()
    assert hub.count("disconnect", "a") == 1


def test_streams_beyond_capacity_are_refused_and_analyst_calls_still_served() -> None:
    hub = ToyHub()
    with start_hub_server(hub, max_workers=2) as server:  # one stream, one worker kept back
        first = connect_to_hub(server.address, make_hello("a"), Inbox())
        first.welcome(WAIT_S)
        second = connect_to_hub(server.address, make_hello("b"), Inbox())

        with pytest.raises(OperationalError, match="max_workers"):
            second.welcome(WAIT_S)
        client = AnalystClient(server.address, timeout_s=WAIT_S)
        assert [s.silo_id for s in client.status().silos] == ["a"]
        assert server.open_streams == 1

        first.close()
        hub.wait_for(lambda: ("disconnect", "a") in hub.events)
        third = connect_to_hub(server.address, make_hello("c"), Inbox())
        third.welcome(WAIT_S)  # the slot was freed
        third.close()
        client.close()


def test_messages_far_above_grpcs_default_limit_cross_both_ways() -> None:
    big = ExecuteReply(result_ipc=b"\x07" * (9 * 1024 * 1024))
    hub = ToyHub(execute_fn=lambda req: big)
    with start_hub_server(hub) as server:
        conn = connect_to_hub(server.address, make_hello("a"), Inbox())
        conn.welcome(WAIT_S)
        request = make_query(qid_for("big"), ("a",))
        upload = make_upload(request, "a")
        upload = MaskedUpload(
            qid=upload.qid,
            silo_id="a",
            hq=upload.hq,
            y=b"\x01" * (8 * 1024 * 1024),
            commit=upload.commit,
            shares=(),
        )
        conn.send(upload)
        hub.wait_for(lambda: len(hub.messages) == 1)
        client = AnalystClient(server.address, timeout_s=WAIT_S)
        reply = client.execute(ExecuteRequest(sql="SELECT 1"))
        client.close()
        conn.close()

    assert hub.messages[0][1] == upload
    assert reply == big


def test_listening_on_a_port_in_use_raises_operational_error() -> None:
    with (
        start_hub_server(ToyHub()) as server,
        pytest.raises(OperationalError, match="cannot listen"),
    ):
        start_hub_server(ToyHub(), f"127.0.0.1:{server.port}")


def test_the_server_reports_its_real_port_and_address() -> None:
    with start_hub_server(ToyHub(), "127.0.0.1:0") as server:
        assert server.port > 0
        assert server.address == f"127.0.0.1:{server.port}"
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S):
            pass


def test_too_few_workers_is_an_interface_error() -> None:
    with pytest.raises(InterfaceError, match="max_workers"):
        start_hub_server(ToyHub(), max_workers=1)


def test_stop_is_idempotent_and_waits_for_disconnects() -> None:
    hub = ToyHub()
    server = start_hub_server(hub)
    conns: list[HubConnection] = [
        connect_to_hub(server.address, make_hello(s), Inbox()) for s in ("a", "b")
    ]
    for conn in conns:
        conn.welcome(WAIT_S)

    server.stop(0.5)
    server.stop(0.5)

    assert hub.count("disconnect", "a") == hub.count("disconnect", "b") == 1
    assert server.wait_for_termination(0)
    for conn in conns:
        conn.close()
