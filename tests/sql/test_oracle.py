"""DuckDB as the oracle: noise-off federated answers equal DuckDB on the original SQL.

Partial SQL at a clinic, then finalize SQL over its partials, gives exactly what DuckDB gives for
the analyst's SQL when the data is within the row caps and bounds.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pytest

from fedsql.sql import plan_query

from .testbed import CONTRACT, VISIBLE, federated_answer

Params = Sequence[object] | Mapping[str, object] | None

#: (query, parameters). Every supported construct appears at least once.
QUERIES: list[tuple[str, Params]] = [
    ("SELECT COUNT(*) FROM patients", None),
    ("SELECT COUNT(*) AS n FROM patients WHERE age >= 40", None),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY sex", None),
    ("SELECT sex, AVG(bmi) FROM patients WHERE age >= 40 GROUP BY sex", None),
    ("SELECT region, SUM(bmi), COUNT(bmi), AVG(bmi) FROM patients GROUP BY region", None),
    (
        "SELECT sex AS s, region, COUNT(*) AS n FROM patients GROUP BY s, region "
        "ORDER BY s, region",
        None,
    ),
    (
        "SELECT dept, SUM(cost) / COUNT(*) AS avg_cost FROM visits GROUP BY dept ORDER BY dept",
        None,
    ),
    ("SELECT 100.0 * COUNT(*) / 5 FROM visits WHERE urgent", None),
    ("SELECT visit_date, COUNT(*) FROM visits GROUP BY visit_date ORDER BY 1", None),
    ("SELECT dept, urgent, SUM(minutes) FROM visits GROUP BY 1, 2", None),
    ("SELECT test, year, AVG(delta), SUM(score) FROM labs GROUP BY test, year", None),
    ("SELECT COUNT(*) FROM patients WHERE sex IN ('F', 'X') AND NOT smoker", None),
    ("SELECT COUNT(*) FROM patients WHERE age BETWEEN 20 AND 30 OR bmi IS NULL", None),
    ("SELECT COUNT(*) FROM patients WHERE name LIKE 'M%' OR name ILIKE '%o''b%'", None),
    (
        "SELECT COUNT(*) FROM patients "
        "WHERE birth_date >= DATE '1980-01-01' AND year(birth_date) < 2000",
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients WHERE abs(age - 50) < 10 AND round(bmi) > 25 "
        "AND floor(bmi) < 40 AND ceil(bmi) > 20",
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients WHERE coalesce(bmi, 0) > 30 "
        "AND lower(name) <> upper(name) AND length(name) > 2",
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients WHERE month(birth_date) = 6 OR day(birth_date) = 1 "
        "OR extract(year FROM birth_date) = 1990 OR date_part('year', birth_date) = 1991",
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients WHERE least(age, 50) = 50 AND greatest(bmi, 20) > 25 "
        "AND substring(name, 1, 1) = 'M'",
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients WHERE CAST(age AS DOUBLE) / 2 > 20 AND age % 3 = 0 "
        "AND age // 10 = 4",
        None,
    ),
    ("SELECT sex, COUNT(*) AS n FROM patients GROUP BY sex HAVING n > 50", None),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY sex HAVING AVG(bmi) > 30", None),
    (
        "SELECT region, COUNT(*) AS n FROM patients GROUP BY region "
        "ORDER BY n DESC, region LIMIT 2",
        None,
    ),
    (
        "SELECT sex, COUNT(*) FROM patients GROUP BY sex ORDER BY COUNT(*) DESC, sex "
        "LIMIT 2 OFFSET 1",
        None,
    ),
    ("SELECT dept, ROUND(AVG(minutes), 1) AS m FROM visits GROUP BY dept ORDER BY dept", None),
    (
        "SELECT COUNT(*), COUNT(bmi), SUM(age), AVG(age) FROM patients WHERE ? <= age AND age < ?",
        [30, 60],
    ),
    (
        "SELECT sex, COUNT(*) FROM patients WHERE region = $r AND name <> $n GROUP BY sex",
        {"r": "north", "n": "O'Brien"},
    ),
    (
        "SELECT sex, AVG(bmi) FROM patients WHERE bmi > :lo GROUP BY sex",
        {"lo": 22.5},
    ),
    ("SELECT p.sex, COUNT(*) FROM patients AS p WHERE p.age > 10 GROUP BY p.sex", None),
    ('SELECT "SEX", count(*) FROM PATIENTS GROUP BY Sex', None),
    ("SELECT smoker, COUNT(*) FROM patients GROUP BY smoker ORDER BY smoker", None),
    (
        "SELECT dept, COUNT(*) FROM visits WHERE visit_date BETWEEN ? AND ? GROUP BY dept",
        [dt.date(2024, 1, 3), dt.date(2024, 1, 9)],
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE CASE WHEN urgent THEN cost > 1000 ELSE minutes > 60 END",
        None,
    ),
    ("SELECT year, SUM(delta) FROM labs WHERE test = 'ldl' GROUP BY year ORDER BY year DESC", None),
    ("SELECT COUNT(*) - COUNT(bmi) AS missing FROM patients", None),
    (
        "SELECT sex, region, AVG(bmi) FROM patients GROUP BY sex, region HAVING COUNT(*) > 5 "
        "ORDER BY 3 DESC NULLS LAST, 1, 2",
        None,
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE visit_date + INTERVAL 1 DAY > DATE '2024-01-10'",
        None,
    ),
    ("SELECT COUNT(*) FROM patients WHERE nullif(sex, 'X') IS NULL", None),
    ("SELECT COUNT(*) FROM patients WHERE age = '40' OR birth_date < '1950-06-01'", None),
    (
        "SELECT COUNT(*) FROM patients WHERE CAST(age AS VARCHAR) LIKE '4%' "
        "OR sex || region = 'Fnorth'",
        None,
    ),
    ("SELECT COUNT(*) FROM patients WHERE age IS DISTINCT FROM 30 AND income > 1000", None),
    (
        "SELECT test, COUNT(*) AS n, SUM(score) AS s FROM labs GROUP BY test "
        "HAVING s < 0 OR n > 100",
        None,
    ),
    ("SELECT upper(sex), COUNT(*) FROM patients GROUP BY sex", None),
    ("SELECT age, COUNT(*) FROM patients GROUP BY age ORDER BY age", None),
    ("SELECT COUNT(*) FROM patients WHERE bmi > 100", None),
    ("SELECT SUM(bmi), AVG(bmi), SUM(age) FROM patients WHERE bmi > 100", None),
    ("SELECT COUNT(*) FROM patients LIMIT 0", None),
    ("SELECT COUNT(*) AS n FROM patients HAVING n > 100000", None),
    # empty cells have zero counts: integer division by them must not fail the answer
    ("SELECT age, COUNT(bmi) // COUNT(*), SUM(age) % COUNT(*) FROM patients GROUP BY age", None),
    ("SELECT (COUNT(*)), (SUM((age))) FROM patients GROUP BY sex", None),
    ("SELECT COUNT(*) AS n, 1 AS one FROM labs WHERE delta < 0 AND score >= -2", None),
    ("SELECT region, sex, SUM(age) AS years FROM patients GROUP BY region, sex", None),
    (
        "SELECT dept, AVG(cost), COUNT(cost) FROM visits GROUP BY dept HAVING SUM(cost) > 0 "
        "ORDER BY AVG(cost) DESC",
        None,
    ),
    (
        "SELECT urgent, COUNT(*) FROM visits WHERE dept IN ('er', 'cardio') "
        "AND date_diff('day', DATE '2024-01-01', visit_date) >= ? GROUP BY urgent",
        [5],
    ),
    # derived group keys: domains computed from the contract
    ("SELECT age // 10 AS decade, COUNT(*) FROM patients GROUP BY decade ORDER BY decade", None),
    (
        "SELECT CASE WHEN age < 18 THEN 'child' WHEN age < 65 THEN 'adult' ELSE 'senior' END "
        "AS band, COUNT(*), AVG(bmi) FROM patients GROUP BY 1",
        None,
    ),
    ("SELECT age >= 65, COUNT(*) FROM patients GROUP BY age >= 65", None),
    ("SELECT year(visit_date), month(visit_date), COUNT(*) FROM visits GROUP BY 1, 2", None),
    ("SELECT date_trunc('week', visit_date) AS w, COUNT(*) FROM visits GROUP BY w", None),
    ("SELECT least(age, 90) // 30, sex, COUNT(*) FROM patients GROUP BY 1, 2", None),
    ("SELECT greatest(age, 20) // 25 AS g, SUM(bmi) FROM patients GROUP BY g", None),
    ("SELECT sex || '-' || region AS g, COUNT(*) FROM patients GROUP BY g", None),
    (
        "SELECT (age // 10) * 10 AS lo, COUNT(*) FROM patients GROUP BY age // 10 "
        "HAVING age // 10 > 2 ORDER BY lo",
        None,
    ),
    ("SELECT test, year >= 2022 AS recent, COUNT(*) FROM labs GROUP BY test, recent", None),
    # FILTER, CASE and expressions inside aggregates; ratios of merged sums
    (
        "SELECT COUNT(*) FILTER (WHERE age > 65), SUM(bmi) FILTER (WHERE smoker), "
        "AVG(age) FILTER (WHERE sex = 'F') FROM patients",
        None,
    ),
    (
        "SELECT sex, SUM(CASE WHEN smoker THEN 1 ELSE 0 END) / COUNT(*) AS prevalence "
        "FROM patients GROUP BY sex",
        None,
    ),
    ("SELECT SUM(cost / 100), AVG(minutes * 2 - 1), SUM(urgent::INT) FROM visits", None),
    ("SELECT SUM(age > 65), AVG(coalesce(bmi, 0)), SUM(abs(age - 50)) FROM patients", None),
    (
        "SELECT dept, 100.0 * COUNT(*) FILTER (WHERE urgent) / COUNT(*) AS pct_urgent "
        "FROM visits GROUP BY dept ORDER BY pct_urgent DESC",
        None,
    ),
    # distinct patients
    (
        "SELECT COUNT(DISTINCT patient_id), COUNT(DISTINCT patient_id) FILTER "
        "(WHERE dept = 'er'), COUNT(*) FROM visits",
        None,
    ),
    ("SELECT dept, COUNT(DISTINCT patient_id) FROM visits GROUP BY dept", None),
    (
        "SELECT COUNT(*) / COUNT(DISTINCT patient_id) AS visits_per_patient FROM visits "
        "WHERE urgent",
        None,
    ),
    # variances and standard deviations from sums of squares
    (
        "SELECT sex, VAR_SAMP(bmi), VAR_POP(bmi), STDDEV(age), STDDEV_POP(age) FROM patients "
        "GROUP BY sex",
        None,
    ),
    ("SELECT test, VARIANCE(delta), STDDEV_SAMP(score) FROM labs GROUP BY test", None),
    ("SELECT STDDEV_SAMP(minutes) FILTER (WHERE urgent), VAR_POP(cost) FROM visits", None),
]


def _normal(value: Any) -> Any:
    """Compare decimals as floats (DuckDB types 100.0 * n as DECIMAL; fedsql as DOUBLE)."""
    return float(value) if isinstance(value, decimal.Decimal) else value


def _same(ours: Any, theirs: Any) -> bool:
    ours, theirs = _normal(ours), _normal(theirs)
    if ours is None or theirs is None:
        return ours is None and theirs is None
    if isinstance(ours, float) or isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
    return bool(ours == theirs)


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    key: list[Any] = []
    for value in row:
        value = _normal(value)
        if value is None:
            key.append((1, ""))
        elif isinstance(value, float):
            key.append((0, round(value, 6)))
        else:
            key.append((0, value))
    return tuple(key)


def _assert_rows(
    ours: list[tuple[Any, ...]], theirs: list[tuple[Any, ...]], *, ordered: bool
) -> None:
    if not ordered:
        ours, theirs = sorted(ours, key=_sort_key), sorted(theirs, key=_sort_key)
    assert len(ours) == len(theirs), (ours, theirs)
    for mine, expected in zip(ours, theirs, strict=True):
        assert len(mine) == len(expected)
        assert all(_same(a, b) for a, b in zip(mine, expected, strict=True)), (mine, expected)


@pytest.mark.parametrize(("sql", "params"), QUERIES, ids=[f"q{i:02d}" for i in range(len(QUERIES))])
def test_federated_answer_equals_duckdb_on_original_sql(
    clinic: duckdb.DuckDBPyConnection, sql: str, params: Params
) -> None:
    plan = plan_query(sql, params, CONTRACT, VISIBLE)
    answer = federated_answer(clinic, plan)
    # DuckDB itself spells named parameters $name only
    direct_sql = re.sub(r"(?<![:\w]):(\w+)", r"$\1", sql)
    direct = clinic.execute(direct_sql, params).fetchall()

    ours = answer.rows
    if plan.keys:
        # cells absent from the data (COUNT(*) = 0) are released too; DuckDB has no such rows
        ours = [row for row in ours if answer.cell_counts[row[-1]] != 0]
    _assert_rows([row[:-1] for row in ours], direct, ordered="ORDER BY" in sql)


@pytest.mark.parametrize(("sql", "params"), QUERIES, ids=[f"q{i:02d}" for i in range(len(QUERIES))])
def test_declared_output_types_are_the_delivered_types(
    clinic: duckdb.DuckDBPyConnection, sql: str, params: Params
) -> None:
    plan = plan_query(sql, params, CONTRACT, VISIBLE)
    answer = federated_answer(clinic, plan)
    assert answer.names == [o.name for o in plan.outputs] + ["__cell"]
    assert answer.types[:-1] == [o.sql_type for o in plan.outputs]


def test_oracle_queries_cover_every_clause_and_aggregate() -> None:
    text = " ".join(sql.upper() for sql, _ in QUERIES)
    for construct in (
        "COUNT(*)",
        "COUNT(BMI)",
        "SUM(",
        "AVG(",
        "GROUP BY",
        "HAVING",
        "ORDER BY",
        "LIMIT",
        "OFFSET",
        " IN (",
        "BETWEEN",
        "IS NULL",
        " LIKE ",
        "ILIKE",
        "CAST(",
        "NOT ",
        " OR ",
        " AS ",
        "DESC",
        "INTERVAL",
        "CASE WHEN",
    ):
        assert construct in text, construct
    assert len(QUERIES) >= 30
    assert sum(p is not None for _, p in QUERIES) >= 4


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sex, COUNT(*) AS n, AVG(bmi) AS mean_bmi FROM patients GROUP BY sex",
        "SELECT COUNT(*) FROM patients",
        "SELECT p.region, AVG(bmi), COUNT(bmi) FROM patients p GROUP BY p.region",
        "SELECT COUNT(*) AS n, COUNT(*) AS n FROM patients",
    ],
)
def test_result_names_match_duckdb(clinic: duckdb.DuckDBPyConnection, sql: str) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    # a table's columns get unique names, the way DuckDB makes them unique
    clinic.execute(f"CREATE TEMP TABLE __names AS {sql}")
    try:
        expected = [row[0] for row in clinic.execute("DESCRIBE __names").fetchall()]
    finally:
        clinic.execute("DROP TABLE __names")
    assert [o.name for o in plan.outputs] == expected


@pytest.mark.parametrize(
    ("condition", "row_by_row"),
    [
        ("100 // (age - 30) > 1", "TRY(100 // (age - 30)) > 1"),
        ("CAST(name AS INTEGER) > 3 OR sex = 'F'", "TRY_CAST(name AS INTEGER) > 3 OR sex = 'F'"),
        (
            "CAST(bmi AS DECIMAL(2, 1)) > 5 OR age > 100",
            "TRY_CAST(bmi AS DECIMAL(2, 1)) > 5 OR age > 100",
        ),
        (
            "CAST(CAST(age AS VARCHAR) || '-13-01' AS DATE) IS NOT NULL OR smoker",
            "TRY_CAST(CAST(age AS VARCHAR) || '-13-01' AS DATE) IS NOT NULL OR smoker",
        ),
    ],
)
def test_failing_operations_give_null_instead_of_failing_the_query(
    clinic: duckdb.DuckDBPyConnection, condition: str, row_by_row: str
) -> None:
    """Whether a query fails must not depend on single rows: a failing operation gives NULL."""
    sql = f"SELECT sex, COUNT(*) FROM patients WHERE {condition} GROUP BY sex"
    with pytest.raises(duckdb.Error):
        clinic.execute(sql).fetchall()
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    answer = federated_answer(clinic, plan)
    expected = clinic.execute(
        f"SELECT sex, COUNT(*) FROM patients WHERE {row_by_row} GROUP BY sex"
    ).fetchall()
    ours = [row[:-1] for row in answer.rows if answer.cell_counts[row[-1]] != 0]
    _assert_rows(ours, expected, ordered=False)
