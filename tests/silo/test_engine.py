"""The silo's DuckDB engine is read-only, sealed off from files and extensions, and time-limited."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from fedsql.errors import ConfigError, InternalError, QueryTimeout
from fedsql.silo.engine import Engine


@pytest.fixture
def clinic_db(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t AS SELECT range AS u, range % 3 AS v FROM range(100)")
    return path


def test_runs_a_query_and_reports_columns(clinic_db: Path) -> None:
    engine = Engine(clinic_db)
    names, rows = engine.run("SELECT v, count(*) AS n FROM t GROUP BY v ORDER BY v", {}, 5)
    assert names == ["v", "n"]
    assert rows == [(0, 34), (1, 33), (2, 33)]
    engine.close()


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE x (a INT)",
        "INSERT INTO t VALUES (1, 1)",
        "SELECT * FROM read_csv('/etc/hostname')",
        "COPY t TO '/tmp/fedsql-leak.csv'",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ],
)
def test_escape_hatches_are_closed(clinic_db: Path, sql: str) -> None:
    engine = Engine(clinic_db)
    with pytest.raises(InternalError):
        engine.run(sql, {}, 5)
    engine.close()


def test_long_query_is_interrupted(clinic_db: Path) -> None:
    engine = Engine(clinic_db)
    with pytest.raises(QueryTimeout, match=r"0\.2 s"):
        engine.run("SELECT count(*) FROM range(10000000000) a, range(1000) b", {}, 0.2)
    # The engine still works afterwards.
    assert engine.run("SELECT count(*) FROM t", {}, 5)[1] == [(100,)]
    engine.close()


def test_missing_database_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Engine(tmp_path / "nope.duckdb")


def test_lockdown_settings_are_verified(clinic_db: Path) -> None:
    engine = Engine(clinic_db)
    engine.check_lockdown()
    names = ", ".join(f"'{n}'" for n in ("access_mode", "enable_external_access"))
    _, rows = engine.run(
        f"SELECT name, value FROM duckdb_settings() WHERE name IN ({names})", {}, 5
    )
    assert dict(rows) == {"access_mode": "read_only", "enable_external_access": "false"}
    engine.close()


def test_error_messages_do_not_echo_data(clinic_db: Path) -> None:
    engine = Engine(clinic_db)
    with pytest.raises(InternalError) as info:
        engine.run("SELECT CAST('secret-value-42' AS INTEGER)", {}, 5)
    assert "secret-value-42" not in str(info.value)
    engine.close()
