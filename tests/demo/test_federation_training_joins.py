"""Models over joined rows of the demo federation: noise off they equal pooled fits.

Each model reads rows built from several of a clinic's tables (joins on the patient, CTEs,
row-level and DISTINCT subqueries, semi-joins). The pooled reference runs the same join with
DuckDB over the union of the clinics' tables, with the contract's clamping and no row cap: every
demo table holds at most its ``max_rows_per_unit`` rows per patient (checked below), so a
patient has at most the product of the caps in any join and the federated cap drops no row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
import statsmodels.api as sm

import fedsql
from fedsql.config import load_contract

from .test_federation_training import _coefficients, _rows_by_group

CONTRACT = load_contract(Path(__file__).resolve().parents[2] / "policies/demo/contract.toml")


def _clamped(column: str, table: str, name: str) -> str:
    """``column`` (as written in the reference SQL) clamped to the bounds of ``table.name``."""
    found = next(t for t in CONTRACT.tables if t.name == table).column(name)
    assert found is not None
    if found.type == "BOOLEAN":
        return f"CAST({column} AS DOUBLE)"
    assert found.bounds is not None
    return f"LEAST(GREATEST(CAST({column} AS DOUBLE), {found.bounds.lo}), {found.bounds.hi})"


AGE = _clamped("p.age", "patients", "age")
BMI = _clamped("p.bmi", "patients", "bmi")
DIABETIC = _clamped("p.diabetic", "patients", "diabetic")
VALUE = _clamped("l.value", "labs", "value")
COST = _clamped("v.cost", "visits", "cost")

# (federated SQL, features, reference SQL selecting group, features..., target, group or None)
LINEAR: list[tuple[str, tuple[str, ...], str, str | None]] = [
    (
        "SELECT LINEAR_REGRESSION(l.value, p.age, p.bmi) AS m FROM labs l "
        "JOIN patients p ON l.patient_id = p.patient_id WHERE l.test = 'HbA1c'",
        ("age", "bmi"),
        f"SELECT NULL, {AGE}, {BMI}, {VALUE} FROM labs l JOIN patients p "
        "ON l.patient_id = p.patient_id WHERE l.test = 'HbA1c'",
        None,
    ),
    (
        "SELECT l.test, LINEAR_REGRESSION(l.value, p.age, p.diabetic) AS m FROM labs l "
        "JOIN patients p USING (patient_id) GROUP BY l.test",
        ("age", "diabetic"),
        f"SELECT l.test, {AGE}, {DIABETIC}, {VALUE} FROM labs l JOIN patients p "
        "ON l.patient_id = p.patient_id",
        "test",
    ),
    (
        # a CTE cohort, a semi-join, and the visits' unit as the rows' unit
        "WITH older AS (SELECT patient_id, age, bmi FROM patients WHERE age >= 50) "
        "SELECT LINEAR_REGRESSION(v.cost, o.age, o.bmi) AS m FROM visits v "
        "JOIN older o ON o.patient_id = v.patient_id "
        "WHERE v.patient_id IN (SELECT patient_id FROM labs WHERE test = 'eGFR' AND value < 60)",
        ("age", "bmi"),
        f"SELECT NULL, {AGE}, {BMI}, {COST} FROM visits v JOIN patients p "
        "ON p.patient_id = v.patient_id WHERE p.age >= 50 AND v.patient_id IN "
        "(SELECT patient_id FROM labs WHERE test = 'eGFR' AND value < 60)",
        None,
    ),
    (
        # a many-to-many join: up to 20 visits x 24 results of one patient
        "SELECT LINEAR_REGRESSION(l.value, v.cost) AS m FROM visits v "
        "JOIN labs l ON l.patient_id = v.patient_id WHERE l.test = 'LDL'",
        ("cost",),
        f"SELECT NULL, {COST}, {VALUE} FROM visits v JOIN labs l "
        "ON l.patient_id = v.patient_id WHERE l.test = 'LDL'",
        None,
    ),
]

LOGISTIC: list[tuple[str, tuple[str, ...], str, str | None]] = [
    (
        # a target the CTE computes (a truth value, so bounded to [0, 1] by its type)
        "WITH a1c AS (SELECT patient_id, value >= 6.5 AS high FROM labs WHERE test = 'HbA1c') "
        "SELECT p.sex, LOGISTIC_REGRESSION(a.high, p.age, p.bmi, max_iter => 20) AS m "
        "FROM a1c a JOIN patients p ON p.patient_id = a.patient_id GROUP BY p.sex",
        ("age", "bmi"),
        f"SELECT p.sex, {AGE}, {BMI}, CAST(l.value >= 6.5 AS DOUBLE) FROM labs l "
        "JOIN patients p ON p.patient_id = l.patient_id WHERE l.test = 'HbA1c'",
        "sex",
    ),
    (
        "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi) AS m FROM patients p WHERE EXISTS "
        "(SELECT 1 FROM labs l WHERE l.patient_id = p.patient_id AND l.test = 'LDL' "
        "AND l.value > 160)",
        ("age", "bmi"),
        f"SELECT NULL, {AGE}, {BMI}, {DIABETIC} FROM patients p WHERE EXISTS "
        "(SELECT 1 FROM labs l WHERE l.patient_id = p.patient_id AND l.test = 'LDL' "
        "AND l.value > 160)",
        None,
    ),
    (
        "SELECT LOGISTIC_REGRESSION(p.diabetic, p.bmi, p.age) AS m FROM "
        "(SELECT DISTINCT patient_id FROM labs WHERE test = 'SBP' AND value > 140) t "
        "JOIN patients p ON p.patient_id = t.patient_id",
        ("bmi", "age"),
        f"SELECT NULL, {BMI}, {AGE}, {DIABETIC} FROM patients p WHERE p.patient_id IN "
        "(SELECT patient_id FROM labs WHERE test = 'SBP' AND value > 140)",
        None,
    ),
    (
        # HbA1c fills a thin slice of labs.value's [0, 250] bounds: large coefficients that
        # cancel against the intercept, which the damping must not slow down (max_iter 12)
        "SELECT LOGISTIC_REGRESSION(p.diabetic, l.value, p.age, max_iter => 12) AS m FROM labs l "
        "JOIN patients p ON l.patient_id = p.patient_id WHERE l.test = 'HbA1c'",
        ("value", "age"),
        f"SELECT NULL, {VALUE}, {AGE}, {DIABETIC} FROM labs l "
        "JOIN patients p ON l.patient_id = p.patient_id WHERE l.test = 'HbA1c'",
        None,
    ),
]


@pytest.fixture(scope="module")
def within_caps(pooled: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The pooled data, checked to hold at most each table's cap of rows per patient."""
    for table in CONTRACT.tables:
        (most,) = pooled.execute(
            f"SELECT max(n) FROM (SELECT COUNT(*) AS n FROM {table.name} GROUP BY {table.unit})"
        ).fetchone()  # type: ignore[misc]
        assert most <= table.max_rows_per_unit, table.name
    return pooled


def _fits(
    cur: fedsql.Cursor,
    pooled: duckdb.DuckDBPyConnection,
    sql: str,
    reference: str,
    group: str | None,
) -> list[tuple[dict[str, Any], np.ndarray, np.ndarray]]:
    """Each group's federated model, with the design matrix (with intercept) and target of the
    reference rows of that group."""
    cur.execute(sql)
    models = _rows_by_group(cur, group)
    rows = pooled.execute(reference).fetchall()
    keys = [r[0] for r in rows]
    data = np.array([r[1:] for r in rows], dtype=np.float64)
    assert len(rows) > 1000 and not np.isnan(data).any()
    assert set(models) == set(keys)
    fits = []
    for g, record in models.items():
        pick = np.array([k == g for k in keys])
        x = np.c_[np.ones(pick.sum()), data[pick, :-1]]
        fits.append((record, x, data[pick, -1]))
    return fits


@pytest.mark.parametrize(("sql", "features", "reference", "group"), LINEAR)
def test_a_linear_model_over_joined_rows_equals_the_pooled_least_squares(
    oracle_cursor: fedsql.Cursor,
    within_caps: duckdb.DuckDBPyConnection,
    sql: str,
    features: tuple[str, ...],
    reference: str,
    group: str | None,
) -> None:
    for record, x, y in _fits(oracle_cursor, within_caps, sql, reference, group):
        assert record["n"] == len(y)
        coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
        assert np.allclose(_coefficients(record, features), coefficients, rtol=0, atol=1e-6)
        # r2 comes from uncentred sums of rescaled values: a lab value's spread is small on
        # its [0, 250] bounds, so centring costs a few digits
        assert record["r2"] == pytest.approx(sm.OLS(y, x).fit().rsquared, abs=1e-7)


@pytest.mark.parametrize(("sql", "features", "reference", "group"), LOGISTIC)
def test_a_logistic_model_over_joined_rows_equals_the_pooled_fit(
    oracle_cursor: fedsql.Cursor,
    within_caps: duckdb.DuckDBPyConnection,
    sql: str,
    features: tuple[str, ...],
    reference: str,
    group: str | None,
) -> None:
    for record, x, y in _fits(oracle_cursor, within_caps, sql, reference, group):
        assert record["converged"] and record["n"] == len(y)
        fit = sm.Logit(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=False)
        assert np.allclose(_coefficients(record, features), fit.params, rtol=0, atol=1e-6)
        errors = [record["intercept_std_error"], *(record["std_errors"][f] for f in features)]
        assert np.allclose(errors, fit.bse, rtol=1e-5)


def test_a_joined_model_is_explained_with_its_joins_and_cap(oracle_cursor: fedsql.Cursor) -> None:
    sql = LINEAR[3][0]
    text = "\n".join(oracle_cursor.explain(sql))
    assert "join: visits AS v JOIN labs AS l on the unit" in text
    assert "k = 480 joined row(s) per unit (20 * 24" in text
    assert "sensitivity 480 (k=480 rows per patient_id)" in text
