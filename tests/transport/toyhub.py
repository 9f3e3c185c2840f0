"""A toy HubHandler for transport tests, message builders, and both transports behind one face."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from fedsql.transport import (
    AnalystClient,
    AnalystConnection,
    ExecuteReply,
    ExecuteRequest,
    Hello,
    HubConnection,
    HubHandler,
    HubToSilo,
    MaskedUpload,
    MemoryHub,
    QueryRequest,
    RosterEntry,
    SiloChannel,
    SiloToHub,
    StatusReply,
    Welcome,
    connect_to_hub,
    start_hub_server,
)
from fedsql.transport.messages import (
    BudgetReply,
    BudgetRequest,
    ClinicBudget,
    ConnectedSilo,
    EncodingEntry,
)

FED_ID = "fed-transport-test"
WAIT_S = 10.0


def key_for(label: str) -> bytes:
    """A fixed 32-byte public key derived from a label."""
    return hashlib.sha256(b"key/" + label.encode()).digest()


def qid_for(label: str) -> bytes:
    """A fixed 16-byte query id derived from a label."""
    return hashlib.sha256(b"qid/" + label.encode()).digest()[:16]


def make_hello(silo_id: str) -> Hello:
    """A well-formed Hello for ``silo_id``."""
    return Hello(
        silo_id=silo_id,
        name=f"clinic {silo_id}",
        version="0.1.0",
        contract_fingerprint="f" * 64,
        x25519_public=key_for(silo_id),
        min_group_size=10,
        max_epsilon_per_query="1.0",
        shared=(("patients", ("age", "sex")),),
        test_mode=True,
    )


def make_query(qid: bytes, cohort: tuple[str, ...]) -> QueryRequest:
    """A QueryRequest for two measures over three cells, the second sent in two limbs."""
    return QueryRequest(
        version=1,
        fed_id=FED_ID,
        roster_version=1,
        epoch=0,
        qid=qid,
        cohort=cohort,
        threshold=1,
        n_min=2,
        dimension=9,
        cells=3,
        encoding=(EncodingEntry(1.0, 0, 8.0), EncodingEntry(120.0, 4, 16.5, limbs=2)),
        sigma_loc=(4.0, 8.25),
        rho_charge="0.125",
        epsilon_charge="1.0",
        analyst="ana",
        plan_hash="a" * 64,
        sql="SELECT sex, COUNT(*) FROM patients GROUP BY sex",
        params_json="[]",
        deadline_ms=1_700_000_000_000,
    )


def make_upload(request: QueryRequest, silo_id: str) -> MaskedUpload:
    """The answer a toy silo gives to ``request``: y of the requested dimension."""
    return MaskedUpload(
        qid=request.qid,
        silo_id=silo_id,
        hq=hashlib.sha256(request.qid).digest(),
        y=bytes(range(8)) * request.dimension,
        commit=hashlib.sha256(silo_id.encode()).digest(),
        shares=tuple((peer, b"ct:" + peer.encode()) for peer in request.cohort if peer != silo_id),
    )


@dataclass
class ToyHub:
    """Records every stream event; refuses the silos named in ``refuse`` with the given error.

    ``on_connect_send`` messages are sent on the new channel from inside ``on_connect`` (to check
    that the Welcome still goes first). ``execute_fn`` decides what ``execute`` does.
    """

    refuse: dict[str, BaseException] = field(default_factory=dict)
    on_connect_send: tuple[HubToSilo, ...] = ()
    on_connect_delay_s: float = 0.0
    execute_fn: Callable[[ExecuteRequest], ExecuteReply] | None = None
    fail_on_message: bool = False
    events: list[tuple[str, ...]] = field(default_factory=list)
    messages: list[tuple[str, SiloToHub]] = field(default_factory=list)
    channels: dict[str, SiloChannel] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    on_message_threads: set[str] = field(default_factory=set)

    def on_connect(self, hello: Hello, channel: SiloChannel) -> Welcome:
        time.sleep(self.on_connect_delay_s)
        error = self.refuse.get(hello.silo_id)
        if error is not None:
            raise error
        for msg in self.on_connect_send:
            channel.send(msg)
        with self.cond:
            self.channels[hello.silo_id] = channel
            self.events.append(("connect", hello.silo_id))
            roster = tuple(
                RosterEntry(silo_id=s, index=i + 1, x25519_public=key_for(s))
                for i, s in enumerate(sorted(self.channels))
            )
            self.cond.notify_all()
        return Welcome(fed_id=FED_ID, roster_version=len(roster), epoch=0, roster=roster)

    def on_message(self, silo_id: str, msg: SiloToHub) -> None:
        with self.cond:
            self.messages.append((silo_id, msg))
            self.events.append(("message", silo_id, type(msg).__name__))
            self.on_message_threads.add(threading.current_thread().name)
            self.cond.notify_all()
        if self.fail_on_message:
            raise RuntimeError("handler bug")

    def on_disconnect(self, silo_id: str) -> None:
        with self.cond:
            self.events.append(("disconnect", silo_id))
            self.channels.pop(silo_id, None)
            self.cond.notify_all()

    def execute(self, req: ExecuteRequest) -> ExecuteReply:
        if self.execute_fn is None:
            return ExecuteReply(report_json="{}", explain=(req.sql,))
        return self.execute_fn(req)

    def status(self) -> StatusReply:
        with self.cond:
            silos = tuple(
                ConnectedSilo(
                    silo_id=s,
                    name=f"clinic {s}",
                    version="0.1.0",
                    connected_since_ms=1,
                    last_seen_ms=2,
                )
                for s in sorted(self.channels)
            )
        return StatusReply(silos=silos, fed_id=FED_ID)

    def budget(self, req: BudgetRequest) -> BudgetReply:
        with self.cond:
            clinics = tuple(ClinicBudget(silo_id=s) for s in sorted(self.channels))
        return BudgetReply(fed_id=FED_ID, analyst=req.analyst, clinics=clinics)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
        """Block until ``predicate()`` holds (checked under the lock); fail after ``timeout``."""
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(f"timed out; events so far: {self.events}")

    def count(self, *event: str) -> int:
        """How many times ``event`` was recorded."""
        with self.cond:
            return self.events.count(tuple(event))


class Inbox:
    """A silo's on_message callback that records messages and lets a test wait for them."""

    def __init__(self) -> None:
        self.items: list[HubToSilo] = []
        self.cond = threading.Condition()

    def __call__(self, msg: HubToSilo) -> None:
        with self.cond:
            self.items.append(msg)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = WAIT_S) -> list[HubToSilo]:
        """Block until ``n`` messages arrived; return them."""
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.items) >= n, timeout):
                raise AssertionError(f"only {len(self.items)} of {n} messages arrived")
            return list(self.items)


class Federation(Protocol):
    """A hub served over one transport, seen as silos and analysts see it."""

    name: str

    def connect(self, hello: Hello, on_message: Callable[[HubToSilo], None]) -> HubConnection: ...

    def analyst(self, timeout_s: float = 30.0) -> AnalystConnection: ...

    def stop(self) -> None: ...


class GrpcFederation:
    """The hub behind a real gRPC server on 127.0.0.1, port 0."""

    name = "grpc"

    def __init__(self, handler: HubHandler, max_workers: int = 16) -> None:
        self.server = start_hub_server(handler, "127.0.0.1:0", max_workers=max_workers)
        self._clients: list[AnalystClient] = []

    def connect(self, hello: Hello, on_message: Callable[[HubToSilo], None]) -> HubConnection:
        return connect_to_hub(self.server.address, hello, on_message)

    def analyst(self, timeout_s: float = 30.0) -> AnalystConnection:
        client = AnalystClient(self.server.address, timeout_s=timeout_s)
        self._clients.append(client)
        return client

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self.server.stop(0.5)


class MemoryFederation:
    """The hub behind the in-memory transport."""

    name = "memory"

    def __init__(self, handler: HubHandler) -> None:
        self.hub = MemoryHub(handler)

    def connect(self, hello: Hello, on_message: Callable[[HubToSilo], None]) -> HubConnection:
        return self.hub.connect(hello, on_message)

    def analyst(self, timeout_s: float = 30.0) -> AnalystConnection:
        return self.hub.analyst(timeout_s)

    def stop(self) -> None:
        self.hub.stop()
