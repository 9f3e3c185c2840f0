"""The planner tests' testbed: a test contract, a synthetic clinic and a noise-off run.

A plan runs the way a silo (partial SQL) and the hub (finalize SQL over partials) would run it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from fedsql.catalog import Bounds, Column, Contract, Domain, Table
from fedsql.sql import CELL_COLUMN, PARTIALS_TABLE, SALT_PARAM, FederatedPlan
from fedsql.sql.key_domains import ARROW_TYPES

PATIENTS = Table(
    name="patients",
    unit="patient_id",
    max_rows_per_unit=2,
    columns=(
        Column("patient_id", "BIGINT"),
        Column("sex", "VARCHAR", domain=Domain("enum", values=("F", "M", "X"))),
        Column(
            "age",
            "INTEGER",
            bounds=Bounds(0, 110),
            domain=Domain("int_range", lo=0, hi=110),
        ),
        Column("bmi", "DOUBLE", bounds=Bounds(10.0, 70.0)),
        Column(
            "region", "VARCHAR", domain=Domain("enum", values=("east", "north", "south", "west"))
        ),
        Column("smoker", "BOOLEAN", domain=Domain("enum", values=(False, True))),
        Column("birth_date", "DATE"),
        Column("name", "VARCHAR"),
        Column("income", "BIGINT"),
        Column("zip", "VARCHAR"),
    ),
)
VISITS = Table(
    name="visits",
    unit="patient_id",
    max_rows_per_unit=4,
    columns=(
        Column("patient_id", "BIGINT"),
        Column(
            "visit_date",
            "DATE",
            domain=Domain("date_range", lo="2024-01-01", hi="2024-01-14"),
        ),
        Column("dept", "VARCHAR", domain=Domain("enum", values=("cardio", "derm", "er", "onco"))),
        Column("cost", "INTEGER", bounds=Bounds(0, 5000)),
        Column("minutes", "DOUBLE", bounds=Bounds(0.0, 240.0)),
        Column("urgent", "BOOLEAN", domain=Domain("enum", values=(False, True))),
        Column("note", "VARCHAR"),
    ),
)
LABS = Table(
    name="labs",
    unit="patient_id",
    max_rows_per_unit=6,
    columns=(
        Column("patient_id", "BIGINT"),
        Column("test", "VARCHAR", domain=Domain("enum", values=("crp", "hba1c", "ldl"))),
        Column("year", "INTEGER", domain=Domain("int_range", lo=2019, hi=2024)),
        Column("delta", "DOUBLE", bounds=Bounds(-50.0, 20.0)),
        Column("score", "INTEGER", bounds=Bounds(-5, 5)),
    ),
)
GENOMES = Table(
    name="genomes",
    unit="patient_id",
    max_rows_per_unit=1,
    columns=(Column("patient_id", "BIGINT"), Column("variant", "VARCHAR")),
)

#: The clinics of the test federation: the domain of the ``silo`` pseudo-column.
SILOS = ("clinic-a", "clinic-b", "clinic-c")
CONTRACT = Contract(federation_id="test", tables=(PATIENTS, VISITS, LABS, GENOMES), silos=SILOS)

#: What the tests' caller may see: everything except patients.zip, visits.note and genomes.
VISIBLE: dict[str, tuple[str, ...]] = {
    "patients": tuple(c for c in PATIENTS.column_names if c != "zip"),
    "visits": tuple(c for c in VISITS.column_names if c != "note"),
    "labs": LABS.column_names,
}

_NAMES = ("Ann", "Bo", "Mia", "Max", "O'Brien", "Zoë", "Li", "Moss", "Al", "Mo'a", "Eve")


def _patients(rng: random.Random) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {c.name: [] for c in PATIENTS.columns}
    for unit in range(1, 301):
        sex = rng.choices(("F", "M", "X"), weights=(10, 10, 1))[0]
        region = rng.choice(("east", "north", "south", "west"))
        for _ in range(rng.randint(1, PATIENTS.max_rows_per_unit)):
            rows["patient_id"].append(unit)
            rows["sex"].append(sex)
            rows["age"].append(rng.randint(0, 110))
            # every bmi of the west region is NULL: SUM and AVG over an all-NULL group
            bmi = None if region == "west" or rng.random() < 0.1 else rng.uniform(10, 70)
            rows["bmi"].append(bmi)
            rows["region"].append(region)
            rows["smoker"].append(rng.random() < 0.3)
            rows["birth_date"].append(
                dt.date(1920, 1, 1) + dt.timedelta(days=rng.randint(0, 36500))
            )
            rows["name"].append(rng.choice(_NAMES))
            rows["income"].append(rng.randint(0, 200_000))
            rows["zip"].append(f"{rng.randint(0, 99999):05d}")
    return rows


def _visits(rng: random.Random) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {c.name: [] for c in VISITS.columns}
    for unit in range(1, 251):
        for _ in range(rng.randint(1, VISITS.max_rows_per_unit)):
            rows["patient_id"].append(unit)
            rows["visit_date"].append(dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 13)))
            rows["dept"].append(rng.choice(("cardio", "derm", "er", "onco")))
            rows["cost"].append(None if rng.random() < 0.05 else rng.randint(0, 5000))
            rows["minutes"].append(rng.uniform(0, 240))
            rows["urgent"].append(rng.random() < 0.2)
            rows["note"].append("confidential")
    return rows


def _labs(rng: random.Random) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {c.name: [] for c in LABS.columns}
    for unit in range(1, 201):
        for _ in range(rng.randint(1, LABS.max_rows_per_unit)):
            rows["patient_id"].append(unit)
            rows["test"].append(rng.choice(("crp", "hba1c", "ldl")))
            rows["year"].append(rng.randint(2019, 2024))
            rows["delta"].append(rng.uniform(-50, 20))
            rows["score"].append(rng.randint(-5, 5))
    return rows


def load_table(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    rows: Mapping[str, list[Any]],
    *,
    append: bool = False,
) -> None:
    """Create ``table`` in ``con`` (a real table, so ``rowid`` exists) holding ``rows``, or
    append ``rows`` to it."""
    arrow = pa.table(
        {c.name: pa.array(rows[c.name], type=ARROW_TYPES[c.type]) for c in table.columns}
    )
    con.register("__load", arrow)
    if append:
        con.execute(f'INSERT INTO "{table.name}" SELECT * FROM __load')
    else:
        con.execute(f'CREATE OR REPLACE TABLE "{table.name}" AS SELECT * FROM __load')
    con.unregister("__load")


def clinic_database(seed: int = 7) -> duckdb.DuckDBPyConnection:
    """An in-memory clinic with patients, visits and labs, at most k rows per unit each."""
    rng = random.Random(seed)
    con = duckdb.connect()
    load_table(con, PATIENTS, _patients(rng))
    load_table(con, VISITS, _visits(rng))
    load_table(con, LABS, _labs(rng))
    return con


@dataclass
class Answer:
    """A noise-off federated answer: result names and rows, and each cell's COUNT(*)."""

    names: list[str]
    rows: list[tuple[Any, ...]]
    types: list[str]
    cell_counts: dict[int, float]


def partial_rows(
    con: duckdb.DuckDBPyConnection, plan: FederatedPlan, salt: int = 1234
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run the plan's partial query as a silo does (salt bound as a named parameter)."""
    cursor = con.execute(plan.partial_sql, {SALT_PARAM: salt})
    names = [d[0] for d in cursor.description]
    return names, cursor.fetchall()


def partials_table(plan: FederatedPlan, rows: Sequence[tuple[Any, ...]]) -> pa.Table:
    """``partials(__cell, keys.., measures..)`` with a row per cell: zeros for absent cells,
    out-of-domain groups dropped, present cells' values as computed (NULL sums stay NULL)."""
    n_keys = len(plan.keys)
    index = plan.key_index()
    values: dict[int, tuple[Any, ...]] = {}
    for row in rows:
        cell = index.get(tuple(row[:n_keys]))
        if cell is not None:
            values[cell] = tuple(row[n_keys:])
    cells = sorted(index.items(), key=lambda item: item[1])
    zeros = tuple(0.0 for _ in plan.measures)
    columns: dict[str, pa.Array] = {CELL_COLUMN: pa.array([c for _, c in cells], pa.int64())}
    for position, key in enumerate(plan.keys):
        columns[key.name] = pa.array(
            [k[position] for k, _ in cells], type=ARROW_TYPES[key.sql_type]
        )
    for position, measure in enumerate(plan.measures):
        column = [values.get(c, zeros)[position] for _, c in cells]
        columns[measure.name] = pa.array(
            [None if v is None else float(v) for v in column], pa.float64()
        )
    return pa.table(columns)


def federated_answer(
    con: duckdb.DuckDBPyConnection, plan: FederatedPlan, salt: int = 1234
) -> Answer:
    """Run partial SQL at the clinic, then finalize SQL over its partials, noise off."""
    _, rows = partial_rows(con, plan, salt)
    table = partials_table(plan, rows)
    hub = duckdb.connect()
    hub.register(PARTIALS_TABLE, table)
    cursor = hub.execute(plan.finalize_sql)
    names = [d[0] for d in cursor.description]
    types = [str(d[1]) for d in cursor.description]
    result = cursor.fetchall()
    hub.close()
    counts = table.column(plan.count_measure).to_pylist()
    cell_counts = dict(zip(table.column(CELL_COLUMN).to_pylist(), counts, strict=True))
    return Answer(names=names, rows=result, types=types, cell_counts=cell_counts)
