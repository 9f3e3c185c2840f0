"""An in-process transport with the gRPC transport's interfaces and behaviour, without a network.

:class:`MemoryHub` serves a :class:`~fedsql.transport.interfaces.HubHandler` to silos in the same
process: :meth:`MemoryHub.connect` gives a :class:`~fedsql.transport.interfaces.HubConnection`
and :meth:`MemoryHub.analyst` an :class:`~fedsql.transport.interfaces.AnalystConnection`. Every
message is still serialized to protobuf bytes and parsed on the other side, errors cross as they
do over gRPC (same class, same message), and the threading contract of
:mod:`fedsql.transport.interfaces` holds. Use it for fast tests of hub and silo logic; use the gRPC
transport on loopback to test deployment.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TypeVar

from fedsql.errors import Error, InterfaceError, InternalError, OperationalError, ProtocolError
from fedsql.transport.codec import from_bytes, to_bytes
from fedsql.transport.envelope import (
    check_stream_message,
    decode_hub_message,
    decode_silo_message,
    encode_hub_message,
    encode_silo_message,
)
from fedsql.transport.faults import (
    ErrorDescription,
    describe_error,
    describe_for_log,
    rebuild_error,
)
from fedsql.transport.interfaces import AnalystConnection, HubConnection, HubHandler
from fedsql.transport.messages import (
    BudgetReply,
    BudgetRequest,
    ExecuteReply,
    ExecuteRequest,
    Hello,
    HubToSilo,
    SiloToHub,
    StatusReply,
    Welcome,
)

__all__ = ["MemoryAnalystClient", "MemoryHub", "MemoryHubConnection"]

log = logging.getLogger(__name__)

#: Name used for the hub in error messages, where gRPC would give its address.
TARGET = "memory"

R = TypeVar("R")

#: Seconds :meth:`MemoryHubConnection.close` and :meth:`MemoryHub.stop` wait for a thread to end.
_JOIN_S = 5.0


@dataclass(frozen=True)
class _End:
    """Queue marker: the stream ends here, with the described error if there is one."""

    error: ErrorDescription | None = None


class _MemoryChannel:
    """The hub's side of one in-memory stream (a :class:`~fedsql.transport.interfaces.SiloChannel`).

    Messages sent while ``on_connect`` runs wait until the Welcome has gone first.
    """

    def __init__(self, silo_id: str, outbound: queue.SimpleQueue[bytes | _End]) -> None:
        self._silo_id = silo_id
        self._outbound = outbound
        self._lock = threading.Lock()
        self._pending: list[bytes] | None = []
        self._closed = False

    @property
    def silo_id(self) -> str:
        return self._silo_id

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, msg: HubToSilo) -> None:
        data = encode_hub_message(msg)
        with self._lock:
            if self._closed:
                log.debug("dropped a %s: silo %s is gone", type(msg).__name__, self._silo_id)
            elif self._pending is not None:
                self._pending.append(data)
            else:
                self._outbound.put(data)

    def close(self) -> None:
        self.end()

    def welcome(self, welcome: Welcome) -> None:
        """Send the Welcome, then whatever was sent during ``on_connect``."""
        data = encode_hub_message(welcome)
        with self._lock:
            pending, self._pending = self._pending or [], None
            if not self._closed:
                self._outbound.put(data)
                for item in pending:
                    self._outbound.put(item)

    def end(self, error: BaseException | None = None) -> None:
        """Close the channel; the stream ends after what is queued, with ``error`` if given."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._pending = None  # never welcomed: what was sent meanwhile is dropped
            self._outbound.put(_End(None if error is None else describe_error(error)))


class MemoryHubConnection:
    """A silo's in-memory stream to a :class:`MemoryHub` (a
    :class:`~fedsql.transport.interfaces.HubConnection`)."""

    def __init__(
        self,
        hello: Hello,
        on_message: Callable[[HubToSilo], None],
        inbound: queue.SimpleQueue[bytes | _End],
        outbound: queue.SimpleQueue[bytes | _End],
    ) -> None:
        """Attach to the queues of a stream; :meth:`MemoryHub.connect` builds it."""
        self._silo_id = hello.silo_id
        self._on_message = on_message
        self._to_hub = inbound
        self._from_hub = outbound
        self._lock = threading.Lock()
        self._outbound_closed = False
        self._welcome: Welcome | None = None
        self._error: Error | None = None
        self._welcomed = threading.Event()
        self._ended = threading.Event()
        self._reader = threading.Thread(
            target=self._read, name=f"fedsql-memory-link-{hello.silo_id}", daemon=True
        )
        self._reader.start()

    @property
    def closed(self) -> bool:
        """True once the stream ended, from either side."""
        return self._ended.is_set()

    @property
    def error(self) -> Error | None:
        """Why the stream ended, if abnormally (the hub's error)."""
        return self._error

    def send(self, msg: SiloToHub) -> None:
        """Queue a message for the hub; never blocks.

        Raises:
            ProtocolError: The message is malformed, or is a Hello.
        """
        if isinstance(msg, Hello):
            raise ProtocolError("a stream carries one Hello, sent when it opens")
        data = encode_silo_message(msg)
        with self._lock:
            if self._outbound_closed:
                log.info("dropped a %s: the stream to the hub is closed", type(msg).__name__)
                return
            self._to_hub.put(data)

    def welcome(self, timeout: float | None = None) -> Welcome:
        """Wait for the hub's Welcome; see :meth:`HubConnection.welcome
        <fedsql.transport.interfaces.HubConnection.welcome>`.

        Raises:
            fedsql.errors.Error: The hub refused the silo, or no Welcome came within ``timeout``.
        """
        if not self._welcomed.wait(timeout):
            raise OperationalError(f"no Welcome from the hub at {TARGET} within {timeout:g} s")
        if self._welcome is not None:
            return self._welcome
        if self._error is not None:
            raise self._error
        raise ProtocolError(f"the hub at {TARGET} ended the stream without a Welcome")

    def close(self, grace: float = 1.0) -> None:
        """End the stream after queued messages, waiting up to ``grace`` seconds for the hub."""
        self._finish_outbound()
        if threading.current_thread() is self._reader:
            self._from_hub.put(_End())
            return
        if not self._ended.wait(grace):
            self._from_hub.put(_End())  # stop listening even if the hub is still busy
        self._reader.join(_JOIN_S)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the stream has ended; True if it has."""
        return self._ended.wait(timeout)

    def _finish_outbound(self) -> None:
        with self._lock:
            if not self._outbound_closed:
                self._outbound_closed = True
                self._to_hub.put(_End())

    def _read(self) -> None:
        try:
            while True:
                item = self._from_hub.get()
                if isinstance(item, _End):
                    if item.error is not None and self._error is None:
                        self._error = rebuild_error(item.error)
                    return
                msg = decode_hub_message(item)
                if self._welcome is None:
                    if not isinstance(msg, Welcome):
                        self._error = ProtocolError(
                            f"the hub's first message was a {type(msg).__name__}, not a Welcome"
                        )
                        return
                    self._welcome = msg
                    self._welcomed.set()
                    continue
                try:
                    self._on_message(msg)
                except Exception:
                    log.exception("on_message failed on a %s from the hub", type(msg).__name__)
        finally:
            self._finish_outbound()
            self._ended.set()
            self._welcomed.set()


class MemoryAnalystClient:
    """An analyst's calls to a :class:`MemoryHub` (an
    :class:`~fedsql.transport.interfaces.AnalystConnection`), with deadlines like gRPC's."""

    def __init__(self, hub: MemoryHub, timeout_s: float = 120.0) -> None:
        """Bind to ``hub``; :meth:`MemoryHub.analyst` builds it."""
        if not timeout_s > 0:
            raise InterfaceError("timeout_s must be a positive number of seconds")
        self._hub = hub
        self._timeout_s = timeout_s
        self._closed = False

    def execute(self, req: ExecuteRequest, *, timeout_s: float | None = None) -> ExecuteReply:
        """Run (or explain) a query.

        Raises:
            fedsql.errors.Error: The class the hub raised, or OperationalError past the deadline.
        """
        request = from_bytes(ExecuteRequest, to_bytes(req))
        reply = self._call(lambda handler: handler.execute(request), timeout_s)
        return from_bytes(ExecuteReply, _encode_reply(reply, ExecuteReply))

    def status(self, *, timeout_s: float | None = None) -> StatusReply:
        """Ask which silos are connected.

        Raises:
            fedsql.errors.Error: As :meth:`execute`.
        """
        reply = self._call(lambda handler: handler.status(), timeout_s)
        return from_bytes(StatusReply, _encode_reply(reply, StatusReply))

    def budget(self, analyst: str, *, timeout_s: float | None = None) -> BudgetReply:
        """Ask what ``analyst`` has spent and has left at each connected clinic.

        Raises:
            fedsql.errors.Error: As :meth:`execute`.
        """
        request = from_bytes(BudgetRequest, to_bytes(BudgetRequest(analyst=analyst)))
        reply = self._call(lambda handler: handler.budget(request), timeout_s)
        return from_bytes(BudgetReply, _encode_reply(reply, BudgetReply))

    def close(self) -> None:
        """Refuse further calls; idempotent."""
        self._closed = True

    def _call(self, fn: Callable[[HubHandler], R], timeout_s: float | None) -> R:
        if self._closed:
            raise InterfaceError("the analyst client is closed")
        timeout = self._timeout_s if timeout_s is None else timeout_s
        future = self._hub.submit(fn)
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise OperationalError(
                f"no reply from the hub at {TARGET} within {timeout:g} s; raise the client's "
                "timeout_s for long-running queries"
            ) from None
        except Exception as exc:
            if not isinstance(exc, Error):
                log.error("unexpected error in a hub handler", exc_info=exc)
            raise rebuild_error(describe_error(exc)) from None


def _encode_reply(
    reply: object, expected: type[ExecuteReply] | type[StatusReply] | type[BudgetReply]
) -> bytes:
    try:
        if not isinstance(reply, expected):
            raise ProtocolError(f"the handler returned {type(reply).__name__}")
        return to_bytes(reply)
    except ProtocolError as exc:
        log.error("hub built an invalid %s: %s", expected.__name__, exc)
        raise InternalError(f"the hub failed to encode its {expected.__name__}") from None


class MemoryHub:
    """Serves one handler to in-process silos and analysts. Stop it with :meth:`stop`."""

    def __init__(self, handler: HubHandler, *, max_workers: int = 8) -> None:
        """Start serving ``handler``.

        Args:
            handler: The hub.
            max_workers: Threads for concurrent analyst calls.
        """
        self._handler = handler
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="fedsql-memory-hub")
        self._lock = threading.Lock()
        self._inbounds: set[queue.SimpleQueue[bytes | _End]] = set()
        self._channels: set[_MemoryChannel] = set()
        self._servers: set[threading.Thread] = set()
        self._stopped = False

    def connect(self, hello: Hello, on_message: Callable[[HubToSilo], None]) -> HubConnection:
        """Open a silo's stream and send its Hello; returns at once, like
        :func:`fedsql.transport.client.connect_to_hub` (a stopped hub makes ``welcome`` raise
        OperationalError).

        Args:
            hello: This silo's Hello.
            on_message: Called with each hub message after the Welcome, in order.

        Returns:
            The silo's connection.

        Raises:
            ProtocolError: ``hello`` is malformed.
        """
        if not isinstance(hello, Hello):
            raise ProtocolError(f"a stream starts with a Hello, not a {type(hello).__name__}")
        inbound: queue.SimpleQueue[bytes | _End] = queue.SimpleQueue()
        outbound: queue.SimpleQueue[bytes | _End] = queue.SimpleQueue()
        inbound.put(encode_silo_message(hello))
        server = threading.Thread(
            target=self._serve,
            args=(hello.silo_id, inbound, outbound),
            name=f"fedsql-memory-silo-{hello.silo_id}",
            daemon=True,
        )
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._inbounds.add(inbound)
                self._servers.add(server)
        if stopped:
            outbound.put(_End(describe_error(OperationalError(f"hub unreachable at {TARGET}"))))
        connection = MemoryHubConnection(hello, on_message, inbound, outbound)
        if not stopped:
            server.start()
        return connection

    def analyst(self, timeout_s: float = 120.0) -> AnalystConnection:
        """An analyst client of this hub.

        Args:
            timeout_s: Default deadline of each call, in seconds.

        Returns:
            The client.
        """
        return MemoryAnalystClient(self, timeout_s)

    def submit(self, fn: Callable[[HubHandler], R]) -> Future[R]:
        """Run ``fn(handler)`` on one of the hub's workers (for :class:`MemoryAnalystClient`).

        Args:
            fn: The call to make.

        Returns:
            Its future.

        Raises:
            OperationalError: The hub was stopped.
        """
        with self._lock:
            if self._stopped:
                raise OperationalError(f"hub unreachable at {TARGET}")
            return self._executor.submit(fn, self._handler)

    @property
    def open_streams(self) -> int:
        """How many silo streams are open now."""
        with self._lock:
            return len(self._servers)

    def stop(self) -> None:
        """End every stream (``on_disconnect`` runs for each) and stop serving; idempotent."""
        with self._lock:
            self._stopped = True
            inbounds, channels = list(self._inbounds), list(self._channels)
            servers = list(self._servers)
        for channel in channels:
            channel.end()
        for inbound in inbounds:
            inbound.put(_End())
        for server in servers:
            server.join(_JOIN_S)
        self._executor.shutdown(wait=False)

    def _serve(
        self,
        silo_id: str,
        inbound: queue.SimpleQueue[bytes | _End],
        outbound: queue.SimpleQueue[bytes | _End],
    ) -> None:
        channel = _MemoryChannel(silo_id, outbound)
        try:
            first = inbound.get()
            assert not isinstance(first, _End)  # connect() queued the Hello first
            hello = decode_silo_message(first)
            assert isinstance(hello, Hello)
            with self._lock:
                self._channels.add(channel)
            try:
                welcome = self._handler.on_connect(hello, channel)
            except Exception as exc:
                if not isinstance(exc, Error):
                    log.error("unexpected error in a hub handler", exc_info=exc)
                log.info("refused silo %s: %s", silo_id, describe_for_log(exc))
                channel.end(exc)
                return
            self._read(silo_id, inbound, channel, welcome)
        finally:
            with self._lock:
                self._inbounds.discard(inbound)
                self._channels.discard(channel)
                self._servers.discard(threading.current_thread())

    def _read(
        self,
        silo_id: str,
        inbound: queue.SimpleQueue[bytes | _End],
        channel: _MemoryChannel,
        welcome: object,
    ) -> None:
        try:
            try:
                if not isinstance(welcome, Welcome):
                    raise ProtocolError("HubHandler.on_connect must return a Welcome")
                channel.welcome(welcome)
            except ProtocolError as exc:
                log.error("hub built an invalid Welcome for silo %s: %s", silo_id, exc)
                channel.end(InternalError("the hub failed to welcome the silo"))
                return
            while True:
                item = inbound.get()
                if isinstance(item, _End):
                    return
                try:
                    msg = decode_silo_message(item)
                    check_stream_message(silo_id, msg)
                except ProtocolError as exc:
                    log.warning("closing the stream of silo %s: %s", silo_id, exc)
                    channel.end(exc)
                    return
                try:
                    self._handler.on_message(silo_id, msg)
                except Exception:
                    log.exception("HubHandler.on_message failed on a message of silo %s", silo_id)
        finally:
            channel.end()
            try:
                self._handler.on_disconnect(silo_id)
            except Exception:
                log.exception("HubHandler.on_disconnect failed for silo %s", silo_id)
