"""DB-API cursor: runs one private query at a time and holds its rows and privacy report."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fedsql.dbapi.privacy import PrivacyReport
from fedsql.dbapi.types import type_code
from fedsql.errors import InterfaceError, NotSupportedError, ProgrammingError
from fedsql.sql.params_codec import encode_params
from fedsql.train import Model, models_from_table
from fedsql.transport.messages import ExecuteProgress, ExecuteRequest, SiloStatus

if TYPE_CHECKING:
    from fedsql.dbapi.connection import Connection

__all__ = ["Cursor", "Description", "Parameters", "PrivacyReport", "ProgressCallback"]

#: One ``description`` entry: name, type code, display size, internal size, precision, scale,
#: null_ok (PEP 249). Only name, type code and null_ok are known.
Description = tuple[str, str, None, None, None, None, bool]
#: A sequence for ``?`` / ``$1`` placeholders or a mapping for ``$name`` / ``:name`` ones.
Parameters = Sequence[object] | Mapping[str, object]
#: Called with each cohort member's status whenever one changes while a query runs.
ProgressCallback = Callable[[tuple[SiloStatus, ...]], None]


def _read_ipc(blob: bytes) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(blob)) as reader:
        return reader.read_all()


class Cursor:
    """Runs queries through its connection; fetch methods read the last result.

    Every :meth:`execute` is one private query: it spends epsilon at every answering clinic, and
    :attr:`privacy` says how much and how precise the answer is.
    """

    def __init__(self, connection: Connection) -> None:
        """A cursor on ``connection``; use :meth:`Connection.cursor` instead."""
        self.connection = connection
        #: Rows :meth:`fetchmany` returns by default (PEP 249).
        self.arraysize = 1
        self._table: pa.Table | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._pos = 0
        #: Name and type code of each result column, or None before a result (PEP 249).
        self.description: list[Description] | None = None
        #: Rows of the last result, or -1 before a result (PEP 249).
        self.rowcount = -1
        #: Always None: fedsql never inserts (PEP 249 extension).
        self.lastrowid: int | None = None
        #: The privacy report of the last result, or None before one.
        self.privacy: PrivacyReport | None = None
        self.closed = False

    @property
    def rownumber(self) -> int | None:
        """Index of the next row to fetch, or None before a result (PEP 249 extension)."""
        return None if self._table is None else self._pos

    def _check(self) -> None:
        if self.closed:
            raise InterfaceError("the cursor is closed")
        if self.connection.closed:
            raise InterfaceError("the connection is closed")

    def _request(
        self, operation: str, parameters: Parameters | None, epsilon: float | None, explain: bool
    ) -> ExecuteRequest:
        if not isinstance(operation, str):
            raise ProgrammingError(f"the query must be a string, not {type(operation).__name__}")
        eps = epsilon if epsilon is not None else self.connection.epsilon
        request = ExecuteRequest(
            sql=operation,
            params_json=encode_params(parameters),
            epsilon="" if eps is None else repr(float(eps)),
            analyst=self.connection.analyst,
            explain_only=explain,
        )
        return request if explain else self.connection.sign(request)

    def _reset(self) -> None:
        self._table = None
        self._rows = []
        self._pos = 0
        self.description = None
        self.rowcount = -1
        self.privacy = None

    def execute(
        self,
        operation: str,
        parameters: Parameters | None = None,
        *,
        epsilon: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Cursor:
        """Run one query with parameters bound as literals in its syntax tree.

        Parameters never become SQL text: the planner replaces each placeholder node by a literal
        node, so a value is always a value, whatever quotes or comments it holds.

        Args:
            operation: One SELECT statement.
            parameters: Values for ``?`` / ``$1`` placeholders (a sequence) or ``$name`` /
                ``:name`` ones (a mapping).
            epsilon: This query's privacy cost (default: the connection's, then the federation's).
            on_progress: Called with every clinic's status each time one changes while the query
                runs (waiting, running, uploaded, answered, refused or dropped).

        Returns:
            This cursor.

        Raises:
            NotSupportedError: DDL, DML and other statements a read-only engine never runs.
            ProgrammingError: The query is malformed or refused (QueryRejected, UnknownObject).
            DataError: A parameter cannot be bound.
            OperationalError: Budgets, too few clinics, or an unreachable hub (HubUnreachable).
        """
        self._check()
        self._reset()
        request = self._request(operation, parameters, epsilon, explain=False)
        client = self.connection.client
        if on_progress is None:
            reply = client.execute(request)
        else:
            callback = on_progress

            def relay(event: ExecuteProgress) -> None:
                callback(event.silos)

            reply = client.execute_stream(request, relay)
        table = _read_ipc(reply.result_ipc)
        self._table = table
        columns = [column.to_pylist() for column in table.columns]
        self._rows = list(zip(*columns, strict=True)) if columns else []
        self.rowcount = len(self._rows)
        self.description = [
            (f.name, type_code(f.type), None, None, None, None, True) for f in table.schema
        ]
        self.privacy = PrivacyReport.from_reply(reply, _read_ipc(reply.stats_ipc))
        return self

    def explain(
        self,
        operation: str,
        parameters: Parameters | None = None,
        *,
        epsilon: float | None = None,
    ) -> list[str]:
        """The plan of a query, without running it or spending anything."""
        self._check()
        request = self._request(operation, parameters, epsilon, explain=True)
        return list(self.connection.client.execute(request).explain)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Parameters]) -> Cursor:
        """Run the query once per parameter set; the last result stays readable.

        Each run is a separate private query and spends its own epsilon.
        """
        self._check()
        for params in seq_of_parameters:
            self.execute(operation, params)
        return self

    def callproc(self, procname: str, parameters: Sequence[object] = ()) -> None:
        """fedsql has no stored procedures.

        Raises:
            NotSupportedError: Always.
        """
        self._check()
        raise NotSupportedError("fedsql has no stored procedures; run a SELECT with execute()")

    def nextset(self) -> None:
        """fedsql returns one result set per query.

        Raises:
            NotSupportedError: Always.
        """
        self._check()
        raise NotSupportedError("fedsql returns one result set per query")

    def _need_result(self) -> None:
        self._check()
        if self._table is None:
            raise ProgrammingError("no query has been executed on this cursor")

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None when none is left."""
        self._need_result()
        if self._pos >= len(self._rows):
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """Up to ``size`` (default :attr:`arraysize`) next rows; an empty list when none is left."""
        self._need_result()
        n = self.arraysize if size is None else size
        if n < 0:
            raise ProgrammingError("fetchmany size must not be negative")
        rows = self._rows[self._pos : self._pos + n]
        self._pos += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All remaining rows."""
        self._need_result()
        rows = self._rows[self._pos :]
        self._pos = len(self._rows)
        return rows

    def _take_table(self) -> pa.Table:
        self._need_result()
        assert self._table is not None
        rest = self._table.slice(self._pos)
        self._pos = len(self._rows)
        return rest

    def fetch_arrow_table(self) -> pa.Table:
        """The remaining rows as an Arrow table (all of them right after :meth:`execute`)."""
        return self._take_table()

    def fetch_models(self, column: str | None = None) -> list[Model]:
        """The fitted models of the remaining rows of a model query, one per group.

        Each model predicts locally on a DataFrame: ``cursor.fetch_models()[0].predict(df)``.
        Groups whose model is NULL (suppressed) are left out.

        Args:
            column: The model column; by default the result's only one.

        Returns:
            The models, each with its group's key values in ``group``.

        Raises:
            ProgrammingError: No query has been executed.
            DataError: The result holds no model column (or not ``column``).
        """
        return models_from_table(self._take_table(), column)

    def fetch_record_batch(self) -> pa.RecordBatchReader:
        """The remaining rows as an Arrow record batch reader."""
        table = self._take_table()
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    def fetch_df(self) -> Any:
        """The remaining rows as a pandas DataFrame (needs pandas installed)."""
        self._need_result()
        if importlib.util.find_spec("pandas") is None:
            raise InterfaceError("fetch_df needs pandas; pip install 'fedsql[analysis]'")
        return self._take_table().to_pandas()

    def setinputsizes(self, sizes: object) -> None:
        """Accepted and ignored (PEP 249)."""

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """Accepted and ignored (PEP 249)."""

    def close(self) -> None:
        """Close the cursor; later calls raise InterfaceError."""
        self.closed = True
        self._reset()

    def __enter__(self) -> Cursor:
        """Use as a context manager; the cursor closes on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the cursor."""
        self.close()

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """Iterate over the remaining rows."""
        return self

    def __next__(self) -> tuple[Any, ...]:
        """The next row (PEP 249 extension)."""
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row
