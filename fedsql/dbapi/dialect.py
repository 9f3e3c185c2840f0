"""SQLAlchemy dialect for ``fedsql://`` URLs: the driver underneath, reflection from the catalog.

With it, tools that take an engine (``pandas.read_sql``, ``polars.read_database``, BI tools)
talk to a federation::

    engine = sqlalchemy.create_engine("fedsql://alice@hub.example.org:50051/?epsilon=0.5")
    engine = sqlalchemy.create_engine("fedsql://demo")              # the embedded demo
    engine = sqlalchemy.create_engine("fedsql:///?profile=clinics") # a profile

Reflection lists the tables and columns every connected clinic shares, typed as the contract
declares them. The federation is read-only: there are no keys, indexes, views or sequences, and
statements other than one aggregate SELECT fail with ``NotSupportedError`` or
``QueryRejected``. Each statement a tool runs is a private query that spends epsilon.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy.engine import URL, default, reflection
from sqlalchemy.engine.base import Connection as SAConnection
from sqlalchemy.engine.interfaces import (
    ConnectArgsType,
    DBAPIConnection,
    DBAPICursor,
    ReflectedColumn,
    ReflectedForeignKeyConstraint,
    ReflectedIndex,
    ReflectedPrimaryKeyConstraint,
    ReflectedTableComment,
)
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.pool import PoolProxiedConnection

from fedsql.dbapi.connection import Connection
from fedsql.dbapi.profiles import Endpoint, parse_url
from fedsql.errors import HubUnreachable, InterfaceError
from fedsql.transport.messages import CatalogReply, CatalogTable

__all__ = ["FedsqlDialect"]

#: The schema every federated table lives in.
SCHEMA = "main"

_TYPES: dict[str, type[sqltypes.TypeEngine[Any]]] = {
    "INTEGER": sqltypes.INTEGER,
    "BIGINT": sqltypes.BIGINT,
    "DOUBLE": sqltypes.DOUBLE,
    "VARCHAR": sqltypes.VARCHAR,
    "DATE": sqltypes.DATE,
    "TIMESTAMP": sqltypes.TIMESTAMP,
    "BOOLEAN": sqltypes.BOOLEAN,
}


def _fedsql(dbapi_connection: object) -> Connection:
    """The fedsql connection under a pooled or raw DB-API connection."""
    raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
    if not isinstance(raw, Connection):
        raise InterfaceError("the fedsql dialect needs a fedsql DB-API connection")
    return raw


class FedsqlDialect(default.DefaultDialect):
    """SQLAlchemy dialect of fedsql: DuckDB-flavoured SQL, ``qmark`` parameters, read-only."""

    name = "fedsql"
    driver = "fedsql"
    supports_statement_cache = True
    default_paramstyle = "qmark"
    supports_native_boolean = True
    supports_native_decimal = False
    supports_alter = False
    supports_sequences = False
    supports_default_values = False
    supports_empty_insert = False
    supports_multivalues_insert = False
    supports_sane_rowcount = False
    supports_sane_multi_rowcount = False
    supports_server_side_cursors = False
    postfetch_lastrowid = False
    supports_comments = True
    max_identifier_length = 255

    @classmethod
    def import_dbapi(cls) -> ModuleType:
        """The fedsql module: ``connect``, ``paramstyle`` and the PEP 249 exceptions."""
        import fedsql

        return fedsql

    def create_connect_args(self, url: URL) -> ConnectArgsType:
        """Turn ``fedsql://[analyst@]host:port[/?epsilon=..&timeout_s=..&profile=..]`` into
        :func:`fedsql.connect` arguments (``fedsql://demo`` is the embedded demo).

        Raises:
            InterfaceError: A password was given (tokens are not supported yet) or a parameter
                is unknown or malformed.
        """
        endpoint: Endpoint = parse_url(url.render_as_string(hide_password=False))
        kwargs: dict[str, Any] = {
            "target": endpoint.hub,
            "profile": endpoint.profile,
            "analyst": endpoint.analyst,
            "epsilon": endpoint.epsilon,
            "timeout_s": endpoint.timeout_s,
        }
        return [], {k: v for k, v in kwargs.items() if v is not None}

    def _get_server_version_info(self, connection: SAConnection) -> Any:
        return None

    def _get_default_schema_name(self, connection: SAConnection) -> str:
        return SCHEMA

    def do_ping(self, dbapi_connection: DBAPIConnection) -> bool:
        """Ask the hub which silos are connected (a SELECT 1 would be refused)."""
        _fedsql(dbapi_connection).ping()
        return True

    def is_disconnect(
        self,
        e: Exception,
        connection: PoolProxiedConnection | DBAPIConnection | None,
        cursor: DBAPICursor | None,
    ) -> bool:
        """An unreachable hub or a closed connection invalidates the pooled connection."""
        if isinstance(e, HubUnreachable):
            return True
        return isinstance(e, InterfaceError) and "closed" in str(e)

    # -- reflection -------------------------------------------------------------------------

    @reflection.cache
    def _catalog(self, connection: SAConnection, **kw: Any) -> CatalogReply:
        return _fedsql(connection.connection).catalog()

    def _table(
        self, connection: SAConnection, table_name: str, schema: str | None, **kw: Any
    ) -> CatalogTable:
        if schema not in (None, SCHEMA):
            raise NoSuchTableError(f"{schema}.{table_name}")
        low = table_name.lower()
        for table in self._catalog(connection, **kw).tables:
            if table.name == low:
                return table
        raise NoSuchTableError(table_name)

    def get_schema_names(self, connection: SAConnection, **kw: Any) -> list[str]:
        """One schema, ``main``."""
        return [SCHEMA]

    def get_table_names(
        self, connection: SAConnection, schema: str | None = None, **kw: Any
    ) -> list[str]:
        """The tables every connected clinic shares."""
        if schema not in (None, SCHEMA):
            return []
        return [t.name for t in self._catalog(connection, **kw).tables]

    def get_view_names(
        self, connection: SAConnection, schema: str | None = None, **kw: Any
    ) -> list[str]:
        """No views."""
        return []

    def has_table(
        self,
        connection: SAConnection,
        table_name: str,
        schema: str | None = None,
        **kw: Any,
    ) -> bool:
        """Whether every connected clinic shares ``table_name``."""
        try:
            self._table(connection, table_name, schema, **kw)
        except NoSuchTableError:
            return False
        return True

    def get_columns(
        self,
        connection: SAConnection,
        table_name: str,
        schema: str | None = None,
        **kw: Any,
    ) -> list[ReflectedColumn]:
        """The shared columns of a table, typed as the contract declares them."""
        table = self._table(connection, table_name, schema, **kw)
        out: list[ReflectedColumn] = []
        for col in table.columns:
            type_class = _TYPES.get(col.type, sqltypes.NullType)
            out.append(
                {
                    "name": col.name,
                    "type": type_class(),
                    "nullable": True,
                    "default": None,
                    "autoincrement": False,
                    "comment": col.description or None,
                }
            )
        return out

    def get_pk_constraint(
        self,
        connection: SAConnection,
        table_name: str,
        schema: str | None = None,
        **kw: Any,
    ) -> ReflectedPrimaryKeyConstraint:
        """No primary keys: rows are never addressed one by one."""
        self._table(connection, table_name, schema, **kw)
        return {"constrained_columns": [], "name": None}

    def get_foreign_keys(
        self,
        connection: SAConnection,
        table_name: str,
        schema: str | None = None,
        **kw: Any,
    ) -> list[ReflectedForeignKeyConstraint]:
        """No foreign keys: queries read one table."""
        self._table(connection, table_name, schema, **kw)
        return []

    def get_indexes(
        self,
        connection: SAConnection,
        table_name: str,
        schema: str | None = None,
        **kw: Any,
    ) -> list[ReflectedIndex]:
        """No indexes are visible to analysts."""
        self._table(connection, table_name, schema, **kw)
        return []

    def get_table_comment(
        self,
        connection: SAConnection,
        table_name: str,
        schema: str | None = None,
        **kw: Any,
    ) -> ReflectedTableComment:
        """The table's description from the federation contract."""
        table = self._table(connection, table_name, schema, **kw)
        return {"text": table.description or None}
