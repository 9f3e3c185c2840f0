"""Connections to the session's noise-off demo federation for the driver tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import fedsql
from fedsql.demo.federation import DemoFederation

#: A grouped query with a known number of rows (ages 0..110 that occur in the demo data).
BY_AGE = "SELECT age, COUNT(*) AS n FROM patients GROUP BY age ORDER BY age"
#: A two-row query whose values are exact with noise off.
BY_SEX = (
    "SELECT sex, COUNT(*) AS n, AVG(bmi) AS bmi FROM patients WHERE age >= 40 "
    "GROUP BY sex ORDER BY sex"
)


@pytest.fixture
def conn(oracle_federation: DemoFederation) -> Iterator[fedsql.Connection]:
    """A connection to the noise-off federation, closed after the test."""
    with fedsql.connect(oracle_federation.target, analyst="tester") as connection:
        yield connection


@pytest.fixture
def unused_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
