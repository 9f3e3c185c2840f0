"""DB-API connection to a fedsql hub, or to an embedded demo federation started for it."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from fedsql import errors
from fedsql.errors import InterfaceError
from fedsql.transport.client import AnalystClient

if TYPE_CHECKING:
    from fedsql.dbapi.cursor import Cursor
    from fedsql.demo.federation import DemoFederation

DEMO = "demo"


class Connection:
    """A session with one federation. Queries are read-only, so ``commit`` does nothing.

    The PEP 249 exception classes are attributes, so ``conn.ProgrammingError`` works.
    """

    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(
        self,
        client: AnalystClient,
        *,
        analyst: str,
        epsilon: float | None,
        owned: DemoFederation | None = None,
    ) -> None:
        """Wrap an analyst client; use :func:`connect` instead of calling this."""
        self._client = client
        self._owned = owned
        self.analyst = analyst
        self.epsilon = epsilon
        self.closed = False

    @property
    def client(self) -> AnalystClient:
        """The transport client (raises once the connection is closed)."""
        if self.closed:
            raise InterfaceError("the connection is closed")
        return self._client

    def cursor(self) -> Cursor:
        """A new cursor on this connection."""
        from fedsql.dbapi.cursor import Cursor

        if self.closed:
            raise InterfaceError("the connection is closed")
        return Cursor(self)

    def commit(self) -> None:
        """Nothing to commit: fedsql is read-only."""
        if self.closed:
            raise InterfaceError("the connection is closed")

    def rollback(self) -> None:
        """Nothing to roll back: fedsql is read-only."""
        if self.closed:
            raise InterfaceError("the connection is closed")

    def close(self) -> None:
        """Close the connection (and stop the embedded demo it started, if any)."""
        if self.closed:
            return
        self.closed = True
        self._client.close()
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> Connection:
        """Use as a context manager; the connection closes on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection."""
        self.close()


def connect(
    target: str = DEMO,
    *,
    analyst: str = "analyst",
    epsilon: float | None = None,
    timeout_s: float = 300.0,
    state_dir: str | Path | None = None,
) -> Connection:
    """Open a connection.

    Args:
        target: ``"demo"`` starts the embedded demo federation in this process; otherwise the
            hub's ``host:port``.
        analyst: The analyst name budgets are charged to.
        epsilon: Default epsilon per query (None: the federation's default).
        timeout_s: Deadline for each query.
        state_dir: With ``"demo"``, a folder to keep the silos' ledgers between runs.

    Returns:
        An open connection.

    Raises:
        fedsql.errors.OperationalError: The hub cannot be reached.
    """
    owned = None
    if target == DEMO:
        from fedsql.demo.federation import DemoFederation

        owned = DemoFederation(state_dir=state_dir)
        target = owned.target
    try:
        client = AnalystClient(target, timeout_s=timeout_s)
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    return Connection(client, analyst=analyst, epsilon=epsilon, owned=owned)
