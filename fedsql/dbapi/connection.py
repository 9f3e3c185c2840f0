"""DB-API connection to a fedsql hub, or to an embedded demo federation started for it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from fedsql import errors
from fedsql.dbapi.profiles import DEMO, EMBEDDED, Endpoint, resolve
from fedsql.errors import InterfaceError
from fedsql.secagg.analyst_query import SignedQuery
from fedsql.secagg.identity import IdentityKey
from fedsql.transport.client import AnalystClient
from fedsql.transport.messages import BudgetReply, CatalogReply, CatalogTable, ExecuteRequest
from fedsql.transport.tls import channel_credentials, read_identity

if TYPE_CHECKING:
    from fedsql.dbapi.cursor import Cursor
    from fedsql.demo.federation import DemoFederation

#: Deadline of each query when neither the caller nor the profile sets one, in seconds.
DEFAULT_TIMEOUT_S = 300.0
#: The analyst name used when neither the caller nor the profile names one.
DEFAULT_ANALYST = "analyst"


class Connection:
    """A session with one federation. Queries are read-only, so ``commit`` does nothing.

    The PEP 249 exception classes are attributes, so ``conn.ProgrammingError`` works. A
    connection may be shared by threads (each with its own cursor).
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
        signing_key: IdentityKey | None = None,
    ) -> None:
        """Wrap an analyst client; use :func:`connect` instead of calling this."""
        self._client = client
        self._owned = owned
        self._signing_key = signing_key
        self._fed_id: str | None = None
        #: The analyst budgets are charged to.
        self.analyst = analyst
        #: Default epsilon of this connection's queries (None: the federation's default).
        self.epsilon = epsilon
        self.closed = False

    @property
    def target(self) -> str:
        """The hub's address (for the embedded demo, its loopback address)."""
        return self._client.target

    @property
    def client(self) -> AnalystClient:
        """The transport client (raises once the connection is closed)."""
        if self.closed:
            raise InterfaceError("the connection is closed")
        return self._client

    def sign(self, request: ExecuteRequest) -> ExecuteRequest:
        """``request`` signed with the analyst's key (unchanged without one).

        The statement names the federation (asked of the hub once), the analyst, the SQL, its
        parameters, the epsilon asked for, a fresh nonce and the time; every clinic checks it.
        """
        if self._signing_key is None:
            return request
        if self._fed_id is None:
            self._fed_id = self.client.status().fed_id
        statement = SignedQuery.create(
            self._fed_id,
            request.analyst,
            request.sql,
            request.params_json,
            request.epsilon,
            time.time_ns() // 1_000_000,
        ).sign(self._signing_key)
        return dataclasses.replace(
            request,
            nonce=statement.nonce,
            issued_ms=statement.issued_ms,
            signature=statement.signature,
        )

    def cursor(self) -> Cursor:
        """A new cursor on this connection."""
        from fedsql.dbapi.cursor import Cursor

        if self.closed:
            raise InterfaceError("the connection is closed")
        return Cursor(self)

    def catalog(self) -> CatalogReply:
        """The federation's queryable tables and columns: those every connected clinic shares.

        Raises:
            fedsql.errors.OperationalError: The hub cannot be reached.
        """
        return self.client.catalog()

    def budget(self) -> BudgetReply:
        """What this connection's analyst has spent and has left at each connected clinic.

        Each clinic answers from its own ledger (exact decimal epsilon strings); a clinic that
        does not answer in time has ``reported`` False and no figures.

        Raises:
            fedsql.errors.OperationalError: The hub cannot be reached.
        """
        return self.client.budget(self.analyst)

    def table(self, name: str) -> CatalogTable | None:
        """One queryable table of :meth:`catalog` by name (case-insensitive), or None."""
        low = name.lower()
        return next((t for t in self.catalog().tables if t.name == low), None)

    def ping(self) -> None:
        """Check that the hub answers.

        Raises:
            fedsql.errors.HubUnreachable: It does not.
        """
        self.client.status()

    def commit(self) -> None:
        """Nothing to commit: fedsql is read-only."""
        if self.closed:
            raise InterfaceError("the connection is closed")

    def rollback(self) -> None:
        """Nothing to roll back: fedsql is read-only."""
        if self.closed:
            raise InterfaceError("the connection is closed")

    def close(self) -> None:
        """Close the connection (and stop the embedded demo it started, if any); idempotent."""
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
    target: str | None = None,
    *,
    profile: str | None = None,
    analyst: str | None = None,
    epsilon: float | None = None,
    timeout_s: float | None = None,
    state_dir: str | Path | None = None,
    token: str | None = None,
    key: str | Path | None = None,
) -> Connection:
    """Open a connection to a hub, to a hub named by a profile, or to the embedded demo.

    Args:
        target: ``"demo"`` starts the embedded demo federation in this process (``"omop"``
            the embedded OMOP example federation of ``examples/omop``); ``host:port``
            is a hub; ``fedsql://[analyst@]host:port[/?epsilon=..&timeout_s=..&profile=..]``
            is a hub with defaults. None: the ``profile``, else the ``default`` profile if the
            profile file defines one, else the demo.
        profile: A profile of ``~/.config/fedsql/profiles.toml`` (see
            :mod:`fedsql.dbapi.profiles`); explicit arguments override its values.
        analyst: The analyst name budgets are charged to.
        epsilon: Default epsilon per query (None: the federation's default).
        timeout_s: Deadline of each query, in seconds.
        token: The analyst's API token for the hub (``fedsql hub analyst add NAME``).
        key: The analyst's signing key file (``fedsql analyst keygen``); every query is then
            signed, and clinics of a federation that enrols analysts take only signed queries.
        state_dir: With an embedded federation, a folder to keep its ledgers between runs.

    Returns:
        An open connection: mutual TLS with a profile's ``tls``, plaintext gRPC to loopback
        hubs otherwise.

    Raises:
        fedsql.errors.ConfigError: The profile does not exist or the profile file is invalid.
        fedsql.errors.InterfaceError: The target is a malformed URL or an argument is invalid.
    """
    if epsilon is not None and not epsilon > 0:
        raise InterfaceError("epsilon must be a positive number")
    endpoint = resolve(
        target,
        Endpoint(
            analyst=analyst,
            epsilon=epsilon,
            timeout_s=timeout_s,
            profile=profile,
            token=token,
            key=None if key is None else Path(key),
        ),
    )
    hub = endpoint.hub or DEMO
    owned = None
    if hub in EMBEDDED:
        from fedsql.demo.federation import DemoFederation

        owned = DemoFederation(state_dir=state_dir, dataset=hub)
        hub = owned.target
    analyst_name = endpoint.analyst
    try:
        credentials = None
        if endpoint.tls is not None:
            credentials = channel_credentials(endpoint.tls)
            analyst_name = analyst_name or read_identity(endpoint.tls).name
        client = AnalystClient(
            hub,
            credentials,
            timeout_s=endpoint.timeout_s or DEFAULT_TIMEOUT_S,
            server_name=endpoint.server_name,
            token=endpoint.token,
        )
        signing_key = None if endpoint.key is None else IdentityKey.load(endpoint.key)
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    return Connection(
        client,
        analyst=analyst_name or DEFAULT_ANALYST,
        epsilon=endpoint.epsilon,
        owned=owned,
        signing_key=signing_key,
    )
