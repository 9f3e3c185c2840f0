"""Every source and mode gives the partial vector of the clinic's own DuckDB file, query by query.

One demo clinic is served eight ways: PostgreSQL and MariaDB in pushdown and snapshot mode, a
DuckDB file in both modes, SQLite and a folder of JSON, CSV and Parquet files as snapshots; each
in the clinic's own layout (renamed columns, sex spelled out) bound back to the contract. For
the oracle query set, each plan's partial query must give the vector the DuckDB silo gives over
the generated file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from fedsql.catalog import Contract
from fedsql.config import parse_policy
from fedsql.demo import databases as dbs
from fedsql.errors import QueryRejected
from fedsql.silo.engine import Engine
from fedsql.silo.source_engines import PushdownEngine, QueryEngine, SnapshotEngine, open_engine
from fedsql.silo.vector import dense_vector
from fedsql.sql.plan import SALT_PARAM
from fedsql.sql.planner import plan_query
from fedsql.sql.regression import round_sql
from tests.connectors.conftest import CLINIC, PUSHDOWN_REFUSED, ServedClinic
from tests.demo.test_federation_oracle import CASES


def _salted(sql: str, salt: int) -> dict[str, object]:
    return {SALT_PARAM: salt} if f"${SALT_PARAM}" in sql else {}


@pytest.fixture(scope="module")
def file_sources(tmp_path_factory: pytest.TempPathFactory, clinic_file: Path) -> dict[str, Path]:
    """The clinic as a folder of files, a SQLite file and a DuckDB file, in its own layout."""
    root = tmp_path_factory.mktemp("sources")
    folder = root / "exports"
    (folder / "labs").mkdir(parents=True)
    lite = sqlite3.connect(root / "clinic.sqlite")
    with duckdb.connect(str(root / "clinic.duckdb")) as own:
        for name, rows in dbs.clinic_tables(clinic_file):
            own.register("rows", rows)
            own.execute(f"CREATE TABLE {name} AS SELECT * FROM rows")
            own.unregister("rows")
            columns = ", ".join(rows.column_names)
            lite.execute(f"CREATE TABLE {name} ({columns})")
            marks = ", ".join("?" * rows.num_columns)
            data = zip(*(c.to_pylist() for c in rows.columns), strict=True)
            lite.executemany(f"INSERT INTO {name} VALUES ({marks})", data)
            if name == "labs":
                half = rows.num_rows // 2
                pq.write_table(rows.slice(0, half), folder / "labs" / "part-0.parquet")
                pq.write_table(rows.slice(half), folder / "labs" / "part-1.parquet")
            elif name == "visits":
                pa_csv.write_csv(rows, folder / "visits.csv")
            else:
                with (folder / f"{name}.jsonl").open("w") as out:
                    out.writelines(json.dumps(row) + "\n" for row in rows.to_pylist())
    lite.commit()
    lite.close()
    return {
        "files": folder,
        "sqlite": root / "clinic.sqlite",
        "duckdb": root / "clinic.duckdb",
    }


@pytest.fixture(scope="module")
def engines(
    contract: Contract,
    clinic_file: Path,
    postgres_clinic: ServedClinic,
    mariadb_clinic: ServedClinic,
    file_sources: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, QueryEngine]]:
    setups: list[tuple[str, str, str]] = [
        ("postgres", "pushdown", postgres_clinic.url),
        ("postgres", "snapshot", postgres_clinic.url),
        ("mysql", "pushdown", mariadb_clinic.url),
        ("mysql", "snapshot", mariadb_clinic.url),
        ("duckdb", "pushdown", str(file_sources["duckdb"])),
        ("duckdb", "snapshot", str(file_sources["duckdb"])),
        ("sqlite", "snapshot", str(file_sources["sqlite"])),
        ("files", "snapshot", str(file_sources["files"])),
    ]
    out: dict[str, QueryEngine] = {"own file": Engine(clinic_file)}
    try:
        for connector, mode, location in setups:
            text = dbs.source_policy(CLINIC, connector, mode, location)
            policy = parse_policy(text, contract)
            state = tmp_path_factory.mktemp(f"{connector}-{mode}")
            out[f"{connector} {mode}"] = open_engine(contract, policy, "", state)
        yield out
    finally:
        for engine in out.values():
            engine.close()


def test_each_source_serves_the_mode_it_was_asked_for(engines: dict[str, QueryEngine]) -> None:
    for name, engine in engines.items():
        if name.endswith("pushdown"):
            assert isinstance(engine, PushdownEngine)
        elif name.endswith("snapshot"):
            assert isinstance(engine, SnapshotEngine)
            assert engine.path.is_file()


@pytest.mark.parametrize(("sql", "params", "oracle_sql"), CASES, ids=[c[0][:60] for c in CASES])
def test_every_mode_gives_the_duckdb_silo_vector(
    engines: dict[str, QueryEngine], contract: Contract, sql: str, params: Any, oracle_sql: Any
) -> None:
    visible = {t.name: t.column_names for t in contract.tables}
    plan = plan_query(sql, params, contract, visible)
    reference = engines["own file"]
    names, rows = reference.run(plan.partial_sql, _salted(plan.partial_sql, 11), 30)
    want = dense_vector(plan, names, rows)
    assert want.any()
    for name, engine in engines.items():
        if isinstance(engine, PushdownEngine) and sql in PUSHDOWN_REFUSED:
            # Refused at bind time, before the silo charges anything or runs a row.
            with pytest.raises(QueryRejected, match="this clinic runs queries in its own database"):
                engine.bind(plan.partial_sql, _salted(plan.partial_sql, 0))
            continue
        engine.bind(plan.partial_sql, _salted(plan.partial_sql, 0))
        names, rows = engine.run(plan.partial_sql, _salted(plan.partial_sql, 12345), 30)
        got = dense_vector(plan, names, rows)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT LINEAR_REGRESSION(bmi, age) AS m FROM patients",
        "SELECT sex, LOGISTIC_REGRESSION(diabetic, age, bmi) AS m FROM patients GROUP BY sex",
    ],
    ids=["linear", "logistic"],
)
def test_file_and_snapshot_modes_give_the_duckdb_silo_vector_of_a_model(
    engines: dict[str, QueryEngine], contract: Contract, sql: str
) -> None:
    visible = {t.name: t.column_names for t in contract.tables}
    plan = plan_query(sql, None, contract, visible)
    if plan.model is not None and plan.model.kind == "logistic":
        plan = plan_query(round_sql(sql, [0.25, -0.5, 1.5] * plan.cells), None, contract, visible)
    reference = engines["own file"]
    names, rows = reference.run(plan.partial_sql, plan.run_params(plan.partial_sql, 11), 30)
    want = dense_vector(plan, names, rows)
    assert want.any()
    for name, engine in engines.items():
        if isinstance(engine, PushdownEngine):
            # Not transpiled yet: refused at bind time, before any row is read.
            with pytest.raises(QueryRejected, match="this clinic runs queries in its own database"):
                engine.bind(plan.partial_sql, plan.run_params(plan.partial_sql, 0))
            continue
        engine.bind(plan.partial_sql, plan.run_params(plan.partial_sql, 0))
        names, rows = engine.run(plan.partial_sql, plan.run_params(plan.partial_sql, 12345), 30)
        got = dense_vector(plan, names, rows)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=name)
