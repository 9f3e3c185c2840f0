"""Pushdown sends the transpiled partial query, gets back only grouped rows, and cannot write.

What the server received is read on the server's side: PostgreSQL's statement log (the reader
role logs its statements) and MariaDB's general log table.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc_pg
import pymysql
import pytest

from fedsql.catalog import Contract
from fedsql.errors import QueryTimeout
from fedsql.silo.source_engines import PushdownEngine, open_engine
from fedsql.sql.plan import SALT_PARAM
from fedsql.sql.planner import plan_query
from tests.connectors.conftest import MARIADB, PG_ADMIN, ServedClinic

SQL = "SELECT sex, AVG(bmi) FROM patients WHERE age >= 40 GROUP BY sex"


def _pushdown(contract: Contract, served: ServedClinic, tmp_path: Path) -> PushdownEngine:
    engine = open_engine(contract, served.policy(contract, "pushdown"), "", tmp_path)
    assert isinstance(engine, PushdownEngine)
    return engine


def _run(engine: PushdownEngine, contract: Contract) -> tuple[str, list[tuple[object, ...]], int]:
    visible = {t.name: t.column_names for t in contract.tables}
    plan = plan_query(SQL, None, contract, visible)
    names, rows = engine.run(plan.partial_sql, {SALT_PARAM: 987654321}, 30)
    assert names == [k.name for k in plan.keys] + [m.name for m in plan.measures]
    return engine.connector.sent[-1], rows, plan.cells  # type: ignore[attr-defined]


@pytest.fixture
def postgres_log(postgres_clinic: ServedClinic) -> Iterator[Path]:
    """The server's log, with the reader role's statements logged while the test runs."""
    logs = sorted(glob.glob("/var/log/postgresql/postgresql-*-main.log"))
    assert logs, "the PostgreSQL server log is not at /var/log/postgresql"
    with adbc_pg.connect(PG_ADMIN, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER ROLE {postgres_clinic.reader} SET log_statement = 'all'")
    try:
        yield Path(logs[-1])
    finally:
        with adbc_pg.connect(PG_ADMIN, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"ALTER ROLE {postgres_clinic.reader} RESET log_statement")


def test_postgres_receives_the_transpiled_partial_query_and_returns_only_groups(
    contract: Contract, postgres_clinic: ServedClinic, postgres_log: Path, tmp_path: Path
) -> None:
    engine = _pushdown(contract, postgres_clinic, tmp_path)
    try:
        sent, rows, cells = _run(engine, contract)
    finally:
        engine.close()
    assert "hashtextextended(CAST(__rid AS TEXT), 987654321)".lower() in sent.lower()
    assert "_w <= 1" in sent and "FROM public.patient" in sent
    assert 'LEAST(GREATEST(CAST("bmi" AS DOUBLE PRECISION), 10.0), 70.0)' in sent
    assert 0 < len(rows) <= cells
    # The log continues a multi-line statement on lines that start with a tab; ADBC sends the
    # query inside COPY (...) TO STDOUT.
    who = f"{postgres_clinic.reader}@{postgres_clinic.database}"
    logged = f"{who} LOG:  execute <unnamed>: COPY ({sent}) TO STDOUT".replace("\n", "\n\t")
    deadline = time.time() + 10
    while logged not in postgres_log.read_text(errors="replace") and time.time() < deadline:
        time.sleep(0.2)
    assert logged in postgres_log.read_text(errors="replace")


@pytest.fixture
def mariadb_general_log() -> Iterator[pymysql.connections.Connection]:
    host, port = MARIADB
    conn = pymysql.connect(host=host, port=port, user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT @@general_log, @@log_output")
        before = cur.fetchone()
        cur.execute("SET GLOBAL log_output = 'TABLE'")
        cur.execute("SET GLOBAL general_log = 1")
    try:
        yield conn
    finally:
        with conn.cursor() as cur:
            assert before is not None
            cur.execute(f"SET GLOBAL general_log = {int(before[0])}")
            cur.execute("SET GLOBAL log_output = %s", (before[1],))
        conn.close()


def test_mariadb_receives_the_transpiled_partial_query_and_returns_only_groups(
    contract: Contract,
    mariadb_clinic: ServedClinic,
    mariadb_general_log: pymysql.connections.Connection,
    tmp_path: Path,
) -> None:
    engine = _pushdown(contract, mariadb_clinic, tmp_path)
    try:
        sent, rows, cells = _run(engine, contract)
    finally:
        engine.close()
    assert "MD5(CONCAT(__rid, ':', 987654321))" in sent and "_w <= 1" in sent
    assert 0 < len(rows) <= cells
    with mariadb_general_log.cursor() as cur:
        cur.execute(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log "
            "WHERE user_host LIKE %s AND command_type = 'Query'",
            (f"{mariadb_clinic.reader}%",),
        )
        received = [str(r[0]) for r in cur.fetchall()]
    assert sent in received


def test_postgres_reader_cannot_write(
    contract: Contract, postgres_clinic: ServedClinic, tmp_path: Path
) -> None:
    with adbc_pg.connect(postgres_clinic.url, autocommit=True) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_pg.Error, match="permission denied"):
            cur.execute("DELETE FROM public.patient")
        with pytest.raises(adbc_pg.Error, match="permission denied"):
            cur.execute("CREATE TABLE public.leak (x int)")
    engine = _pushdown(contract, postgres_clinic, tmp_path)
    try:
        with engine.connector._connection() as conn:  # type: ignore[attr-defined]
            cur = conn.cursor()
            with pytest.raises(adbc_pg.Error, match="read-only transaction"):
                cur.execute("CREATE TEMPORARY TABLE leak (x int)")
    finally:
        engine.close()


def test_mariadb_reader_cannot_write(
    contract: Contract, mariadb_clinic: ServedClinic, tmp_path: Path
) -> None:
    host, port = MARIADB
    conn = pymysql.connect(
        host=host, port=port, user=mariadb_clinic.reader, database=mariadb_clinic.database
    )
    try:
        with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError, match="denied"):
            cur.execute("DELETE FROM patient")
    finally:
        conn.close()
    engine = _pushdown(contract, mariadb_clinic, tmp_path)
    try:
        with engine.connector._connection() as conn:  # type: ignore[attr-defined]
            cur = conn.cursor()
            with pytest.raises(pymysql.err.MySQLError, match="READ ONLY"):
                cur.execute("CREATE TEMPORARY TABLE leak (x int)")
    finally:
        engine.close()


@pytest.mark.parametrize("server", ["postgres", "mysql"])
def test_a_pushdown_query_past_its_time_limit_is_stopped(
    contract: Contract,
    postgres_clinic: ServedClinic,
    mariadb_clinic: ServedClinic,
    tmp_path: Path,
    server: str,
) -> None:
    served = postgres_clinic if server == "postgres" else mariadb_clinic
    engine = _pushdown(contract, served, tmp_path)
    visible = {t.name: t.column_names for t in contract.tables}
    plan = plan_query("SELECT test, AVG(value) FROM labs GROUP BY test", None, contract, visible)
    try:
        with pytest.raises(QueryTimeout, match=r"limit of 0\.001 s"):
            engine.run(plan.partial_sql, {SALT_PARAM: 1}, 0.001)
        # The session still serves the next query, with its own limit.
        _, rows = engine.run(plan.partial_sql, {SALT_PARAM: 1}, 30)
        assert len(rows) == 4
    finally:
        engine.close()
