"""The analyst's Catalog and ExecuteStream calls over real gRPC on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedsql.errors import BudgetExhausted, InternalError, QueryRejected
from fedsql.transport.client import AnalystClient
from fedsql.transport.interfaces import SiloChannel
from fedsql.transport.messages import (
    CatalogColumn,
    CatalogReply,
    CatalogTable,
    ExecuteProgress,
    ExecuteReply,
    ExecuteRequest,
    Hello,
    SiloStatus,
    SiloToHub,
    StatusReply,
    Welcome,
)
from fedsql.transport.server import RunningServer, start_hub_server

CATALOG = CatalogReply(
    fed_id="fed",
    description="a test federation",
    tables=(
        CatalogTable(
            "patients",
            "one row per patient",
            (
                CatalogColumn("age", "INTEGER", "years", groupable=True, aggregable=True),
                CatalogColumn("sex", "VARCHAR", groupable=True),
            ),
        ),
    ),
)


def _progress(*statuses: str) -> ExecuteProgress:
    return ExecuteProgress(
        silos=tuple(SiloStatus(f"s{i}", status) for i, status in enumerate(statuses))
    )


class StreamingHub:
    """A hub handler whose execute_stream replays a script chosen by the query's SQL."""

    def on_connect(self, hello: Hello, channel: SiloChannel) -> Welcome:
        raise QueryRejected("no silos here")

    def on_message(self, silo_id: str, msg: SiloToHub) -> None:
        pass

    def on_disconnect(self, silo_id: str) -> None:
        pass

    def execute(self, req: ExecuteRequest) -> ExecuteReply:
        return ExecuteReply(epsilon_spent="1")

    def status(self) -> StatusReply:
        return StatusReply(silos=(), fed_id="fed")

    def catalog(self) -> CatalogReply:
        return CATALOG

    def execute_stream(self, req: ExecuteRequest) -> Iterator[ExecuteProgress | ExecuteReply]:
        if req.sql == "rejected":
            raise QueryRejected("not allowed")
        yield _progress("waiting", "waiting")
        yield _progress("running", "waiting")
        if req.sql == "budget":
            raise BudgetExhausted("no budget left")
        if req.sql == "no reply":
            return
        yield _progress("uploaded", "refused")
        yield ExecuteReply(
            epsilon_spent="0.5",
            silos=(SiloStatus("s0", "answered"), SiloStatus("s1", "refused", "busy")),
        )


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with start_hub_server(StreamingHub(), "127.0.0.1:0", max_workers=4) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[AnalystClient]:
    with AnalystClient(server.address, timeout_s=10) as analyst:
        yield analyst


def test_catalog_round_trips(client: AnalystClient) -> None:
    assert client.catalog() == CATALOG


def test_progress_events_arrive_in_order_before_the_reply(client: AnalystClient) -> None:
    events: list[ExecuteProgress] = []
    reply = client.execute_stream(ExecuteRequest(sql="ok"), events.append)
    assert [[s.status for s in e.silos] for e in events] == [
        ["waiting", "waiting"],
        ["running", "waiting"],
        ["uploaded", "refused"],
    ]
    assert reply.epsilon_spent == "0.5"
    assert reply.silos[1] == SiloStatus("s1", "refused", "busy")


def test_an_error_before_any_event_keeps_its_class(client: AnalystClient) -> None:
    events: list[ExecuteProgress] = []
    with pytest.raises(QueryRejected, match="not allowed"):
        client.execute_stream(ExecuteRequest(sql="rejected"), events.append)
    assert events == []


def test_an_error_after_some_events_keeps_its_class(client: AnalystClient) -> None:
    events: list[ExecuteProgress] = []
    with pytest.raises(BudgetExhausted, match="no budget left"):
        client.execute_stream(ExecuteRequest(sql="budget"), events.append)
    assert len(events) == 2


def test_a_stream_without_a_reply_is_an_internal_error(client: AnalystClient) -> None:
    with pytest.raises(InternalError, match="without a reply"):
        client.execute_stream(ExecuteRequest(sql="no reply"), lambda _: None)


def test_an_exception_in_the_callback_cancels_the_call(client: AnalystClient) -> None:
    class Enough(Exception):
        pass

    def stop(_: ExecuteProgress) -> None:
        raise Enough

    with pytest.raises(Enough):
        client.execute_stream(ExecuteRequest(sql="ok"), stop)
    assert client.catalog() == CATALOG  # the channel is still usable
