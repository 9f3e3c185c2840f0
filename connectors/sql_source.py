"""What every SQL database source shares: connections, bound relations, checks, pushdown runs.

Subclasses say how to connect (as a read-only session), how to read Arrow and column types, and
which dialect, keyed hash and row identity their engine has. Driver errors are never echoed:
their messages can hold row values. They are logged by class name and turned into the errors
of :mod:`fedsql.errors` that name the federated table.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pyarrow as pa
from sqlglot import exp

from connectors.binding_sql import (
    bound_select,
    mapped_column,
    raw_select,
    source_column,
    source_relation,
)
from connectors.transpile import SaltedHash, transpile_partial, uses_row_cap
from fedsql.catalog import ColumnBinding, Contract, SourceSpec, TableBinding
from fedsql.errors import ConfigError, InternalError, QueryRejected, QueryTimeout

log = logging.getLogger(__name__)

Rows = tuple[list[str], list[tuple[Any, ...]]]
#: Stands for the salt in a cached rewrite (a literal no partial query holds otherwise).
SALT_MARK = 7_919_207_151_311_402_311


def arrow_family(dtype: pa.DataType) -> str:
    """The type family of an Arrow type, as the start-up checks compare them.

    >>> arrow_family(pa.int32()), arrow_family(pa.large_string()), arrow_family(pa.date32())
    ('integer', 'string', 'date')
    """
    checks = (
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_integer, "integer"),
        (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "decimal"),
        (pa.types.is_string, "string"),
        (pa.types.is_large_string, "string"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "timestamp"),
    )
    for check, family in checks:
        if check(dtype):
            return family
    if str(dtype) == "string_view":
        return "string"
    return str(dtype)


class SqlConnector(ABC):
    """A SQL database source: start-up checks, snapshots and pushdown over DB-API connections.

    Args:
        spec: The policy's ``[source]``.
        contract: The federation contract.
        shared: The shared tables and columns.
        password: The password, if the source needs one.

    Raises:
        ConfigError: The source cannot be reached, or refuses the credentials.
    """

    #: sqlglot dialect of the source.
    dialect: ClassVar[str] = ""
    #: Whether partial queries can run in the source.
    supports_pushdown: bool = True
    #: Number of partial queries remembered in :attr:`sent`.
    SENT_KEPT: ClassVar[int] = 64

    def __init__(
        self,
        spec: SourceSpec,
        contract: Contract,
        shared: Mapping[str, tuple[str, ...]],
        password: str | None,
    ) -> None:
        self.spec = spec
        self.contract = contract
        self.shared = dict(shared)
        self.password = password
        #: The SQL of the last partial queries sent to the source (for audit and tests).
        self.sent: deque[str] = deque(maxlen=self.SENT_KEPT)
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._families: dict[str, dict[str, str]] = {}
        self._compiled: dict[str, str] = {}
        self._closed = False
        with self._connection():
            pass

    # -- what subclasses provide ------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection, already a read-only session."""
        raise NotImplementedError

    @abstractmethod
    def _arrow(self, conn: Any, sql: str) -> pa.Table:
        """The result of ``sql`` as an Arrow table."""
        raise NotImplementedError

    @abstractmethod
    def _describe(self, conn: Any, binding: TableBinding) -> dict[str, str]:
        """Column -> type family of the bound relation."""
        raise NotImplementedError

    def _salted_hash(self) -> SaltedHash:
        """The keyed row order of pushdown (sources that run partial queries only)."""
        raise NotImplementedError

    def _relation(self, binding: TableBinding) -> exp.Expr:
        """The bound source table or query as a FROM item."""
        return source_relation(binding, self.dialect)

    def _row_id(self, binding: TableBinding) -> exp.Expr:
        """A per-row identity inside the bound relation (for the keyed row order)."""
        return exp.Window(this=exp.RowNumber())

    def _set_timeout(self, cursor: Any, timeout_s: float) -> None:
        """Limit the next statement's run time (pushdown sources only)."""
        raise NotImplementedError

    def _is_timeout(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the source stopping a statement at its limit (pushdown only)."""
        raise NotImplementedError

    def _compile(self, conn: Any, sql: str) -> None:
        """Have the source parse and plan ``sql`` without running it."""
        cursor = conn.cursor()
        try:
            cursor.execute("EXPLAIN " + sql)
            cursor.fetchall()
        finally:
            cursor.close()

    @abstractmethod
    def _connect_error(self, exc: BaseException) -> ConfigError:
        """The start-up error for a failed connection: unreachable, or credentials refused."""
        raise NotImplementedError

    # -- connections ----------------------------------------------------------------------------

    @property
    def tables_served(self) -> str:
        """The federated tables this source serves, for messages."""
        return ", ".join(self.shared) or "none"

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            try:
                conn = self._connect()
            except ConfigError:
                raise
            except Exception as exc:
                log.warning("connecting to the %s source failed: %s", self.dialect, type(exc))
                raise self._connect_error(exc) from None
        ok = False
        try:
            yield conn
            ok = True
        finally:
            with self._lock:
                if ok and not self._closed:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _scalar(self, sql: str) -> int:
        with self._connection() as conn:
            cursor = conn.cursor()
            try:
                cursor.execute(sql)
                row = cursor.fetchone()
            finally:
                cursor.close()
        return int(row[0] or 0) if row else 0

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    # -- start-up checks and snapshots ----------------------------------------------------------

    def _unreadable(self, binding: TableBinding, exc: BaseException) -> ConfigError:
        what = f"source table {binding.table!r}" if binding.table else "the bound query"
        return ConfigError(
            f"table {binding.name}: {what} cannot be read ({type(exc).__name__}: it is "
            "missing, or the role may not read it); check the binding and the role's grants",
            key=f"bind.{binding.name}",
        )

    def source_columns(self, binding: TableBinding) -> dict[str, str]:
        """Column name -> type family of the bound source table or query."""
        if binding.name not in self._families:
            try:
                with self._connection() as conn:
                    self._families[binding.name] = self._describe(conn, binding)
            except ConfigError:
                raise
            except Exception as exc:
                raise self._unreadable(binding, exc) from None
        return self._families[binding.name]

    def read_table(self, binding: TableBinding, columns: Sequence[ColumnBinding]) -> pa.Table:
        """Every row of the bound table, named for the contract columns, values as they are."""
        try:
            with self._connection() as conn:
                return self._arrow(conn, raw_select(self._relation(binding), columns, self.dialect))
        except ConfigError:
            raise
        except Exception as exc:
            raise self._unreadable(binding, exc) from None

    def count_unmapped(self, binding: TableBinding, column: ColumnBinding) -> int:
        """Rows whose non-NULL source value the column's values map does not cover."""
        table = self.contract.table(binding.name)
        assert table is not None
        contract_column = table.column(column.name)
        assert contract_column is not None
        mapped = mapped_column(column, contract_column.type, "any", self.dialect)
        condition = exp.and_(
            exp.Not(this=exp.Is(this=source_column(column.source), expression=exp.Null())),
            exp.Is(this=mapped, expression=exp.Null()),
        )
        query = (
            exp.select(exp.Count(this=exp.Star())).from_(self._relation(binding)).where(condition)
        )
        try:
            return self._scalar(query.sql(self.dialect))
        except ConfigError:
            raise
        except Exception as exc:
            raise self._unreadable(binding, exc) from None

    def row_count(self, binding: TableBinding) -> int:
        """Rows of the bound table."""
        query = exp.select(exp.Count(this=exp.Star())).from_(self._relation(binding))
        return self._scalar(query.sql(self.dialect))

    def max_rows_per_unit(self, binding: TableBinding, unit: str) -> int:
        """The most rows one unit has in the bound table."""
        unit_column = source_column(binding.column(unit).source)
        per_unit = (
            exp.select(exp.alias_(exp.Count(this=exp.Star()), "n"))
            .from_(self._relation(binding))
            .group_by(unit_column)
            .subquery("u")
        )
        query = exp.select(exp.func("COALESCE", exp.Max(this=exp.column("n")), 0)).from_(per_unit)
        return self._scalar(query.sql(self.dialect))

    # -- pushdown ---------------------------------------------------------------------------------

    def relations(self, capped: bool) -> dict[str, exp.Expr]:
        """Every shared table as its bound SELECT, with a row identity when rows are capped."""
        out: dict[str, exp.Expr] = {}
        for name, columns in self.shared.items():
            table = self.contract.table(name)
            assert table is not None
            binding = self.spec.binding(name)
            row_id = self._row_id(binding) if capped else None
            families = self.source_columns(binding)
            relation = self._relation(binding)
            out[name] = bound_select(
                table, binding, relation, columns, families, self.dialect, row_id
            )
        return out

    def _column_types(self) -> dict[str, dict[str, str]]:
        """Shared table -> column -> contract type."""
        out: dict[str, dict[str, str]] = {}
        for name, columns in self.shared.items():
            table = self.contract.table(name)
            assert table is not None
            out[name] = {}
            for column in columns:
                contract_column = table.column(column)
                assert contract_column is not None
                out[name][column.lower()] = contract_column.type
        return out

    def compile_partial(self, sql: str, salt: int) -> str:
        """The partial query as this source runs it (see :mod:`connectors.transpile`).

        The rewrite of each partial query is kept with a placeholder salt, so a repeated query
        only has its salt put in.
        """
        template = self._compiled.get(sql)
        if template is None:
            template = transpile_partial(
                sql,
                self.relations(uses_row_cap(sql)),
                self.dialect,
                self._salted_hash(),
                SALT_MARK,
                self._column_types(),
            )
            if len(self._compiled) > 1024:
                self._compiled.clear()
            self._compiled[sql] = template
        if str(SALT_MARK) in sql:  # a query holding the placeholder itself: rewrite afresh
            return transpile_partial(
                sql,
                self.relations(uses_row_cap(sql)),
                self.dialect,
                self._salted_hash(),
                salt,
                self._column_types(),
            )
        return template.replace(str(SALT_MARK), str(int(salt)))

    def check_partial(self, sql: str) -> None:
        """Have the source compile the transpiled query (EXPLAIN), reading no rows.

        Raises:
            QueryRejected: The source cannot compile it.
        """
        compiled = self.compile_partial(sql, 0)
        try:
            with self._connection() as conn:
                self._compile(conn, compiled)
        except Exception as exc:
            raise QueryRejected(
                "the clinic's database could not compile this query "
                f"({type(exc).__name__}); check the types of function arguments and comparisons"
            ) from None

    def run_partial(self, sql: str, salt: int, timeout_s: float) -> Rows:
        """Run the transpiled partial query in the source and return its grouped rows.

        Raises:
            QueryTimeout: It ran past ``timeout_s`` and was cancelled.
            InternalError: The source failed on it.
        """
        compiled = self.compile_partial(sql, salt)
        self.sent.append(compiled)
        try:
            with self._connection() as conn:
                cursor = conn.cursor()
                try:
                    self._set_timeout(cursor, timeout_s)
                    cursor.execute(compiled)
                    names = [str(d[0]) for d in cursor.description or ()]
                    rows = [tuple(r) for r in cursor.fetchall()]
                finally:
                    with contextlib.suppress(Exception):
                        cursor.close()
        except Exception as exc:
            if self._is_timeout(exc):
                raise QueryTimeout(
                    f"the partial query exceeded the silo's limit of {timeout_s:g} s in the "
                    "clinic's database and was stopped"
                ) from None
            log.error("partial query failed in the %s source: %s", self.dialect, type(exc))
            raise InternalError(
                f"the clinic's database failed on a planned query ({type(exc).__name__})"
            ) from None
        return names, rows
