"""Loading the federation contract (TOML) into a validated catalog.Contract."""

from __future__ import annotations

import os
from collections.abc import Mapping

from fedsql.catalog import COLUMN_TYPES, SILO_COLUMN, Column, Contract, SecAggParams, Table
from fedsql.config.columns import COLUMN_KEYS, DOMAIN_KEYS, TYPE_ALIASES, read_column
from fedsql.config.fields import Section, epsilon_value
from fedsql.config.names import (
    identifier_problem,
    index_path,
    is_slug,
    key_path,
    quote,
    slugify,
)
from fedsql.config.problems import Problems, describe, did_you_mean, read_config_text, read_toml

#: Keys each table of a contract file accepts; ``*`` stands for any table or column name.
#: ``tables`` and ``tables.*.columns`` are open tables (see CONTRACT_OPEN_TABLES).
CONTRACT_KEYS: Mapping[str, frozenset[str]] = {
    "": frozenset({"federation", "secagg", "tables"}),
    "federation": frozenset({"id", "description", "delta", "default_epsilon", "silos"}),
    "secagg": frozenset({"n_min", "c_max", "threshold", "max_rows_per_silo"}),
    "tables.*": frozenset({"unit", "max_rows_per_unit", "description", "columns"}),
    "tables.*.columns.*": COLUMN_KEYS,
    "tables.*.columns.*.domain": DOMAIN_KEYS,
}

#: Tables of a contract file whose keys are names chosen by the author (tables, columns).
CONTRACT_OPEN_TABLES: frozenset[str] = frozenset({"tables", "tables.*.columns"})

_DEFAULTS = Contract(federation_id="defaults", tables=())

#: Column types that can identify a privacy unit.
UNIT_TYPES: frozenset[str] = frozenset({"INTEGER", "BIGINT", "VARCHAR"})


def load_contract(path: str | os.PathLike[str]) -> Contract:
    """Read and validate a federation contract file.

    Args:
        path: The contract's TOML file.

    Returns:
        The validated Contract.

    Raises:
        ConfigError: naming the file, and the key and fix of every problem found.
    """
    return parse_contract(read_config_text(path), file=str(path))


def parse_contract(text: str, *, file: str = "<string>") -> Contract:
    """Validate contract TOML text and build the Contract it describes.

    Every problem in the text is reported at once, each as ``file: key: what; what to do``.
    Table and column names are lower-cased; columns keep their order in the file.

    Args:
        text: The TOML text.
        file: How to name the text in messages.

    Returns:
        The validated Contract.

    Raises:
        ConfigError: with ``problems`` listing every ``(key, message)`` found.
    """
    problems = Problems(file)
    root = Section(read_toml(text, file), "", problems)
    root.check_keys(CONTRACT_KEYS[""])
    federation = root.table("federation", '[federation] with id = "my-federation"', required=True)
    fields = _read_federation(federation) if federation is not None else None
    silos = _read_silos(federation) if federation is not None else ()
    secagg = _read_secagg(root.table("secagg", "[secagg] with n_min and c_max"))
    tables = _read_tables(
        root.table("tables", "one [tables.<name>] section per table", required=True)
    )
    if silos:
        _check_silo_column(problems, tables)
    problems.raise_if_any()
    assert fields is not None and secagg is not None
    federation_id, description, delta, default_epsilon = fields
    return Contract(
        federation_id=federation_id,
        tables=tables,
        delta=delta,
        default_epsilon=default_epsilon,
        secagg=secagg,
        description=description,
        silos=silos,
    )


def _read_federation(section: Section) -> tuple[str, str, float, float]:
    section.check_keys(CONTRACT_KEYS["federation"])
    federation_id = section.string("id", 'id = "my-federation"', required=True)
    if federation_id is not None and not is_slug(federation_id):
        section.add(
            "id",
            f"{quote(federation_id)} is not a valid id; use lower-case letters, digits and inner "
            f'hyphens (at most 63 characters), e.g. id = "{slugify(federation_id)}"',
        )
    description = section.string("description", 'description = "who takes part and why"') or ""
    delta = section.number("delta", "delta = 1e-6")
    if delta is not None and not 0 < delta < 1:
        section.add(
            "delta",
            f"delta must lie strictly between 0 and 1, got {delta:g}; write delta = 1e-6 "
            "(well below 1 / number of patients)",
        )
    default_epsilon = epsilon_value(section, "default_epsilon", "default_epsilon = 1.0")
    return (
        federation_id or "",
        description,
        _DEFAULTS.delta if delta is None else delta,
        _DEFAULTS.default_epsilon if default_epsilon is None else default_epsilon,
    )


def _read_silos(section: Section) -> tuple[str, ...]:
    """The ``silos`` list: the clinic ids, the public domain of the ``silo`` pseudo-column."""
    example = 'silos = ["clinic-a", "clinic-b", "clinic-c"]'
    values = section.array("silos", example)
    if values is None:
        return ()
    if not values:
        section.add(
            "silos",
            f"the list is empty; list every clinic's id, e.g. {example}, or remove the key "
            "(queries then cannot group by silo)",
        )
        return ()
    silos: list[str] = []
    for index, value in enumerate(values):
        key = index_path(section.key("silos"), index)
        if not isinstance(value, str):
            section.problems.add(
                key, f"expected a clinic id (a string), got {describe(value)}; write {example}"
            )
        elif not is_slug(value):
            section.problems.add(
                key,
                f"{quote(value)} is not a valid silo id; use lower-case letters, digits and "
                f'inner hyphens (at most 63 characters), e.g. "{slugify(value)}"',
            )
        elif value in silos:
            section.problems.add(key, f"{quote(value)} is listed twice; list each clinic once")
        else:
            silos.append(value)
    return tuple(silos)


def _check_silo_column(problems: Problems, tables: tuple[Table, ...]) -> None:
    """A declared ``silos`` list makes ``silo`` a pseudo-column: no table may have a real one."""
    for table in tables:
        if table.column(SILO_COLUMN) is not None:
            problems.add(
                f"tables.{table.name}.columns.{SILO_COLUMN}",
                f"a column named {SILO_COLUMN} clashes with the per-clinic pseudo-column "
                f"{SILO_COLUMN} that [federation] silos declares; rename the column (and bind "
                "it under its new name in every policy), or remove silos from [federation]",
            )


def _read_secagg(section: Section | None) -> SecAggParams | None:
    defaults = SecAggParams()
    if section is None:
        return defaults
    section.check_keys(CONTRACT_KEYS["secagg"])
    n_min = section.integer("n_min", "n_min = 3")
    c_max = section.integer("c_max", "c_max = 1")
    threshold = section.integer("threshold", "threshold = 2")
    max_rows = section.integer("max_rows_per_silo", "max_rows_per_silo = 100000000")
    if c_max is not None and c_max < 0:
        section.add("c_max", f"c_max must be 0 or more, got {c_max}; write c_max = 1")
        c_max = None
    c_eff = defaults.c_max if c_max is None else c_max
    n_eff = defaults.n_min if n_min is None else n_min
    floor = max(2, c_eff + 2)
    if n_min is not None and n_eff < floor:
        section.add(
            "n_min",
            f"n_min {n_eff} is below max(2, c_max + 2) = {floor}; raise n_min to at least "
            f"{floor} or lower c_max",
        )
    elif n_min is None and "n_min" not in section and n_eff < floor:
        section.add(
            "n_min",
            f"the default n_min {n_eff} is below max(2, c_max + 2) = {floor}; "
            f"add n_min = {floor} or lower c_max",
        )
    if threshold is not None and threshold < c_eff + 1:
        section.add(
            "threshold",
            f"threshold {threshold} is below c_max + 1 = {c_eff + 1}, so colluding silos could "
            f"unmask a single silo; raise it to at least {c_eff + 1} or remove it for the default",
        )
    if max_rows is not None and max_rows < 1:
        section.add(
            "max_rows_per_silo",
            f"max_rows_per_silo must be at least 1, got {max_rows}; write "
            "max_rows_per_silo = 100000000",
        )
    return SecAggParams(
        n_min=n_eff,
        c_max=c_eff,
        threshold=threshold,
        max_rows_per_silo=defaults.max_rows_per_silo if max_rows is None else max_rows,
    )


def _read_tables(section: Section | None) -> tuple[Table, ...]:
    if section is None:
        return ()
    if not section.data:
        section.problems.add(
            section.path,
            "no tables declared; add a [tables.<name>] section with unit, max_rows_per_unit "
            "and columns",
        )
        return ()
    tables: list[Table] = []
    seen: dict[str, str] = {}
    for raw_name, value in section.items():
        name = raw_name.lower()
        key = section.key(raw_name)
        _check_name(section.problems, key, name, raw_name, seen, "table")
        if not isinstance(value, dict):
            section.add(
                raw_name,
                f"expected a table, got {describe(value)}; write a [{key}] section with unit, "
                "max_rows_per_unit and columns",
            )
            continue
        table = _read_table(Section(value, key, section.problems), name)
        if table is not None:
            tables.append(table)
    return tuple(tables)


def _check_name(
    problems: Problems, key: str, name: str, raw: str, seen: dict[str, str], what: str
) -> None:
    problem = identifier_problem(name)
    if problem:
        problems.add(key, problem)
    if name in seen:
        problems.add(
            key,
            f"{what} {quote(raw)} repeats {quote(seen[name])} (names are case-insensitive); "
            f"rename or remove one",
        )
    else:
        seen[name] = raw


def _read_table(section: Section, name: str) -> Table | None:
    before = len(section.problems)
    section.check_keys(CONTRACT_KEYS["tables.*"])
    unit_raw = section.string("unit", 'unit = "patient_id"', required=True)
    unit = unit_raw.lower() if unit_raw is not None else None
    k = section.integer("max_rows_per_unit", "max_rows_per_unit = 1", required=True)
    if k is not None and k < 1:
        section.add(
            "max_rows_per_unit",
            f"max_rows_per_unit (k, the most rows one unit adds to a query) must be at least 1, "
            f"got {k}; write max_rows_per_unit = 1 or more",
        )
    description = section.string("description", 'description = "what one row is"') or ""
    columns_section = section.table(
        "columns", f"a [{section.key('columns')}] section with one entry per column", required=True
    )
    columns = _read_columns(columns_section, unit) if columns_section is not None else []
    if unit is not None and columns_section is not None and columns_section.data:
        _check_unit(section, unit, columns_section, columns)
    if len(section.problems) > before or unit is None or k is None:
        return None
    return Table(
        name=name,
        unit=unit,
        max_rows_per_unit=k,
        columns=tuple(columns),
        description=description,
    )


def _read_columns(section: Section, unit: str | None) -> list[Column]:
    if not section.data:
        section.problems.add(
            section.path,
            'no columns declared; add one entry per column, e.g. patient_id = { type = "BIGINT" }',
        )
        return []
    columns: list[Column] = []
    seen: dict[str, str] = {}
    for raw_name, value in section.items():
        name = raw_name.lower()
        key = section.key(raw_name)
        _check_name(section.problems, key, name, raw_name, seen, "column")
        if not isinstance(value, dict):
            shown = _type_suggestion(value)
            section.add(
                raw_name,
                f"expected an inline table, got {describe(value)}; write "
                f'{key_path("", raw_name)} = {{ type = "{shown}" }}',
            )
            continue
        column = read_column(Section(value, key, section.problems), name, is_unit=name == unit)
        if column is not None:
            columns.append(column)
    return columns


def _check_unit(table: Section, unit: str, columns_section: Section, columns: list[Column]) -> None:
    names = [raw.lower() for raw in columns_section.data]
    if unit not in names:
        table.add(
            "unit",
            f"{quote(unit)} is not a column of this table{did_you_mean(unit, names)}; name the "
            "column that identifies a patient and declare it under columns",
        )
        return
    column = next((c for c in columns if c.name == unit), None)
    if column is not None and column.type not in UNIT_TYPES:
        table.add(
            "unit",
            f"unit column {quote(unit)} is {column.type}; a unit identifies one person, so "
            "declare it BIGINT, INTEGER or VARCHAR",
        )


def _type_suggestion(value: object) -> str:
    if isinstance(value, str):
        upper = value.strip().upper()
        if upper in COLUMN_TYPES:
            return upper
        if upper in TYPE_ALIASES:
            return TYPE_ALIASES[upper]
    return "<TYPE>"
