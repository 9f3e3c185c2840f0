"""MySQL and MariaDB as a silo's source, through PyMySQL into Arrow, in snapshot or pushdown mode.

Sessions are read-only (``SET SESSION TRANSACTION READ ONLY``) on top of the account the policy's
URL names (``mysql://reader@host:3306/database``): grant it ``SELECT`` on the bound tables only.
Strings are compared with a binary collation in pushdown, so matching and grouping are case- and
accent-sensitive, as in DuckDB.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pymysql
from pymysql.constants import FIELD_TYPE
from sqlglot import exp

from connectors.postgres import server_of
from connectors.sql_source import SqlConnector
from connectors.transpile import SaltedHash, mysql_hash
from fedsql.catalog import TableBinding
from fedsql.errors import ConfigError

#: MariaDB's error for a statement stopped by max_statement_time, and MySQL's.
STATEMENT_TIMEOUTS = (1969, 3024)
#: Error codes of refused credentials and unknown databases.
ACCESS_DENIED = (1044, 1045, 1698)
UNKNOWN_DATABASE = 1049

_FAMILIES: dict[int, str] = {
    FIELD_TYPE.TINY: "integer",
    FIELD_TYPE.SHORT: "integer",
    FIELD_TYPE.LONG: "integer",
    FIELD_TYPE.LONGLONG: "integer",
    FIELD_TYPE.INT24: "integer",
    FIELD_TYPE.YEAR: "integer",
    FIELD_TYPE.FLOAT: "float",
    FIELD_TYPE.DOUBLE: "float",
    FIELD_TYPE.DECIMAL: "decimal",
    FIELD_TYPE.NEWDECIMAL: "decimal",
    FIELD_TYPE.VARCHAR: "string",
    FIELD_TYPE.VAR_STRING: "string",
    FIELD_TYPE.STRING: "string",
    FIELD_TYPE.BLOB: "string",
    FIELD_TYPE.TINY_BLOB: "string",
    FIELD_TYPE.MEDIUM_BLOB: "string",
    FIELD_TYPE.LONG_BLOB: "string",
    FIELD_TYPE.ENUM: "string",
    FIELD_TYPE.DATE: "date",
    FIELD_TYPE.NEWDATE: "date",
    FIELD_TYPE.DATETIME: "timestamp",
    FIELD_TYPE.TIMESTAMP: "timestamp",
}


def family_of(type_code: int, display_size: int | None) -> str:
    """The type family of a column from its DB-API description (``TINYINT(1)`` is BOOLEAN).

    >>> family_of(FIELD_TYPE.TINY, 1), family_of(FIELD_TYPE.LONGLONG, 20)
    ('boolean', 'integer')
    """
    if type_code == FIELD_TYPE.TINY and display_size == 1:
        return "boolean"
    return _FAMILIES.get(type_code, f"mysql type {type_code}")


class MySQLConnector(SqlConnector):
    """A MySQL or MariaDB database: tables and queries bound in the policy."""

    dialect = "mysql"

    def _connect(self) -> Any:
        parts = urlsplit(self.spec.location)
        conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=self.password or "",
            database=unquote(parts.path.lstrip("/")) or None,
            autocommit=True,
            charset="utf8mb4",
            connect_timeout=10,
        )
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    def _connect_error(self, exc: BaseException) -> ConfigError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        where = f"the MySQL server {server_of(self.spec.location)}"
        if code in ACCESS_DENIED:
            reason = (
                "refused the credentials; check the user in source.url and the password in "
                "password_env / password_file"
            )
        elif code == UNKNOWN_DATABASE:
            reason = "has no such database; check the database in source.url"
        else:
            reason = "cannot be reached; check source.url and that the server runs"
        return ConfigError(
            f"{where} (serving tables {self.tables_served}) {reason}", key="source.url"
        )

    def _arrow(self, conn: Any, sql: str) -> pa.Table:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            names = [str(d[0]) for d in cursor.description or ()]
            rows = cursor.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pa.table(
            {name: pa.array(list(col)) for name, col in zip(names, columns, strict=True)}
        )

    def _describe(self, conn: Any, binding: TableBinding) -> dict[str, str]:
        query = exp.select(exp.Star()).from_(self._relation(binding)).limit(0)
        with conn.cursor() as cursor:
            cursor.execute(query.sql(self.dialect))
            return {str(d[0]).lower(): family_of(d[1], d[3]) for d in cursor.description or ()}

    def _salted_hash(self) -> SaltedHash:
        return mysql_hash

    def _set_timeout(self, cursor: Any, timeout_s: float) -> None:
        try:  # MariaDB counts seconds ...
            cursor.execute(f"SET SESSION max_statement_time = {max(0.001, timeout_s):.3f}")
        except pymysql.err.MySQLError:  # ... MySQL milliseconds, under another name
            cursor.execute(
                f"SET SESSION max_execution_time = {max(1, math.ceil(timeout_s * 1000))}"
            )

    def _is_timeout(self, exc: BaseException) -> bool:
        return bool(exc.args) and exc.args[0] in STATEMENT_TIMEOUTS
