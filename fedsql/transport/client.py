"""The clients of the hub's gRPC server: a silo's long-lived stream and an analyst's calls.

:func:`connect_to_hub` opens a silo's outbound stream (``Coordinator.Connect``): it sends the
Hello, and a background thread reads the hub's messages, keeps the first (the Welcome) for
:meth:`GrpcHubConnection.welcome` and hands every later one to the ``on_message`` callback.
Reconnecting after the stream ends is the silo agent's decision: open a new connection.

:class:`AnalystClient` makes the analyst's unary calls with a deadline on each, and turns a failed
call back into the :mod:`fedsql.errors` class the hub raised.

Both dial with mTLS credentials from an identity folder
(:func:`fedsql.transport.tls.channel_credentials`), optionally checking the hub's certificate
against a ``server_name`` other than the dialled host; without credentials they dial plaintext,
and only to a loopback address.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, cast

import grpc

from fedsql.errors import Error, HubUnreachable, InterfaceError, OperationalError, ProtocolError
from fedsql.transport.codec import from_proto, to_proto
from fedsql.transport.envelope import unwrap_hub_message, wrap_silo_message
from fedsql.transport.grpc_options import client_options
from fedsql.transport.interfaces import AnalystConnection, HubConnection
from fedsql.transport.messages import (
    BudgetReply,
    BudgetRequest,
    CatalogReply,
    CatalogRequest,
    ExecuteProgress,
    ExecuteReply,
    ExecuteRequest,
    Hello,
    HubToSilo,
    SiloToHub,
    StatusReply,
    StatusRequest,
    Welcome,
)
from fedsql.transport.proto import fedsql_pb2 as pb
from fedsql.transport.proto import fedsql_pb2_grpc as pb_grpc
from fedsql.transport.status import error_from_rpc
from fedsql.transport.tls import check_insecure_target, handshake_failure

__all__ = [
    "AnalystClient",
    "AnalystConnection",
    "GrpcHubConnection",
    "HubConnection",
    "connect_to_hub",
]

log = logging.getLogger(__name__)

#: Seconds :meth:`GrpcHubConnection.close` waits for the reader after cancelling the stream.
_CANCEL_WAIT_S = 5.0


def _open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, server_name: str | None = None
) -> grpc.Channel:
    if credentials is None:
        if server_name is not None:
            raise InterfaceError("server_name checks the hub's certificate; give credentials too")
        check_insecure_target(target)
        return grpc.insecure_channel(target, options=client_options())
    options: list[tuple[str, str | int]] = list(client_options())
    if server_name is not None:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(target, credentials, options=options)


def _rpc_failure(err: grpc.RpcError, target: str, *, tls: bool, **kwargs: Any) -> Error:
    """:func:`error_from_rpc`, saying so when a call failed in the TLS handshake."""
    error = error_from_rpc(err, target, **kwargs)
    if not tls or type(error) not in (HubUnreachable, OperationalError):
        return error
    details = getattr(err, "details", None)
    reason = handshake_failure(details() if callable(details) else "")
    if reason is None:
        return error
    return type(error)(f"cannot reach the hub at {target} over TLS: {reason}")


class GrpcHubConnection:
    """A silo's stream to the hub over gRPC (a :class:`~fedsql.transport.interfaces.HubConnection`).

    Create it with :func:`connect_to_hub`.
    """

    def __init__(
        self,
        target: str,
        hello: Hello,
        on_message: Callable[[HubToSilo], None],
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str | None = None,
    ) -> None:
        """Open the stream and send ``hello``; see :func:`connect_to_hub`."""
        if not isinstance(hello, Hello):
            raise ProtocolError(f"a stream starts with a Hello, not a {type(hello).__name__}")
        first = wrap_silo_message(hello)
        self._target = target
        self._silo_id = hello.silo_id
        self._on_message = on_message
        self._outbound: queue.SimpleQueue[pb.SiloMessage | None] = queue.SimpleQueue()
        self._outbound.put(first)
        self._lock = threading.Lock()
        self._outbound_closed = False
        self._closing = False
        self._welcome: Welcome | None = None
        self._error: Error | None = None
        self._welcomed = threading.Event()
        self._ended = threading.Event()
        self._tls = credentials is not None
        self._channel = _open_channel(target, credentials, server_name)
        self._call: Any = pb_grpc.CoordinatorStub(self._channel).Connect(self._requests())
        self._reader = threading.Thread(
            target=self._read, name=f"fedsql-hub-link-{hello.silo_id}", daemon=True
        )
        self._reader.start()

    @property
    def target(self) -> str:
        """The hub address this connection dialled."""
        return self._target

    @property
    def closed(self) -> bool:
        """True once the stream ended, from either side."""
        return self._ended.is_set()

    @property
    def error(self) -> Error | None:
        """Why the stream ended, if abnormally: the hub's error, or a lost connection."""
        return self._error

    def send(self, msg: SiloToHub) -> None:
        """Queue a message for the hub; never blocks.

        Args:
            msg: Any silo message but a Hello (the connection sent that one).

        Raises:
            ProtocolError: The message is malformed, or is a Hello.
        """
        if isinstance(msg, Hello):
            raise ProtocolError("a stream carries one Hello, sent when it opens")
        envelope = wrap_silo_message(msg)
        with self._lock:
            if self._outbound_closed:
                log.info(
                    "dropped a %s: the stream to the hub at %s is closed",
                    type(msg).__name__,
                    self._target,
                )
                return
            self._outbound.put(envelope)

    def welcome(self, timeout: float | None = None) -> Welcome:
        """Wait for the hub's Welcome.

        Args:
            timeout: Seconds to wait; None waits as long as the stream lives.

        Returns:
            The Welcome (it is not passed to ``on_message``; later Welcomes are).

        Raises:
            fedsql.errors.Error: The hub refused this silo (the same class the hub raised), could
                not be reached (OperationalError), or sent something else first (ProtocolError).
            OperationalError: No Welcome arrived within ``timeout``.
        """
        if not self._welcomed.wait(timeout):
            raise OperationalError(
                f"no Welcome from the hub at {self._target} within {timeout:g} s"
            )
        if self._welcome is not None:
            return self._welcome
        if self._error is not None:
            raise self._error
        raise ProtocolError(f"the hub at {self._target} ended the stream without a Welcome")

    def close(self, grace: float = 1.0) -> None:
        """End the stream: queued messages get up to ``grace`` seconds to go out, then the call
        is cancelled. Idempotent; safe to call from ``on_message``.

        Args:
            grace: Seconds to wait for the hub to end the stream after ours is finished.
        """
        self._closing = True
        self._finish_outbound()
        if threading.current_thread() is self._reader:
            self._call.cancel()
            return
        if not self._ended.wait(grace):
            self._call.cancel()
            self._ended.wait(_CANCEL_WAIT_S)
        self._reader.join(_CANCEL_WAIT_S)
        self._channel.close()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the stream has ended.

        Args:
            timeout: Seconds to wait; None waits indefinitely.

        Returns:
            True if the stream has ended.
        """
        return self._ended.wait(timeout)

    def _finish_outbound(self) -> None:
        with self._lock:
            if self._outbound_closed:
                return
            self._outbound_closed = True
            self._outbound.put(None)

    def _requests(self) -> Iterator[pb.SiloMessage]:
        while True:
            envelope = self._outbound.get()
            if envelope is None:
                return
            yield envelope

    def _fail(self, exc: Error) -> None:
        log.warning("closing the stream to the hub at %s: %s", self._target, exc)
        self._error = exc
        self._call.cancel()

    def _read(self) -> None:
        try:
            for envelope in self._call:
                try:
                    msg = unwrap_hub_message(envelope)
                except ProtocolError as exc:
                    self._fail(exc)
                    return
                if self._welcome is None:
                    if not isinstance(msg, Welcome):
                        self._fail(
                            ProtocolError(
                                f"the hub's first message was a {type(msg).__name__}, not a Welcome"
                            )
                        )
                        return
                    self._welcome = msg
                    self._welcomed.set()
                    continue
                try:
                    self._on_message(msg)
                except Exception:
                    log.exception("on_message failed on a %s from the hub", type(msg).__name__)
        except grpc.RpcError as err:
            if not self._closing and self._error is None:
                self._error = _rpc_failure(
                    err, self._target, tls=self._tls, connected=self._welcome is not None
                )
                log.warning("stream to the hub at %s ended: %s", self._target, self._error)
        except Exception:
            log.exception("reading the stream from the hub at %s failed", self._target)
            if self._error is None:
                self._error = OperationalError(f"lost the stream to the hub at {self._target}")
        finally:
            self._finish_outbound()
            self._channel.close()
            self._ended.set()
            self._welcomed.set()


def connect_to_hub(
    target: str,
    hello: Hello,
    on_message: Callable[[HubToSilo], None],
    *,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str | None = None,
) -> HubConnection:
    """Open a silo's stream to the hub and send its Hello; returns at once.

    Args:
        target: The hub's ``host:port``.
        hello: This silo's Hello.
        on_message: Called on the connection's reader thread with each hub message after the
            Welcome, in order. Keep it short; an exception it raises is logged, not fatal.
        credentials: The silo's mTLS credentials
            (:func:`fedsql.transport.tls.channel_credentials`); None dials in plaintext, to a
            loopback address only.
        server_name: The name the hub's certificate must carry, when it is not the host dialled
            (for example the hub's name when dialling ``127.0.0.1``); TLS only.

    Returns:
        The connection; call :meth:`~GrpcHubConnection.welcome` to wait for the hub's answer.

    Raises:
        ProtocolError: ``hello`` is malformed.
        ConfigError: Plaintext was asked for to a hub that is not on this machine.
        InterfaceError: ``server_name`` was given without credentials.
    """
    return GrpcHubConnection(target, hello, on_message, credentials, server_name)


class AnalystClient:
    """An analyst's calls to the hub over gRPC, each with a deadline.

    Errors the hub raised come back as the same :mod:`fedsql.errors` class; a hub that cannot be
    reached gives ``OperationalError("hub unreachable at <target>")``.
    """

    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None = None,
        timeout_s: float = 120.0,
        *,
        server_name: str | None = None,
    ) -> None:
        """Open a channel to the hub (connecting lazily, on the first call).

        Args:
            target: The hub's ``host:port``.
            credentials: The analyst's mTLS credentials
                (:func:`fedsql.transport.tls.channel_credentials`); None dials in plaintext, to a
                loopback address only.
            timeout_s: Default deadline of each call, in seconds.
            server_name: The name the hub's certificate must carry, when it is not the host
                dialled; TLS only.

        Raises:
            InterfaceError: ``timeout_s`` is not positive, or ``server_name`` was given without
                credentials.
            ConfigError: Plaintext was asked for to a hub that is not on this machine.
        """
        if not timeout_s > 0:
            raise InterfaceError("timeout_s must be a positive number of seconds")
        self._target = target
        self._timeout_s = timeout_s
        self._tls = credentials is not None
        self._channel = _open_channel(target, credentials, server_name)
        self._stub = pb_grpc.AnalystStub(self._channel)
        self._closed = False

    @property
    def target(self) -> str:
        """The hub address."""
        return self._target

    def execute(self, req: ExecuteRequest, *, timeout_s: float | None = None) -> ExecuteReply:
        """Run (or explain) a query.

        Args:
            req: The query.
            timeout_s: Deadline of this call; the client's default when None.

        Returns:
            The hub's reply.

        Raises:
            fedsql.errors.Error: The class the hub raised, with its message.
            OperationalError: The hub could not be reached or did not answer in time.
            InterfaceError: The client is closed.
        """
        reply = self._call(self._stub.Execute, to_proto(req), timeout_s)
        return cast(ExecuteReply, from_proto(reply))

    def status(self, *, timeout_s: float | None = None) -> StatusReply:
        """Ask which silos are connected.

        Args:
            timeout_s: Deadline of this call; the client's default when None.

        Returns:
            The hub's reply.

        Raises:
            fedsql.errors.Error: As :meth:`execute`.
        """
        reply = self._call(self._stub.Status, to_proto(StatusRequest()), timeout_s)
        return cast(StatusReply, from_proto(reply))

    def budget(self, analyst: str, *, timeout_s: float | None = None) -> BudgetReply:
        """Ask what ``analyst`` has spent and has left at each connected clinic.

        Args:
            analyst: Whose budget (under mTLS, only the certificate's own analyst).
            timeout_s: Deadline of this call; the client's default when None.

        Returns:
            The hub's reply, one entry per connected clinic.

        Raises:
            fedsql.errors.Error: As :meth:`execute`.
        """
        request = to_proto(BudgetRequest(analyst=analyst))
        reply = self._call(self._stub.Budget, request, timeout_s)
        return cast(BudgetReply, from_proto(reply))

    def catalog(self, *, timeout_s: float | None = None) -> CatalogReply:
        """Ask which tables and columns can be queried (those every connected silo shares).

        Args:
            timeout_s: Deadline of this call; the client's default when None.

        Returns:
            The hub's reply.

        Raises:
            fedsql.errors.Error: As :meth:`execute`.
        """
        reply = self._call(self._stub.Catalog, to_proto(CatalogRequest()), timeout_s)
        return cast(CatalogReply, from_proto(reply))

    def execute_stream(
        self,
        req: ExecuteRequest,
        on_progress: Callable[[ExecuteProgress], None],
        *,
        timeout_s: float | None = None,
    ) -> ExecuteReply:
        """Run a query, reporting each cohort member's status as it changes.

        Args:
            req: The query.
            on_progress: Called on this thread with every progress event, in order, before the
                reply arrives. An exception it raises cancels the call and propagates.
            timeout_s: Deadline of the whole call; the client's default when None.

        Returns:
            The hub's reply.

        Raises:
            fedsql.errors.Error: As :meth:`execute`; also ProtocolError if the stream ends
                without a reply.
        """
        if self._closed:
            raise InterfaceError("the analyst client is closed")
        timeout = self._timeout_s if timeout_s is None else timeout_s
        call: Any = self._stub.ExecuteStream(to_proto(req), timeout=timeout)
        try:
            for event in call:
                kind = event.WhichOneof("body")
                if kind == "reply":
                    return cast(ExecuteReply, from_proto(event.reply))
                if kind == "progress":
                    on_progress(cast(ExecuteProgress, from_proto(event.progress)))
                else:
                    raise ProtocolError("the hub sent an execution event this version cannot read")
        except grpc.RpcError as err:
            raise _rpc_failure(err, self._target, tls=self._tls, timeout_s=timeout) from err
        except BaseException:
            call.cancel()
            raise
        raise ProtocolError(f"the hub at {self._target} ended the query stream without a reply")

    def close(self) -> None:
        """Close the channel; idempotent."""
        if not self._closed:
            self._closed = True
            self._channel.close()

    def __enter__(self) -> AnalystClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout_s: float | None) -> Any:
        if self._closed:
            raise InterfaceError("the analyst client is closed")
        timeout = self._timeout_s if timeout_s is None else timeout_s
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as err:
            raise _rpc_failure(err, self._target, tls=self._tls, timeout_s=timeout) from err
