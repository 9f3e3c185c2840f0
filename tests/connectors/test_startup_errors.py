"""Bad sources stop the silo at start-up with messages naming the table and the column.

Unreachable servers, refused credentials, missing tables and columns, wrong types and values a
map does not cover, against the real PostgreSQL and MariaDB servers. No message holds a value
read from a row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsql.catalog import Contract
from fedsql.config import parse_policy
from fedsql.demo import databases as dbs
from fedsql.errors import ConfigError
from fedsql.silo.source_engines import open_engine
from tests.connectors.conftest import CLINIC, ServedClinic

SERVERS = ["postgres", "mysql"]


@pytest.fixture(params=SERVERS)
def served(
    request: pytest.FixtureRequest, postgres_clinic: ServedClinic, mariadb_clinic: ServedClinic
) -> ServedClinic:
    return postgres_clinic if request.param == "postgres" else mariadb_clinic


def _start(
    contract: Contract, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch | None = None
) -> str:
    policy = parse_policy(text, contract)
    with pytest.raises(ConfigError) as caught:
        open_engine(contract, policy, "", tmp_path).close()
    message = str(caught.value)
    for value in ("female", "male", "HbA1c"):
        assert f"'{value}'" not in message
    return message


def _policy(served: ServedClinic, mode: str = "pushdown") -> str:
    return dbs.source_policy(CLINIC, served.connector, mode, served.url)


def test_unreachable_server_names_the_server_and_tables(
    contract: Contract, served: ServedClinic, tmp_path: Path
) -> None:
    port = ":5432/" if served.connector == "postgres" else ":3306/"
    text = _policy(served).replace(port, ":1/")
    message = _start(contract, text, tmp_path)
    assert "cannot be reached" in message and "patients, visits, labs" in message


def test_wrong_credentials_are_refused(
    contract: Contract, served: ServedClinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if served.connector == "postgres":
        # Trust authentication takes any password: a role that does not exist is refused.
        text = _policy(served).replace(served.reader, "fedsql_nobody")
    else:
        monkeypatch.setenv("FEDSQL_TEST_PASSWORD", "wrong")
        text = _policy(served).replace(
            'mode = "pushdown"', 'mode = "pushdown"\npassword_env = "FEDSQL_TEST_PASSWORD"'
        )
    message = _start(contract, text, tmp_path)
    assert "refused the credentials" in message and "password_env" in message


def test_missing_password_variable_is_named(
    contract: Contract, served: ServedClinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDSQL_UNSET_PASSWORD", raising=False)
    text = _policy(served).replace(
        'mode = "pushdown"', 'mode = "pushdown"\npassword_env = "FEDSQL_UNSET_PASSWORD"'
    )
    assert "FEDSQL_UNSET_PASSWORD" in _start(contract, text, tmp_path)


def test_missing_table_names_the_federated_table(
    contract: Contract, served: ServedClinic, tmp_path: Path
) -> None:
    text = _policy(served).replace('table = "public.patient"', 'table = "public.nosuch"')
    text = text.replace('table = "patient"', 'table = "nosuch"')
    message = _start(contract, text, tmp_path)
    assert "table patients:" in message and "nosuch" in message


def test_missing_column_names_table_and_column(
    contract: Contract, served: ServedClinic, tmp_path: Path
) -> None:
    text = _policy(served).replace('age = "age_years"', 'age = "age_in_years"')
    message = _start(contract, text, tmp_path)
    assert "table patients, column age: the source has no column 'age_in_years'" in message


@pytest.mark.parametrize("mode", ["pushdown", "snapshot"])
def test_wrong_type_names_table_and_column(
    contract: Contract, served: ServedClinic, tmp_path: Path, mode: str
) -> None:
    text = _policy(served, mode).replace('age = "age_years"', 'age = "full_name"')
    message = _start(contract, text, tmp_path)
    assert "table patients, column age: source column 'full_name' is of type string" in message
    assert "the contract says INTEGER" in message


def test_a_cast_that_can_fail_is_refused_in_pushdown(
    contract: Contract, served: ServedClinic, tmp_path: Path
) -> None:
    text = _policy(served).replace(
        'age = "age_years"', 'age = { column = "full_name", cast = true }'
    )
    message = _start(contract, text, tmp_path)
    assert "table patients, column age" in message and "snapshot mode" in message


def test_a_failing_cast_stops_a_snapshot_without_showing_values(
    contract: Contract, served: ServedClinic, tmp_path: Path
) -> None:
    text = _policy(served, "snapshot").replace(
        'age = "age_years"', 'age = { column = "full_name", cast = true }'
    )
    message = _start(contract, text, tmp_path)
    assert "table patients, column age:" in message and "cannot be cast to INTEGER" in message
    assert not list(tmp_path.glob("*.duckdb"))


@pytest.mark.parametrize("mode", ["pushdown", "snapshot"])
def test_unmappable_value_names_table_and_column(
    contract: Contract, served: ServedClinic, tmp_path: Path, mode: str
) -> None:
    text = _policy(served, mode).replace(', male = "M"', "")
    message = _start(contract, text, tmp_path)
    assert "table patients, column sex:" in message
    assert "values map does not cover" in message


def test_a_password_in_the_url_is_refused(contract: Contract, served: ServedClinic) -> None:
    text = _policy(served).replace(f"{served.reader}@", f"{served.reader}:secret@")
    with pytest.raises(ConfigError, match="never write credentials in a policy") as caught:
        parse_policy(text, contract)
    assert "secret" not in str(caught.value)
