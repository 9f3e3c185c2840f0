"""Loading silo policies: checked against the contract, data paths resolved, mistakes named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fedsql.catalog import Contract
from fedsql.config import load_policy, parse_policy
from fedsql.errors import ConfigError

from .policy_cases import CONTRACT, FILE, GOOD, MALFORMED, SHARE, SILO


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


GOVERNED = (
    SILO
    + SHARE
    + """
[privacy]
budget_epsilon = 5.0
budget_renewal_days = 30

[queries]
aggregates = ["avg", "Count"]
unit_uses = []
max_cells = 500

[limits]
rate_limit = " 10 / Minutes "
"""
)


def test_governance_keys_build_the_policy() -> None:
    policy = parse_policy(GOVERNED, CONTRACT, file=FILE)
    assert policy.budget_renewal_days == 30
    # Names are case-insensitive and kept in the canonical order.
    assert policy.aggregates == ("COUNT", "AVG")
    assert policy.unit_uses == ()
    assert policy.max_cells == 500
    assert policy.rate_limit is not None
    assert (policy.rate_limit.queries, policy.rate_limit.window_s) == (10, 60)
    assert policy.rate_limit.describe() == "10 queries per minute"


def test_governance_defaults_allow_what_the_planner_supports() -> None:
    policy = parse_policy(SILO + SHARE, CONTRACT, file=FILE)
    assert policy.budget_renewal_days is None
    assert policy.aggregates == ("COUNT", "SUM", "AVG")
    assert policy.unit_uses == ("filter", "join", "count_distinct")
    assert policy.max_cells is None
    assert policy.rate_limit is None


@pytest.mark.parametrize(
    ("text", "queries", "window_s"),
    [("1/second", 1, 1), ("60/hour", 60, 3600), ("500/days", 500, 86_400), ("7/MINUTE", 7, 60)],
)
def test_rate_limit_windows(text: str, queries: int, window_s: int) -> None:
    policy = parse_policy(SILO + SHARE + f'[limits]\nrate_limit = "{text}"\n', CONTRACT)
    assert policy.rate_limit is not None
    assert (policy.rate_limit.queries, policy.rate_limit.window_s) == (queries, window_s)


def test_the_table_of_malformed_policies_is_large_and_distinct() -> None:
    assert len(MALFORMED) >= 25
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED)
    assert len({case[1] for case in MALFORMED}) == len(MALFORMED)


def test_catalog_examples_hold() -> None:
    import doctest

    import fedsql.catalog

    result = doctest.testmod(fedsql.catalog)
    assert result.attempted > 0 and result.failed == 0


PER_CLINIC_CONTRACT = dataclasses.replace(CONTRACT, silos=("clinic-a", "clinic-b"))


def test_per_clinic_breakdowns_are_off_unless_the_policy_allows_them() -> None:
    assert parse_policy(SILO + SHARE, PER_CLINIC_CONTRACT).allow_per_clinic is False
    text = SILO + SHARE + "[queries]\nallow_per_clinic = true\n"
    assert parse_policy(text, PER_CLINIC_CONTRACT).allow_per_clinic is True
    off = SILO + SHARE + "[queries]\nallow_per_clinic = false\n"
    assert parse_policy(off, CONTRACT).allow_per_clinic is False


def test_a_clinic_outside_the_silos_list_cannot_allow_per_clinic_breakdowns() -> None:
    text = SILO.replace("clinic-a", "clinic-z") + SHARE + "[queries]\nallow_per_clinic = true\n"
    error = policy_error(text, PER_CLINIC_CONTRACT)
    assert [k for k, _ in error.problems] == ["queries.allow_per_clinic"]
    assert "this silo's id \"clinic-z\" is not in the contract's [federation] silos" in str(error)
    assert "set allow_per_clinic = false" in str(error)
