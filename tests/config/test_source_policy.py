"""The [source] and [bind.<table>] sections: parsed into a SourceSpec, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsql.catalog import ColumnBinding, Contract
from fedsql.config import load_contract, parse_policy
from fedsql.config.source_policy import installed_connectors
from fedsql.demo.generator import demo_files
from fedsql.errors import ConfigError

BASE = """
[silo]
id = "clinic"

[share]
patients = ["patient_id", "age", "sex"]
visits = ["visit_id", "patient_id", "cost"]
"""

SOURCE = (
    BASE
    + """
[source]
connector = "postgres"
mode = "pushdown"
url = "postgresql://reader@db.clinic:5432/ehr"
password_env = "EHR_PASSWORD"

[bind.patients]
table = "public.patient"

[bind.patients.columns]
patient_id = "id"
age = { column = "age_years" }
sex = { column = "gender", values = { female = "F", male = "M" } }

[bind.visits]
query = "SELECT * FROM billing.visits WHERE NOT cancelled"
"""
)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


def _problems(text: str, contract: Contract) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, contract, file="clinic.toml")
    return dict(caught.value.problems)


def test_every_packaged_connector_is_registered() -> None:
    assert set(installed_connectors()) >= {"files", "duckdb", "sqlite", "postgres", "mysql"}


def test_a_source_policy_parses_into_bindings(contract: Contract) -> None:
    policy = parse_policy(SOURCE, contract)
    spec = policy.source
    assert spec is not None and policy.data == ""
    assert (spec.connector, spec.mode, spec.password_env) == (
        "postgres",
        "pushdown",
        "EHR_PASSWORD",
    )
    patients = spec.binding("patients")
    assert patients.table == "public.patient"
    assert patients.column("patient_id") == ColumnBinding("patient_id", "id")
    assert patients.column("sex").values == (("female", "F"), ("male", "M"))
    assert patients.column("age").source == "age_years"
    assert spec.binding("visits").query.startswith("SELECT")
    assert spec.binding("visits").column("cost") == ColumnBinding("cost", "cost")
    assert spec.binding("labs").table == "labs"


def test_policies_without_a_source_are_unchanged(contract: Contract) -> None:
    policy = parse_policy(
        BASE.replace('id = "clinic"', 'id = "clinic"\ndata = "x.duckdb"'), contract
    )
    assert policy.source is None and policy.data == "x.duckdb"


def test_relative_paths_resolve_against_the_policy_folder(
    contract: Contract, tmp_path: Path
) -> None:
    text = BASE + '[source]\nconnector = "files"\npath = "exports"\npassword_file = "pw"\n'
    spec = parse_policy(text, contract, base_dir=tmp_path).source
    assert spec is not None
    assert spec.location == str((tmp_path / "exports").resolve())
    assert spec.password_file == str((tmp_path / "pw").resolve())


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (('connector = "postgres"', 'connector = "postgress"'), "source.connector",
         'no connector "postgress" is installed (did you mean "postgres"?)'),
        (('mode = "pushdown"', 'mode = "push"'), "source.mode", "unknown mode"),
        (("reader@", "reader:hunter2@"), "source.url", "never write credentials in a policy"),
        (('url = "postgresql://reader@db.clinic:5432/ehr"', 'path = "x"\nurl = "pg://a@b/c"'),
         "source.url", "exactly one of url"),
        (('password_env = "EHR_PASSWORD"', 'password_env = "A"\npassword_file = "B"'),
         "source.password_file", "not both"),
        (("[bind.visits]", "[bind.labs]"), "bind.labs", "is not shared"),
        (('patient_id = "id"', 'zip = "zipcode"'), "bind.patients.columns.zip",
         "not a shared column of patients"),
        (('table = "public.patient"', 'table = "p"\nquery = "SELECT 1"'), "bind.patients.table",
         "exactly one of table"),
        (('male = "M"', "male = 1.5"), "bind.patients.columns.sex.values.male",
         "expected a contract value"),
        (("{ column = \"age_years\" }", '{ column = "age_years", cast = "yes" }'),
         "bind.patients.columns.age.cast", "expected true or false"),
        (('id = "clinic"', 'id = "clinic"\ndata = "x.duckdb"'), "silo.data", "not both"),
    ],
)  # fmt: skip
def test_source_problems_name_their_key(
    contract: Contract, change: tuple[str, str], key: str, words: str
) -> None:
    text = SOURCE.replace(*change)
    assert text != SOURCE
    problems = _problems(text, contract)
    assert key in problems, problems
    assert words in problems[key]
    assert "hunter2" not in "".join(problems.values())


def test_bindings_need_a_source(contract: Contract) -> None:
    text = BASE.replace('id = "clinic"', 'id = "clinic"\ndata = "x.duckdb"')
    text += '[bind.patients]\ntable = "p"\n'
    assert "needs a [source]" in _problems(text, contract)["bind"]


def test_data_is_still_required_without_a_source(contract: Contract) -> None:
    assert "silo.data" in _problems(BASE, contract)
