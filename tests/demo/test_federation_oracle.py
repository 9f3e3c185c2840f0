"""The oracle: with noise off, every federated answer equals DuckDB over the pooled data."""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from typing import Any

import duckdb
import pytest

import fedsql

# (sql, params, sql for the pooled DuckDB when it must clamp like the contract does, ordered)
# Visit costs above the contract's bound (5000) exist on purpose: fedsql clamps them, so the
# oracle query clamps too where a query reads cost without filtering the outliers out.
CLAMPED_COST = "LEAST(GREATEST(cost, 0), 5000)"

CASES: list[tuple[str, Any, str | None]] = [
    ("SELECT COUNT(*) FROM patients", None, None),
    ("SELECT COUNT(*) AS n FROM visits", None, None),
    ("SELECT COUNT(bmi) FROM patients", None, None),
    ("SELECT SUM(age) FROM patients", None, None),
    ("SELECT AVG(age) FROM patients", None, None),
    ("SELECT AVG(bmi) AS mean_bmi FROM patients", None, None),
    ("SELECT SUM(bmi), COUNT(*) FROM patients WHERE diabetic", None, None),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY sex", None, None),
    ("SELECT sex, AVG(bmi) FROM patients WHERE age >= 40 GROUP BY sex", None, None),
    ("SELECT diabetic, COUNT(*), AVG(age) FROM patients GROUP BY diabetic", None, None),
    ("SELECT age, COUNT(*) FROM patients WHERE diabetic GROUP BY age", None, None),
    ("SELECT sex, diabetic, COUNT(*) AS n FROM patients GROUP BY sex, diabetic", None, None),
    ("SELECT test, AVG(value), COUNT(*) FROM labs GROUP BY test", None, None),
    ("SELECT test, SUM(value) FROM labs WHERE value BETWEEN 5 AND 100 GROUP BY test", None, None),
    (
        "SELECT SUM(cost), AVG(cost) FROM visits",
        None,
        f"SELECT SUM({CLAMPED_COST}), AVG({CLAMPED_COST}) FROM visits",
    ),
    (
        "SELECT COUNT(*), SUM(cost) FROM visits "
        "WHERE cost <= 5000 AND visit_date >= DATE '2023-01-01'",
        None,
        None,
    ),
    (
        "SELECT visit_date, COUNT(*) FROM visits WHERE visit_date < DATE '2020-02-01' "
        "GROUP BY visit_date",
        None,
        None,
    ),
    ("SELECT COUNT(*) FROM patients WHERE sex = ? AND age > ?", ["F", 65], None),
    (
        "SELECT sex, COUNT(*) FROM patients WHERE age BETWEEN $lo AND $hi GROUP BY sex",
        {"lo": 30, "hi": 39},
        None,
    ),
    ("SELECT COUNT(*) FROM patients WHERE sex IN ('F') AND NOT diabetic", None, None),
    ("SELECT COUNT(*) FROM patients WHERE bmi IS NOT NULL AND bmi > 35.5", None, None),
    ("SELECT COUNT(*) FROM labs WHERE test LIKE 'Hb%'", None, None),
    ("SELECT COUNT(*) FROM patients WHERE age % 10 = 0 OR bmi < 18.5", None, None),
    ("SELECT COUNT(*) FROM visits WHERE year(visit_date) = 2022", None, None),
    ("SELECT sex, COUNT(*) AS n FROM patients GROUP BY sex HAVING COUNT(*) > 1000", None, None),
    (
        "SELECT age, AVG(bmi) AS b FROM patients GROUP BY age "
        "HAVING AVG(bmi) > 26 AND COUNT(*) > 500 "
        "ORDER BY b DESC "
        "LIMIT 5",
        None,
        None,
    ),
    (
        "SELECT age, COUNT(*) AS n FROM patients GROUP BY age ORDER BY n DESC, age LIMIT 10",
        None,
        None,
    ),
    ("SELECT sex AS s, COUNT(*) AS n FROM patients GROUP BY s ORDER BY s", None, None),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY 1 ORDER BY 1 DESC", None, None),
    ("SELECT SUM(bmi) / COUNT(bmi) AS mean_bmi FROM patients", None, None),
    ("SELECT 100.0 * SUM(age) / COUNT(*) AS x, COUNT(*) - 1 AS m FROM patients", None, None),
    ("SELECT test, AVG(value) * 2 + 1 AS y FROM labs GROUP BY test ORDER BY y", None, None),
    ("SELECT diabetic, SUM(age) FROM patients WHERE sex = 'M' GROUP BY diabetic", None, None),
    ("select Sex, count(*) from PATIENTS group by SEX", None, None),
    ('SELECT "sex", COUNT(*) FROM "patients" GROUP BY "sex"', None, None),
    ("SELECT COUNT(*) FROM labs WHERE taken_at >= DATE '2024-06-01' AND test = 'LDL'", None, None),
    # derived group keys: domains computed from the contract
    ("SELECT age // 10 AS decade, COUNT(*) FROM patients GROUP BY decade", None, None),
    (
        "SELECT CASE WHEN age < 40 THEN 'young' WHEN age < 65 THEN 'middle' ELSE 'senior' END "
        "AS band, sex, COUNT(*), AVG(bmi) FROM patients GROUP BY band, sex",
        None,
        None,
    ),
    ("SELECT age >= 65 AS senior, COUNT(*) FROM patients GROUP BY 1", None, None),
    (
        "SELECT year(visit_date) AS y, COUNT(*), COUNT(DISTINCT patient_id) FROM visits GROUP BY y",
        None,
        None,
    ),
    ("SELECT year(taken_at), month(taken_at), COUNT(*) FROM labs GROUP BY 1, 2", None, None),
    (
        "SELECT date_trunc('month', visit_date) AS m, COUNT(*) FROM visits "
        "WHERE visit_date >= DATE '2024-01-01' GROUP BY m",
        None,
        None,
    ),
    ("SELECT least(age, 80) // 20 AS band, COUNT(*) FROM patients GROUP BY band", None, None),
    (
        "SELECT sex || '/' || CAST(diabetic AS VARCHAR) AS g, COUNT(*) FROM patients GROUP BY g",
        None,
        None,
    ),
    (
        "SELECT (age // 10) * 10 AS lo, COUNT(*) FROM patients GROUP BY age // 10 ORDER BY lo",
        None,
        None,
    ),
    # FILTER, CASE and bounded expressions inside aggregates; ratios of merged sums
    (
        "SELECT sex, SUM(CASE WHEN diabetic THEN 1 ELSE 0 END) / COUNT(*) AS prevalence "
        "FROM patients GROUP BY sex",
        None,
        None,
    ),
    (
        "SELECT COUNT(*) FILTER (WHERE diabetic) AS cases, COUNT(*) AS population FROM patients",
        None,
        None,
    ),
    (
        "SELECT test, AVG(value) FILTER (WHERE value > 50), "
        "COUNT(*) FILTER (WHERE taken_at >= DATE '2024-01-01') FROM labs GROUP BY test",
        None,
        None,
    ),
    (
        "SELECT 100.0 * COUNT(*) FILTER (WHERE diabetic) / COUNT(*) AS pct FROM patients "
        "WHERE age >= 50",
        None,
        None,
    ),
    (
        "SELECT SUM(cost / 100) AS hundreds FROM visits",
        None,
        "SELECT SUM(LEAST(GREATEST(cost / 100, 0), 50)) FROM visits",
    ),
    ("SELECT AVG(bmi - 25) AS excess, SUM(age >= 65) AS seniors FROM patients", None, None),
    # distinct patients
    (
        "SELECT COUNT(DISTINCT patient_id) FROM labs WHERE test = 'HbA1c' AND value >= 6.5",
        None,
        None,
    ),
    ("SELECT test, COUNT(DISTINCT patient_id), COUNT(*) FROM labs GROUP BY test", None, None),
    (
        "SELECT COUNT(DISTINCT patient_id) FILTER (WHERE cost > 1000) FROM visits",
        None,
        None,
    ),
    (
        "SELECT COUNT(*) / COUNT(DISTINCT patient_id) AS visits_per_patient FROM visits "
        "WHERE year(visit_date) = 2023",
        None,
        None,
    ),
    # variances and standard deviations from sums of squares
    ("SELECT sex, VAR_SAMP(bmi), STDDEV_SAMP(age) FROM patients GROUP BY sex", None, None),
    (
        "SELECT diabetic, VAR_POP(age), STDDEV_POP(bmi), STDDEV(bmi) FROM patients "
        "GROUP BY diabetic",
        None,
        None,
    ),
    ("SELECT test, STDDEV(value), VARIANCE(value) FROM labs GROUP BY test", None, None),
    (
        "SELECT VAR_SAMP(cost) FROM visits",
        None,
        f"SELECT VAR_SAMP({CLAMPED_COST}) FROM visits",
    ),
    (
        "SELECT AVG(l.value) AS mean_hba1c, COUNT(*) AS n FROM labs l JOIN patients p "
        "ON l.patient_id = p.patient_id WHERE p.diabetic AND l.test = 'HbA1c'",
        None,
        None,
    ),
    (
        "SELECT p.sex, p.diabetic, AVG(l.value) FROM patients p JOIN labs l "
        "ON l.patient_id = p.patient_id WHERE l.test = 'HbA1c' GROUP BY p.sex, p.diabetic",
        None,
        None,
    ),
    (
        "SELECT COUNT(*) AS visits FROM visits v WHERE EXISTS (SELECT 1 FROM labs l "
        "WHERE l.patient_id = v.patient_id AND l.test = 'LDL' AND l.value > 160)",
        None,
        None,
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE patient_id IN "
        "(SELECT patient_id FROM labs WHERE test = 'LDL' AND value > 160)",
        None,
        None,
    ),
    (
        "WITH cohort AS (SELECT patient_id, sex FROM patients WHERE age >= 65 AND diabetic) "
        "SELECT c.sex, COUNT(*), AVG(l.value) FROM cohort c JOIN labs l "
        "ON l.patient_id = c.patient_id WHERE l.test = 'HbA1c' GROUP BY c.sex",
        None,
        None,
    ),
    (
        "SELECT p.sex, COUNT(*) FROM patients p LEFT JOIN labs l ON l.patient_id = p.patient_id "
        "WHERE l.patient_id IS NULL GROUP BY p.sex",
        None,
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients WHERE patient_id NOT IN (SELECT patient_id FROM labs "
        "WHERE test = 'LDL' AND value > 100)",
        None,
        None,
    ),
    (
        "SELECT t.test, COUNT(*) AS patients_tested FROM "
        "(SELECT DISTINCT patient_id, test FROM labs) t GROUP BY t.test",
        None,
        None,
    ),
    (
        "SELECT p.diabetic, SUM(v.cost), COUNT(*) FROM patients p JOIN visits v "
        "ON v.patient_id = p.patient_id WHERE v.cost <= 5000 AND p.age >= ? GROUP BY p.diabetic",
        [50],
        None,
    ),
    (
        "SELECT sex, COUNT(*) FROM patients p WHERE EXISTS (SELECT 1 FROM visits v "
        "WHERE v.patient_id = p.patient_id AND v.visit_date >= DATE '2024-01-01') "
        "AND NOT EXISTS (SELECT 1 FROM labs l WHERE l.patient_id = p.patient_id "
        "AND l.test = 'eGFR') GROUP BY sex ORDER BY sex",
        None,
        None,
    ),
]

#: (sql, the histogram bin width of each quantile column after the keys)
QUANTILE_CASES: list[tuple[str, list[float]]] = [
    ("SELECT MEDIAN(age) FROM patients", [110 / 32]),
    (
        "SELECT sex, QUANTILE_CONT(bmi, 0.9), QUANTILE_CONT(bmi, 0.1) FROM patients GROUP BY sex",
        [60 / 32, 60 / 32],
    ),
    ("SELECT test, MEDIAN(value) FROM labs GROUP BY test", [250 / 32]),
    ("SELECT diabetic, MEDIAN(age) FILTER (WHERE bmi > 30) FROM patients GROUP BY 1", [110 / 32]),
]


def _close(a: Any, b: Any) -> bool:
    if isinstance(b, decimal.Decimal):
        b = float(b) if b != b.to_integral_value() else int(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str | _dt.date):
        return bool(a == b)
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def _sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(repr(v) for v in row)


def federated_rows(cur: fedsql.Cursor, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """The released rows, without cells suppressed as empty."""
    cur.execute(sql, params)
    assert cur.privacy is not None and cur.privacy.noise is False
    flags = cur.privacy.stats.column("__suppressed").to_pylist()
    return [row for row, flag in zip(cur.fetchall(), flags, strict=True) if not flag]


@pytest.mark.parametrize(("sql", "params", "oracle_sql"), CASES, ids=[c[0][:60] for c in CASES])
def test_noise_off_answer_equals_pooled_duckdb(
    oracle_cursor: fedsql.Cursor,
    pooled: duckdb.DuckDBPyConnection,
    sql: str,
    params: Any,
    oracle_sql: str | None,
) -> None:
    got = federated_rows(oracle_cursor, sql, params)
    want = pooled.execute(oracle_sql or sql, params).fetchall()
    if "ORDER BY" not in sql.upper():
        got, want = sorted(got, key=_sort_key), sorted(want, key=_sort_key)
    assert len(got) == len(want), (got[:5], want[:5])
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w)
        assert all(_close(a, b) for a, b in zip(g, w, strict=True)), (g, w)


@pytest.mark.parametrize(("sql", "widths"), QUANTILE_CASES, ids=[c[0][:60] for c in QUANTILE_CASES])
def test_noise_off_quantiles_are_within_one_histogram_bin(
    oracle_cursor: fedsql.Cursor, pooled: duckdb.DuckDBPyConnection, sql: str, widths: list[float]
) -> None:
    got = sorted(federated_rows(oracle_cursor, sql, None), key=_sort_key)
    want = sorted(pooled.execute(sql).fetchall(), key=_sort_key)
    assert len(got) == len(want)
    keys = len(want[0]) - len(widths)
    for g, w in zip(got, want, strict=True):
        assert g[:keys] == w[:keys]
        for value, truth, width in zip(g[keys:], w[keys:], widths, strict=True):
            assert abs(value - truth) <= width, (sql, value, truth)


def test_every_silo_answers_and_is_named(oracle_cursor: fedsql.Cursor) -> None:
    oracle_cursor.execute("SELECT COUNT(*) FROM patients")
    assert oracle_cursor.privacy is not None
    assert sorted(oracle_cursor.privacy.answered()) == [
        "mumbai",
        "san-francisco",
        "seoul",
        "sydney",
    ]


def test_column_names_follow_aliases(oracle_cursor: fedsql.Cursor) -> None:
    oracle_cursor.execute("SELECT sex AS s, COUNT(*) AS n, AVG(bmi) FROM patients GROUP BY s")
    assert oracle_cursor.description is not None
    names = [d[0] for d in oracle_cursor.description]
    assert names[:2] == ["s", "n"]
    assert len(names) == 3
