"""The hub's gRPC server: silo streams (``Coordinator.Connect``) and analyst calls (``Analyst``).

:func:`start_hub_server` serves a :class:`~fedsql.transport.interfaces.HubHandler`. Each silo stream
runs like this: the first inbound message must be a Hello; ``on_connect`` returns the Welcome (or
raises to refuse the silo); a reader thread then hands each inbound message to ``on_message``
while the server's worker sends what the hub queued on the silo's :class:`SiloChannel`; when the
stream ends, for any reason, ``on_disconnect`` is called exactly once. A silo that breaks the
stream's rules (a second Hello, a message in another silo's name, a malformed message) has its
stream closed with ``INVALID_ARGUMENT``.

The synchronous gRPC server gives every open stream one worker thread for its whole life. Some
workers are kept for analyst calls: the server accepts at most ``max_workers - max(1,
max_workers // 8)`` silo streams and refuses more with ``RESOURCE_EXHAUSTED``; size
``max_workers`` for the federation.

Started with credentials (:func:`fedsql.transport.tls.server_credentials`), the server speaks
mutual TLS and binds every call to its client certificate (:mod:`fedsql.transport.authorize`):
``Connect`` admits silo certificates only and the first Hello must name the certificate's silo;
the ``Analyst`` calls admit analyst certificates only, acting in their own name. Without
credentials it serves plaintext, and only on a loopback address.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import cast

import grpc
from google.protobuf.message import Message as ProtoMessage
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer

from fedsql.errors import Error, InterfaceError, InternalError, OperationalError, ProtocolError
from fedsql.transport.authorize import IdentityInterceptor, check_silo_hello
from fedsql.transport.codec import from_proto, to_proto
from fedsql.transport.envelope import (
    check_stream_message,
    unwrap_silo_message,
    wrap_hub_message,
)
from fedsql.transport.faults import describe_for_log
from fedsql.transport.grpc_options import server_options
from fedsql.transport.interfaces import HubHandler, SiloChannel
from fedsql.transport.messages import (
    BudgetReply,
    BudgetRequest,
    CatalogReply,
    ExecuteProgress,
    ExecuteReply,
    ExecuteRequest,
    Hello,
    HubToSilo,
    StatusReply,
    Welcome,
)
from fedsql.transport.proto import fedsql_pb2 as pb
from fedsql.transport.proto import fedsql_pb2_grpc as pb_grpc
from fedsql.transport.status import abort_with_error, refusal_code_for
from fedsql.transport.tls import check_insecure_bind

__all__ = ["HubHandler", "RunningServer", "SiloChannel", "start_hub_server"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _End:
    """Queue marker: the outbound stream ends here, with an error status if ``error`` is set."""

    error: Error | None = None


class _StreamChannel:
    """The :class:`SiloChannel` of one gRPC stream: a queue the stream's worker drains."""

    def __init__(self, silo_id: str) -> None:
        self._silo_id = silo_id
        self._queue: queue.SimpleQueue[pb.HubMessage | _End] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def silo_id(self) -> str:
        return self._silo_id

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, msg: HubToSilo) -> None:
        envelope = wrap_hub_message(msg)
        with self._lock:
            if self._closed:
                log.debug(
                    "dropped %s for silo %s: its stream ended", type(msg).__name__, self._silo_id
                )
                return
            self._queue.put(envelope)

    def close(self) -> None:
        self.end()

    def end(self, error: Error | None = None) -> None:
        """Close the channel; the stream ends after what is queued, with ``error`` if given."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_End(error))

    def next_outbound(self) -> pb.HubMessage | _End:
        """Block until the next envelope to send, or the end marker."""
        return self._queue.get()


class _CoordinatorServicer(pb_grpc.CoordinatorServicer):
    """Serves silo streams for one handler and keeps count of them."""

    def __init__(self, handler: HubHandler, max_streams: int, *, bind_identity: bool) -> None:
        self._handler = handler
        self._max_streams = max_streams
        self._bind_identity = bind_identity
        self._lock = threading.Lock()
        self._channels: set[_StreamChannel] = set()
        self._readers: set[threading.Thread] = set()
        self._open = 0

    def Connect(
        self, request_iterator: Iterator[pb.SiloMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.HubMessage]:
        with self._lock:
            admitted = self._open < self._max_streams
            if admitted:
                self._open += 1
        if not admitted:
            log.warning("refused a silo stream: %d streams are open", self._max_streams)
            abort_with_error(
                context,
                OperationalError(
                    f"the hub serves at most {self._max_streams} silo streams; "
                    "start it with a larger max_workers"
                ),
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
        try:
            yield from self._serve(request_iterator, context)
        finally:
            with self._lock:
                self._open -= 1

    def _serve(
        self, request_iterator: Iterator[pb.SiloMessage], context: grpc.ServicerContext
    ) -> Iterator[pb.HubMessage]:
        try:
            first = next(request_iterator)
        except (StopIteration, grpc.RpcError):
            return  # the silo left before saying hello
        try:
            hello = unwrap_silo_message(first)
            if not isinstance(hello, Hello):
                raise ProtocolError(
                    f"a silo's stream must start with a Hello, not a {type(hello).__name__}"
                )
        except ProtocolError as exc:
            log.warning("refused a silo stream: %s", exc)
            abort_with_error(context, exc, grpc.StatusCode.INVALID_ARGUMENT)
        if self._bind_identity:
            check_silo_hello(context, hello.silo_id)

        channel = _StreamChannel(hello.silo_id)
        try:
            welcome = self._handler.on_connect(hello, channel)
        except Exception as exc:
            channel.end()
            log.info("refused silo %s: %s", hello.silo_id, describe_for_log(exc))
            abort_with_error(context, exc, refusal_code_for(exc))

        # From here on the handler knows the silo: the reader guarantees on_disconnect.
        reader = threading.Thread(
            target=self._read,
            args=(hello.silo_id, request_iterator, channel),
            name=f"fedsql-silo-{hello.silo_id}",
            daemon=True,
        )
        with self._lock:
            self._channels.add(channel)
            self._readers.add(reader)
        if not context.add_callback(channel.end):
            channel.end()  # the call already ended
        reader.start()

        try:
            if not isinstance(welcome, Welcome):
                raise ProtocolError("HubHandler.on_connect must return a Welcome")
            first_out = wrap_hub_message(welcome)
        except ProtocolError as exc:
            log.error("hub built an invalid Welcome for silo %s: %s", hello.silo_id, exc)
            channel.end()
            abort_with_error(context, InternalError("the hub failed to welcome the silo"))
        yield first_out
        while True:
            item = channel.next_outbound()
            if isinstance(item, _End):
                if item.error is not None:
                    abort_with_error(context, item.error, grpc.StatusCode.INVALID_ARGUMENT)
                return
            yield item

    def _read(
        self, silo_id: str, request_iterator: Iterator[pb.SiloMessage], channel: _StreamChannel
    ) -> None:
        try:
            for envelope in request_iterator:
                try:
                    msg = unwrap_silo_message(envelope)
                    check_stream_message(silo_id, msg)
                except ProtocolError as exc:
                    log.warning("closing the stream of silo %s: %s", silo_id, exc)
                    channel.end(exc)
                    return
                try:
                    self._handler.on_message(silo_id, msg)
                except Exception:
                    log.exception("HubHandler.on_message failed on a message of silo %s", silo_id)
        except grpc.RpcError:
            pass  # the call was cancelled or broke: the stream is over
        except Exception:
            log.exception("reading the stream of silo %s failed", silo_id)
        finally:
            channel.end()
            with self._lock:
                self._channels.discard(channel)
            try:
                self._handler.on_disconnect(silo_id)
            except Exception:
                log.exception("HubHandler.on_disconnect failed for silo %s", silo_id)
            with self._lock:
                self._readers.discard(threading.current_thread())

    @property
    def open_streams(self) -> int:
        with self._lock:
            return self._open

    def close_all(self) -> list[threading.Thread]:
        """End every open stream cleanly; returns the reader threads still running."""
        with self._lock:
            channels = list(self._channels)
            readers = list(self._readers)
        for channel in channels:
            channel.end()
        return readers


class _AnalystServicer(pb_grpc.AnalystServicer):
    """Serves the analyst's unary calls for one handler."""

    def __init__(self, handler: HubHandler) -> None:
        self._handler = handler

    def Execute(self, request: pb.ExecuteRequest, context: grpc.ServicerContext) -> pb.ExecuteReply:
        try:
            req = from_proto(request)
        except ProtocolError as exc:
            abort_with_error(context, exc, grpc.StatusCode.INVALID_ARGUMENT)
        try:
            reply = self._handler.execute(cast(ExecuteRequest, req))
        except Exception as exc:
            abort_with_error(context, exc)
        return cast(pb.ExecuteReply, self._encode(context, reply, ExecuteReply))

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusReply:
        del request
        try:
            reply = self._handler.status()
        except Exception as exc:
            abort_with_error(context, exc)
        return cast(pb.StatusReply, self._encode(context, reply, StatusReply))

    def Budget(self, request: pb.BudgetRequest, context: grpc.ServicerContext) -> pb.BudgetReply:
        try:
            req = from_proto(request)
        except ProtocolError as exc:
            abort_with_error(context, exc, grpc.StatusCode.INVALID_ARGUMENT)
        try:
            reply = self._handler.budget(cast(BudgetRequest, req))
        except Exception as exc:
            abort_with_error(context, exc)
        return cast(pb.BudgetReply, self._encode(context, reply, BudgetReply))

    def Catalog(self, request: pb.CatalogRequest, context: grpc.ServicerContext) -> pb.CatalogReply:
        del request
        try:
            reply = self._handler.catalog()
        except Exception as exc:
            abort_with_error(context, exc)
        return cast(pb.CatalogReply, self._encode(context, reply, CatalogReply))

    def ExecuteStream(
        self, request: pb.ExecuteRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ExecuteEvent]:
        try:
            req = from_proto(request)
        except ProtocolError as exc:
            abort_with_error(context, exc, grpc.StatusCode.INVALID_ARGUMENT)
        events = self._handler.execute_stream(cast(ExecuteRequest, req))
        while True:
            try:
                event = next(events)
            except StopIteration:
                abort_with_error(context, InternalError("the hub ended a query without a reply"))
            except Exception as exc:
                abort_with_error(context, exc)
            if isinstance(event, ExecuteReply):
                reply = self._encode(context, event, ExecuteReply)
                yield pb.ExecuteEvent(reply=cast(pb.ExecuteReply, reply))
                return
            progress = self._encode(context, event, ExecuteProgress)
            yield pb.ExecuteEvent(progress=cast(pb.ExecuteProgress, progress))

    @staticmethod
    def _encode(
        context: grpc.ServicerContext,
        reply: object,
        expected: type[ExecuteReply | StatusReply | CatalogReply | ExecuteProgress | BudgetReply],
    ) -> ProtoMessage:
        try:
            if not isinstance(reply, expected):
                raise ProtocolError(f"the handler returned {type(reply).__name__}")
            return to_proto(reply)
        except ProtocolError as exc:
            log.error("hub built an invalid %s: %s", expected.__name__, exc)
            abort_with_error(
                context, InternalError(f"the hub failed to encode its {expected.__name__}")
            )


#: Services reported SERVING by the standard gRPC health service (besides the server as a whole).
HEALTH_SERVICES = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name for name in ("Coordinator", "Analyst")
)


class RunningServer:
    """A started hub server. Stop it with :meth:`stop` or use it as a context manager."""

    def __init__(
        self,
        server: grpc.Server,
        executor: ThreadPoolExecutor,
        host: str,
        port: int,
        coordinator: _CoordinatorServicer,
        health: HealthServicer,
    ) -> None:
        self._server = server
        self._health = health
        self._executor = executor
        self._host = host
        self._port = port
        self._coordinator = coordinator
        self._stopped = False

    @property
    def port(self) -> int:
        """The TCP port the server listens on (the real one when started on port 0)."""
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` to dial, e.g. ``127.0.0.1:50051``."""
        return f"{self._host}:{self._port}"

    @property
    def open_streams(self) -> int:
        """How many silo streams are open now."""
        return self._coordinator.open_streams

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving: end every silo stream cleanly, then give calls ``grace`` seconds.

        Returns once the server has stopped and ``on_disconnect`` has run for every silo stream
        (waiting at most ``grace`` + 5 seconds for the stream readers). Idempotent.

        Args:
            grace: Seconds in-flight calls may still run; None or 0 cancels them at once.
        """
        if self._stopped:
            return
        self._stopped = True
        self._health.enter_graceful_shutdown()
        readers = self._coordinator.close_all()
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=False)
        for reader in readers:
            reader.join(timeout=(grace or 0.0) + 5.0)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until the server stops; True if it stopped within ``timeout`` seconds."""
        timed_out = self._server.wait_for_termination(timeout)  # gRPC returns "timed out"
        return not timed_out

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_hub_server(
    handler: HubHandler,
    address: str = "127.0.0.1:0",
    *,
    max_workers: int = 32,
    credentials: grpc.ServerCredentials | None = None,
) -> RunningServer:
    """Start serving the hub's gRPC services.

    Args:
        handler: The hub.
        address: ``host:port`` to listen on; port 0 picks a free port (see
            :attr:`RunningServer.port`).
        max_workers: Worker threads. Every open silo stream holds one for its whole life; see the
            module docstring for how many streams are accepted.
        credentials: The hub's mTLS credentials (:func:`fedsql.transport.tls.server_credentials`;
            they must require client certificates): every call is then bound to its
            certificate. None serves plaintext, on a loopback address only.

    Returns:
        The running server.

    Raises:
        InterfaceError: ``max_workers`` is below 2.
        ConfigError: Plaintext was asked for on an address other than loopback.
        OperationalError: The address cannot be listened on (for example the port is in use).
    """
    if max_workers < 2:
        raise InterfaceError("max_workers must be at least 2 (silo streams and analyst calls)")
    mtls = credentials is not None
    if not mtls:
        check_insecure_bind(address)
    max_streams = max_workers - max(1, max_workers // 8)
    coordinator = _CoordinatorServicer(handler, max_streams, bind_identity=mtls)
    executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fedsql-hub")
    server = grpc.server(
        executor,
        options=server_options(),
        interceptors=[IdentityInterceptor()] if mtls else None,
    )
    pb_grpc.add_CoordinatorServicer_to_server(coordinator, server)
    pb_grpc.add_AnalystServicer_to_server(_AnalystServicer(handler), server)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for service in ("", *HEALTH_SERVICES):
        health.set(service, health_pb2.HealthCheckResponse.SERVING)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        executor.shutdown(wait=False)
        raise OperationalError(f"cannot listen on {address}; is the port in use?") from exc
    if not port:
        executor.shutdown(wait=False)
        raise OperationalError(f"cannot listen on {address}; is the port in use?")
    server.start()
    host = address.rsplit(":", 1)[0]
    log.info("hub listening on %s:%d", host, port)
    return RunningServer(server, executor, host, int(port), coordinator, health)
