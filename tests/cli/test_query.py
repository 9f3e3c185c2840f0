"""``fedsql query`` and ``fedsql explain`` against the embedded demo, in real subprocesses."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SQL = "SELECT sex, COUNT(*) AS n, AVG(bmi) AS bmi FROM patients WHERE age >= 40 GROUP BY sex"


def fedsql(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI in a subprocess, as a user would."""
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "fedsql.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def _demo_data(demo_data: object) -> None:
    """Generate the demo data once before the subprocesses need it."""


def test_query_prints_table_margins_and_report() -> None:
    proc = fedsql("query", SQL)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "±" in out
    assert "epsilon spent: 1" in out
    assert "budget left:" in out
    for silo in ("mumbai", "san-francisco", "seoul", "sydney"):
        assert f"{silo} answered" in out


def test_query_csv_has_a_margin_column_per_value() -> None:
    proc = fedsql("query", "--format", "csv", "--epsilon", "0.5", SQL)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["sex"] for r in rows] == ["F", "M"]
    assert set(rows[0]) == {"sex", "n", "n_margin95", "bmi", "bmi_margin95", "suppressed"}
    assert float(rows[0]["n_margin95"]) > 0
    assert "epsilon spent: 0.5" in proc.stderr


def test_query_json_carries_rows_and_privacy() -> None:
    proc = fedsql("query", "--format", "json", SQL)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert len(body["rows"]) == 2
    assert body["privacy"]["epsilon"] == "1"
    assert {s["status"] for s in body["privacy"]["silos"]} == {"answered"}


def test_rejected_query_exits_1_with_one_line_reason() -> None:
    proc = fedsql("query", "SELECT name FROM patients")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fedsql: UnknownObject:")


def test_unknown_format_is_a_usage_error() -> None:
    proc = fedsql("query", "--format", "xml", SQL)
    assert proc.returncode == 2
    assert "unknown format" in proc.stderr


def test_explain_shows_plan_and_spends_nothing() -> None:
    proc = fedsql("explain", SQL)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "partial SQL" in out
    assert "key space" in out
    assert "sensitivity" in out
    assert "epsilon=1" in out


def test_explain_of_rejected_query_exits_1() -> None:
    proc = fedsql("explain", "DROP TABLE patients")
    assert proc.returncode == 1
    assert "NotSupportedError" in proc.stderr
