"""Plan content: tables, columns, row cap, key spaces, measures, outputs and explanation.

Key spaces come from contract domains; measures carry their bounding and sensitivity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
import sqlglot
from sqlglot import exp

from fedsql.catalog import Column, Contract, Domain, Table
from fedsql.errors import QueryRejected
from fedsql.sql import FederatedPlan, KeySpace, Measure, OutputColumn, plan_query

from .testbed import CONTRACT, VISIBLE


def _plan(sql: str) -> FederatedPlan:
    return plan_query(sql, None, CONTRACT, VISIBLE)


def test_count_star_is_always_m0_and_hidden_unless_asked() -> None:
    hidden = _plan("SELECT AVG(bmi) FROM patients")
    asked = _plan("SELECT AVG(bmi) FROM patients HAVING COUNT(*) > 10")
    for plan in (hidden, asked):
        assert plan.measures[0].expression == "COUNT(*)"
        assert plan.count_measure == "m0"
    assert hidden.measures[0].hidden
    assert not asked.measures[0].hidden
    assert all(not m.hidden for m in hidden.measures[1:])


def test_measures_are_deduplicated_in_first_use_order() -> None:
    plan = _plan(
        "SELECT COUNT(bmi), AVG(bmi), SUM(bmi), SUM(age), COUNT(*) FROM patients "
        "HAVING AVG(age) > 3 ORDER BY COUNT(bmi)"
    )
    assert [(m.name, m.expression) for m in plan.measures] == [
        ("m0", "COUNT(*)"),
        ("m1", "COUNT(bmi)"),
        ("m2", "SUM(bmi)"),
        ("m3", "SUM(age)"),
        ("m4", "COUNT(age)"),
    ]
    assert plan.partial_sql.count("SUM(a0) AS m2") == 1
    assert plan.dimension == 5


def test_sensitivities_follow_row_cap_and_bounds() -> None:
    plan = _plan("SELECT test, SUM(delta), AVG(score), COUNT(year) FROM labs GROUP BY test")
    k = 6
    assert plan.row_cap == k
    # the budget split (share, typical) is tested in test_budget_split
    assert tuple(replace(m, share=1.0, typical=1.0) for m in plan.measures) == (
        Measure("m0", "count", "COUNT(*)", float(k), 1.0, True, hidden=True),
        # bounds [-50, 20]: B = max(|lo|, |hi|) = 50
        Measure("m1", "sum", "SUM(delta)", k * 50.0, 50.0, False),
        Measure("m2", "sum", "SUM(score)", k * 5.0, 5.0, True),
        Measure("m3", "count", "COUNT(score)", float(k), 1.0, True),
        Measure("m4", "count", "COUNT(year)", float(k), 1.0, True),
    )


def test_integral_only_for_integer_columns_with_integer_bounds() -> None:
    plan = _plan("SELECT SUM(cost), SUM(minutes) FROM visits")
    assert [m.integral for m in plan.measures] == [True, True, False]
    assert 'CAST("cost" AS BIGINT), 0), 5000)' in plan.partial_sql
    assert 'CAST("minutes" AS DOUBLE), 0.0), 240.0)' in plan.partial_sql


def test_key_spaces_come_from_contract_domains() -> None:
    plan = _plan("SELECT visit_date, dept, urgent, COUNT(*) FROM visits GROUP BY 1, 2, urgent")
    assert plan.keys[0] == KeySpace(
        name="k0",
        sql_type="DATE",
        values=tuple(dt.date(2024, 1, d) for d in range(1, 15)),
        source="visit_date",
    )
    assert plan.keys[1] == KeySpace("k1", "VARCHAR", ("cardio", "derm", "er", "onco"), "dept")
    assert plan.keys[2] == KeySpace("k2", "BOOLEAN", (False, True), "urgent")
    assert plan.cells == 14 * 4 * 2
    assert plan.key_index()[(dt.date(2024, 1, 1), "derm", True)] == 0 * 8 + 1 * 2 + 1


def test_duplicate_group_keys_collapse() -> None:
    plan = _plan("SELECT sex, COUNT(*) FROM patients p GROUP BY sex, p.sex, 1")
    assert [k.source for k in plan.keys] == ["sex"]


def test_tables_and_columns_list_what_the_query_reads() -> None:
    plan = _plan(
        "SELECT sex, AVG(bmi) FROM patients WHERE name LIKE 'A%' GROUP BY sex ORDER BY sex"
    )
    assert plan.tables == ("patients",)
    assert plan.columns == (("patients", "bmi"), ("patients", "name"), ("patients", "sex"))
    unit_filtered = _plan("SELECT COUNT(*) FROM patients WHERE patient_id > 10")
    assert unit_filtered.columns == (("patients", "patient_id"),)


def test_output_columns_describe_kinds_measures_and_bounds() -> None:
    plan = _plan(
        "SELECT sex, COUNT(*) AS n, SUM(age), AVG(bmi) AS mean, AVG(bmi) / 2, 7 "
        "FROM patients GROUP BY sex"
    )
    assert plan.outputs == (
        OutputColumn("sex", "key", "VARCHAR"),
        OutputColumn("n", "count", "BIGINT", ("m0",)),
        OutputColumn("sum(age)", "sum", "BIGINT", ("m1",)),
        OutputColumn("mean", "avg", "DOUBLE", ("m2", "m3"), lower=10.0, upper=70.0),
        OutputColumn("avg(bmi) / 2", "expr", "DOUBLE", ("m2", "m3")),
        OutputColumn("7", "expr", "INTEGER"),
    )


def test_output_names_are_made_unique_like_duckdb() -> None:
    plan = _plan('SELECT COUNT(*) AS x, COUNT(bmi) AS "X", SUM(age) AS x_1 FROM patients')
    assert [o.name for o in plan.outputs] == ["x", "X_2", "x_1"]


def test_without_group_by_there_is_one_cell_and_no_group_clause() -> None:
    plan = _plan("SELECT COUNT(*) FROM patients")
    assert plan.keys == () and plan.cells == 1 and plan.dimension == 1
    assert "GROUP BY" not in plan.partial_sql
    assert plan.finalize_sql.split("ORDER BY")[1].split() == ["__cell"]


def test_order_by_keeps_direction_and_ends_with_the_cell() -> None:
    plan = _plan(
        "SELECT sex, AVG(bmi) AS b FROM patients GROUP BY sex ORDER BY b DESC NULLS FIRST, sex"
    )
    order = plan.finalize_sql.split("ORDER BY")[1]
    assert "DESC NULLS FIRST" in order
    assert order.strip().endswith("k0,\n  __cell")


def test_projection_is_the_select_list_only() -> None:
    plan = _plan(
        "SELECT sex, COUNT(*) AS n FROM patients GROUP BY sex HAVING n > 1 ORDER BY n LIMIT 1"
    )
    assert plan.projection_sql == plan.finalize_sql.split("\nWHERE")[0]
    for clause in ("WHERE", "ORDER BY", "LIMIT"):
        assert clause not in plan.projection_sql


def test_explanation_states_cap_bounds_sensitivities_and_size() -> None:
    plan = _plan("SELECT dept, AVG(cost) FROM visits WHERE urgent GROUP BY dept")
    text = "\n".join(plan.explanation)
    assert "at most k = 4 row(s) per unit" in text
    assert "WHERE runs inside each clinic, before the row cap" in text
    assert "m0 = COUNT(*) (hidden: used to suppress small cells)" in text
    assert "m1 = SUM(cost): values clamped to [0, 5000]" in text
    assert "L2 sensitivity k * B = 4 * 5000 = 20000" in text
    assert "m2 = COUNT(cost): each row adds at most 1; L2 sensitivity k = 4" in text
    assert "key k0 = dept (VARCHAR): 4 value(s) from the contract domain" in text
    assert "cells: 4; measures: 3; partial vector length d = 12" in text
    assert "output avg(cost) = m1 / m2, clamped to [0, 5000]" in text


def _wide_contract(size: int) -> Contract:
    domain = Domain("int_range", lo=1, hi=size)
    table = Table(
        "wide",
        "uid",
        1,
        (
            Column("uid", "BIGINT"),
            Column("a", "INTEGER", domain=domain),
            Column("b", "INTEGER", domain=domain),
        ),
    )
    return Contract("wide", (table,))


def test_key_space_size_is_capped() -> None:
    visible = {"wide": ("uid", "a", "b")}
    sql = "SELECT a, b, COUNT(*) FROM wide GROUP BY a, b"
    plan = plan_query(sql, None, _wide_contract(1000), visible)
    assert plan.cells == 1_000_000
    assert any("large partial vector" in line for line in plan.explanation)
    with pytest.raises(QueryRejected, match="1002001 cells"):
        plan_query(sql, None, _wide_contract(1001), visible)


def test_comments_never_reach_the_generated_sql() -> None:
    plan = _plan("SELECT /* a */ COUNT(*) -- b\nFROM patients WHERE age > 1 /* */ ; -- c")
    assert "--" not in plan.partial_sql + plan.finalize_sql
    assert "/*" not in plan.partial_sql + plan.finalize_sql


def test_fallible_row_operations_are_guarded_one_by_one() -> None:
    plan = _plan(
        "SELECT COUNT(*) FROM patients "
        "WHERE age > 3 AND (1 // (age - 30) > 0 OR CAST(name AS INT) = 2 OR age / 0 > 1)"
    )
    tree = sqlglot.parse_one(plan.partial_sql, read="duckdb")
    rows = tree.find(exp.CTE)
    assert rows is not None
    where = rows.this.args["where"].this
    assert isinstance(where, exp.And)  # never one TRY around the whole condition
    guarded = sorted(type(t.this).__name__ for t in where.find_all(exp.Try))
    assert guarded == ["Cast", "IntDiv", "Sub"]
