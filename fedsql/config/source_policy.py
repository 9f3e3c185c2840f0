"""The ``[source]`` and ``[bind.<table>]`` sections of a silo policy: where its tables live."""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from fedsql.catalog import (
    ColumnBinding,
    KeyValue,
    SourceMode,
    SourceSpec,
    TableBinding,
)
from fedsql.config.fields import Section
from fedsql.config.names import quote
from fedsql.config.problems import describe, did_you_mean

#: The entry-point group connectors register in.
CONNECTOR_GROUP = "fedsql.connectors"
#: Keys of ``[source]``, of each ``[bind.<table>]`` and of an inline column binding.
SOURCE_KEYS = frozenset({"connector", "mode", "url", "path", "password_env", "password_file"})
BIND_KEYS = frozenset({"table", "query", "columns"})
COLUMN_KEYS = frozenset({"column", "cast", "values"})
SOURCE_MODES: tuple[SourceMode, ...] = ("snapshot", "pushdown")


def installed_connectors() -> tuple[str, ...]:
    """Names of the connectors registered in the ``fedsql.connectors`` entry-point group."""
    return tuple(sorted({ep.name for ep in entry_points(group=CONNECTOR_GROUP)}))


def read_source(
    source: Section,
    bind: Section | None,
    shared: Mapping[str, tuple[str, ...]],
    base_dir: str | os.PathLike[str] | None,
) -> SourceSpec | None:
    """Read ``[source]`` and the ``[bind.*]`` tables, recording every problem in the section's file.

    Args:
        source: The ``[source]`` table.
        bind: The ``[bind]`` table, if any.
        shared: The policy's shared tables and columns (bindings may name only those).
        base_dir: The folder relative paths are resolved against.

    Returns:
        The source, or None when a problem was recorded.
    """
    before = len(source.problems)
    source.check_keys(SOURCE_KEYS)
    known = installed_connectors()
    connector = source.string("connector", 'connector = "postgres"', required=True)
    if connector is not None and connector not in known:
        source.add(
            "connector",
            f"no connector {quote(connector)} is installed{did_you_mean(connector, known)}; "
            f"use one of: {', '.join(known) or 'none'}",
        )
    mode = source.string("mode", 'mode = "snapshot"') or "snapshot"
    if mode not in SOURCE_MODES:
        source.add(
            "mode",
            f"unknown mode {quote(mode)}{did_you_mean(mode, SOURCE_MODES)}; use one of: "
            f"{', '.join(SOURCE_MODES)}",
        )
    location = _read_location(source, base_dir)
    password_env = source.string("password_env", 'password_env = "CLINIC_DB_PASSWORD"') or ""
    password_file = source.string("password_file", 'password_file = "/etc/fedsql/db.pw"') or ""
    if password_env and password_file:
        source.add("password_file", "give password_env or password_file, not both")
    if password_file:
        password_file = _resolve(password_file, base_dir)
    bindings = _read_bindings(bind, shared) if bind is not None else ()
    if len(source.problems) > before or connector is None or location is None:
        return None
    return SourceSpec(
        connector=connector,
        mode=cast(SourceMode, mode),
        location=location,
        bindings=bindings,
        password_env=password_env,
        password_file=password_file,
    )


def _resolve(path: str, base_dir: str | os.PathLike[str] | None) -> str:
    resolved = Path(path).expanduser()
    if not resolved.is_absolute() and base_dir is not None:
        resolved = (Path(base_dir) / resolved).resolve()
    return str(resolved)


def _read_location(source: Section, base_dir: str | os.PathLike[str] | None) -> str | None:
    url = source.string("url", 'url = "postgresql://reader@db.clinic:5432/ehr"')
    path = source.string("path", 'path = "exports/"')
    if (url is None) == (path is None):
        source.add(
            "url",
            "give exactly one of url (a database server) or path (files, SQLite, DuckDB), "
            'e.g. url = "postgresql://reader@db.clinic:5432/ehr"',
        )
        return None
    if path is not None:
        if not path.strip():
            source.add("path", 'the path is empty; write path = "exports/"')
            return None
        return _resolve(path, base_dir)
    assert url is not None
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        source.add("url", f"{quote(url)} is not a URL; write scheme://user@host:port/database")
        return None
    if has_password:
        source.add(
            "url",
            "the URL holds a password; never write credentials in a policy: remove it and set "
            "password_env (an environment variable) or password_file (a file outside the policy)",
        )
        return None
    if not parts.scheme or not parts.hostname:
        source.add("url", f"{quote(url)} names no server; write scheme://user@host:port/database")
        return None
    return url


def _read_bindings(
    bind: Section, shared: Mapping[str, tuple[str, ...]]
) -> tuple[TableBinding, ...]:
    out: list[TableBinding] = []
    for raw_name, _ in bind.items():
        name = raw_name.lower()
        table = bind.table(raw_name, f'[bind.{raw_name}] with table = "source_table"')
        if table is None:
            continue
        if name not in shared:
            bind.add(
                raw_name,
                f"table {quote(raw_name)} is not shared{did_you_mean(name, list(shared))}; bind "
                f"only tables listed in [share]: {', '.join(shared) or 'none'}",
            )
            continue
        table.check_keys(BIND_KEYS)
        source_table = table.string("table", 'table = "public.patients"') or ""
        query = table.string("query", 'query = "SELECT ... FROM ..."') or ""
        columns = table.table("columns", f'[bind.{raw_name}.columns] with column = "source"')
        bound = _read_columns(columns, shared[name], name) if columns else ()
        if bool(source_table.strip()) == bool(query.strip()):
            table.add("table", "give exactly one of table (a source table) or query (a SELECT)")
            continue
        out.append(TableBinding(name=name, table=source_table, query=query, columns=bound))
    return tuple(out)


def _read_columns(
    columns: Section, shared: tuple[str, ...], table_name: str
) -> tuple[ColumnBinding, ...]:
    out: list[ColumnBinding] = []
    for raw_name, value in columns.items():
        name = raw_name.lower()
        if name not in shared:
            columns.add(
                raw_name,
                f"column {quote(raw_name)} is not a shared column of {table_name}"
                f"{did_you_mean(name, shared)}; bind only: {', '.join(shared)}",
            )
            continue
        if isinstance(value, str):
            out.append(ColumnBinding(name=name, source=value))
            continue
        entry = columns.table(raw_name, f'{raw_name} = {{ column = "source", cast = true }}')
        if entry is None:
            continue
        entry.check_keys(COLUMN_KEYS)
        source = entry.string("column", 'column = "source_column"') or name
        do_cast = entry.data.get("cast", False)
        if not isinstance(do_cast, bool):
            entry.add("cast", f"expected true or false, got {describe(do_cast)}; write cast = true")
            do_cast = False
        values = _read_values(entry)
        out.append(ColumnBinding(name=name, source=source, cast=do_cast, values=values))
    return tuple(out)


def _read_values(entry: Section) -> tuple[tuple[str, KeyValue], ...]:
    raw = entry.table("values", 'values = { female = "F", male = "M" }')
    if raw is None:
        return ()
    pairs: list[tuple[str, KeyValue]] = []
    for source_value, target in raw.items():
        if not isinstance(target, str | int | bool) or isinstance(target, float):
            raw.add(
                source_value,
                f"expected a contract value (a string, integer or boolean), got {describe(target)}",
            )
            continue
        pairs.append((source_value, cast(Any, target)))
    if not pairs:
        entry.add("values", "the map is empty; map every source value, or remove values")
    return tuple(pairs)
