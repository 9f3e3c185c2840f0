"""An existing DuckDB database file as a silo's source, with column mapping, in either mode.

The file is opened read-only with external access off. In pushdown mode the partial query runs
in that file over the bound relations; in snapshot mode the bound tables are copied into the
silo's own snapshot.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from connectors.sql_source import SqlConnector, arrow_family
from connectors.transpile import SaltedHash, duckdb_hash
from fedsql.catalog import TableBinding
from fedsql.errors import ConfigError


class DuckDBFileConnector(SqlConnector):
    """A DuckDB database file (not the silo's own): tables and queries bound in the policy."""

    dialect = "duckdb"

    def _connect(self) -> Any:
        path = Path(self.spec.location)
        if not path.is_file():
            raise ConfigError(
                f"the DuckDB file serving tables {self.tables_served} does not exist; check "
                "source.path",
                key="source.path",
            )
        config: dict[str, str | bool | int | float | list[str]] = {
            "enable_external_access": False,
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
        }
        return duckdb.connect(str(path), read_only=True, config=config)

    def _connect_error(self, exc: BaseException) -> ConfigError:
        return ConfigError(
            f"the DuckDB file serving tables {self.tables_served} cannot be opened "
            f"({type(exc).__name__}); check source.path",
            key="source.path",
        )

    def _arrow(self, conn: Any, sql: str) -> pa.Table:
        table: pa.Table = conn.cursor().sql(sql).to_arrow_table()
        return table

    def _describe(self, conn: Any, binding: TableBinding) -> dict[str, str]:
        query = exp.select(exp.Star()).from_(self._relation(binding)).limit(0)
        schema = self._arrow(conn, query.sql(self.dialect)).schema
        return {f.name.lower(): arrow_family(f.type) for f in schema}

    def _salted_hash(self) -> SaltedHash:
        return duckdb_hash

    def _row_id(self, binding: TableBinding) -> exp.Expr:
        if binding.table:
            return exp.column("rowid")
        return super()._row_id(binding)

    def _set_timeout(self, cursor: Any, timeout_s: float) -> None:
        def interrupt() -> None:
            with contextlib.suppress(Exception):
                cursor.interrupt()

        timer = threading.Timer(timeout_s, interrupt)
        timer.daemon = True
        timer.start()

    def _is_timeout(self, exc: BaseException) -> bool:
        return isinstance(exc, duckdb.InterruptException)
