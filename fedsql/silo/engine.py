"""The silo's locked-down DuckDB engine: read-only, no external access, locked config, timeouts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from fedsql.errors import ConfigError, InternalError, QueryRejected, QueryTimeout
from fedsql.silo.deadlines import watchdog

log = logging.getLogger(__name__)

#: Settings a silo's DuckDB must run with, and the value each must have once opened.
REQUIRED_SETTINGS: dict[str, str] = {
    "access_mode": "read_only",
    "enable_external_access": "false",
    "autoload_known_extensions": "false",
    "autoinstall_known_extensions": "false",
    "allow_community_extensions": "false",
    "lock_configuration": "true",
}


class Engine:
    """One clinic's DuckDB database, opened read-only with every escape hatch closed.

    The settings are checked after opening; a mismatch refuses to start. Each partial query runs
    in its own cursor with a time limit; a query past its limit is interrupted and raises
    :class:`~fedsql.errors.QueryTimeout`.
    """

    #: The file is read-only: row checks made at start-up hold for every query.
    fixed_data = True

    def __init__(self, path: str | Path, *, threads: int = 2, memory_limit: str = "4GB") -> None:
        """Open the clinic's database.

        Args:
            path: The DuckDB file holding the clinic's tables.
            threads: DuckDB worker threads.
            memory_limit: DuckDB memory limit.

        Raises:
            ConfigError: The file does not exist or the engine could not be locked down.
        """
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(
                "the clinic's database file does not exist; check `data` in the policy",
                key="silo.data",
            )
        config: dict[str, Any] = {
            "enable_external_access": False,
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "allow_community_extensions": False,
            "threads": threads,
            "memory_limit": memory_limit,
            "lock_configuration": True,
        }
        self._conn = duckdb.connect(str(self.path), read_only=True, config=config)
        self._bound: set[str] = set()
        self.check_lockdown()

    def check_lockdown(self) -> None:
        """Verify that every required setting holds.

        Raises:
            ConfigError: A setting differs from what a silo requires.
        """
        names = ", ".join(f"'{n}'" for n in REQUIRED_SETTINGS)
        rows = self._conn.execute(
            f"SELECT name, value FROM duckdb_settings() WHERE name IN ({names})"
        ).fetchall()
        actual = {str(n): str(v).lower() for n, v in rows}
        for name, want in REQUIRED_SETTINGS.items():
            if actual.get(name) != want:
                self._conn.close()
                raise ConfigError(
                    f"DuckDB setting {name} is {actual.get(name)!r}, a silo requires {want!r}; "
                    "refusing to start",
                    key="engine",
                )

    def tables(self) -> dict[str, dict[str, str]]:
        """Tables of the database with their column types (upper-case DuckDB type names)."""
        rows = self._conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        out: dict[str, dict[str, str]] = {}
        for table, column, dtype in rows:
            out.setdefault(str(table).lower(), {})[str(column).lower()] = str(dtype).upper()
        return out

    def max_rows_per_unit(self, table: str, unit: str) -> int:
        """The largest number of rows any one unit has in ``table`` (0 for an empty table)."""
        quoted_t = '"' + table.replace('"', '""') + '"'
        quoted_u = '"' + unit.replace('"', '""') + '"'
        row = self._conn.execute(
            f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {quoted_t} "
            f"GROUP BY {quoted_u})"
        ).fetchone()
        return int(row[0]) if row else 0

    def row_count(self, table: str) -> int:
        """Number of rows in ``table``."""
        quoted_t = '"' + table.replace('"', '""') + '"'
        row = self._conn.execute(f"SELECT count(*) FROM {quoted_t}").fetchone()
        return int(row[0]) if row else 0

    def bind(self, sql: str, params: Mapping[str, object]) -> None:
        """Compile a query without running it, so type errors surface before any budget is spent.

        Binding reads the schema only, never rows; the database is read-only, so a query that
        bound once binds again and is remembered.

        Raises:
            QueryRejected: DuckDB cannot bind the query (its message is not echoed: it may name
                columns this clinic does not share).
        """
        if sql in self._bound:
            return
        cursor = self._conn.cursor()
        try:
            cursor.execute("EXPLAIN " + sql, dict(params))
        except duckdb.Error as exc:
            raise QueryRejected(
                "the clinic's engine could not compile this query "
                f"({type(exc).__name__}); check the types of function arguments and comparisons"
            ) from None
        finally:
            cursor.close()
        if len(self._bound) > 4096:
            self._bound.clear()
        self._bound.add(sql)

    def run(
        self, sql: str, params: Mapping[str, object], timeout_s: float
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one partial query and return its column names and rows (one row per group).

        Args:
            sql: The partial SQL of a plan this silo compiled itself.
            params: Named parameters (the keyed-ordering salt).
            timeout_s: Time limit; the query is interrupted when it passes.

        Raises:
            QueryTimeout: The query ran past ``timeout_s`` and was interrupted.
            InternalError: DuckDB failed on SQL the planner produced.
        """
        cursor = self._conn.cursor()
        timed_out = threading.Event()

        def interrupt() -> None:
            timed_out.set()
            cursor.interrupt()

        deadline = watchdog.arm(timeout_s, interrupt)
        try:
            cursor.execute(sql, dict(params))
            names = [str(d[0]) for d in cursor.description or ()]
            rows = cursor.fetchall()
        except duckdb.Error as exc:
            if timed_out.is_set():
                raise QueryTimeout(
                    f"the partial query exceeded the silo's limit of {timeout_s:g} s and "
                    "was stopped"
                ) from None
            log.error("partial query failed in DuckDB: %s", type(exc).__name__)
            raise InternalError(
                f"the silo's engine failed on a planned query ({type(exc).__name__})"
            ) from None
        finally:
            watchdog.disarm(deadline)
            cursor.close()
        return names, rows

    def close(self) -> None:
        """Close the database."""
        self._conn.close()
