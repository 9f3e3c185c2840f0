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


#: Oracle queries a pushdown source refuses before spending budget, each because it needs an
#: operation the source could run differently from DuckDB or fail on one row (snapshot mode
#: answers them all). Today pushdown answers every oracle query; the tests keep asserting both
#: directions so that a query refused later is noticed.
PUSHDOWN_REFUSED: frozenset[str] = frozenset()
