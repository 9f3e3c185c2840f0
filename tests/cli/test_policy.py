"""``fedsql policy check`` lists every problem of a policy on its own line; ``schema`` prints it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedsql.cli.app import app
from fedsql.demo.generator import demo_files

runner = CliRunner()

BROKEN = """
[silo]
id = "SF"
data = "demo:sf"

[share]
patients = ["age", "name", "zipcode"]

[privacy]
budget_epsilon = 0

[queries]
aggregates = ["COUNT", "MEDIAN"]

[limits]
rate_limit = "lots"
"""


def check(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["policy", "check", *args])
    return result.exit_code, result.stdout.splitlines()


@pytest.mark.parametrize("clinic", ["san-francisco", "mumbai", "seoul", "sydney"])
def test_the_demo_policies_are_valid(clinic: str) -> None:
    code, lines = check(str(demo_files() / f"{clinic}.toml"))
    assert code == 0, lines
    assert lines[-1].startswith(f"{demo_files() / clinic}.toml: ok: silo {clinic} shares patients")


def test_every_problem_is_listed_on_its_own_line_with_key_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text(BROKEN)
    code, lines = check(str(path), "--contract", str(demo_files() / "contract.toml"))
    assert code == 1
    keys = [line.split(": ")[1] for line in lines[:-1]]
    assert keys == [
        "silo.id",
        "share.patients[2]",
        "share.patients",
        "privacy.budget_epsilon",
        "queries.aggregates[1]",
        "limits.rate_limit",
    ]
    assert all(line.startswith(f"{path}: ") and "; " in line for line in lines[:-1])
    assert lines[-1] == f"{path}: 6 problems; the silo will not start"


def test_renewing_budgets_pass_with_a_warning(tmp_path: Path) -> None:
    text = (
        (demo_files() / "mumbai.toml")
        .read_text()
        .replace("budget_epsilon = 15.0", "budget_epsilon = 15.0\nbudget_renewal_days = 90")
    )
    path = tmp_path / "mumbai.toml"
    path.write_text(text)
    code, lines = check(str(path))
    assert code == 0
    assert lines[0].startswith(f"{path}: privacy.budget_renewal_days: warning: budgets renew")
    assert "up to 75 epsilon per analyst in a year" in lines[0]  # 15 x ceil(365 / 90)
    assert "budgets renewed every 90 days" in lines[-1]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file; check the path"),
        ("[silo\n", "TOML syntax error at line 1"),
    ],
)
def test_unreadable_files_fail(tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "clinic.toml"
    if content is not None:
        path.write_text(content)
    code, lines = check(str(path))
    assert code == 1
    assert words in lines[0]


def test_a_broken_contract_is_reported_first(tmp_path: Path) -> None:
    contract = tmp_path / "contract.toml"
    contract.write_text('[federation]\nid = "x"\ndelta = 2\n')
    code, lines = check(str(demo_files() / "mumbai.toml"), "--contract", str(contract))
    assert code == 1
    assert lines[0].startswith(f"{contract}: federation.delta: ")
    assert "fix it before checking policies" in lines[-1]


def test_schema_prints_the_policy_json_schema() -> None:
    result = runner.invoke(app, ["policy", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "queries" in schema["properties"]


def test_the_installed_command_checks_a_policy(tmp_path: Path) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text(BROKEN)
    proc = subprocess.run(
        [sys.executable, "-m", "fedsql.cli.app", "policy", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 7


def test_the_readme_example_is_what_the_command_prints(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "policies" / "README.md").read_text()
    path = tmp_path / "clinic.toml"
    path.write_text(
        '[silo]\nid = "clinic"\ndata = "demo:clinic"\n'
        '[share]\npatients = ["patient_id", "age", "sex", "bmi", "diabetic"]\n'
        "[privacy]\nbudget_epsilon = 20.0\nbudget_renewal_days = 30\n"
        '[limits]\nrate_limit = "60/hour"\n'
    )
    code, lines = check(str(path), "--contract", str(demo_files() / "contract.toml"))
    assert code == 0
    for line in lines:
        assert line.replace(str(path), "clinic.toml") in readme
