"""DB-API cursor: runs one private query at a time and holds its rows and privacy report."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fedsql.dbapi.types import type_code
from fedsql.errors import InterfaceError, ProgrammingError
from fedsql.sql.params_codec import encode_params
from fedsql.transport.messages import ExecuteRequest, SiloStatus

if TYPE_CHECKING:
    from fedsql.dbapi.connection import Connection

Description = tuple[str, str, None, None, None, None, bool]


@dataclass(frozen=True)
class PrivacyReport:
    """What a query cost and how precise its answer is.

    ``stats`` has one row per result row: for each released column ``<col>__sigma`` (noise
    standard deviation), ``<col>__lo`` and ``<col>__hi`` (95% interval), and ``__suppressed``.
    """

    epsilon: str
    delta: float
    rho: float | None
    noise: bool
    min_group_size: int
    silos: tuple[SiloStatus, ...]
    stats: pa.Table
    details: dict[str, Any] = field(default_factory=dict)

    def budget_left(self) -> dict[str, str]:
        """Epsilon left at each clinic that reported it."""
        return {s.silo_id: s.budget_remaining for s in self.silos if s.budget_remaining}

    def answered(self) -> list[str]:
        """Clinics whose data is in the answer."""
        return [s.silo_id for s in self.silos if s.status == "answered"]


def _read_ipc(blob: bytes) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(blob)) as reader:
        return reader.read_all()


class Cursor:
    """Runs queries through its connection; fetch methods read the last result."""

    def __init__(self, connection: Connection) -> None:
        """A cursor on ``connection``."""
        self.connection = connection
        self.arraysize = 1
        self._table: pa.Table | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._pos = 0
        self.description: list[Description] | None = None
        self.rowcount = -1
        self.privacy: PrivacyReport | None = None
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            raise InterfaceError("the cursor is closed")
        if self.connection.closed:
            raise InterfaceError("the connection is closed")

    def execute(
        self,
        operation: str,
        parameters: Sequence[object] | Mapping[str, object] | None = None,
        *,
        epsilon: float | None = None,
    ) -> Cursor:
        """Run one query with parameters bound as literals (never by string formatting).

        Args:
            operation: One SELECT statement.
            parameters: Values for ``?`` placeholders (sequence) or ``$name`` ones (mapping).
            epsilon: This query's privacy cost (default: the connection's, then the federation's).

        Returns:
            This cursor.
        """
        self._check()
        eps = epsilon if epsilon is not None else self.connection.epsilon
        request = ExecuteRequest(
            sql=operation,
            params_json=encode_params(parameters),
            epsilon="" if eps is None else repr(float(eps)),
            analyst=self.connection.analyst,
            explain_only=False,
        )
        reply = self.connection.client.execute(request)
        table = _read_ipc(reply.result_ipc)
        stats = _read_ipc(reply.stats_ipc)
        report = json.loads(reply.report_json)
        self._table = table
        self._rows = [tuple(r.values()) for r in table.to_pylist()]
        self._pos = 0
        self.rowcount = len(self._rows)
        self.description = [
            (f.name, type_code(f.type), None, None, None, None, True) for f in table.schema
        ]
        self.privacy = PrivacyReport(
            epsilon=reply.epsilon_spent,
            delta=float(report["delta"]),
            rho=report.get("rho"),
            noise=bool(report["noise"]),
            min_group_size=int(report["min_group_size"]),
            silos=tuple(reply.silos),
            stats=stats,
            details=report,
        )
        return self

    def explain(
        self,
        operation: str,
        parameters: Sequence[object] | Mapping[str, object] | None = None,
        *,
        epsilon: float | None = None,
    ) -> list[str]:
        """The plan of a query, without running it or spending anything."""
        self._check()
        eps = epsilon if epsilon is not None else self.connection.epsilon
        reply = self.connection.client.execute(
            ExecuteRequest(
                sql=operation,
                params_json=encode_params(parameters),
                epsilon="" if eps is None else repr(float(eps)),
                analyst=self.connection.analyst,
                explain_only=True,
            )
        )
        return list(reply.explain)

    def executemany(
        self, operation: str, seq_of_parameters: Sequence[Sequence[object] | Mapping[str, object]]
    ) -> Cursor:
        """Run the query once per parameter set; the last result stays readable."""
        for params in seq_of_parameters:
            self.execute(operation, params)
        return self

    def _need_result(self) -> None:
        self._check()
        if self._table is None:
            raise ProgrammingError("no query has been executed on this cursor")

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None."""
        self._need_result()
        if self._pos >= len(self._rows):
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """Up to ``size`` (default ``arraysize``) next rows."""
        self._need_result()
        n = self.arraysize if size is None else size
        rows = self._rows[self._pos : self._pos + n]
        self._pos += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All remaining rows."""
        self._need_result()
        rows = self._rows[self._pos :]
        self._pos = len(self._rows)
        return rows

    def fetch_arrow_table(self) -> pa.Table:
        """The whole result as an Arrow table."""
        self._need_result()
        assert self._table is not None
        return self._table

    def fetch_record_batch(self) -> pa.RecordBatchReader:
        """The whole result as an Arrow record batch reader."""
        table = self.fetch_arrow_table()
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    def fetch_df(self) -> Any:
        """The whole result as a pandas DataFrame (needs pandas installed)."""
        try:
            import pandas  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            raise InterfaceError("fetch_df needs pandas; pip install pandas") from None
        return self.fetch_arrow_table().to_pandas()

    def setinputsizes(self, sizes: object) -> None:
        """Accepted and ignored (PEP 249)."""

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """Accepted and ignored (PEP 249)."""

    def close(self) -> None:
        """Close the cursor."""
        self.closed = True

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """Iterate over the remaining rows."""
        while (row := self.fetchone()) is not None:
            yield row
