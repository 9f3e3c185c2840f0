"""Plan determinism: equal inputs give equal plans and hashes, in any process.

Any change of SQL, parameter or contract changes the hash; visibility never does.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedsql.catalog import Bounds
from fedsql.sql import plan_query

from .testbed import CONTRACT, PATIENTS, VISIBLE

SQL = (
    "SELECT sex AS s, region, COUNT(*) AS n, AVG(bmi), SUM(age) / COUNT(*) FROM patients p "
    "WHERE p.age BETWEEN ? AND ? AND name <> ? GROUP BY s, region HAVING n > 3 "
    "ORDER BY n DESC, 1 LIMIT 5"
)
PARAMS = [18, 65, "O'Brien"]


def _hash(sql: str = SQL, params: object = PARAMS, contract: object = CONTRACT) -> str:
    return plan_query(sql, params, contract, VISIBLE).plan_hash  # type: ignore[arg-type]


def test_same_inputs_give_the_same_plan() -> None:
    first = plan_query(SQL, PARAMS, CONTRACT, VISIBLE)
    second = plan_query(SQL, tuple(PARAMS), CONTRACT, VISIBLE)
    assert first == second
    assert first.plan_hash == second.plan_hash


def test_hash_is_the_same_in_other_processes() -> None:
    repo = Path(__file__).resolve().parents[2]
    script = "from tests.sql.test_determinism import _hash\nprint(_hash())\n"
    hashes = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(repo)}
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        hashes.add(done.stdout.strip())
    assert hashes == {_hash()}


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (SQL.replace("LIMIT 5", "LIMIT 6"), PARAMS),
        (
            SQL.replace("COUNT(*) AS n", "COUNT(*) AS m")
            .replace("n >", "m >")
            .replace("n DESC", "m DESC"),
            PARAMS,
        ),
        (SQL.replace("SELECT", "SELECT  "), PARAMS),
        (SQL, [18, 66, "O'Brien"]),
        (SQL, [18, 65.0, "O'Brien"]),
        (SQL, [18, 65, "O'Brien "]),
    ],
)
def test_any_change_of_sql_or_parameter_changes_the_hash(sql: str, params: list[object]) -> None:
    assert _hash(sql, params) != _hash()


@pytest.mark.parametrize(
    "change",
    [
        {"max_rows_per_unit": 3},
        {
            "columns": tuple(
                dataclasses.replace(c, bounds=Bounds(12.0, 70.0)) if c.name == "bmi" else c
                for c in PATIENTS.columns
            )
        },
        {"description": "edited"},
    ],
)
def test_any_change_of_the_contract_changes_the_hash(change: dict[str, object]) -> None:
    patients = dataclasses.replace(PATIENTS, **change)  # type: ignore[arg-type]
    contract = dataclasses.replace(
        CONTRACT, tables=tuple(patients if t.name == "patients" else t for t in CONTRACT.tables)
    )
    assert _hash(contract=contract) != _hash()


def test_visibility_never_changes_the_plan() -> None:
    everything = {t.name: t.column_names for t in CONTRACT.tables}
    minimal = {"patients": ("sex", "region", "bmi", "age", "name")}
    plans = [plan_query(SQL, PARAMS, CONTRACT, v) for v in (VISIBLE, everything, minimal)]
    assert plans[0] == plans[1] == plans[2]
    assert len({p.plan_hash for p in plans}) == 1
