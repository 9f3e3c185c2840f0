"""The gRPC clients: a silo's stream and the analyst's calls, against real servers on loopback.

Hubs that misbehave are real gRPC servers with hand-written servicers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from fedsql.errors import InterfaceError, OperationalError, ProtocolError
from fedsql.transport import (
    Abort,
    AnalystClient,
    HubConnection,
    HubToSilo,
    connect_to_hub,
    start_hub_server,
)
from fedsql.transport.envelope import wrap_hub_message
from fedsql.transport.proto import fedsql_pb2 as pb
from fedsql.transport.proto import fedsql_pb2_grpc as pb_grpc

from .toyhub import FED_ID, WAIT_S, Inbox, ToyHub, make_hello, qid_for

Script = Callable[[Iterator[pb.SiloMessage], grpc.ServicerContext], Iterator[pb.HubMessage]]


class ScriptedHub(pb_grpc.CoordinatorServicer):
    """A Coordinator that plays a fixed script on every stream."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def Connect(
        self, request_iterator: Iterator[pb.SiloMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.HubMessage]:
        yield from self.script(request_iterator, context)


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], str]]:
    servers: list[grpc.Server] = []

    def start(script: Script) -> str:
        server = grpc.server(ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_CoordinatorServicer_to_server(ScriptedHub(script), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0).wait()


def welcome_envelope() -> pb.HubMessage:
    from fedsql.transport.messages import Welcome

    return wrap_hub_message(Welcome(fed_id=FED_ID, roster_version=1, epoch=0, roster=()))


def free_address() -> str:
    """An address nothing listens on: that of a server that was just stopped."""
    server = start_hub_server(ToyHub())
    address = server.address
    server.stop(0)
    return address


def test_an_unreachable_hub_gives_operational_error_naming_it() -> None:
    address = free_address()

    client = AnalystClient(address, timeout_s=WAIT_S)
    with pytest.raises(OperationalError, match=f"^hub unreachable at {address}$"):
        client.status()
    client.close()

    conn = connect_to_hub(address, make_hello("a"), Inbox())
    with pytest.raises(OperationalError, match=f"^hub unreachable at {address}$"):
        conn.welcome(WAIT_S)
    assert conn.closed
    conn.close()


def test_a_hub_that_answers_hello_with_something_else_is_a_protocol_error(
    scripted: Callable[[Script], str],
) -> None:
    def script(
        requests: Iterator[pb.SiloMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.HubMessage]:
        next(requests)
        yield wrap_hub_message(Abort(qid=qid_for("q"), reason="no welcome"))
        yield welcome_envelope()

    conn = connect_to_hub(scripted(script), make_hello("a"), Inbox())
    with pytest.raises(ProtocolError, match="not a Welcome"):
        conn.welcome(WAIT_S)
    assert conn.wait_closed(WAIT_S)
    conn.close()


def test_an_empty_envelope_from_the_hub_ends_the_stream(scripted: Callable[[Script], str]) -> None:
    release = threading.Event()

    def script(
        requests: Iterator[pb.SiloMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.HubMessage]:
        next(requests)
        yield welcome_envelope()
        yield pb.HubMessage()
        release.wait(WAIT_S)

    inbox = Inbox()
    conn = connect_to_hub(scripted(script), make_hello("a"), inbox)
    conn.welcome(WAIT_S)
    assert conn.wait_closed(WAIT_S)
    release.set()

    assert isinstance(conn.error, ProtocolError)
    assert inbox.items == []
    conn.close()


def test_losing_the_hub_after_welcome_is_reported_as_a_lost_connection(
    scripted: Callable[[Script], str],
) -> None:
    def script(
        requests: Iterator[pb.SiloMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.HubMessage]:
        next(requests)
        yield welcome_envelope()
        context.abort(grpc.StatusCode.UNAVAILABLE, "going away")

    address = scripted(script)
    conn = connect_to_hub(address, make_hello("a"), Inbox())
    conn.welcome(WAIT_S)

    assert conn.wait_closed(WAIT_S)
    assert isinstance(conn.error, OperationalError)
    assert str(conn.error) == f"lost the connection to the hub at {address}"
    conn.close()


def test_close_returns_promptly_when_the_hub_never_answers(
    scripted: Callable[[Script], str],
) -> None:
    release = threading.Event()

    def script(
        requests: Iterator[pb.SiloMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.HubMessage]:
        release.wait(WAIT_S)
        return
        yield  # a generator that sends nothing

    conn = connect_to_hub(scripted(script), make_hello("a"), Inbox())
    started = time.monotonic()
    conn.close(grace=0.2)
    release.set()

    assert time.monotonic() - started < 3.0
    assert conn.closed
    assert conn.error is None


def test_close_from_inside_on_message_does_not_deadlock() -> None:
    hub = ToyHub()
    with start_hub_server(hub) as server:
        done = threading.Event()
        holder: list[HubConnection] = []

        def on_message(msg: HubToSilo) -> None:
            holder[0].close()
            done.set()

        conn = connect_to_hub(server.address, make_hello("a"), on_message)
        holder.append(conn)
        conn.welcome(WAIT_S)
        hub.channels["a"].send(Abort(qid=qid_for("q"), reason="bye"))

        assert done.wait(WAIT_S)
        assert conn.wait_closed(WAIT_S)
        hub.wait_for(lambda: ("disconnect", "a") in hub.events)


def test_a_malformed_hello_is_refused_before_dialling() -> None:
    hello = make_hello("a")
    bad = hello.__class__(**{**hello.__dict__, "x25519_public": b"short"})

    with pytest.raises(ProtocolError, match="x25519_public must be 32 bytes"):
        connect_to_hub("127.0.0.1:1", bad, Inbox())


def test_an_analyst_client_needs_a_positive_timeout() -> None:
    with pytest.raises(InterfaceError, match="timeout_s"):
        AnalystClient("127.0.0.1:1", timeout_s=0)


def test_the_analyst_client_closes_as_a_context_manager() -> None:
    with start_hub_server(ToyHub()) as server:
        with AnalystClient(server.address, timeout_s=WAIT_S) as client:
            assert client.status().fed_id == FED_ID
        with pytest.raises(InterfaceError, match="closed"):
            client.status()
