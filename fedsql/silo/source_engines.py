"""The engines a silo serves queries with: its DuckDB file, a refreshable snapshot, or pushdown.

:func:`open_engine` picks one from the policy. Without a ``[source]`` it is the locked-down
:class:`~fedsql.silo.engine.Engine` over the ``data`` file, as always. In *snapshot* mode the
bound tables are read through the connector as Arrow, mapped and cast to the contract in a
private DuckDB file, and served by the same locked-down Engine (read-only, no external access);
:meth:`SnapshotEngine.refresh` builds a new file while the previous one keeps serving, and swaps
only once the new one is complete and checked. In *pushdown* mode every partial query is
transpiled to the source's dialect and run there (:class:`PushdownEngine`).
"""

from __future__ import annotations

import contextlib
import decimal
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from fedsql.catalog import ColumnBinding, Contract, KeyValue, SiloPolicy, Table
from fedsql.errors import ConfigError
from fedsql.silo.engine import Engine
from fedsql.silo.sources import Connector, Rows, open_connector
from fedsql.sql.plan import SALT_PARAM
from fedsql.sql.regression_sql import inline_coefficients

log = logging.getLogger(__name__)


class QueryEngine(Protocol):
    """What the silo agent needs from whatever serves its tables."""

    @property
    def fixed_data(self) -> bool:
        """True when the data cannot change while the silo runs (then row checks made at
        start-up hold for every query)."""
        ...

    def tables(self) -> dict[str, dict[str, str]]:
        """Tables with their column types (upper-case type names)."""
        ...

    def row_count(self, table: str) -> int:
        """Number of rows in ``table``."""
        ...

    def max_rows_per_unit(self, table: str, unit: str) -> int:
        """The largest number of rows one unit has in ``table``."""
        ...

    def bind(self, sql: str, params: Mapping[str, object]) -> None:
        """Compile a partial query without reading rows."""
        ...

    def run(self, sql: str, params: Mapping[str, object], timeout_s: float) -> Rows:
        """Run a partial query and return its column names and grouped rows."""
        ...

    def close(self) -> None:
        """Release everything."""
        ...


def open_engine(
    contract: Contract, policy: SiloPolicy, data_path: str | Path, state_dir: str | Path
) -> QueryEngine:
    """The engine serving ``policy``'s tables.

    Args:
        contract: The federation contract.
        policy: The clinic's policy; its ``source`` decides the engine.
        data_path: The clinic's DuckDB file (used when the policy has no source).
        state_dir: The silo's state folder (snapshots are kept there).

    Returns:
        The locked-down DuckDB engine, a snapshot engine or a pushdown engine.

    Raises:
        ConfigError: The file, the source or a binding is unusable (see
            :func:`fedsql.silo.sources.check_bindings`).
    """
    spec = policy.source
    if spec is None:
        return Engine(data_path)
    connector = open_connector(spec, contract, policy.shared)
    if spec.mode == "pushdown":
        return PushdownEngine(connector, contract, policy)
    try:
        return SnapshotEngine(connector, contract, policy, Path(state_dir))
    finally:
        connector.close()


def _literal(value: KeyValue | str) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def mapped_expression(bound: ColumnBinding, column_type: str) -> str:
    """DuckDB SQL mapping a raw source column (named for the contract) to its contract value.

    >>> mapped_expression(ColumnBinding("sex", "g", values=(("f", "F"),)), "VARCHAR")
    'CAST(CASE CAST("sex" AS VARCHAR) WHEN \\'f\\' THEN \\'F\\' ELSE NULL END AS VARCHAR)'
    >>> mapped_expression(ColumnBinding("age", "age_years"), "INTEGER")
    'CAST("age" AS INTEGER)'
    """
    raw = _ident(bound.name)
    if bound.values:
        whens = " ".join(f"WHEN {_literal(s)} THEN {_literal(v)}" for s, v in bound.values)
        raw = f"CASE CAST({raw} AS VARCHAR) {whens} ELSE NULL END"
    return f"CAST({raw} AS {column_type})"


class SnapshotEngine:
    """Serves a snapshot of the bound tables, loaded into a private DuckDB file.

    The file is written by a loading connection that reads only the Arrow tables handed to it
    (external access off), then opened by a locked-down :class:`Engine`, read-only. A refresh
    writes a new file and swaps engines once it is complete; queries running on the previous
    snapshot finish there, and its file is removed when the last one has.
    """

    #: A snapshot changes on refresh, so start-up row checks do not bind later queries.
    fixed_data = False

    def __init__(
        self, connector: Connector, contract: Contract, policy: SiloPolicy, folder: Path
    ) -> None:
        """Load the first snapshot.

        Raises:
            ConfigError: A value cannot be mapped or cast to the contract, or the source failed.
        """
        assert policy.source is not None
        self._contract = contract
        self._policy = policy
        self._folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"{policy.silo_id}.snapshot-*.duckdb*"):
            stale.unlink()
        self._lock = threading.Condition()
        self._users: dict[int, int] = {}
        self._serial = itertools.count(1)
        self._engine = self._open(self._load(connector))
        self._users[id(self._engine)] = 0
        self.loaded_at = time.time()
        self.load_seconds = 0.0

    def _load(self, connector: Connector) -> Path:
        spec = self._policy.source
        assert spec is not None
        name = f"{self._policy.silo_id}.snapshot-{next(self._serial)}-{secrets.token_hex(4)}"
        path = self._folder / f"{name}.duckdb"
        config: dict[str, Any] = {
            "enable_external_access": False,
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
        }
        start = time.perf_counter()
        try:
            with duckdb.connect(str(path), config=config) as conn:
                for name, shared in self._policy.shared.items():
                    table = self._contract.table(name)
                    assert table is not None
                    binding = spec.binding(name)
                    bound = [binding.column(c) for c in shared]
                    arrow = connector.read_table(binding, bound)
                    _load_table(conn, table, bound, arrow)
                    del arrow
                conn.execute("CHECKPOINT")
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.load_seconds = time.perf_counter() - start
        return path

    def _open(self, path: Path) -> Engine:
        engine = Engine(path)
        try:
            for name in self._policy.shared:
                if engine.row_count(name) > self._contract.secagg.max_rows_per_silo:
                    raise ConfigError(
                        f"table {name} has more rows than the contract's max_rows_per_silo",
                        key="secagg.max_rows_per_silo",
                    )
        except BaseException:
            engine.close()
            path.unlink(missing_ok=True)
            raise
        return engine

    def refresh(self, connector: Connector) -> None:
        """Load a new snapshot through ``connector`` and serve it once complete.

        Raises:
            ConfigError: The new snapshot failed; the previous one keeps serving.
        """
        engine = self._open(self._load(connector))
        with self._lock:
            old, self._engine = self._engine, engine
            self._users[id(engine)] = 0
            self.loaded_at = time.time()
            self._retire_if_idle(old)

    def _retire_if_idle(self, engine: Engine) -> None:
        if engine is self._engine or self._users.get(id(engine), 0) > 0:
            return
        self._users.pop(id(engine), None)
        engine.close()
        for suffix in ("", ".wal"):
            Path(str(engine.path) + suffix).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _current(self) -> Iterator[Engine]:
        with self._lock:
            engine = self._engine
            self._users[id(engine)] += 1
        try:
            yield engine
        finally:
            with self._lock:
                self._users[id(engine)] -= 1
                self._retire_if_idle(engine)

    @property
    def path(self) -> Path:
        """The file of the snapshot being served."""
        return self._engine.path

    def tables(self) -> dict[str, dict[str, str]]:
        """Tables of the current snapshot with their column types."""
        with self._current() as engine:
            return engine.tables()

    def row_count(self, table: str) -> int:
        """Rows of ``table`` in the current snapshot."""
        with self._current() as engine:
            return engine.row_count(table)

    def max_rows_per_unit(self, table: str, unit: str) -> int:
        """The most rows one unit has in ``table`` of the current snapshot."""
        with self._current() as engine:
            return engine.max_rows_per_unit(table, unit)

    def bind(self, sql: str, params: Mapping[str, object]) -> None:
        """Compile ``sql`` against the current snapshot (see :meth:`Engine.bind`)."""
        with self._current() as engine:
            engine.bind(sql, params)

    def run(self, sql: str, params: Mapping[str, object], timeout_s: float) -> Rows:
        """Run a partial query on the current snapshot (see :meth:`Engine.run`)."""
        with self._current() as engine:
            return engine.run(sql, params, timeout_s)

    def close(self) -> None:
        """Close the snapshot and remove its file."""
        with self._lock:
            engine = self._engine
            engine.close()
            for suffix in ("", ".wal"):
                Path(str(engine.path) + suffix).unlink(missing_ok=True)


def _load_table(
    conn: duckdb.DuckDBPyConnection, table: Table, bound: Sequence[ColumnBinding], arrow: pa.Table
) -> None:
    """Write one bound table into the snapshot, mapped and cast to the contract's types."""
    conn.register("__source", arrow)
    try:
        for col in bound:
            contract_column = table.column(col.name)
            assert contract_column is not None
            mapped = mapped_expression(col, contract_column.type)
            raw = _ident(col.name)
            bad_cast = f"TRY_{mapped}" if not col.values else mapped
            (row,) = conn.execute(
                f"SELECT count(*) FROM __source WHERE {raw} IS NOT NULL AND {bad_cast} IS NULL"
            ).fetchall()
            if row[0]:
                what = "the values map does not cover" if col.values else "cannot be cast to"
                target = "" if col.values else f" {contract_column.type}"
                raise ConfigError(
                    f"table {table.name}, column {col.name}: {row[0]} row(s) of source column "
                    f"{col.source!r} hold a value {what}{target} (the values are not shown); "
                    "fix the source or the binding",
                    key=f"bind.{table.name}.columns.{col.name}",
                )
        select = ", ".join(
            f"{mapped_expression(col, _column_type(table, col.name))} AS {_ident(col.name)}"
            for col in bound
        )
        conn.execute(f"CREATE TABLE {_ident(table.name)} AS SELECT {select} FROM __source")
    finally:
        conn.unregister("__source")


def _column_type(table: Table, name: str) -> str:
    column = table.column(name)
    assert column is not None
    return column.type


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class PushdownEngine:
    """Serves partial queries by running them in the source itself, as a read-only session.

    Only the grouped partial rows come back. The source is live, so the per-unit row cap is
    always applied (``fixed_data`` is False).
    """

    fixed_data = False

    def __init__(self, connector: Connector, contract: Contract, policy: SiloPolicy) -> None:
        """Serve ``policy``'s bound tables through ``connector`` (already checked)."""
        assert policy.source is not None
        self.connector = connector
        self._contract = contract
        self._policy = policy
        self._spec = policy.source
        self._bound: set[str] = set()

    def tables(self) -> dict[str, dict[str, str]]:
        """The shared tables as bound, with their contract column types."""
        out: dict[str, dict[str, str]] = {}
        for name, columns in self._policy.shared.items():
            table = self._contract.table(name)
            assert table is not None
            out[name] = {c: _column_type(table, c) for c in columns}
        return out

    def row_count(self, table: str) -> int:
        """Rows of the bound ``table`` in the source now."""
        return self.connector.row_count(self._spec.binding(table))

    def max_rows_per_unit(self, table: str, unit: str) -> int:
        """The most rows one unit has in the bound ``table`` now."""
        return self.connector.max_rows_per_unit(self._spec.binding(table), unit)

    def bind(self, sql: str, params: Mapping[str, object]) -> None:
        """Transpile ``sql`` and have the source compile it (EXPLAIN), reading no rows."""
        sql = inline_coefficients(sql, params)
        if sql in self._bound:
            return
        self.connector.check_partial(sql)
        if len(self._bound) > 4096:
            self._bound.clear()
        self._bound.add(sql)

    def run(self, sql: str, params: Mapping[str, object], timeout_s: float) -> Rows:
        """Run the transpiled partial query in the source; numbers come back as int or float."""
        salt = int(params.get(SALT_PARAM, 0))  # type: ignore[call-overload]
        names, rows = self.connector.run_partial(inline_coefficients(sql, params), salt, timeout_s)
        return names, [tuple(_plain(v) for v in row) for row in rows]

    def close(self) -> None:
        """Close the source's connections."""
        self.connector.close()


def refresh_engine(engine: QueryEngine, contract: Contract, policy: SiloPolicy) -> float:
    """Load a new snapshot into a snapshot engine; the old one serves until it is complete.

    Returns:
        Seconds the load took.

    Raises:
        ConfigError: The engine serves no snapshot, or the new snapshot failed (the previous
            one keeps serving).
    """
    if not isinstance(engine, SnapshotEngine) or policy.source is None:
        raise ConfigError(
            'only a silo whose [source] has mode = "snapshot" can be refreshed', key="source.mode"
        )
    connector = open_connector(policy.source, contract, policy.shared)
    try:
        engine.refresh(connector)
    finally:
        connector.close()
    return engine.load_seconds
