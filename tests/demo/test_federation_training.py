"""Models over the demo federation: noise off they equal pooled fits; noise on they are honest.

The pooled references read the union of the clinics' data directly (numpy least squares,
statsmodels Logit, and an independent penalized Newton fit on the columns as stored), with the
contract's clamping (age to [0, 110], BMI to [10, 70]) applied.
"""

from __future__ import annotations

import os
from typing import Any

import duckdb
import numpy as np
import pytest
import statsmodels.api as sm

import fedsql
from fedsql.demo.federation import DemoFederation
from fedsql.demo.generator import DIABETES_COEF_AGE, DIABETES_COEF_BMI
from fedsql.hub.model_run import round_epsilons

#: Columns as the contract clamps them.
CLAMPED = {
    "age": "LEAST(GREATEST(CAST(age AS DOUBLE), 0), 110)",
    "bmi": "LEAST(GREATEST(bmi, 10), 70)",
    "diabetic": "CAST(diabetic AS DOUBLE)",
}

# (federated SQL, params, target, features, pooled WHERE, group column or None, l2)
LINEAR: list[tuple[str, Any, str, tuple[str, ...], str, str | None]] = [
    ("SELECT LINEAR_REGRESSION(bmi, age) AS m FROM patients", None, "bmi", ("age",), "TRUE", None),
    (
        "SELECT LINEAR_REGRESSION(bmi, age, diabetic) AS m FROM patients WHERE sex = 'F'",
        None,
        "bmi",
        ("age", "diabetic"),
        "sex = 'F'",
        None,
    ),
    (
        "SELECT sex, LINEAR_REGRESSION(bmi, age) AS m FROM patients GROUP BY sex",
        None,
        "bmi",
        ("age",),
        "TRUE",
        "sex",
    ),
    (
        "SELECT diabetic, LINEAR_REGRESSION(bmi, age) AS m FROM patients GROUP BY diabetic",
        None,
        "bmi",
        ("age",),
        "TRUE",
        "diabetic",
    ),
    (
        "SELECT sex, LINEAR_REGRESSION(age, bmi, diabetic) AS m FROM patients "
        "WHERE age BETWEEN ? AND ? GROUP BY sex",
        [30, 70],
        "age",
        ("bmi", "diabetic"),
        "age BETWEEN 30 AND 70",
        "sex",
    ),
]

LOGISTIC: list[tuple[str, Any, tuple[str, ...], str, str | None, float]] = [
    (
        "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi) AS m FROM patients",
        None,
        ("age", "bmi"),
        "TRUE",
        None,
        0.0,
    ),
    (
        "SELECT LOGISTIC_REGRESSION(diabetic, age) AS m FROM patients WHERE sex = $s",
        {"s": "M"},
        ("age",),
        "sex = 'M'",
        None,
        0.0,
    ),
    (
        "SELECT sex, LOGISTIC_REGRESSION(diabetic, age, bmi, max_iter => 20) AS m "
        "FROM patients GROUP BY sex",
        None,
        ("age", "bmi"),
        "TRUE",
        "sex",
        0.0,
    ),
    (
        "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi, l2 => 1000.0) AS m FROM patients "
        "WHERE age >= 40",
        None,
        ("age", "bmi"),
        "age >= 40",
        None,
        1000.0,
    ),
    (
        "SELECT sex, LOGISTIC_REGRESSION(diabetic, bmi, l2 => 50, tol => 1e-9) AS m "
        "FROM patients GROUP BY sex",
        None,
        ("bmi",),
        "TRUE",
        "sex",
        50.0,
    ),
]


def _pooled(
    pooled: duckdb.DuckDBPyConnection,
    target: str,
    features: tuple[str, ...],
    where: str,
    group: str | None,
) -> dict[object, tuple[np.ndarray, np.ndarray]]:
    """Design matrix (with intercept) and target per group, over complete rows."""
    cols = ", ".join(CLAMPED[c] for c in (*features, target))
    complete = " AND ".join(f"{c} IS NOT NULL" for c in (*features, target))
    key = group or "NULL"
    rows = pooled.execute(
        f"SELECT {key} AS g, {cols} FROM patients WHERE ({where}) AND {complete}"
    ).fetchall()
    out: dict[object, tuple[np.ndarray, np.ndarray]] = {}
    data = np.array([r[1:] for r in rows], dtype=np.float64)
    keys = [r[0] for r in rows]
    for g in dict.fromkeys(keys):
        pick = np.array([k == g for k in keys])
        x = np.c_[np.ones(pick.sum()), data[pick, :-1]]
        out[g] = (x, data[pick, -1])
    return out


def _coefficients(record: dict[str, Any], features: tuple[str, ...]) -> np.ndarray:
    return np.array([record["intercept"], *(record["coefficients"][f] for f in features)])


def _penalized_logit(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Newton's method on the stored scale with penalty l2/2 on the non-intercept coefficients."""
    beta = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        grad = x.T @ (y - p) - penalty * beta
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-13:
            break
    return beta


def _rows_by_group(cur: fedsql.Cursor, group: str | None) -> dict[object, dict[str, Any]]:
    names = [d[0] for d in cur.description or []]
    out = {}
    for row in cur.fetchall():
        record = dict(zip(names, row, strict=True))
        out[record[group] if group else None] = record["m"]
    return out


@pytest.mark.parametrize(("sql", "params", "target", "features", "where", "group"), LINEAR)
def test_linear_regression_equals_pooled_least_squares(
    oracle_cursor: fedsql.Cursor,
    pooled: duckdb.DuckDBPyConnection,
    sql: str,
    params: Any,
    target: str,
    features: tuple[str, ...],
    where: str,
    group: str | None,
) -> None:
    oracle_cursor.execute(sql, params)
    models = _rows_by_group(oracle_cursor, group)
    reference = _pooled(pooled, target, features, where, group)
    assert set(models) == set(reference)
    for g, (x, y) in reference.items():
        record = models[g]
        expected, *_ = np.linalg.lstsq(x, y, rcond=None)
        assert np.allclose(_coefficients(record, features), expected, rtol=0, atol=1e-6)
        ols = sm.OLS(y, x).fit()
        assert record["n"] == len(y)
        assert record["r2"] == pytest.approx(ols.rsquared, abs=1e-9)
        errors = [record["intercept_std_error"], *(record["std_errors"][f] for f in features)]
        assert np.allclose(errors, ols.bse, rtol=1e-6)
        assert record["noise_std_errors"] == dict.fromkeys(features, 0.0)


@pytest.mark.parametrize(("sql", "params", "features", "where", "group", "l2"), LOGISTIC)
def test_logistic_regression_equals_pooled_fit(
    oracle_cursor: fedsql.Cursor,
    pooled: duckdb.DuckDBPyConnection,
    sql: str,
    params: Any,
    features: tuple[str, ...],
    where: str,
    group: str | None,
    l2: float,
) -> None:
    oracle_cursor.execute(sql, params)
    models = _rows_by_group(oracle_cursor, group)
    reference = _pooled(pooled, "diabetic", features, where, group)
    assert set(models) == set(reference)
    for g, (x, y) in reference.items():
        record = models[g]
        assert record["converged"] and 3 <= record["iterations"] <= 20
        got = _coefficients(record, features)
        if l2 == 0.0:
            fit = sm.Logit(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=False)
            assert np.allclose(got, fit.params, rtol=0, atol=1e-6)
            errors = [record["intercept_std_error"], *(record["std_errors"][f] for f in features)]
            assert np.allclose(errors, fit.bse, rtol=1e-5)
        else:
            assert np.allclose(got, _penalized_logit(x, y, l2), rtol=0, atol=1e-6)
            # The penalty shrinks the coefficients towards zero.
            plain = sm.Logit(y, x).fit(method="newton", tol=1e-12, maxiter=100, disp=False)
            assert np.all(np.abs(got[1:]) < np.abs(plain.params[1:]))


def test_logistic_rounds_are_charged_one_share_each(oracle_cursor: fedsql.Cursor) -> None:
    oracle_cursor.execute(
        "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi, max_iter => 8) AS m FROM patients",
        epsilon=0.8,
    )
    record = oracle_cursor.fetchone()[0]  # type: ignore[index]
    assert oracle_cursor.privacy is not None
    model = oracle_cursor.privacy.details["model"]
    # Noise off, Newton's method stops early: only the rounds that ran are charged, each its
    # share of the schedule fixed up front (the last of 8 rounds would have had half).
    assert model["rounds"] == record["iterations"] < 8
    schedule = round_epsilons("0.8", 8)
    assert schedule[-2:] == ("0.2", "0.4") and schedule[0] == "0.033333"
    assert model["round_epsilons"] == list(schedule[: model["rounds"]])
    spent = sum(float(e) for e in model["round_epsilons"])
    assert float(oracle_cursor.privacy.epsilon) == pytest.approx(spent)
    assert record["epsilon"] == pytest.approx(spent)


def test_the_driver_returns_models_that_predict_locally(
    oracle_cursor: fedsql.Cursor, pooled: duckdb.DuckDBPyConnection
) -> None:
    oracle_cursor.execute(
        "SELECT sex, LOGISTIC_REGRESSION(diabetic, age, bmi) AS m FROM patients GROUP BY sex"
    )
    assert [d[1] for d in oracle_cursor.description or []] == ["VARCHAR", "STRUCT"]
    models = oracle_cursor.fetch_models()
    assert [m.group for m in models] == [{"sex": "F"}, {"sex": "M"}]
    frame = pooled.sql("SELECT age, bmi FROM patients WHERE sex = 'F' LIMIT 100").df()
    female = models[0]
    eta = female.intercept + sum(female.coefficients[c] * frame[c] for c in ("age", "bmi"))
    assert np.allclose(female.predict(frame), 1 / (1 + np.exp(-eta)))
    assert np.all((female.predict(frame) > 0) & (female.predict(frame) < 1))


def test_diabetes_model_recovers_the_generator_truth(oracle_cursor: fedsql.Cursor) -> None:
    oracle_cursor.execute("SELECT LOGISTIC_REGRESSION(diabetic, age, bmi) AS m FROM patients")
    record = oracle_cursor.fetchone()[0]  # type: ignore[index]
    for name, truth in (("age", DIABETES_COEF_AGE), ("bmi", DIABETES_COEF_BMI)):
        assert abs(record["coefficients"][name] - truth) < 4 * record["std_errors"][name]


#: Repetitions of the noisy fit: a few by default, many with FEDSQL_SLOW=1.
REPEATS = 40 if os.environ.get("FEDSQL_SLOW") == "1" else 3


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    positives = labels.astype(bool)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.mark.slow
def test_noisy_logistic_intervals_cover_the_noise_free_fit(
    oracle_cursor: fedsql.Cursor,
    noisy_federation: DemoFederation,
    pooled: duckdb.DuckDBPyConnection,
) -> None:
    sql = "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi) AS m FROM patients"
    features = ("age", "bmi")
    oracle_cursor.execute(sql)
    exact = _coefficients(oracle_cursor.fetchone()[0], features)  # type: ignore[index]
    ((x, y),) = _pooled(pooled, "diabetic", features, "TRUE", None).values()
    exact_auc = _auc(x @ exact, y)
    covered, widths, z = [], [], []
    with fedsql.connect(noisy_federation.target, analyst="model-noise", epsilon=1.0) as conn:
        cur = conn.cursor()
        for _ in range(REPEATS):
            cur.execute(sql)
            assert cur.privacy is not None and cur.privacy.noise
            # every clinic answered each round: the model's noise is the reduced one
            assert cur.privacy.details["noise_level"] == "all answered"
            record = cur.fetchone()[0]  # type: ignore[index]
            got = _coefficients(record, features)
            noise_se = np.array(
                [
                    record["intercept_noise_std_error"],
                    *(record["noise_std_errors"][f] for f in features),
                ]
            )
            assert np.all(noise_se > 0)
            covered.extend(np.abs(got - exact) <= 1.959964 * noise_se)
            z.extend((got - exact) / noise_se)
            widths.append(noise_se)
            assert abs(_auc(x @ got, y) - exact_auc) < 0.01
    rate = float(np.mean(covered))
    if REPEATS >= 40:
        assert 0.88 <= rate <= 0.99, rate
    # The three coefficients' errors are strongly correlated within a repetition, so a few
    # repetitions say little about coverage; their squared z-scores would average about 9 if the
    # reported noise were a third of the real one.
    assert float(np.mean(np.square(z))) < 6.0, z
    # Noise intervals are narrower than the sampling ones would be at this size: a useful model.
    assert np.all(np.mean(widths, axis=0)[1:] < np.abs(exact[1:]) / 5)
