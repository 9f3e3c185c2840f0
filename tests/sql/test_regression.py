"""Model aggregates: what LINEAR_REGRESSION / LOGISTIC_REGRESSION plan, refuse and bound."""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb
import numpy as np
import pytest

from fedsql.errors import QueryRejected, UnknownObject
from fedsql.sql import FederatedPlan, plan_query
from fedsql.sql.params_codec import encode_params
from fedsql.sql.plan_cache import plan_cached
from fedsql.sql.regression import canonical_sql, model_rounds, round_sql, unround_sql
from fedsql.sql.regression_sql import inline_coefficients

from .test_bounding import _without_clamping, _without_row_cap, _worst_ratio, neighbours
from .testbed import CONTRACT, VISIBLE

__all__ = ["neighbours"]


def _plan(sql: str, params: object = None) -> FederatedPlan:
    return plan_query(sql, params, CONTRACT, VISIBLE)  # type: ignore[arg-type]


def test_linear_regression_sums_every_product_of_the_rescaled_columns() -> None:
    plan = _plan(
        "SELECT sex, LINEAR_REGRESSION(bmi, age, smoker) AS fit FROM patients GROUP BY sex"
    )
    spec = plan.model
    assert spec is not None and spec.kind == "linear"
    assert (spec.target, spec.features, spec.output) == ("bmi", ("age", "smoker"), "fit")
    # (1, age, smoker, bmi): 10 products, the first of which is the row count
    assert len(plan.measures) == 10 and plan.measures[0].expression == "COUNT(*)"
    assert spec.centers == (55.0, 0.5, 40.0) and spec.scales == (55.0, 0.5, 30.0)
    # every rescaled value lies in [-1, 1], so each product adds at most 1 per row, k per unit
    assert all(m.clip == 1.0 and m.sensitivity == 2.0 for m in plan.measures)
    assert [o.kind for o in plan.outputs] == ["key", "expr"]
    assert spec.layout == ("k0", "")
    assert plan.columns == (("patients", "age"), ("patients", "bmi"), ("patients", "sex"),
                            ("patients", "smoker"))  # fmt: skip


def test_logistic_regression_sums_gradient_and_hessian_at_the_requested_coefficients() -> None:
    plan = _plan(
        "SELECT LOGISTIC_REGRESSION(urgent, cost, minutes, l2 => 2.5, max_iter => 7, tol => 1e-8) "
        "FROM visits"
    )
    spec = plan.model
    assert spec is not None
    assert (spec.l2, spec.max_iter, spec.tol, spec.at) == (2.5, 7, 1e-8, ())
    kinds = [t[0] for t in spec.terms]
    assert kinds == ["count"] + ["gradient"] * 3 + ["hessian"] * 6
    gradient = [m for m, t in zip(plan.measures, spec.terms, strict=True) if t[0] == "gradient"]
    hessian = [m for m, t in zip(plan.measures, spec.terms, strict=True) if t[0] == "hessian"]
    assert all(m.clip == 1.0 and m.sensitivity == 4.0 for m in gradient)
    assert all(m.clip == 0.25 and m.sensitivity == 1.0 for m in hessian)
    assert plan.outputs[0].name == "logistic_regression"
    moved = _plan(round_sql(plan.sql, [0.5, -1.0, 2.0]))
    assert moved.model is not None and moved.model.at == (0.5, -1.0, 2.0)
    # the coefficients are bound parameters: the partial SQL of every round is one text
    assert moved.plan_hash != plan.plan_hash and moved.partial_sql == plan.partial_sql
    params = moved.run_params(moved.partial_sql, 7)
    assert params == {"fedsql_salt": 7, "fedsql_b0_0": 0.5, "fedsql_b0_1": -1.0, "fedsql_b0_2": 2.0}
    assert plan.run_params(plan.partial_sql, 7)["fedsql_b0_2"] == 0.0


def test_round_sql_keeps_parameters_and_refuses_a_second_at() -> None:
    sql = "SELECT LOGISTIC_REGRESSION(urgent, cost) FROM visits WHERE minutes > ?"
    rounded = round_sql(sql, [1.0, -2.0])
    assert "at => [1.0, -2.0]" in rounded and "?" in rounded
    assert _plan(rounded, [3.0]).model is not None
    with pytest.raises(QueryRejected, match="set by fedsql"):
        round_sql(rounded, [0.0, 0.0])


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT LINEAR_REGRESSION(bmi) FROM patients", "at least one feature"),
        ("SELECT LINEAR_REGRESSION(bmi, age + 1) FROM patients", "plain columns"),
        ("SELECT LINEAR_REGRESSION(bmi, income) FROM patients", "no bounds"),
        ("SELECT LINEAR_REGRESSION(bmi, sex) FROM patients", "numeric or BOOLEAN"),
        ("SELECT LINEAR_REGRESSION(bmi, bmi) FROM patients", "twice"),
        ("SELECT LINEAR_REGRESSION(bmi, patient_id) FROM patients", "privacy unit"),
        ("SELECT LOGISTIC_REGRESSION(bmi, age) FROM patients", "must be BOOLEAN"),
        ("SELECT LINEAR_REGRESSION(bmi, age, l2 => 1) FROM patients", "no option l2"),
        ("SELECT LOGISTIC_REGRESSION(smoker, age, max_iter => 0) FROM patients", "max_iter"),
        ("SELECT LOGISTIC_REGRESSION(smoker, age, max_iter => 2.5) FROM patients", "max_iter"),
        ("SELECT LOGISTIC_REGRESSION(smoker, age, l2 => -1) FROM patients", "l2"),
        ("SELECT LOGISTIC_REGRESSION(smoker, age, tol => 0) FROM patients", "tol"),
        ("SELECT LOGISTIC_REGRESSION(smoker, age, tol => age) FROM patients", "number literal"),
        ("SELECT LOGISTIC_REGRESSION(smoker, age, at => [1.0]) FROM patients", "2 coefficients"),
        ("SELECT LOGISTIC_REGRESSION(smoker, age, at => 1.0) FROM patients", "list of numbers"),
        ("SELECT 2 * LINEAR_REGRESSION(bmi, age) FROM patients", "stand alone"),
        ("SELECT COUNT(*) FROM patients WHERE LINEAR_REGRESSION(bmi, age) > 0", "stand alone"),
        (
            "SELECT LINEAR_REGRESSION(bmi, age), LINEAR_REGRESSION(age, bmi) FROM patients",
            "one model",
        ),
        ("SELECT COUNT(*), LINEAR_REGRESSION(bmi, age) FROM patients", "only group keys"),
        ("SELECT LINEAR_REGRESSION(bmi, age) FROM patients LIMIT 3", "LIMIT"),
        ("SELECT LINEAR_REGRESSION(bmi, age) FROM patients GROUP BY name", "domain"),
        ("SELECT region, LINEAR_REGRESSION(bmi, age) FROM patients", "GROUP BY"),
        ("SELECT LINEAR_REGRESSION(bmi, age) FROM patients WHERE getenv('x') = 'y'", "GETENV"),
    ],
)
def test_model_queries_outside_the_supported_shape_are_refused(sql: str, message: str) -> None:
    with pytest.raises(QueryRejected, match=message):
        _plan(sql)


def test_a_model_over_an_unshared_column_is_unknown() -> None:
    visible = {t: tuple(c for c in cols if c != "bmi") for t, cols in VISIBLE.items()}
    with pytest.raises(UnknownObject):
        plan_query("SELECT LINEAR_REGRESSION(bmi, age) FROM patients", None, CONTRACT, visible)


BOUNDED = [
    "SELECT sex, LINEAR_REGRESSION(bmi, age, smoker) FROM patients GROUP BY sex",
    "SELECT dept, LINEAR_REGRESSION(minutes, cost, urgent) FROM visits GROUP BY dept",
    "SELECT test, LINEAR_REGRESSION(delta, score) FROM labs WHERE score > -3 GROUP BY test",
    "SELECT LOGISTIC_REGRESSION(urgent, cost, minutes) FROM visits",
    # coefficients far outside any sensible range must not loosen the bound
    "SELECT LOGISTIC_REGRESSION(urgent, cost, minutes, at => [1e9, -1e9, 1e9]) FROM visits",
    "SELECT dept, LOGISTIC_REGRESSION(urgent, minutes, at => [30, 30, -30, -30, 1e30, -1e30, "
    "0, 0]) FROM visits GROUP BY dept",
]


@pytest.mark.parametrize("sql", BOUNDED)
def test_one_unit_moves_each_model_measure_by_at_most_its_sensitivity(
    neighbours: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], sql: str
) -> None:
    plan = _plan(sql)
    ratio = _worst_ratio(neighbours, plan)
    assert ratio <= 1 + 1e-9
    assert ratio > 0.25


def _without_any_clamping(sql: str) -> str:
    """Neither the values nor the summed products clamped (each alone still bounds a product)."""
    loose = re.sub(r"\(\s*-1\.0\s*\)", "(-1e30)", _without_clamping(sql))
    mutated = re.sub(r"\), 1\.0\)", "), 1e30)", loose)
    assert "1e30" in mutated
    return mutated


@pytest.mark.parametrize("mutate", [_without_row_cap, _without_any_clamping])
def test_removing_a_bound_breaks_the_model_sensitivity(
    neighbours: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
    mutate: Callable[[str], str],
) -> None:
    plan = _plan(BOUNDED[1])
    assert _worst_ratio(neighbours, plan, mutate) > 2


def test_model_partial_sql_computes_the_sufficient_statistics() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE patients AS SELECT i AS patient_id, 'F' AS sex, i % 90 AS age, "
        "10.0 + (i % 50) AS bmi, i % 3 = 0 AS smoker, NULL::DATE AS birth_date, "
        "'n' AS name, 0::BIGINT AS income, 'z' AS zip, 'east' AS region "
        "FROM range(200) t(i)"
    )
    plan = _plan("SELECT LINEAR_REGRESSION(bmi, age) FROM patients")
    totals = np.array(con.execute(plan.partial_sql, {"fedsql_salt": 5}).fetchone(), dtype=float)
    age = (np.arange(200) % 90 - 55.0) / 55.0
    bmi = (10.0 + np.arange(200) % 50 - 40.0) / 30.0
    z = np.c_[np.ones(200), age, bmi]
    expected = [(z[:, a] * z[:, b]).sum() for a in range(3) for b in range(a, 3)]
    assert np.allclose(totals, expected)


def test_unround_sql_undoes_round_sql_and_model_rounds_reads_max_iter() -> None:
    sql = "select sex, LOGISTIC_REGRESSION(y, x, max_iter => 7) as m from t where a > 1 group by 1"
    at = [0.25, -1.5e-7, 3.0]
    base, back = unround_sql(round_sql(sql, at))
    assert back == tuple(at)
    assert base == canonical_sql(sql)
    assert round_sql(sql, back) == round_sql(sql, at)
    assert model_rounds(sql) == 7
    assert model_rounds("SELECT LOGISTIC_REGRESSION(y, x) FROM t") == 10
    assert model_rounds("SELECT LINEAR_REGRESSION(y, x) FROM t") is None
    assert model_rounds("SELECT COUNT(*) FROM t") is None
    with pytest.raises(QueryRejected, match="set by fedsql"):
        model_rounds(round_sql(sql, at))
    with pytest.raises(QueryRejected, match="names no `at`"):
        unround_sql(sql)
    with pytest.raises(QueryRejected, match="once, as a list"):
        unround_sql("SELECT LOGISTIC_REGRESSION(y, x, at => 1) FROM t")


ROUNDS = [
    "SELECT LOGISTIC_REGRESSION(urgent, cost, minutes, max_iter => 5) FROM visits",
    "SELECT dept, LOGISTIC_REGRESSION(urgent, minutes) AS m FROM visits WHERE cost > ? "
    "GROUP BY dept",
    "select sex, logistic_regression(smoker, age, bmi, l2 => 1.0) from patients group by 1",
]


@pytest.mark.parametrize("sql", ROUNDS)
def test_a_round_planned_from_the_model_plan_equals_a_round_planned_from_scratch(
    sql: str,
) -> None:
    params = [10.0] if "?" in sql else None
    params_json = encode_params(params)
    base = _plan(sql, params)
    assert base.model is not None
    width = len(base.model.features) + 1
    rng = np.random.default_rng(3)
    for _ in range(3):
        at = [float(v) for v in rng.normal(0, 2, base.cells * width)]
        text = round_sql(sql, at)
        fast = plan_cached(text, params_json, CONTRACT, VISIBLE)
        full = _plan(text, params)
        assert fast == full and fast.plan_hash == full.plan_hash
        assert fast.model is not None and fast.model.at == tuple(at)
    wrong = round_sql(sql, [0.5] * (base.cells * width + 1))
    with pytest.raises(QueryRejected, match="coefficients") as fast_error:
        plan_cached(wrong, params_json, CONTRACT, VISIBLE)
    with pytest.raises(QueryRejected) as full_error:
        _plan(wrong, params)
    assert str(fast_error.value) == str(full_error.value)


def test_coefficients_are_written_in_for_engines_without_named_parameters() -> None:
    plan = _plan(round_sql("SELECT LOGISTIC_REGRESSION(urgent, minutes) FROM visits", [-0.5, 2.0]))
    text = inline_coefficients(plan.partial_sql, plan.run_params(plan.partial_sql, 3))
    assert "$fedsql_b" not in text and "$fedsql_salt" in text
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE visits AS SELECT i AS visit_id, i % 40 AS patient_id, DATE '2024-01-01' "
        "AS visit_date, 'cardiology' AS dept, (i * 37 % 1000)::DOUBLE AS cost, i % 90 AS minutes, "
        "i % 3 = 0 AS urgent FROM range(300) t(i)"
    )
    bound = con.execute(plan.partial_sql, plan.run_params(plan.partial_sql, 3)).fetchone()
    inlined = con.execute(text, {"fedsql_salt": 3}).fetchone()
    # equal up to the order DuckDB's threads add doubles in
    assert bound is not None and inlined is not None and bound[0] == inlined[0] > 0
    assert np.allclose(bound, inlined, rtol=1e-12, atol=0)
