"""Loading silo policies: checked against the contract, data paths resolved, mistakes named."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsql.catalog import Contract
from fedsql.config import load_policy, parse_contract, parse_policy
from fedsql.errors import ConfigError

FILE = "clinic.toml"

CONTRACT = parse_contract(
    """
[federation]
id = "test-fed"

[tables.patients]
unit = "patient_id"
max_rows_per_unit = 1
[tables.patients.columns]
patient_id = { type = "BIGINT" }
name = { type = "VARCHAR" }
age = { type = "INTEGER", bounds = [0, 110] }
sex = { type = "VARCHAR", domain = { values = ["F", "M"] } }

[tables.visits]
unit = "patient_id"
max_rows_per_unit = 20
[tables.visits.columns]
patient_id = { type = "BIGINT" }
cost = { type = "DOUBLE", bounds = [0, 5000] }
""",
    file="contract.toml",
)

SILO = '[silo]\nid = "clinic-a"\ndata = "demo:clinic-a"\n'
SHARE = '[share]\npatients = ["patient_id", "age"]\n'

GOOD = """
[silo]
id = "clinic-a"
name = "Clinic A"
data = "data/clinic-a.duckdb"

[share]
visits = ["cost", "PATIENT_ID"]
patients = ["sex", "patient_id", "age"]

[privacy]
max_epsilon_per_query = 0.5
budget_epsilon = 12.25
min_group_size = 20

[privacy.analysts]
alice = 30.0
"bob@example.org" = 2

[limits]
query_timeout_s = 12.5

[approval]
mode = "manual"
"""


def policy_error(text: str, contract: Contract = CONTRACT) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, contract, file=FILE)
    return caught.value


def test_good_policy_builds_a_silo_policy(tmp_path: Path) -> None:
    policy = parse_policy(GOOD, CONTRACT, file=FILE, base_dir=tmp_path)
    assert policy.silo_id == "clinic-a"
    assert policy.name == "Clinic A"
    assert policy.data == str((tmp_path / "data" / "clinic-a.duckdb").resolve())
    # Tables and columns come out lower-cased and in contract order, whatever the file's order.
    assert list(policy.shared) == ["patients", "visits"]
    assert policy.shared["patients"] == ("patient_id", "age", "sex")
    assert policy.shared["visits"] == ("patient_id", "cost")
    assert policy.max_epsilon_per_query == 0.5
    assert policy.budget_epsilon == 12.25
    assert policy.min_group_size == 20
    assert policy.analyst_budgets == {"alice": 30.0, "bob@example.org": 2.0}
    assert policy.budget_for("alice") == 30.0
    assert policy.budget_for("carol") == 12.25
    assert policy.query_timeout_s == 12.5
    assert policy.approval == "manual"
    assert policy.shares("PATIENTS", "Sex")
    assert not policy.shares("patients", "name")


def test_optional_sections_take_the_documented_defaults() -> None:
    policy = parse_policy(SILO + SHARE, CONTRACT, file=FILE)
    assert policy.name == "clinic-a"
    assert policy.data == "demo:clinic-a"
    assert policy.max_epsilon_per_query == 1.0
    assert policy.budget_epsilon == 10.0
    assert policy.analyst_budgets == {}
    assert policy.min_group_size == 10
    assert policy.query_timeout_s == 30.0
    assert policy.approval == "auto"


def test_load_policy_resolves_relative_data_against_the_policy_folder(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    path = folder / "clinic.toml"
    path.write_text(SILO.replace("demo:clinic-a", "../db/clinic.duckdb") + SHARE)
    assert load_policy(path, CONTRACT).data == str(tmp_path / "db" / "clinic.duckdb")


def test_absolute_demo_and_unresolved_data_values(tmp_path: Path) -> None:
    absolute = str(tmp_path / "x.duckdb")
    text = SILO.replace("demo:clinic-a", absolute) + SHARE
    assert parse_policy(text, CONTRACT, base_dir="/elsewhere").data == absolute
    demo = parse_policy(SILO + SHARE, CONTRACT, base_dir=tmp_path)
    assert demo.data == "demo:clinic-a"
    relative = SILO.replace("demo:clinic-a", "x.duckdb") + SHARE
    assert parse_policy(relative, CONTRACT).data == "x.duckdb"
    home = SILO.replace("demo:clinic-a", "~/x.duckdb") + SHARE
    assert parse_policy(home, CONTRACT).data == str(Path.home() / "x.duckdb")


# (name, text, key, fragment): each text has exactly one problem, at ``key``.
MALFORMED: list[tuple[str, str, str, str]] = [
    (
        "a table the contract does not declare",
        SILO + SHARE + 'patient = ["patient_id"]\n',
        "share.patient",
        'table "patient" is not in the contract (did you mean "patients"?); share only tables '
        "the contract declares: patients, visits",
    ),
    (
        "a column the contract does not declare",
        SILO + '[share]\npatients = ["patient_id", "agee"]\n',
        "share.patients[1]",
        'column "agee" is not in contract table patients (did you mean "age"?); share only its '
        "columns: patient_id, name, age, sex",
    ),
    (
        "the unit column left out",
        SILO + '[share]\npatients = ["age", "sex"]\n',
        "share.patients",
        'the unit column "patient_id" of patients is not shared; add it to the list',
    ),
    (
        "an empty column list",
        SILO + SHARE + "visits = []\n",
        "share.visits",
        "the list is empty; list the columns to share, or remove visits to share none of it",
    ),
    (
        "a column list that is a string",
        SILO + SHARE + 'visits = "cost"\n',
        "share.visits",
        'expected an array of column names, got a string; write visits = ["patient_id", ...]',
    ),
    (
        "a column listed twice",
        SILO + '[share]\npatients = ["patient_id", "age", "AGE"]\n',
        "share.patients[2]",
        'column "AGE" is listed twice; list it once',
    ),
    (
        "a table listed twice in different case",
        SILO + SHARE + 'Patients = ["patient_id"]\n',
        "share.Patients",
        'table "Patients" repeats "patients" (names are case-insensitive); merge the two lists',
    ),
    (
        "nothing shared",
        SILO + "[share]\n",
        "share",
        "the silo shares no table",
    ),
    (
        "no share section",
        SILO,
        "share",
        "missing; add [share] with one table = [columns] line per table",
    ),
    (
        "an upper-case silo id",
        SILO.replace('"clinic-a"', '"Clinic A"', 1) + SHARE,
        "silo.id",
        '"Clinic A" is not a valid silo id; use lower-case letters, digits and inner hyphens '
        '(at most 63 characters), e.g. id = "clinic-a"',
    ),
    (
        "no data",
        '[silo]\nid = "clinic-a"\n' + SHARE,
        "silo.data",
        'missing; add data = "clinic.duckdb"',
    ),
    (
        "an empty data path",
        SILO.replace("demo:clinic-a", "") + SHARE,
        "silo.data",
        "the path is empty",
    ),
    (
        "a demo value without a clinic",
        SILO.replace("demo:clinic-a", "demo:") + SHARE,
        "silo.data",
        '"demo:" does not name a demo clinic; write data = "demo:<clinic id>"',
    ),
    (
        "a negative budget",
        SILO + SHARE + "[privacy]\nbudget_epsilon = -1\n",
        "privacy.budget_epsilon",
        "epsilon must be above 0, got -1; write budget_epsilon = 10.0",
    ),
    (
        "a zero per-query cap",
        SILO + SHARE + "[privacy]\nmax_epsilon_per_query = 0.0\n",
        "privacy.max_epsilon_per_query",
        "epsilon must be above 0, got 0; write max_epsilon_per_query = 1.0",
    ),
    (
        "a budget finer than a millionth",
        SILO + SHARE + "[privacy]\nbudget_epsilon = 1.0000001\n",
        "privacy.budget_epsilon",
        "1.0000001 has more than 6 decimal places",
    ),
    (
        "a negative group size",
        SILO + SHARE + "[privacy]\nmin_group_size = -1\n",
        "privacy.min_group_size",
        "min_group_size must be 0 or more, got -1",
    ),
    (
        "a fractional group size",
        SILO + SHARE + "[privacy]\nmin_group_size = 2.5\n",
        "privacy.min_group_size",
        "expected an integer, got a float; write min_group_size = 10",
    ),
    (
        "a misspelt privacy key",
        SILO + SHARE + "[privacy]\nbudget = 3.0\n",
        "privacy.budget",
        'unknown key (did you mean "budget_epsilon"?)',
    ),
    (
        "an analyst budget that is text",
        SILO + SHARE + '[privacy.analysts]\nalice = "lots"\n',
        "privacy.analysts.alice",
        "expected a number, got a string; write alice = 10.0",
    ),
    (
        "an analyst name with a space",
        SILO + SHARE + '[privacy.analysts]\n"alice smith" = 3.0\n',
        'privacy.analysts."alice smith"',
        "an analyst name cannot be empty or contain spaces",
    ),
    (
        "an unknown approval mode",
        SILO + SHARE + '[approval]\nmode = "automatic"\n',
        "approval.mode",
        'unknown approval mode "automatic" (did you mean "auto"?); use one of: auto, manual, deny',
    ),
    (
        "a zero timeout",
        SILO + SHARE + "[limits]\nquery_timeout_s = 0\n",
        "limits.query_timeout_s",
        "query_timeout_s must be above 0 seconds, got 0",
    ),
    (
        "limits that are not a table",
        "limits = 5\n" + SILO + SHARE,
        "limits",
        "expected a table, got an integer; write [limits] with query_timeout_s",
    ),
    (
        "a key that belongs to another section",
        SILO + "mode = 'auto'\n" + SHARE,
        "silo.mode",
        "unknown key; remove it or use one of: data, id, name",
    ),
    (
        "an unknown top-level section",
        SILO + SHARE + "[aproval]\nmode = 'auto'\n",
        "aproval",
        'unknown key (did you mean "approval"?)',
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_policy_is_reported_with_file_key_and_fix(
    text: str, key: str, fragment: str
) -> None:
    error = policy_error(text)
    assert [k for k, _ in error.problems] == [key], str(error)
    assert f"{FILE}: {key}: " in str(error)
    assert fragment in str(error)


def test_every_problem_of_a_policy_is_reported_at_once() -> None:
    text = """
[silo]
id = "SF"
data = "demo:sf"

[share]
patients = ["age", "name", "zipcode"]
labs = ["patient_id"]

[privacy]
budget_epsilon = 0
"""
    error = policy_error(text)
    assert [k for k, _ in error.problems] == [
        "silo.id",
        "share.patients[2]",
        "share.patients",
        "share.labs",
        "privacy.budget_epsilon",
    ]
    assert str(error).startswith(f"{FILE}: 5 problems; each is listed below")
    assert all(line.startswith(f"  - {FILE}: ") for line in str(error).splitlines()[1:])


def test_a_policy_syntax_error_names_the_line() -> None:
    error = policy_error(SILO + "[share]\npatients = [patient_id]\n")
    assert str(error).startswith(f"{FILE}: TOML syntax error at line 5, column ")


def test_readme_example_error_is_what_the_loader_says() -> None:
    readme = Path(__file__).resolve().parents[2] / "policies" / "README.md"
    text = """
[silo]
id = "san-francisco"
data = "demo:san-francisco"
[share]
patients = ["patient_id", "agee"]
[privacy]
budget_epsilon = -1
"""
    from fedsql.config import load_contract

    contract = load_contract(readme.parent / "demo" / "contract.toml")
    with pytest.raises(ConfigError) as caught:
        parse_policy(text, contract, file="san-francisco.toml")
    assert str(caught.value) in readme.read_text(encoding="utf-8")
