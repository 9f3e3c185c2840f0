"""SQLite as a silo's source: a database file read-only, loaded as a snapshot.

SQLite has no keyed hash function and is not where large data live, so it serves snapshot mode
only. Its columns carry declared types (``PRAGMA table_info``); values are cast to the contract's
types when the snapshot is loaded, and a value that does not cast stops the silo at start-up.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors.sql_source import SqlConnector
from fedsql.catalog import TableBinding
from fedsql.errors import ConfigError


def declared_family(declared: str) -> str:
    """The type family of a declared SQLite column type (its affinity, roughly).

    >>> declared_family("BIGINT"), declared_family("varchar(10)"), declared_family("")
    ('integer', 'string', 'any')
    """
    word = declared.upper()
    if "INT" in word:
        return "integer"
    if any(w in word for w in ("CHAR", "CLOB", "TEXT")):
        return "string"
    if any(w in word for w in ("REAL", "FLOA", "DOUB")):
        return "float"
    if "BOOL" in word:
        return "boolean"
    if "TIMESTAMP" in word or "DATETIME" in word:
        return "timestamp"
    if "DATE" in word:
        return "date"
    if any(w in word for w in ("DEC", "NUMERIC")):
        return "decimal"
    return "any"


class SQLiteConnector(SqlConnector):
    """A SQLite database file, opened read-only."""

    dialect = "sqlite"
    supports_pushdown = False

    def _connect(self) -> Any:
        path = Path(self.spec.location)
        if not path.is_file():
            raise ConfigError(
                f"the SQLite file serving tables {self.tables_served} does not exist; check "
                "source.path",
                key="source.path",
            )
        return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)

    def _connect_error(self, exc: BaseException) -> ConfigError:
        return ConfigError(
            f"the SQLite file serving tables {self.tables_served} cannot be opened "
            f"({type(exc).__name__}); check source.path",
            key="source.path",
        )

    def _arrow(self, conn: Any, sql: str) -> pa.Table:
        cursor = conn.execute(sql)
        names = [str(d[0]) for d in cursor.description or ()]
        rows = cursor.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pa.table(
            {name: pa.array(list(col)) for name, col in zip(names, columns, strict=True)}
        )

    def _describe(self, conn: Any, binding: TableBinding) -> dict[str, str]:
        cursor = conn.execute(f"SELECT * FROM ({self._relation(binding).sql('sqlite')}) LIMIT 0")
        names = [str(d[0]).lower() for d in cursor.description or ()]
        if not binding.table:
            return dict.fromkeys(names, "any")
        declared = {
            str(row[1]).lower(): declared_family(str(row[2] or ""))
            for row in conn.execute("SELECT * FROM pragma_table_info(?)", (binding.table,))
        }
        return {name: declared.get(name, "any") for name in names}
