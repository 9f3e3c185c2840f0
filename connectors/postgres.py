"""PostgreSQL as a silo's source, through ADBC (Arrow-native), in snapshot or pushdown mode.

The connection is a read-only session (``default_transaction_read_only``), which comes on top of
the role the policy's URL names: give it ``SELECT`` on the bound tables and nothing else. The
password comes from ``password_env`` or ``password_file``, never from the URL in the policy.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as adbc_pg
import pyarrow as pa
from sqlglot import exp

from connectors.sql_source import SqlConnector, arrow_family
from connectors.transpile import SaltedHash, postgres_hash
from fedsql.catalog import TableBinding
from fedsql.errors import ConfigError

#: sqlstate of a statement cancelled by statement_timeout.
QUERY_CANCELED = "57014"
#: Words of libpq's connection errors that mean the server refused who we are.
_AUTH_WORDS = ("authentication failed", "role", "no pg_hba.conf entry", "permission denied")


def with_password(url: str, password: str | None) -> str:
    """The connection URL with the password put in (the policy's URL never holds one).

    >>> with_password("postgresql://reader@db:5432/ehr", "p@ss")
    'postgresql://reader:p%40ss@db:5432/ehr'
    >>> with_password("postgresql://reader@db/ehr", None)
    'postgresql://reader@db/ehr'
    """
    if password is None:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def server_of(url: str) -> str:
    """``host:port/database`` of a URL, for messages (never the user's secrets).

    >>> server_of("postgresql://reader@db:5432/ehr")
    'db:5432/ehr'
    """
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}{parts.path}"


class PostgresConnector(SqlConnector):
    """A PostgreSQL database: tables and queries bound in the policy, read through ADBC."""

    dialect = "postgres"

    def _connect(self) -> Any:
        conn = adbc_pg.connect(with_password(self.spec.location, self.password), autocommit=True)
        cursor = conn.cursor()
        try:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            cursor.execute("SET default_transaction_read_only = on")
        finally:
            cursor.close()
        return conn

    def _connect_error(self, exc: BaseException) -> ConfigError:
        text = str(exc).lower()
        where = f"the PostgreSQL server {server_of(self.spec.location)}"
        if "database" in text and "does not exist" in text:
            reason = "has no such database; check the database in source.url"
        elif any(word in text for word in _AUTH_WORDS):
            reason = (
                "refused the credentials; check the user in source.url and the password in "
                "password_env / password_file"
            )
        else:
            reason = "cannot be reached; check source.url and that the server runs"
        return ConfigError(
            f"{where} (serving tables {self.tables_served}) {reason}", key="source.url"
        )

    def _arrow(self, conn: Any, sql: str) -> pa.Table:
        cursor = conn.cursor()
        try:
            cursor.execute(sql)
            table: pa.Table = cursor.fetch_arrow_table()
        finally:
            cursor.close()
        return table

    def _describe(self, conn: Any, binding: TableBinding) -> dict[str, str]:
        query = exp.select(exp.Star()).from_(self._relation(binding)).limit(0)
        schema = self._arrow(conn, query.sql(self.dialect)).schema
        out: dict[str, str] = {}
        for field in schema:
            family = arrow_family(field.type)
            if "numeric" in str(field.type):
                family = "decimal"
            out[field.name.lower()] = family
        return out

    def _compile(self, conn: Any, sql: str) -> None:
        # ADBC sends queries as COPY (...) TO STDOUT, where EXPLAIN is not allowed: prepare
        # the statement instead (parsed, analysed and planned by the server, never run).
        cursor = conn.cursor()
        try:
            cursor.adbc_prepare(sql)
        finally:
            cursor.close()

    def _salted_hash(self) -> SaltedHash:
        return postgres_hash

    def _row_id(self, binding: TableBinding) -> exp.Expr:
        if binding.table:
            return exp.column("ctid")
        return super()._row_id(binding)

    def _set_timeout(self, cursor: Any, timeout_s: float) -> None:
        cursor.execute(f"SET statement_timeout = {max(1, math.ceil(timeout_s * 1000))}")

    def _is_timeout(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) == QUERY_CANCELED
