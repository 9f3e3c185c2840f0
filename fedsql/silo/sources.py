"""Data sources of a silo: the connector interface, its discovery, and the checks at start-up.

A clinic whose policy has a ``[source]`` serves its shared tables through a *connector*, found by
name in the ``fedsql.connectors`` entry-point group (so third parties can add their own). A
connector describes its tables, reads a bound table as Arrow (snapshot mode), and compiles and
runs a plan's partial query in its own engine (pushdown mode). This module holds the interface
and the start-up checks of every binding against the contract; the engines that serve queries
from a source are in :mod:`fedsql.silo.source_engines`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from fedsql.catalog import ColumnBinding, Contract, SourceSpec, TableBinding
from fedsql.errors import ConfigError

log = logging.getLogger(__name__)

#: The entry-point group connectors register in.
CONNECTOR_GROUP = "fedsql.connectors"

#: Source type families (as connectors report them) each contract type accepts without a cast.
#: ``any`` is a source without declared types (SQLite): it is cast when loaded.
COMPATIBLE: Mapping[str, frozenset[str]] = {
    "INTEGER": frozenset({"integer", "any"}),
    "BIGINT": frozenset({"integer", "any"}),
    "DOUBLE": frozenset({"integer", "float", "decimal", "any"}),
    "VARCHAR": frozenset({"string", "any"}),
    "DATE": frozenset({"date", "any"}),
    "TIMESTAMP": frozenset({"timestamp", "date", "any"}),
    "BOOLEAN": frozenset({"boolean", "any"}),
}

Rows = tuple[list[str], list[tuple[Any, ...]]]


class Connector(Protocol):
    """What a data source does for a silo. Implementations live in the ``connectors`` package.

    Every method raises :class:`~fedsql.errors.ConfigError` for a problem of the setup
    (unreachable server, refused credentials, missing table), naming the federated table, and
    never echoes a row value or a server message that could hold one.
    """

    #: Whether the connector can run partial queries in its own engine.
    supports_pushdown: bool

    def source_columns(self, binding: TableBinding) -> dict[str, str]:
        """The columns of the bound source table or query: lower-case name -> type family.

        Families: ``integer``, ``float``, ``decimal``, ``string``, ``date``, ``timestamp``,
        ``boolean``, ``any`` (untyped); anything else is the source's own type name.
        """
        ...

    def read_table(self, binding: TableBinding, columns: Sequence[ColumnBinding]) -> pa.Table:
        """Every row of the bound table: one Arrow column per binding, named for the contract
        column and holding the source values as they are (the loader maps and casts them)."""
        ...

    def count_unmapped(self, binding: TableBinding, column: ColumnBinding) -> int:
        """Rows whose non-NULL source value the column's ``values`` map does not cover."""
        ...

    def row_count(self, binding: TableBinding) -> int:
        """Number of rows of the bound table."""
        ...

    def max_rows_per_unit(self, binding: TableBinding, unit: str) -> int:
        """The largest number of rows one unit has in the bound table."""
        ...

    def compile_partial(self, sql: str, salt: int) -> str:
        """The partial query (DuckDB dialect) as this source runs it: bound tables, salt inlined.

        Raises:
            QueryRejected: The query uses an operation the source cannot run with the same
                per-row error guards.
        """
        ...

    def check_partial(self, sql: str) -> None:
        """Compile the partial query in the source without reading rows (EXPLAIN).

        Raises:
            QueryRejected: The source cannot compile it.
        """
        ...

    def run_partial(self, sql: str, salt: int, timeout_s: float) -> Rows:
        """Run the partial query in the source as a read-only session and return its groups.

        Raises:
            QueryTimeout: It ran past ``timeout_s``.
            InternalError: The source failed on it.
        """
        ...

    def close(self) -> None:
        """Close every connection."""
        ...


#: What a connector's entry point loads: built from the source, the contract, the shared tables
#: and columns, and the password (None when the source needs none).
ConnectorFactory = Callable[[SourceSpec, Contract, Mapping[str, tuple[str, ...]], str | None], Any]


def read_password(spec: SourceSpec) -> str | None:
    """The source's password from the environment or a file outside the policy, if it names one.

    Raises:
        ConfigError: The variable is unset or the file cannot be read.
    """
    if spec.password_env:
        value = os.environ.get(spec.password_env)
        if value is None:
            raise ConfigError(
                f"the environment variable {spec.password_env} holding the source's password "
                "is not set; set it before starting the silo",
                key="source.password_env",
            )
        return value
    if spec.password_file:
        try:
            return Path(spec.password_file).read_text().strip("\r\n")
        except OSError:
            raise ConfigError(
                "the source's password file cannot be read; check password_file and its "
                "permissions",
                key="source.password_file",
            ) from None
    return None


def connector_factory(name: str) -> ConnectorFactory:
    """The factory registered as ``name`` in the ``fedsql.connectors`` entry-point group.

    Raises:
        ConfigError: No installed connector has that name.
    """
    found = {ep.name: ep for ep in entry_points(group=CONNECTOR_GROUP)}
    if name not in found:
        raise ConfigError(
            f"no connector {name!r} is installed; installed: {', '.join(sorted(found)) or 'none'}",
            key="source.connector",
        )
    factory: ConnectorFactory = found[name].load()
    return factory


def open_connector(
    spec: SourceSpec, contract: Contract, shared: Mapping[str, tuple[str, ...]]
) -> Connector:
    """Build the policy's connector and check every binding against the contract.

    Raises:
        ConfigError: The source is unreachable, refuses the credentials, or a binding does not
            fit the contract (see :func:`check_bindings`).
    """
    factory = connector_factory(spec.connector)
    connector: Connector = factory(spec, contract, shared, read_password(spec))
    try:
        if spec.mode == "pushdown" and not connector.supports_pushdown:
            raise ConfigError(
                f'the {spec.connector} connector cannot run queries itself; use mode = "snapshot"',
                key="source.mode",
            )
        check_bindings(connector, spec, contract, shared)
    except BaseException:
        connector.close()
        raise
    return connector


def check_bindings(
    connector: Connector,
    spec: SourceSpec,
    contract: Contract,
    shared: Mapping[str, tuple[str, ...]],
) -> None:
    """Check that every shared column is bound to a source column of a fitting type.

    All problems are reported at once, each naming the federated table and column.

    Raises:
        ConfigError: A bound table or column is missing, a type does not fit the contract, a
            cast would be needed in pushdown mode, or a ``values`` map misses source values.
    """
    problems: list[tuple[str, str]] = []
    for name, shared_columns in shared.items():
        table = contract.table(name)
        assert table is not None
        binding = spec.binding(name)
        columns = connector.source_columns(binding)
        for column_name in shared_columns:
            column = table.column(column_name)
            assert column is not None
            bound = binding.column(column_name)
            key = f"bind.{name}.columns.{column_name}"
            family = columns.get(bound.source.lower())
            where = f"table {name}, column {column_name}"
            if family is None:
                problems.append(
                    (
                        key,
                        f"{where}: the source has no column {bound.source!r} in "
                        f"{describe_binding(binding)}; bind it with [bind.{name}.columns] "
                        f'{column_name} = "<source column>"',
                    )
                )
                continue
            if bound.values:
                problems += _value_map_problems(connector, binding, bound, column.type, key, where)
                continue
            if family in COMPATIBLE[column.type]:
                continue
            if bound.cast and spec.mode == "snapshot":
                continue
            fix = (
                "convert it in a view of the source, or load it in snapshot mode with cast = true"
                if spec.mode == "pushdown"
                else f"bind a column of a fitting type, or add {column_name} = "
                f'{{ column = "{bound.source}", cast = true }}'
            )
            problems.append(
                (
                    key,
                    f"{where}: source column {bound.source!r} is of type {family}, the contract "
                    f"says {column.type}; {fix}",
                )
            )
    if problems:
        raise ConfigError(problems[0][1], key=problems[0][0], problems=problems)


def _value_map_problems(
    connector: Connector,
    binding: TableBinding,
    bound: ColumnBinding,
    column_type: str,
    key: str,
    where: str,
) -> list[tuple[str, str]]:
    want: tuple[type, ...] = {
        "VARCHAR": (str,),
        "INTEGER": (int,),
        "BIGINT": (int,),
        "BOOLEAN": (bool,),
    }.get(column_type, ())
    if not want:
        return [(key, f"{where}: a values map needs a VARCHAR, integer or BOOLEAN column")]
    wrong = [
        src
        for src, value in bound.values
        if not isinstance(value, want) or (bool not in want and isinstance(value, bool))
    ]
    if wrong:
        return [
            (
                key,
                f"{where}: the values map gives {len(wrong)} value(s) that are not "
                f"{column_type}; map every source value to a {column_type} value",
            )
        ]
    missing = connector.count_unmapped(binding, bound)
    if missing:
        return [
            (
                key,
                f"{where}: {missing} row(s) of source column {bound.source!r} hold a value the "
                "values map does not cover (the values are not shown); add every source value "
                "to the map",
            )
        ]
    return []


def describe_binding(binding: TableBinding) -> str:
    """How a binding's source is named in messages: its table, or "its query"."""
    return f"source table {binding.table!r}" if binding.table else "its bound query"
