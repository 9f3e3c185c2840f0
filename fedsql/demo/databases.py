"""Demo clinics in PostgreSQL and MariaDB: copy a generated clinic in, a read-only role, cleanup.

Used by ``examples/postgres-silo``, ``bench/connectors.py`` and the connector tests. The copy
keeps a clinic's own layout where it differs from the contract, as real clinics do: PostgreSQL
holds ``public.patient(id, full_name, age_years, gender, zip, bmi, diabetic)`` with
``gender`` spelled ``female`` / ``male``; visits and labs keep the contract's names. The policy
text from :func:`source_policy` binds that layout back to the contract.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pyarrow as pa

from fedsql.demo.generator import demo_files
from fedsql.errors import ConfigError

#: The PostgreSQL patients table as the demo clinics keep it, read from the generated file.
PATIENT_SELECT = (
    "SELECT patient_id AS id, name AS full_name, age AS age_years, "
    "CASE sex WHEN 'F' THEN 'female' WHEN 'M' THEN 'male' END AS gender, zip, bmi, diabetic "
    "FROM patients"
)
TABLES: dict[str, str] = {
    "patient": PATIENT_SELECT,
    "visits": "SELECT visit_id, patient_id, visit_date, cost FROM visits",
    "labs": "SELECT patient_id, test, value, taken_at FROM labs",
}
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{name!r} is not a plain lower-case SQL name; use letters, _ and digits")
    return name


def _checked_secret(password: str) -> str:
    if not password.isalnum():
        raise ConfigError("use letters and digits only for a demo database password")
    return password


def clinic_tables(clinic_file: Path) -> Iterator[tuple[str, pa.Table]]:
    """The clinic's tables in the layout the demo databases keep, as Arrow.

    The file is attached read-only to a private in-memory database, so it may be open elsewhere
    in the process (a silo's engine) with other settings.
    """
    with duckdb.connect() as conn:
        quoted = str(clinic_file).replace("'", "''")
        conn.execute(f"ATTACH '{quoted}' AS clinic (READ_ONLY)")
        conn.execute("USE clinic")
        for name, select in TABLES.items():
            yield name, conn.sql(select).to_arrow_table()


def with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` instead.

    >>> with_database("postgresql://postgres@127.0.0.1:5432/postgres", "clinic")
    'postgresql://postgres@127.0.0.1:5432/clinic'
    """
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def with_user(url: str, user: str) -> str:
    """``url`` with ``user`` as its user.

    >>> with_user("postgresql://postgres@127.0.0.1:5432/x", "reader")
    'postgresql://reader@127.0.0.1:5432/x'
    """
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment))


def postgres_clinic(
    admin_url: str,
    database: str,
    reader: str,
    tables: Iterator[tuple[str, pa.Table]],
    password: str | None = None,
) -> str:
    """Create ``database`` with the tables given (loaded with COPY) and a read-only ``reader``.

    Args:
        admin_url: A superuser's URL (``postgresql://postgres@127.0.0.1:5432/postgres``).
        database: The new database's name.
        reader: The new login role, granted SELECT on the tables only.
        tables: ``(name, rows)`` pairs.
        password: The reader's password (letters and digits), if it needs one.

    Returns:
        The reader's URL (without password).
    """
    import adbc_driver_postgresql.dbapi as adbc_pg

    database, reader = _checked(database), _checked(reader)
    with adbc_pg.connect(admin_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
        secret = f" PASSWORD '{_checked_secret(password)}'" if password else ""
        cur.execute(f"CREATE ROLE {reader} LOGIN{secret}")
    url = with_database(admin_url, database)
    with adbc_pg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        for name, rows in tables:
            cur.adbc_ingest(_checked(name), rows, mode="create")
        cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        cur.execute(f"GRANT USAGE ON SCHEMA public TO {reader}")
        cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}")
        cur.execute("ANALYZE")
    return with_user(url, reader)


def drop_postgres_clinic(admin_url: str, database: str, reader: str) -> None:
    """Drop a database and role made by :func:`postgres_clinic` (missing ones are fine)."""
    import adbc_driver_postgresql.dbapi as adbc_pg

    database, reader = _checked(database), _checked(reader)
    with adbc_pg.connect(admin_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        cur.execute(f"DROP ROLE IF EXISTS {reader}")


def _mysql_type(dtype: pa.DataType) -> str:
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_integer(dtype):
        return "BIGINT" if dtype.bit_width > 32 else "INT"
    if pa.types.is_floating(dtype):
        return "DOUBLE"
    if pa.types.is_date(dtype):
        return "DATE"
    return "VARCHAR(200)"


def mariadb_clinic(
    host: str, port: int, database: str, reader: str, tables: Iterator[tuple[str, pa.Table]]
) -> str:
    """Create ``database`` in MariaDB (as root) with the tables given and a SELECT-only user.

    Returns:
        The reader's URL (without password).
    """
    import pymysql

    database, reader = _checked(database), _checked(reader)
    conn = pymysql.connect(host=host, port=port, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
            cur.execute(f"CREATE USER '{reader}'@'%'")
            cur.execute(f"CREATE USER '{reader}'@'localhost'")
            for name, rows in tables:
                columns = ", ".join(f"`{f.name}` {_mysql_type(f.type)}" for f in rows.schema)
                cur.execute(f"CREATE TABLE {database}.{_checked(name)} ({columns})")
                marks = ", ".join(["%s"] * rows.num_columns)
                insert = f"INSERT INTO {database}.{name} VALUES ({marks})"
                data = list(zip(*(c.to_pylist() for c in rows.columns), strict=True))
                for start in range(0, len(data), 5000):
                    cur.executemany(insert, data[start : start + 5000])
            for account in (f"'{reader}'@'%'", f"'{reader}'@'localhost'"):
                cur.execute(f"GRANT SELECT ON {database}.* TO {account}")
    finally:
        conn.close()
    return f"mysql://{reader}@{host}:{port}/{database}"


def drop_mariadb_clinic(host: str, port: int, database: str, reader: str) -> None:
    """Drop a database and user made by :func:`mariadb_clinic` (missing ones are fine)."""
    import pymysql

    database, reader = _checked(database), _checked(reader)
    conn = pymysql.connect(host=host, port=port, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database}")
            cur.execute(f"DROP USER IF EXISTS '{reader}'@'%', '{reader}'@'localhost'")
    finally:
        conn.close()


#: Bindings of the demo layout to the contract (patients renamed, the others as they are).
DEMO_BINDINGS = """
[bind.patients]
table = "{patients}"

[bind.patients.columns]
patient_id = "id"
age = "age_years"
sex = {{ column = "gender", values = {{ female = "F", male = "M" }} }}
"""


def source_policy(clinic: str, connector: str, mode: str, location: str) -> str:
    """The demo policy of ``clinic`` serving its tables from a source in the demo layout.

    Args:
        clinic: The demo clinic (its policy's shares, budgets and limits are kept).
        connector: ``postgres`` or ``mysql``.
        mode: ``snapshot`` or ``pushdown``.
        location: The reader's URL, or the path of a file source.

    Returns:
        Policy TOML text.
    """
    text = (demo_files() / f"{clinic}.toml").read_text()
    text = re.sub(r'(?m)^data = "demo:[a-z-]+".*$', "", text)
    patients = "public.patient" if connector == "postgres" else "patient"
    where = "url" if "://" in location else "path"
    return (
        text
        + f'\n[source]\nconnector = "{connector}"\nmode = "{mode}"\n{where} = "{location}"\n'
        + DEMO_BINDINGS.format(patients=patients)
    )
