"""``fedsql budget``: an operator's view of a clinic's ledger, exact to the micro-epsilon."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedsql.cli.app import app
from fedsql.demo.generator import demo_files
from fedsql.privacy.ledger import Ledger

runner = CliRunner()


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """A ledger where alice spent 0.1 + 0.2 and bob 1.5 (alice also holds a named budget)."""
    path = tmp_path / "mumbai.ledger.sqlite"
    book = Ledger(path)
    book.charge("alice", "q1", 100_000, 15_000_000, note="plan-a")
    book.charge("alice", "q2", 200_000, 15_000_000, note="plan-b")
    book.charge("bob", "q3", 1_500_000, 15_000_000, note="plan-c")
    return path


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    text = (demo_files() / "mumbai.toml").read_text()
    text = text.replace("[limits]", '[privacy.analysts]\ncarol = 2.5\n"alice" = 0.5\n\n[limits]')
    path = tmp_path / "mumbai.toml"
    path.write_text(text)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["budget", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_spent_per_analyst_without_a_policy(ledger: Path) -> None:
    code, out, _ = run("--ledger", str(ledger), "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["analyst"], r["queries"], r["spent"]) for r in rows] == [
        ("alice", "2", "0.3"),  # exactly 0.3: the ledger counts micro-epsilon
        ("bob", "1", "1.5"),
    ]
    code, out, _ = run("--ledger", str(ledger))
    assert code == 0 and "pass --policy for budgets" in out


def test_budgets_and_what_is_left_with_the_policy(ledger: Path, policy: Path) -> None:
    code, out, _ = run("--ledger", str(ledger), "--policy", str(policy), "--format", "csv")
    assert code == 0
    rows = {r["analyst"]: r for r in csv.DictReader(io.StringIO(out))}
    assert set(rows) == {"alice", "bob", "carol"}  # carol has a budget but no charge yet
    assert (rows["alice"]["spent"], rows["alice"]["budget"], rows["alice"]["left"]) == (
        "0.3",
        "0.5",
        "0.2",
    )
    assert (rows["bob"]["budget"], rows["bob"]["left"]) == ("15", "13.5")
    assert (rows["carol"]["queries"], rows["carol"]["left"], rows["carol"]["last charge"]) == (
        "0",
        "2.5",
        "",
    )
    code, out, _ = run("--ledger", str(ledger), "--policy", str(policy))
    assert code == 0 and "budgets at mumbai (lifetime; default 15)" in out


def test_one_analysts_charges(ledger: Path, policy: Path) -> None:
    code, out, _ = run("--ledger", str(ledger), "--analyst", "alice", "-f", "json")
    assert code == 0
    assert [(r["qid"], r["epsilon"], r["plan"]) for r in json.loads(out)] == [
        ("q1", "0.1", "plan-a"),
        ("q2", "0.2", "plan-b"),
    ]
    code, out, _ = run("--ledger", str(ledger), "--analyst", "alice", "--policy", str(policy))
    assert code == 0
    assert "alice: spent 0.3 of 0.5 (lifetime); 0.2 left" in out


def test_a_renewing_budget_is_shown_per_window(ledger: Path, policy: Path) -> None:
    policy.write_text(
        policy.read_text().replace(
            "budget_epsilon = 15.0", "budget_epsilon = 15.0\nbudget_renewal_days = 30"
        )
    )
    code, out, _ = run("--ledger", str(ledger), "--analyst", "bob", "--policy", str(policy))
    assert code == 0
    assert "bob: spent 1.5 of 15 (in the last 30 days); 13.5 left" in out


def test_a_missing_ledger_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    code, _, err = run("--ledger", str(missing))
    assert code == 1
    assert "no such ledger file" in err
    assert not missing.exists()


def test_a_bad_format_is_a_usage_error(ledger: Path) -> None:
    code, _, err = run("--ledger", str(ledger), "--format", "xml")
    assert code == 2
    assert "table, csv, json" in err


def test_an_analyst_sees_what_is_left_at_each_clinic_of_the_demo() -> None:
    result = runner.invoke(app, ["budget", "--hub", "demo", "--analyst", "ana", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["clinic"], r["spent"], r["left"], r["answered"]) for r in rows] == [
        ("mumbai", "0", "15", "yes"),
        ("san-francisco", "0", "20", "yes"),
        ("seoul", "0", "10", "yes"),
        ("sydney", "0", "30", "yes"),
    ]


def test_an_unreachable_hub_is_a_clear_error() -> None:
    result = runner.invoke(app, ["budget", "--hub", "127.0.0.1:9", "--analyst", "ana"])
    assert result.exit_code == 5
    assert "127.0.0.1:9" in result.stderr
