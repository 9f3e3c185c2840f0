"""Interval arithmetic over contract bounds for aggregate arguments."""

from __future__ import annotations

import pytest
import sqlglot

from fedsql.errors import QueryRejected
from fedsql.sql import plan_query
from fedsql.sql.value_bounds import Interval, value_interval

from .testbed import CONTRACT, LABS, PATIENTS, VISIBLE, VISITS


def _interval(sql: str, table: object = PATIENTS) -> Interval | None:
    return value_interval(sqlglot.parse_one(sql, read="duckdb"), table, "SUM")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CASE WHEN smoker THEN 1 ELSE 0 END", Interval(0, 1, True)),
        ("age >= 65", Interval(0, 1, True)),
        ("age - 18", Interval(-18, 92, True)),
        ("bmi * 2", Interval(20, 140, False)),
        ("-age", Interval(-110, 0, True)),
        ("age / 10", Interval(0, 11, False)),
        ("age // 10", Interval(0, 11, True)),
        ("age % 7", Interval(0, 6, True)),
        ("abs(age - 50)", Interval(0, 60, True)),
        ("coalesce(bmi, 0)", Interval(0, 70, False)),
        ("least(age, bmi)", Interval(0, 110, False)),
        ("CAST(bmi AS INTEGER)", Interval(10, 70, True)),
        ("round(bmi)", Interval(10, 70, False)),
        ("IF(smoker, age, NULL)", Interval(0, 110, True)),
    ],
)
def test_intervals_follow_interval_arithmetic(sql: str, expected: Interval) -> None:
    assert _interval(sql) == expected


def test_products_take_the_extreme_end_products() -> None:
    assert _interval("score * delta", LABS) == Interval(-250, 250, False)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("income * 2", r"patients\.income has no bounds in the contract.*bounds = \[lo, hi\]"),
        ("age / bmi", "divides by a row value"),
        ("age // (age - age)", "divides by a row value"),
        ("length(name)", "cannot be bounded"),
        ("name", "needs a numeric value"),
    ],
)
def test_unbounded_arguments_are_refused_with_the_column_to_bound(sql: str, message: str) -> None:
    with pytest.raises(QueryRejected, match=message):
        _interval(sql)


def test_the_silo_clamps_an_expression_to_its_interval() -> None:
    plan = plan_query("SELECT SUM(cost / 100) FROM visits", None, CONTRACT, VISIBLE)
    assert 'LEAST(GREATEST(CAST("cost" / 100 AS DOUBLE), 0.0), 50.0)' in plan.partial_sql
    (measure,) = [m for m in plan.measures if m.kind == "sum"]
    assert measure.clip == 50.0
    assert measure.sensitivity == VISITS.max_rows_per_unit * 50.0
