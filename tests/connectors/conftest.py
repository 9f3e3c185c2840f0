"""Real PostgreSQL and MariaDB clinics for the connector tests, created and dropped per session.

The servers are the machine's (PostgreSQL 127.0.0.1:5432, trust auth, user postgres; MariaDB
127.0.0.1:3306, root without password); ``.ci/run`` starts them. When one is down the tests that
need it fail under CI, and are skipped (with the reason) elsewhere.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedsql.catalog import Contract, SiloPolicy
from fedsql.config import load_contract, parse_policy
from fedsql.demo import databases as dbs
from fedsql.demo.generator import demo_files

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
MARIADB = ("127.0.0.1", 3306)
#: The demo clinic copied into the servers (the smallest, so the copies are quick).
CLINIC = "seoul"


def server_down(what: str, exc: BaseException) -> None:
    message = f"{what} is not running here ({type(exc).__name__}); .ci/run starts it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def unique(prefix: str) -> str:
    """A fresh lower-case name for a test database or role."""
    return f"{prefix}_{secrets.token_hex(5)}"


@dataclass(frozen=True)
class ServedClinic:
    """A demo clinic copied into a database server, with its read-only account."""

    connector: str
    url: str
    database: str
    reader: str

    def policy(self, contract: Contract, mode: str) -> SiloPolicy:
        """The clinic's policy serving its tables from this server in ``mode``."""
        text = dbs.source_policy(CLINIC, self.connector, mode, self.url)
        return parse_policy(text, contract)


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


@pytest.fixture(scope="session")
def clinic_file(demo_data: dict[str, Path]) -> Path:
    return demo_data[CLINIC]


@pytest.fixture(scope="session")
def postgres_clinic(clinic_file: Path) -> Iterator[ServedClinic]:
    import adbc_driver_postgresql.dbapi as adbc_pg

    try:
        adbc_pg.connect(PG_ADMIN).close()
    except Exception as exc:
        server_down("PostgreSQL at 127.0.0.1:5432", exc)
    database, reader = unique("fedsql_test"), unique("fedsql_reader")
    try:
        url = dbs.postgres_clinic(PG_ADMIN, database, reader, dbs.clinic_tables(clinic_file))
        yield ServedClinic("postgres", url, database, reader)
    finally:
        dbs.drop_postgres_clinic(PG_ADMIN, database, reader)


@pytest.fixture(scope="session")
def mariadb_clinic(clinic_file: Path) -> Iterator[ServedClinic]:
    import pymysql

    host, port = MARIADB
    try:
        pymysql.connect(host=host, port=port, user="root", password="").close()
    except Exception as exc:
        server_down("MariaDB at 127.0.0.1:3306", exc)
    database, reader = unique("fedsql_test"), unique("fedsql_reader")
    try:
        url = dbs.mariadb_clinic(host, port, database, reader, dbs.clinic_tables(clinic_file))
        yield ServedClinic("mysql", url, database, reader)
    finally:
        dbs.drop_mariadb_clinic(host, port, database, reader)


#: Oracle queries a pushdown source refuses before spending budget: each needs an operation
#: the source could run differently from DuckDB or fail on one row (joins and subqueries,
#: DISTINCT, arithmetic, date_trunc, string concatenation). Snapshot mode answers them all.
PUSHDOWN_REFUSED: frozenset[str] = frozenset(
    {
        (
            "SELECT year(visit_date) AS y, COUNT(*), COUNT(DISTINCT patient_id) FROM visits "
            "GROUP BY y"
        ),
        (
            "SELECT date_trunc('month', visit_date) AS m, COUNT(*) FROM visits WHERE "
            "visit_date >= DATE '2024-01-01' GROUP BY m"
        ),
        ("SELECT sex || '/' || CAST(diabetic AS VARCHAR) AS g, COUNT(*) FROM patients GROUP BY g"),
        "SELECT SUM(cost / 100) AS hundreds FROM visits",
        "SELECT AVG(bmi - 25) AS excess, SUM(age >= 65) AS seniors FROM patients",
        ("SELECT COUNT(DISTINCT patient_id) FROM labs WHERE test = 'HbA1c' AND value >= 6.5"),
        "SELECT test, COUNT(DISTINCT patient_id), COUNT(*) FROM labs GROUP BY test",
        "SELECT COUNT(DISTINCT patient_id) FILTER (WHERE cost > 1000) FROM visits",
        (
            "SELECT COUNT(*) / COUNT(DISTINCT patient_id) AS visits_per_patient FROM visits "
            "WHERE year(visit_date) = 2023"
        ),
        "SELECT sex, VAR_SAMP(bmi), STDDEV_SAMP(age) FROM patients GROUP BY sex",
        (
            "SELECT diabetic, VAR_POP(age), STDDEV_POP(bmi), STDDEV(bmi) FROM patients "
            "GROUP BY diabetic"
        ),
        "SELECT test, STDDEV(value), VARIANCE(value) FROM labs GROUP BY test",
        "SELECT VAR_SAMP(cost) FROM visits",
        (
            "SELECT AVG(l.value) AS mean_hba1c, COUNT(*) AS n FROM labs l JOIN patients p "
            "ON l.patient_id = p.patient_id WHERE p.diabetic AND l.test = 'HbA1c'"
        ),
        (
            "SELECT p.sex, p.diabetic, AVG(l.value) FROM patients p JOIN labs l ON "
            "l.patient_id = p.patient_id WHERE l.test = 'HbA1c' GROUP BY p.sex, p.diabetic"
        ),
        (
            "SELECT COUNT(*) AS visits FROM visits v WHERE EXISTS (SELECT 1 FROM labs l "
            "WHERE l.patient_id = v.patient_id AND l.test = 'LDL' AND l.value > 160)"
        ),
        (
            "SELECT COUNT(*) FROM visits WHERE patient_id IN (SELECT patient_id FROM labs "
            "WHERE test = 'LDL' AND value > 160)"
        ),
        (
            "WITH cohort AS (SELECT patient_id, sex FROM patients WHERE age >= 65 AND "
            "diabetic) SELECT c.sex, COUNT(*), AVG(l.value) FROM cohort c JOIN labs l ON "
            "l.patient_id = c.patient_id WHERE l.test = 'HbA1c' GROUP BY c.sex"
        ),
        (
            "SELECT p.sex, COUNT(*) FROM patients p LEFT JOIN labs l ON l.patient_id = "
            "p.patient_id WHERE l.patient_id IS NULL GROUP BY p.sex"
        ),
        (
            "SELECT COUNT(*) FROM patients WHERE patient_id NOT IN (SELECT patient_id FROM "
            "labs WHERE test = 'LDL' AND value > 100)"
        ),
        (
            "SELECT t.test, COUNT(*) AS patients_tested FROM (SELECT DISTINCT patient_id, "
            "test FROM labs) t GROUP BY t.test"
        ),
        (
            "SELECT p.diabetic, SUM(v.cost), COUNT(*) FROM patients p JOIN visits v ON "
            "v.patient_id = p.patient_id WHERE v.cost <= 5000 AND p.age >= ? GROUP BY "
            "p.diabetic"
        ),
        (
            "SELECT sex, COUNT(*) FROM patients p WHERE EXISTS (SELECT 1 FROM visits v "
            "WHERE v.patient_id = p.patient_id AND v.visit_date >= DATE '2024-01-01') AND "
            "NOT EXISTS (SELECT 1 FROM labs l WHERE l.patient_id = p.patient_id AND l.test "
            "= 'eGFR') GROUP BY sex ORDER BY sex"
        ),
    }
)
