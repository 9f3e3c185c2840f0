"""Which verified peers may call which of the hub's RPCs, on a hub serving mutual TLS.

TLS has already refused any client without a certificate of the federation's CA, with an expired
one, or with a hub's certificate (its key usage is ``serverAuth`` only). What TLS cannot know is
the federation's roles: :class:`IdentityInterceptor` admits only silo certificates to
``Coordinator`` and only analyst certificates to ``Analyst``, and an analyst's certificate only
for requests in its own name. :func:`check_silo_hello` binds a silo stream to the silo its
certificate names; every later message of the stream is checked against the Hello. Refusals end
the call with ``PERMISSION_DENIED`` and a :class:`~fedsql.errors.ProtocolError` naming both
identities.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from fedsql.errors import ProtocolError
from fedsql.transport.proto import fedsql_pb2 as pb
from fedsql.transport.status import abort_with_error
from fedsql.transport.tls import peer_identity
from fedsql.transport.tls_identity import PeerIdentity, Role

__all__ = [
    "IdentityInterceptor",
    "check_analyst_name",
    "check_silo_hello",
    "require_role",
    "wrap_checked",
]

log = logging.getLogger(__name__)

#: The role each of the hub's services serves; calls to any other service are refused.
SERVICE_ROLES: dict[str, Role] = {
    pb.DESCRIPTOR.services_by_name["Coordinator"].full_name: "silo",
    pb.DESCRIPTOR.services_by_name["Analyst"].full_name: "analyst",
}

#: The standard gRPC health service, open to every verified peer.
HEALTH_SERVICE = "grpc.health.v1.Health"

#: The request field that names the analyst a call acts for.
ANALYST_FIELD = "analyst"


def _a(role: str) -> str:
    """``role`` with its indefinite article.

    >>> _a("analyst"), _a("silo")
    ('an analyst', 'a silo')
    """
    return f"{'an' if role[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {role}"


def _deny(context: Any, message: str) -> NoReturn:
    log.warning("refused a call from %s: %s", context.peer(), message)
    abort_with_error(context, ProtocolError(message), grpc.StatusCode.PERMISSION_DENIED)


def require_role(context: Any, role: Role, service: str) -> PeerIdentity:
    """The caller's verified identity, if it has ``role``; otherwise the call is refused.

    Args:
        context: The call's ``grpc.ServicerContext``.
        role: The role the service serves.
        service: The service's name (for the message).

    Returns:
        The caller's identity.

    Raises:
        Exception: gRPC's abort, ending the call with ``PERMISSION_DENIED``.
    """
    identity = peer_identity(context)
    if identity is None:
        _deny(
            context,
            f"{service} needs a client certificate naming {_a(role)}, from the federation's CA",
        )
    if identity.role != role:
        _deny(context, f"{_a(identity.role)} certificate ({identity}) cannot call {service}")
    return identity


def check_silo_hello(context: Any, silo_id: str) -> None:
    """Refuse a silo stream whose Hello names another silo than its certificate.

    Args:
        context: The stream's ``grpc.ServicerContext``.
        silo_id: The silo id of the stream's Hello.

    Raises:
        Exception: gRPC's abort, ending the stream with ``PERMISSION_DENIED``.
    """
    identity = require_role(context, "silo", "the silo stream")
    if identity.name != silo_id:
        _deny(
            context,
            f"the client certificate is for silo {identity.name}; it cannot connect as silo "
            f"{silo_id}",
        )


def check_analyst_name(context: Any, name: str, request: Any, credential: str) -> None:
    """Refuse a request that names another analyst than the caller's credential.

    Args:
        context: The call's ``grpc.ServicerContext``.
        name: The analyst the credential belongs to.
        request: The protobuf request (only those with an ``analyst`` field are checked).
        credential: What proved ``name`` ("client certificate", "token"), for the message.

    Raises:
        Exception: gRPC's abort, ending the call with ``PERMISSION_DENIED``.
    """
    descriptor = getattr(request, "DESCRIPTOR", None)
    if descriptor is None or ANALYST_FIELD not in descriptor.fields_by_name:
        return
    claimed = getattr(request, ANALYST_FIELD)
    if claimed != name:
        _deny(
            context,
            f"the {credential} is for analyst {name}; it cannot act as analyst "
            f"{claimed or '(none)'}",
        )


class IdentityInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call whose client certificate does not have the role its service serves."""

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        """Wrap the method's handler with the identity checks of its service.

        Args:
            continuation: Gives the handler gRPC would otherwise use.
            handler_call_details: The call's method name and metadata.

        Returns:
            The wrapped handler, or None for a method the server does not serve.
        """
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        service = method.lstrip("/").split("/", 1)[0]
        if service == HEALTH_SERVICE:
            # Any peer the handshake verified (a certificate of the federation's CA) may ask
            # whether the hub is serving; the answer names no one and carries no data.
            return handler
        role = SERVICE_ROLES.get(service)
        short = service.rsplit(".", 1)[-1]

        def check(context: Any, request: Any = None) -> None:
            if role is None:
                _deny(context, f"{short} is not served to federation peers")
            identity = require_role(context, role, short)
            if role == "analyst" and request is not None:
                check_analyst_name(context, identity.name, request, "client certificate")

        return wrap_checked(handler, check)


def wrap_checked(handler: Any, check: Callable[..., None]) -> Any:
    """``handler`` with ``check(context, request)`` run before every call it serves.

    Streaming requests are checked once with the context alone (``check(context)``).

    Args:
        handler: A gRPC method handler.
        check: Aborts the call when it must be refused.

    Returns:
        The wrapped handler, of the same kind.
    """
    common = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        unary_unary = handler.unary_unary

        def checked_unary_unary(request: Any, context: Any) -> Any:
            check(context, request)
            return unary_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(checked_unary_unary, **common)
    if handler.unary_stream is not None:
        unary_stream = handler.unary_stream

        def checked_unary_stream(request: Any, context: Any) -> Iterator[Any]:
            check(context, request)
            return iter(unary_stream(request, context))

        return grpc.unary_stream_rpc_method_handler(checked_unary_stream, **common)
    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        def checked_stream_unary(requests: Iterator[Any], context: Any) -> Any:
            check(context)
            return stream_unary(requests, context)

        return grpc.stream_unary_rpc_method_handler(checked_stream_unary, **common)
    stream_stream = handler.stream_stream

    def checked_stream_stream(requests: Iterator[Any], context: Any) -> Iterator[Any]:
        check(context)
        return iter(stream_stream(requests, context))

    return grpc.stream_stream_rpc_method_handler(checked_stream_stream, **common)
