"""Every transport keeps the contract of fedsql.transport.interfaces: gRPC on loopback, memory."""

from __future__ import annotations

import threading
import time

import pytest

from fedsql import errors
from fedsql.errors import (
    ConfigError,
    Error,
    InterfaceError,
    InternalError,
    OperationalError,
    ProtocolError,
    QueryRejected,
    SiloRefused,
)
from fedsql.transport import (
    Abort,
    ExecuteReply,
    ExecuteRequest,
    Heartbeat,
    HubConnection,
    MaskedUpload,
    QueryRequest,
    SiloStatus,
    Welcome,
)

from .conftest import Serve
from .toyhub import WAIT_S, Inbox, ToyHub, make_hello, make_query, make_upload, qid_for


def test_two_silos_are_welcomed_and_their_uploads_reach_the_hub(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    uploads: dict[str, MaskedUpload] = {}

    def silo(silo_id: str) -> HubConnection:
        def on_message(msg: object) -> None:
            if isinstance(msg, QueryRequest):
                uploads[silo_id] = make_upload(msg, silo_id)
                conn.send(uploads[silo_id])

        conn = fed.connect(make_hello(silo_id), on_message)
        connections.append(conn)
        return conn

    a = silo("clinic-a")
    a_welcome = a.welcome(WAIT_S)
    b = silo("clinic-b")
    b_welcome = b.welcome(WAIT_S)
    assert [e.silo_id for e in a_welcome.roster] == ["clinic-a"]
    assert [(e.silo_id, e.index) for e in b_welcome.roster] == [("clinic-a", 1), ("clinic-b", 2)]

    request = make_query(qid_for("q1"), ("clinic-a", "clinic-b"))
    for silo_id in ("clinic-a", "clinic-b"):
        hub.channels[silo_id].send(request)
    hub.wait_for(lambda: len(hub.messages) == 2)

    assert sorted(hub.messages, key=lambda item: item[0]) == [
        ("clinic-a", uploads["clinic-a"]),
        ("clinic-b", uploads["clinic-b"]),
    ]
    assert len(uploads["clinic-a"].y) == 8 * request.dimension


@pytest.mark.parametrize(
    "exc",
    [
        ProtocolError("silo bad runs a different federation contract than the hub"),
        OperationalError("silo bad is not enrolled in this federation"),
        ConfigError("must be a lower-case id", file="hub.toml", key="silos.bad"),
        SiloRefused("bad", "policy denies every query"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_refused_silo_gets_the_hubs_error_class_and_message(
    serve: Serve, connections: list[HubConnection], exc: Error
) -> None:
    hub = ToyHub(refuse={"bad": exc})
    fed = serve(hub)
    conn = fed.connect(make_hello("bad"), Inbox())
    connections.append(conn)

    with pytest.raises(Error) as info:
        conn.welcome(WAIT_S)

    assert type(info.value) is type(exc)
    assert str(info.value) == str(exc)
    assert conn.wait_closed(WAIT_S)
    assert type(conn.error) is type(exc)
    fed.stop()
    assert hub.events == []  # never connected, so never disconnected


def test_refused_config_and_silo_errors_keep_their_attributes(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub(
        refuse={
            "cfg": ConfigError("must be a lower-case id", file="hub.toml", key="silos.cfg"),
            "sr": SiloRefused("sr", "policy denies every query"),
        }
    )
    fed = serve(hub)
    cfg = fed.connect(make_hello("cfg"), Inbox())
    sr = fed.connect(make_hello("sr"), Inbox())
    connections.extend([cfg, sr])

    with pytest.raises(ConfigError) as config_info:
        cfg.welcome(WAIT_S)
    with pytest.raises(SiloRefused) as refused_info:
        sr.welcome(WAIT_S)

    assert (config_info.value.file, config_info.value.key) == ("hub.toml", "silos.cfg")
    assert config_info.value.reason == "must be a lower-case id"
    assert (refused_info.value.silo, refused_info.value.reason) == (
        "sr",
        "policy denies every query",
    )


def test_disconnect_is_reported_once_when_the_silo_closes(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)
    conn.welcome(WAIT_S)

    conn.close()
    hub.wait_for(lambda: ("disconnect", "a") in hub.events)
    assert conn.closed
    assert conn.error is None
    fed.stop()  # a second report would come now, if at all

    assert hub.count("disconnect", "a") == 1


def test_disconnect_is_reported_once_when_the_hub_closes_the_channel(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)
    conn.welcome(WAIT_S)

    channel = hub.channels["a"]
    channel.send(Abort(qid=qid_for("q"), reason="shutting down"))
    channel.close()

    assert conn.wait_closed(WAIT_S)
    assert conn.error is None
    hub.wait_for(lambda: ("disconnect", "a") in hub.events)
    assert channel.closed
    conn.close()
    fed.stop()
    assert hub.count("disconnect", "a") == 1


def test_stopping_the_hub_ends_every_stream_with_one_disconnect_each(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    conns = [fed.connect(make_hello(s), Inbox()) for s in ("a", "b", "c")]
    connections.extend(conns)
    for conn in conns:
        conn.welcome(WAIT_S)

    fed.stop()

    assert all(conn.wait_closed(WAIT_S) for conn in conns)
    assert sorted(e for e in hub.events if e[0] == "disconnect") == [
        ("disconnect", "a"),
        ("disconnect", "b"),
        ("disconnect", "c"),
    ]


def test_welcome_goes_first_even_when_the_hub_sends_during_on_connect(
    serve: Serve, connections: list[HubConnection]
) -> None:
    early = Abort(qid=qid_for("early"), reason="sent from on_connect")
    hub = ToyHub(on_connect_send=(early,))
    fed = serve(hub)
    inbox = Inbox()
    conn = fed.connect(make_hello("a"), inbox)
    connections.append(conn)

    assert isinstance(conn.welcome(WAIT_S), Welcome)
    assert inbox.wait_for(1) == [early]


def test_later_welcomes_reach_on_message(serve: Serve, connections: list[HubConnection]) -> None:
    hub = ToyHub()
    fed = serve(hub)
    inbox = Inbox()
    conn = fed.connect(make_hello("a"), inbox)
    connections.append(conn)
    first = conn.welcome(WAIT_S)

    newer = Welcome(fed_id=first.fed_id, roster_version=2, epoch=1, roster=first.roster)
    hub.channels["a"].send(newer)

    assert inbox.wait_for(1) == [newer]


def test_messages_arrive_in_the_order_sent_both_ways(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    inbox = Inbox()
    conn = fed.connect(make_hello("a"), inbox)
    connections.append(conn)
    conn.welcome(WAIT_S)

    for i in range(50):
        conn.send(Heartbeat(silo_id="a", at_ms=i))
        hub.channels["a"].send(Abort(qid=qid_for(str(i)), reason=str(i)))

    hub.wait_for(lambda: len(hub.messages) == 50)
    assert [msg.at_ms for _, msg in hub.messages] == list(range(50))  # type: ignore[union-attr]
    got = inbox.wait_for(50)
    assert [msg.reason for msg in got] == [str(i) for i in range(50)]  # type: ignore[union-attr]


def test_messages_of_one_silo_are_handled_on_one_thread(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)
    conn.welcome(WAIT_S)

    for i in range(20):
        conn.send(Heartbeat(silo_id="a", at_ms=i))
    hub.wait_for(lambda: len(hub.messages) == 20)

    assert len(hub.on_message_threads) == 1


def test_queued_messages_are_delivered_before_close_completes(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)
    conn.welcome(WAIT_S)

    for i in range(20):
        conn.send(Heartbeat(silo_id="a", at_ms=i))
    conn.close(grace=WAIT_S)

    hub.wait_for(lambda: ("disconnect", "a") in hub.events)
    assert len(hub.messages) == 20
    assert hub.events[-1] == ("disconnect", "a")  # after the last message


def test_an_exception_in_the_silos_callback_does_not_end_the_stream(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    seen: list[object] = []

    def on_message(msg: object) -> None:
        seen.append(msg)
        if len(seen) == 1:
            raise RuntimeError("silo bug")

    conn = fed.connect(make_hello("a"), on_message)
    connections.append(conn)
    conn.welcome(WAIT_S)
    hub.channels["a"].send(Abort(qid=qid_for("1"), reason="first"))
    hub.channels["a"].send(Abort(qid=qid_for("2"), reason="second"))

    deadline = time.monotonic() + WAIT_S
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [msg.reason for msg in seen] == ["first", "second"]  # type: ignore[attr-defined]
    assert not conn.closed


def test_an_exception_in_the_hubs_on_message_does_not_end_the_stream(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub(fail_on_message=True)
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)
    conn.welcome(WAIT_S)

    conn.send(Heartbeat(silo_id="a", at_ms=1))
    conn.send(Heartbeat(silo_id="a", at_ms=2))

    hub.wait_for(lambda: len(hub.messages) == 2)
    assert not conn.closed
    assert hub.count("disconnect", "a") == 0


def test_a_message_in_another_silos_name_closes_the_stream(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)
    conn.welcome(WAIT_S)

    conn.send(Heartbeat(silo_id="b", at_ms=1))

    assert conn.wait_closed(WAIT_S)
    assert isinstance(conn.error, ProtocolError)
    assert "names silo b" in str(conn.error)
    hub.wait_for(lambda: ("disconnect", "a") in hub.events)
    assert hub.messages == []


def test_malformed_messages_are_refused_at_the_sender(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)
    conn.welcome(WAIT_S)

    with pytest.raises(ProtocolError, match="silo_id is empty"):
        conn.send(Heartbeat(silo_id="", at_ms=1))
    with pytest.raises(ProtocolError, match=r"one Hello"):
        conn.send(make_hello("a"))
    with pytest.raises(ProtocolError, match="qid must be 16 bytes"):
        hub.channels["a"].send(Abort(qid=b"short", reason="x"))
    with pytest.raises(ProtocolError, match="does not send"):
        hub.channels["a"].send(Heartbeat(silo_id="a", at_ms=1))  # type: ignore[arg-type]
    assert not conn.closed


def test_sending_on_an_ended_stream_drops_the_message_quietly(
    serve: Serve, connections: list[HubConnection]
) -> None:
    hub = ToyHub()
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)
    conn.welcome(WAIT_S)
    channel = hub.channels["a"]

    conn.close()
    hub.wait_for(lambda: ("disconnect", "a") in hub.events)

    channel.send(Abort(qid=qid_for("late"), reason="late"))
    conn.send(Heartbeat(silo_id="a", at_ms=1))
    assert channel.closed and conn.closed


def test_welcome_waits_no_longer_than_asked(serve: Serve, connections: list[HubConnection]) -> None:
    hub = ToyHub(on_connect_delay_s=0.5)
    fed = serve(hub)
    conn = fed.connect(make_hello("a"), Inbox())
    connections.append(conn)

    started = time.monotonic()
    with pytest.raises(OperationalError, match="no Welcome"):
        conn.welcome(0.05)
    assert time.monotonic() - started < 0.4
    assert isinstance(conn.welcome(WAIT_S), Welcome)


def _constructible_errors() -> list[Error]:
    out: list[Error] = []
    for name in errors.__all__:
        cls = getattr(errors, name)
        if not issubclass(cls, Error):
            continue
        if cls is ConfigError:
            out.append(ConfigError("bounds must be a pair", file="contract.toml", key="t.c"))
        elif cls is SiloRefused:
            out.append(SiloRefused("clinic-a", "over its per-query epsilon cap"))
        else:
            out.append(cls(f"{name} from the hub: see the docs"))
    return out


@pytest.mark.parametrize("exc", _constructible_errors(), ids=lambda exc: type(exc).__name__)
def test_execute_reraises_the_hubs_error_class_with_its_message(serve: Serve, exc: Error) -> None:
    def fail(req: ExecuteRequest) -> ExecuteReply:
        raise exc

    fed = serve(ToyHub(execute_fn=fail))
    client = fed.analyst()

    with pytest.raises(Error) as info:
        client.execute(ExecuteRequest(sql="SELECT 1"))

    assert type(info.value) is type(exc)
    assert str(info.value) == str(exc)


def test_an_unexpected_exception_becomes_an_internal_error_without_its_text(
    serve: Serve,
) -> None:
    def fail(req: ExecuteRequest) -> ExecuteReply:
        raise KeyError("patient 17 has bmi 31.5")

    fed = serve(ToyHub(execute_fn=fail))

    with pytest.raises(InternalError) as info:
        fed.analyst().execute(ExecuteRequest(sql="SELECT 1"))

    assert "31.5" not in str(info.value)
    assert "patient" not in str(info.value)


def test_execute_returns_the_reply_exactly(serve: Serve) -> None:
    reply = ExecuteReply(
        result_ipc=bytes(range(256)) * 3,
        stats_ipc=b"\x00stats",
        report_json='{"epsilon": "0.5"}',
        explain=("scan patients", "group by sex"),
        epsilon_spent="0.5",
        silos=(SiloStatus("a", "answered"), SiloStatus("b", "refused", "budget", "0.25")),
    )
    requests: list[ExecuteRequest] = []

    def run(req: ExecuteRequest) -> ExecuteReply:
        requests.append(req)
        return reply

    fed = serve(ToyHub(execute_fn=run))
    request = ExecuteRequest(
        sql="SELECT COUNT(*) FROM patients WHERE age >= ?",
        params_json="[40]",
        epsilon="0.5",
        analyst="ana",
        explain_only=True,
    )

    assert fed.analyst().execute(request) == reply
    assert requests == [request]


def test_status_lists_the_connected_silos(serve: Serve, connections: list[HubConnection]) -> None:
    hub = ToyHub()
    fed = serve(hub)
    for silo_id in ("b", "a"):
        conn = fed.connect(make_hello(silo_id), Inbox())
        connections.append(conn)
        conn.welcome(WAIT_S)

    status = fed.analyst().status()

    assert [s.silo_id for s in status.silos] == ["a", "b"]
    assert status.fed_id == hub.status().fed_id


def test_a_call_past_its_deadline_raises_operational_error(serve: Serve) -> None:
    release = threading.Event()

    def slow(req: ExecuteRequest) -> ExecuteReply:
        release.wait(WAIT_S)
        return ExecuteReply()

    fed = serve(ToyHub(execute_fn=slow))
    try:
        with pytest.raises(OperationalError, match=r"within 0\.2 s"):
            fed.analyst().execute(ExecuteRequest(sql="SELECT 1"), timeout_s=0.2)
    finally:
        release.set()


def test_a_closed_analyst_client_refuses_calls(serve: Serve) -> None:
    fed = serve(ToyHub())
    client = fed.analyst()
    client.close()

    with pytest.raises(InterfaceError):
        client.status()


def test_non_ascii_error_messages_cross_intact(serve: Serve) -> None:
    message = "colonne « âge » inconnue ✓; add it to the contract's shared columns"

    def fail(req: ExecuteRequest) -> ExecuteReply:
        raise QueryRejected(message)

    fed = serve(ToyHub(execute_fn=fail))

    with pytest.raises(QueryRejected) as info:
        fed.analyst().execute(ExecuteRequest(sql="SELECT âge FROM patients"))
    assert str(info.value) == message
