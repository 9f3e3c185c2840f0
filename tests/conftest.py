"""Shared fixtures: the demo data, DuckDB over their union (the oracle), and demo federations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import fedsql
from fedsql.demo.federation import DemoFederation
from fedsql.demo.generator import demo_files, ensure_demo_data

SHARED_TABLES = ("patients", "visits", "labs")
#: Policy changes for federation tests: budgets large enough for many queries.
TEST_BUDGETS = {"budget_epsilon": 100_000.0}


def union_connection(files: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose tables are views over the UNION ALL of every clinic's table."""
    conn = duckdb.connect()
    for i, path in enumerate(files.values()):
        conn.execute(f"ATTACH '{path}' AS c{i} (READ_ONLY)")
    for table in SHARED_TABLES:
        parts = " UNION ALL ".join(f"SELECT * FROM c{i}.{table}" for i in range(len(files)))
        conn.execute(f"CREATE VIEW {table} AS {parts}")
    return conn


#: Column bounds of the wide-bounds test contract: visit costs up to 1e7, so that a sum of squares
#: of cost needs two limbs even with noise, and lab values up to 1e15, beyond two limbs.
WIDE_BOUNDS = {
    "bounds = [0.0, 5000.0]": "bounds = [0.0, 1e7]",  # visits.cost
    "bounds = [0.0, 250.0]": "bounds = [0.0, 1e15]",  # labs.value
}


def wide_bounds_files(dest: Path) -> Path:
    """The demo federation's files in ``dest``, with the contract's bounds of ``WIDE_BOUNDS``."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in demo_files().glob("*.toml"):
        text = source.read_text(encoding="utf-8")
        if source.name == "contract.toml":
            for old, new in WIDE_BOUNDS.items():
                assert text.count(old) == 1, old
                text = text.replace(old, new)
        (dest / source.name).write_text(text, encoding="utf-8")
    return dest


def labelled_connection(files: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """Like :func:`union_connection`, with each row labelled by its clinic's id as ``silo``
    (the oracle of per-clinic breakdowns)."""
    conn = duckdb.connect()
    for i, path in enumerate(files.values()):
        conn.execute(f"ATTACH '{path}' AS c{i} (READ_ONLY)")
    for table in SHARED_TABLES:
        parts = " UNION ALL ".join(
            f"SELECT *, '{silo}' AS silo FROM c{i}.{table}" for i, silo in enumerate(files)
        )
        conn.execute(f"CREATE VIEW {table} AS {parts}")
    return conn


@pytest.fixture(scope="session")
def demo_data() -> dict[str, Path]:
    """The demo clinics' database files (generated once, cached)."""
    return ensure_demo_data()


@pytest.fixture(scope="session")
def pooled(demo_data: dict[str, Path]) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB over the pooled data of all four clinics."""
    conn = union_connection(demo_data)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def labelled(demo_data: dict[str, Path]) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB over the pooled data, each row labelled with its clinic's id as ``silo``."""
    conn = labelled_connection(demo_data)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def oracle_federation(demo_data: dict[str, Path]) -> Iterator[DemoFederation]:
    """The demo federation in test mode with noise off and suppression only of empty cells."""
    with DemoFederation(
        noise=False, testing=True, policy_overrides={**TEST_BUDGETS, "min_group_size": 1}
    ) as fed:
        yield fed


@pytest.fixture(scope="session")
def noisy_federation(demo_data: dict[str, Path]) -> Iterator[DemoFederation]:
    """The demo federation with noise on, no suppression, and large budgets."""
    with DemoFederation(policy_overrides={**TEST_BUDGETS, "min_group_size": 0}) as fed:
        yield fed


@pytest.fixture
def oracle_cursor(oracle_federation: DemoFederation) -> Iterator[fedsql.Cursor]:
    """A cursor on the noise-off federation."""
    with fedsql.connect(oracle_federation.target, analyst="tester") as conn:
        yield conn.cursor()
