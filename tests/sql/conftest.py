"""Fixtures of the planner tests."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from .testbed import clinic_database


@pytest.fixture(scope="session")
def clinic() -> Iterator[duckdb.DuckDBPyConnection]:
    """A synthetic clinic database shared by the session (tests only read it)."""
    con = clinic_database()
    yield con
    con.close()
