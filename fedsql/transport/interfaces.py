"""The transport-neutral interfaces hub, silo and analyst code program against.

``HubHandler`` is what the hub implements; the transport calls it. ``SiloChannel`` (the hub's view
of one connected silo), ``HubConnection`` (a silo's view of the hub) and ``AnalystConnection`` (an
analyst's view of the hub) are what the transport implements: over gRPC in
:mod:`fedsql.transport.server` and :mod:`fedsql.transport.client`, and in memory in
:mod:`fedsql.transport.memory`.

Threading contract, the same for every implementation:

- ``HubHandler.on_message`` and ``on_disconnect`` for one silo are called from one thread of that
  silo's stream, in arrival order, never concurrently with each other; different silos' calls
  may run concurrently. ``on_disconnect`` is called exactly once for each ``on_connect`` that
  returned, after the last ``on_message`` of that stream. ``execute``, ``execute_stream``,
  ``status`` and ``catalog`` run concurrently on the server's workers (the gRPC transport
  serves ``execute_stream`` and ``catalog``; the in-memory one does not). Handlers should
  return quickly and hand long work to their own threads: a slow ``on_message`` holds up that
  silo's later messages.
- ``SiloChannel.send`` and ``HubConnection.send`` never block: they encode (raising
  :class:`fedsql.errors.ProtocolError` for a malformed message) and queue. Messages queued after
  the stream ended are dropped; ``on_disconnect`` or ``HubConnection.closed`` says so.
- A ``HubConnection``'s ``on_message`` callback runs on the connection's reader thread; an
  exception it raises is logged and the stream carries on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from fedsql.errors import Error
from fedsql.transport.messages import (
    BudgetReply,
    BudgetRequest,
    CatalogReply,
    ExecuteProgress,
    ExecuteReply,
    ExecuteRequest,
    Hello,
    HubToSilo,
    SiloToHub,
    StatusReply,
    Welcome,
)

__all__ = ["AnalystConnection", "HubConnection", "HubHandler", "SiloChannel"]


class SiloChannel(Protocol):
    """The hub's side of one silo's stream."""

    @property
    def silo_id(self) -> str:
        """The silo's id, as its Hello gave it."""
        ...

    @property
    def closed(self) -> bool:
        """True once the stream ended or :meth:`close` was called."""
        ...

    def send(self, msg: HubToSilo) -> None:
        """Queue a message for the silo (thread-safe, never blocks).

        Args:
            msg: The message.

        Raises:
            ProtocolError: The message is malformed.
        """
        ...

    def close(self) -> None:
        """End the stream after the messages already queued; idempotent."""
        ...


class HubHandler(Protocol):
    """What the hub implements: the transport calls it for every stream event and analyst call."""

    def on_connect(self, hello: Hello, channel: SiloChannel) -> Welcome:
        """A silo opened its stream and said hello.

        Args:
            hello: The silo's first message.
            channel: Where to send it messages from now on.

        Returns:
            The Welcome sent to the silo before anything else.

        Raises:
            fedsql.errors.Error: To refuse the silo: its stream is closed with
                ``INVALID_ARGUMENT`` (a malformed or inconsistent Hello: ProtocolError,
                InterfaceError, DataError, ProgrammingError) or ``PERMISSION_DENIED`` (any other
                error), and the silo's client raises the same error class with the message.
        """
        ...

    def on_message(self, silo_id: str, msg: SiloToHub) -> None:
        """A connected silo sent a message (never a second Hello: the transport refuses those,
        and messages naming another silo, by closing the stream with ``INVALID_ARGUMENT``)."""
        ...

    def on_disconnect(self, silo_id: str) -> None:
        """The silo's stream ended, for whatever reason. Called once per successful connect."""
        ...

    def execute(self, req: ExecuteRequest) -> ExecuteReply:
        """Run (or explain) an analyst's query.

        Raises:
            fedsql.errors.Error: Re-raised at the analyst's client as the same class.
        """
        ...

    def status(self) -> StatusReply:
        """Which silos are connected.

        Raises:
            fedsql.errors.Error: Re-raised at the analyst's client as the same class.
        """
        ...

    def budget(self, req: BudgetRequest) -> BudgetReply:
        """What the analyst has spent and has left at each connected clinic.

        Raises:
            fedsql.errors.Error: Re-raised at the analyst's client as the same class.
        """
        ...

    def catalog(self) -> CatalogReply:
        """The tables and columns an analyst can query now.

        Raises:
            fedsql.errors.Error: Re-raised at the analyst's client as the same class.
        """
        ...

    def execute_stream(self, req: ExecuteRequest) -> Iterator[ExecuteProgress | ExecuteReply]:
        """Run a query like :meth:`execute`, yielding progress while it runs.

        Yields:
            :class:`ExecuteProgress` events whenever a cohort member's status changes, then the
            :class:`ExecuteReply` last.

        Raises:
            fedsql.errors.Error: Re-raised at the analyst's client as the same class (events
                already yielded have been delivered).
        """
        ...


class HubConnection(Protocol):
    """A silo's side of its stream to the hub."""

    @property
    def closed(self) -> bool:
        """True once the stream ended, from either side."""
        ...

    @property
    def error(self) -> Error | None:
        """Why the stream ended, if it ended abnormally (None while open or after a clean end)."""
        ...

    def send(self, msg: SiloToHub) -> None:
        """Queue a message for the hub (thread-safe, never blocks).

        Args:
            msg: The message.

        Raises:
            ProtocolError: The message is malformed.
        """
        ...

    def welcome(self, timeout: float | None = None) -> Welcome:
        """Wait for the hub's Welcome (the answer to the Hello).

        Args:
            timeout: Seconds to wait; None waits as long as the stream lives.

        Returns:
            The Welcome. It is not passed to ``on_message``; later Welcomes (roster changes) are.

        Raises:
            fedsql.errors.Error: The hub refused the silo (the class the hub raised), could not be
                reached (OperationalError), or sent something else first (ProtocolError).
            fedsql.errors.OperationalError: No Welcome within ``timeout``.
        """
        ...

    def close(self, grace: float = 1.0) -> None:
        """End the stream, first giving queued messages up to ``grace`` seconds to go out."""
        ...

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the stream has ended; True if it has."""
        ...


class AnalystConnection(Protocol):
    """An analyst's calls to the hub."""

    def execute(self, req: ExecuteRequest, *, timeout_s: float | None = None) -> ExecuteReply:
        """Run or explain a query.

        Raises:
            fedsql.errors.Error: The class the hub raised, or OperationalError if the hub could
                not be reached or did not answer in time.
        """
        ...

    def status(self, *, timeout_s: float | None = None) -> StatusReply:
        """Which silos are connected.

        Raises:
            fedsql.errors.Error: As :meth:`execute`.
        """
        ...

    def budget(self, analyst: str, *, timeout_s: float | None = None) -> BudgetReply:
        """What ``analyst`` has spent and has left at each connected clinic.

        Raises:
            fedsql.errors.Error: As :meth:`execute`.
        """
        ...

    def close(self) -> None:
        """Release the connection; idempotent."""
        ...
