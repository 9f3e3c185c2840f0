"""The allowlist: allowed functions run and match DuckDB; outside-reaching ones are refused.

Functions that reach outside the row (files, settings, clock, randomness) are refused.
"""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from fedsql.errors import QueryRejected
from fedsql.sql import plan_query
from fedsql.sql.allowlist import FUNCTIONS, NAMED_FUNCTIONS, OPERATORS

from .testbed import CONTRACT, VISIBLE, federated_answer

#: One WHERE condition per allowed function / operator, over the patients table.
CONDITIONS = [
    "abs(age - 50) < 10",
    "ceil(bmi) > 20",
    "floor(bmi) < 40",
    "round(bmi, 1) > 20.5",
    "trunc(bmi) > 20",
    "sign(age - 50) = 1",
    "sqrt(age) > 3",
    "ln(age + 1) > 1",
    "log(age + 1) > 1",
    "exp(age / 100.0) > 1.5",
    "power(age, 2) > 100",
    "coalesce(bmi, 0) > 30",
    "nullif(sex, 'X') IS NULL",
    "least(age, 50) = 50",
    "greatest(bmi, 20) > 25",
    "lower(name) = 'ann'",
    "upper(name) = 'ANN'",
    "length(name) > 2",
    "substring(name, 1, 1) = 'M'",
    "trim(name) = name",
    "concat(sex, region) = 'Fnorth'",
    "left(name, 1) = 'M'",
    "right(name, 1) = 'n'",
    "replace(name, 'a', 'b') <> name",
    "starts_with(name, 'M')",
    "contains(name, 'o')",
    "strpos(name, 'o') > 0",
    "year(birth_date) > 1990",
    "quarter(birth_date) = 1",
    "month(birth_date) = 6",
    "week(birth_date) = 10",
    "day(birth_date) = 1",
    "dayofweek(birth_date) = 0",
    "dayofmonth(birth_date) = 1",
    "dayofyear(birth_date) < 40",
    "hour(CAST(birth_date AS TIMESTAMP) + INTERVAL 3 HOUR) = 3",
    "minute(CAST(birth_date AS TIMESTAMP)) = 0",
    "second(CAST(birth_date AS TIMESTAMP)) = 0",
    "extract(year FROM birth_date) = 1990",
    "date_part('year', birth_date) = 1990",
    "date_trunc('month', birth_date) = DATE '1990-01-01'",
    "date_trunc('month', DATE '1990-01-17') = CAST(birth_date AS TIMESTAMP)",
    "date_diff('day', birth_date, DATE '2000-01-01') > 100",
    "(age + 1) * 2 - 3 > 40 / 2 AND age // 3 = 10 AND age % 2 = 0",
    "-age < -30 AND sex || region = 'Mwest'",
    "age <> 3 AND age >= 3 AND age <= 90 AND age < 100 AND age > 1",
    "bmi IS NOT DISTINCT FROM NULL OR bmi IS DISTINCT FROM 30",
    "NOT (smoker OR age IN (1, 2, 3)) AND age BETWEEN 10 AND 50",
    "name LIKE 'M%' OR name ILIKE 'a%' OR name LIKE 'O!_%' ESCAPE '!'",
    "CAST(age AS VARCHAR) = '42' OR TRY_CAST(name AS INTEGER) IS NULL",
    "CASE WHEN smoker THEN age > 50 ELSE age > 60 END",
    "IF(smoker, bmi, 0) > 25",
    "birth_date + INTERVAL 1 DAY > DATE '1990-01-01'",
    "smoker IS TRUE",
]


@pytest.mark.parametrize("condition", CONDITIONS)
def test_allowed_condition_runs_and_matches_duckdb(
    clinic: duckdb.DuckDBPyConnection, condition: str
) -> None:
    sql = f"SELECT COUNT(*) FROM patients WHERE {condition}"
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    answer = federated_answer(clinic, plan)
    assert [row[:-1] for row in answer.rows] == clinic.execute(sql).fetchall()


def test_conditions_exercise_the_whole_allowlist() -> None:
    seen: set[type[exp.Expr]] = set()
    named: set[str] = set()
    for condition in CONDITIONS:
        for node in sqlglot.parse_one(condition, read="duckdb").walk():
            seen.add(type(node))
            if isinstance(node, exp.Anonymous):
                named.add(str(node.name).lower())
    assert set(FUNCTIONS) - seen == set()
    assert set(OPERATORS) - seen == set()
    assert named == {"date_part"} and named <= NAMED_FUNCTIONS


@pytest.mark.parametrize(
    "call",
    [
        "getenv('HOME')",
        "current_setting('threads')",
        "read_text('/etc/passwd')",
        "read_blob('/etc/passwd')",
        "random()",
        "uuid()",
        "now()",
        "current_date",
        "current_timestamp",
        "nextval('s')",
        "version()",
        "current_user",
        "hash(name)",
        "md5(name)",
        "repeat(name, 1000000)",
        "lpad(name, 1000000, 'x')",
        "regexp_replace(name, 'a', 'b')",
        "json_extract(name, '$.a')",
        "list_value(1, 2)",
        "to_json(name)",
        "strftime(birth_date, '%Y')",
        "make_date(2020, 1, 1)",
    ],
)
def test_functions_outside_the_allowlist_are_refused(call: str) -> None:
    with pytest.raises(QueryRejected):
        plan_query(f"SELECT COUNT(*) FROM patients WHERE {call} IS NULL", None, CONTRACT, VISIBLE)
