"""Analyst API tokens on the wire: the header a client sends and the hub's check of it.

A hub that issues tokens (``fedsql hub analyst add NAME``) serves its Analyst calls only to
clients sending ``authorization: Bearer <token>`` for a known analyst, and only for requests in
that analyst's own name. The hub resolves tokens through a callable (it stores only their
hashes); this module never sees the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc

from fedsql.errors import ProtocolError
from fedsql.transport.authorize import SERVICE_ROLES, check_analyst_name, wrap_checked
from fedsql.transport.status import abort_with_error

__all__ = ["TOKEN_HEADER", "TokenInterceptor"]

log = logging.getLogger(__name__)

#: The metadata key carrying ``Bearer <token>`` (gRPC metadata keys are lower case).
TOKEN_HEADER = "authorization"
_BEARER = "Bearer "


def _token(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == TOKEN_HEADER and isinstance(value, str) and value.startswith(_BEARER):
            return value[len(_BEARER) :].strip()
    return ""


class TokenInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses Analyst calls without a valid token, or in another analyst's name.

    Args:
        analyst_for_token: The analyst a token belongs to, or None for an unknown token.
    """

    def __init__(self, analyst_for_token: Callable[[str], str | None]) -> None:
        self._analyst_for_token = analyst_for_token

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        """Wrap the Analyst service's handlers with the token check; others pass through.

        Args:
            continuation: Gives the handler gRPC would otherwise use.
            handler_call_details: The call's method name and metadata.

        Returns:
            The (wrapped) handler, or None for a method the server does not serve.
        """
        handler = continuation(handler_call_details)
        service = handler_call_details.method.lstrip("/").split("/", 1)[0]
        if handler is None or SERVICE_ROLES.get(service) != "analyst":
            return handler
        token = _token(handler_call_details.invocation_metadata)
        name = self._analyst_for_token(token) if token else None

        def check(context: Any, request: Any = None) -> None:
            if name is None:
                message = (
                    "this hub serves analysts with an API token only; ask its admin for one "
                    "(fedsql hub analyst add NAME) and put it in your profile"
                    if not token
                    else "the API token is not valid here (unknown or revoked)"
                )
                log.warning("refused an analyst call from %s: %s", context.peer(), message)
                abort_with_error(context, ProtocolError(message), grpc.StatusCode.PERMISSION_DENIED)
            if request is not None:
                check_analyst_name(context, name, request, "API token")

        return wrap_checked(handler, check)
