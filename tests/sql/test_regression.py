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

from .test_bounding import (
    _without_clamping,
    _without_row_cap,
    _worst_ratio,
    fanned_out,
    neighbours,
)
from .testbed import CONTRACT, VISIBLE

__all__ = ["fanned_out", "neighbours"]


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
        ("SELECT LINEAR_REGRESSION(bmi, patient_id) FROM patients", "privacy unit column, as"),
        ("SELECT LOGISTIC_REGRESSION(patient_id, age) FROM patients", "privacy unit column, as"),
        (
            "SELECT LINEAR_REGRESSION(l.delta, p.patient_id) FROM labs l JOIN patients p "
            "ON l.patient_id = p.patient_id",
            "privacy unit column, as",
        ),
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
        # over joined rows the joins, and the arguments' bounds, are checked as for SUM
        (
            "SELECT LINEAR_REGRESSION(l.delta, p.age) FROM labs l JOIN patients p "
            "ON l.score = p.age",
            "privacy unit alone",
        ),
        ("SELECT LINEAR_REGRESSION(l.delta, p.age) FROM labs l, patients p", "join without ON"),
        (
            "SELECT LINEAR_REGRESSION(l.delta, p.income) FROM labs l JOIN patients p "
            "ON l.patient_id = p.patient_id",
            "column patients.income has no bounds",
        ),
        (
            "WITH c AS (SELECT patient_id, age * 2 AS a2, bmi FROM patients) "
            "SELECT LINEAR_REGRESSION(bmi, a2) FROM c",
            "over a2 is not supported: a subquery computes a2",
        ),
        (
            "SELECT LINEAR_REGRESSION(l.delta, v.patient_id) FROM labs l LEFT JOIN visits v "
            "ON l.patient_id = v.patient_id",
            "privacy unit column",
        ),
        (
            "SELECT LINEAR_REGRESSION(l.delta, p.sex) FROM labs l JOIN patients p "
            "USING (patient_id)",
            "feature patients.sex must be numeric",
        ),
        (
            "SELECT LOGISTIC_REGRESSION(l.delta, p.age) FROM labs l JOIN patients p "
            "ON l.patient_id = p.patient_id",
            "labs.delta is DOUBLE",
        ),
        (
            "SELECT p.name, LINEAR_REGRESSION(l.delta, p.age) FROM labs l JOIN patients p "
            "ON l.patient_id = p.patient_id GROUP BY p.name",
            "domain",
        ),
        (
            "SELECT LINEAR_REGRESSION(delta, score) FROM labs WHERE EXISTS "
            "(SELECT 1 FROM visits v WHERE v.cost > 10)",
            "correlated",
        ),
    ],
)
def test_model_queries_outside_the_supported_shape_are_refused(sql: str, message: str) -> None:
    with pytest.raises(QueryRejected, match=message):
        _plan(sql)


def test_a_model_over_an_unshared_column_is_unknown() -> None:
    visible = {t: tuple(c for c in cols if c != "bmi") for t, cols in VISIBLE.items()}
    with pytest.raises(UnknownObject):
        plan_query("SELECT LINEAR_REGRESSION(bmi, age) FROM patients", None, CONTRACT, visible)


def test_a_model_over_joined_rows_reads_qualified_columns_with_the_joined_cap() -> None:
    plan = _plan(
        "SELECT l.test, LINEAR_REGRESSION(l.delta, p.age, v.minutes) AS fit FROM labs l "
        "JOIN patients p ON l.patient_id = p.patient_id "
        "LEFT JOIN visits v ON v.patient_id = l.patient_id WHERE p.smoker GROUP BY l.test"
    )
    spec = plan.model
    assert spec is not None
    assert (spec.target, spec.features, spec.layout) == ("delta", ("age", "minutes"), ("k0", ""))
    # bounds from the contract columns: labs.delta [-50, 20], patients.age [0, 110], ...
    assert spec.centers == (55.0, 120.0, -15.0) and spec.scales == (55.0, 120.0, 35.0)
    k = 6 * 2 * 4
    assert plan.row_cap == k
    assert all(m.sensitivity == k * m.clip for m in plan.measures)
    assert plan.tables == ("labs", "patients", "visits")
    assert plan.columns == (
        ("labs", "delta"), ("labs", "test"), ("patients", "age"), ("patients", "smoker"),
        ("visits", "minutes"),
    )  # fmt: skip
    assert len(plan.joins) == 2
    assert f"<= {k}\n)" in plan.partial_sql and "HASH(__rid0, __rid1, __rid2" in plan.partial_sql
    text = "\n".join(plan.explanation)
    assert "join: labs AS l JOIN patients AS p LEFT JOIN visits AS v on the unit" in text
    assert f"k = {k} joined row(s) per unit (6 * 2 * 4" in text
    assert f"sensitivity {k} (k={k} rows per patient_id)" in text


def test_a_self_join_model_names_its_columns_by_alias() -> None:
    plan = _plan(
        "SELECT a.dept, LOGISTIC_REGRESSION(b.urgent, a.minutes) AS m FROM visits a "
        "JOIN visits b ON a.patient_id = b.patient_id GROUP BY a.dept"
    )
    assert plan.model is not None
    assert (plan.model.target, plan.model.features) == ("b.urgent", ("a.minutes",))
    assert plan.row_cap == 16 and plan.cells == 4
    assert plan.model.layout == ("k0", "")


BOUNDED = [
    "SELECT sex, LINEAR_REGRESSION(bmi, age, smoker) FROM patients GROUP BY sex",
    "SELECT dept, LINEAR_REGRESSION(minutes, cost, urgent) FROM visits GROUP BY dept",
    "SELECT test, LINEAR_REGRESSION(delta, score) FROM labs WHERE score > -3 GROUP BY test",
    "SELECT LOGISTIC_REGRESSION(urgent, cost, minutes) FROM visits",
    # coefficients far outside any sensible range must not loosen the bound
    "SELECT LOGISTIC_REGRESSION(urgent, cost, minutes, at => [1e9, -1e9, 1e9]) FROM visits",
    "SELECT dept, LOGISTIC_REGRESSION(urgent, minutes, at => [30, 30, -30, -30, 1e30, -1e30, "
    "0, 0]) FROM visits GROUP BY dept",
    # semi-joins and DISTINCT subqueries keep one table's cap
    "SELECT LOGISTIC_REGRESSION(urgent, cost, minutes) FROM visits v WHERE EXISTS "
    "(SELECT 1 FROM labs l WHERE l.patient_id = v.patient_id AND l.score > 0)",
    "SELECT LINEAR_REGRESSION(s.bmi, s.age) FROM (SELECT DISTINCT patient_id, age, bmi "
    "FROM patients) s WHERE s.patient_id IN (SELECT patient_id FROM visits)",
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


#: Model queries over joins: a patient's joined rows are capped at the product of the caps.
JOINED = [
    "SELECT l.test, LINEAR_REGRESSION(l.delta, p.age, p.bmi) FROM labs l JOIN patients p "
    "ON l.patient_id = p.patient_id GROUP BY l.test",
    "SELECT v.dept, LINEAR_REGRESSION(v.minutes, l.score, v.cost) FROM visits v JOIN labs l "
    "ON v.patient_id = l.patient_id GROUP BY v.dept",
    "WITH c AS (SELECT patient_id, urgent, cost FROM visits WHERE minutes > 1) "
    "SELECT p.sex, LOGISTIC_REGRESSION(c.urgent, c.cost, p.bmi) FROM c JOIN patients p "
    "ON p.patient_id = c.patient_id GROUP BY p.sex",
    "SELECT LOGISTIC_REGRESSION(b.urgent, a.minutes, l.delta, at => [1e9, -1e9, 1e9]) "
    "FROM visits a JOIN visits b ON a.patient_id = b.patient_id "
    "LEFT JOIN labs l ON l.patient_id = a.patient_id",
]


@pytest.mark.parametrize("sql", JOINED)
def test_one_patient_moves_each_joined_model_measure_by_at_most_its_sensitivity(
    fanned_out: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], sql: str
) -> None:
    plan = _plan(sql)
    assert plan.row_cap > max(t.max_rows_per_unit for t in CONTRACT.tables)
    ratio = _worst_ratio(fanned_out, plan)
    assert 0.25 < ratio <= 1 + 1e-9


@pytest.mark.parametrize("sql", JOINED)
def test_without_the_cap_after_the_join_a_model_breaks_its_bound(
    fanned_out: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], sql: str
) -> None:
    assert _worst_ratio(fanned_out, _plan(sql), _without_row_cap) > 2


def test_one_tables_cap_is_not_enough_for_a_joined_model(
    fanned_out: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
) -> None:
    """Declaring the sensitivity of the largest joined table's cap alone would be broken."""
    plan = _plan(JOINED[3])
    assert plan.row_cap == 4 * 4 * 6
    assert _worst_ratio(fanned_out, plan) * plan.row_cap / 6 > 2


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
